r"""Check backpropagation against finite differences.

For each parameter :math:`\theta_i` the numerical derivative of the batch loss :math:`E` is the
central difference

.. math::
    \text{order 2:}\quad \frac{E(\theta + h e_i) - E(\theta - h e_i)}{2h}, \qquad
    \text{order 4:}\quad \frac{-E(\theta + 2h e_i) + 8E(\theta + h e_i) - 8E(\theta - h e_i) + E(\theta - 2h e_i)}{12h}

with truncation errors :math:`O(h^2)` and :math:`O(h^4)`. The default (order 4,
:math:`h = 2\cdot10^{-4}`, float64) keeps truncation below round-off, which is about
:math:`\epsilon |E| / h \approx 10^{-12}` in absolute terms whatever the size of the entry.

The relative error of entry *i* is

.. math::
    r_i = \frac{|g_i - \hat g_i|}{\max(|g_i|, |\hat g_i|, \phi \lVert g \rVert_\infty, 10^{-300})}

with ``floor`` :math:`\phi = 10^{-4}`: an entry ten thousand times smaller than the largest one
is measured on the scale of the largest, because the round-off above would otherwise dominate
its relative error. The absolute error is reported too.

Finite differences are wrong across a kink (ReLU and leaky ReLU at :math:`z = 0`): when a
pre-activation lies within the step of a kink the two may disagree although backprop is right.
``GradcheckResult.near_kink`` counts such pre-activations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .network import Network

__all__ = ["GradcheckResult", "gradcheck", "numerical_gradient"]


@dataclass
class GradcheckResult:
    analytic: np.ndarray
    numeric: np.ndarray
    indices: np.ndarray
    names: list
    rel_error: np.ndarray
    max_rel_error: float
    median_rel_error: float
    max_abs_error: float
    worst: str
    seconds_backprop: float
    seconds_numeric: float
    n_params: int
    near_kink: int = 0

    def passed(self, tol: float = 1e-6) -> bool:
        return self.max_rel_error < tol

    def summary(self) -> str:
        return (f"{len(self.indices)} of {self.n_params} parameters checked: max relative error "
                f"{self.max_rel_error:.3g} (at {self.worst}), median {self.median_rel_error:.3g}, "
                f"max absolute error {self.max_abs_error:.3g}"
                + (f"; {self.near_kink} pre-activations within a step of a ReLU kink" if self.near_kink else "")
                + f"; backprop {self.seconds_backprop * 1e3:.3g} ms, "
                f"finite differences {self.seconds_numeric * 1e3:.3g} ms")


_KINKED = ("relu", "leaky_relu")
_STENCILS = {2: ((1, -1), (0.5, -0.5)), 4: ((2, 1, -1, -2), (-1 / 12, 8 / 12, -8 / 12, 1 / 12))}


def numerical_gradient(network: Network, X, T, indices=None, h: float = 2e-4, order: int = 4) -> np.ndarray:
    """Central-difference gradient of the mean loss w.r.t. ``network.flat[indices]``."""
    if order not in _STENCILS:
        raise ConfigError(f"order must be 2 or 4, got {order}")
    flat = network.flat
    idx = np.arange(flat.size) if indices is None else np.asarray(indices)
    offsets, weights = _STENCILS[order]
    out = np.empty(len(idx))
    for k, i in enumerate(idx):
        orig = flat[i]
        acc = 0.0
        for off, w in zip(offsets, weights):
            flat[i] = orig + off * h
            acc += w * float(network.sample_losses(X, T).mean())
        flat[i] = orig
        out[k] = acc / h
    return out


def gradcheck(network: Network, X, T, *, indices=None, max_params: int | None = None, seed=0,
              h: float = 2e-4, order: int = 4, floor: float = 1e-4) -> GradcheckResult:
    """Compare backprop's gradient with finite differences.

    ``max_params`` checks a random sample of that many parameters (seeded) instead of all.
    The network's dtype should be float64; float32 differences are dominated by round-off.
    """
    X = network.check_input(X)
    T = np.asarray(T, dtype=network.dtype).reshape(len(X), -1)
    n = network.n_params
    if indices is None:
        if max_params is not None and max_params < n:
            indices = np.sort(np.random.default_rng(seed).choice(n, max_params, replace=False))
        else:
            indices = np.arange(n)
    indices = np.asarray(indices)
    t0 = time.perf_counter()
    network.sample_losses(X, T)
    network.backward(T, 1.0 / len(X))
    analytic = network.flat_grad[indices].astype(float)
    t1 = time.perf_counter()
    numeric = numerical_gradient(network, X, T, indices, h, order)
    t2 = time.perf_counter()
    abs_err = np.abs(analytic - numeric)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    big = float(scale.max()) if len(scale) else 0.0
    rel = abs_err / np.maximum(scale, max(floor * big, 1e-300))
    network.forward(X)
    step = h * (2 if order == 4 else 1) * max(1.0, float(np.abs(X).max()))
    near_kink = sum(int(np.sum(np.abs(layer.z) < step)) for layer in network.layers
                    if layer.activation.name in _KINKED)
    worst = int(np.argmax(rel)) if len(rel) else 0
    names = network.param_names()
    return GradcheckResult(
        analytic=analytic, numeric=numeric, indices=indices,
        names=[names[i] for i in indices], rel_error=rel,
        max_rel_error=float(rel.max()) if len(rel) else 0.0,
        median_rel_error=float(np.median(rel)) if len(rel) else 0.0,
        max_abs_error=float(abs_err.max()) if len(abs_err) else 0.0,
        worst=(f"{names[indices[worst]]}: backprop {analytic[worst]:.10g} vs numeric {numeric[worst]:.10g}"
               if len(rel) else "-"),
        seconds_backprop=t1 - t0, seconds_numeric=t2 - t1, n_params=n, near_kink=near_kink,
    )
