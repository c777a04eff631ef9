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
its relative error. The absolute error is reported too. Where every entry is below the
``resolution`` :math:`100\,\epsilon \max(1, |E|) / h` (at a minimum of the loss, for example),
the finite differences are mostly round-off, relative errors of order 1 say nothing about
backprop, and :meth:`GradcheckResult.summary` says so (``unresolved``).

Finite differences are wrong across a kink (ReLU and leaky ReLU at :math:`z = 0`): when a
pre-activation lies within the step of a kink the two may disagree although backprop is right.
``GradcheckResult.near_kink`` counts such pre-activations.

The cost of the two (:func:`gradient_cost`). Let :math:`P` be the number of parameters and
:math:`t_f` the time of one forward pass with its loss over the batch. Backprop gets all
:math:`P` partial derivatives from one forward and one backward pass,

.. math::
    t_{bp} = t_f + t_b \approx c\,t_f, \qquad c \approx 2\text{ to }3,

while central differences need :math:`s` full forward passes per parameter (:math:`s = 2` for
order 2, 4 for order 4), :math:`t_{fd} \approx s P t_f`. The ratio
:math:`t_{fd} / t_{bp} \approx s P / c` grows linearly with :math:`P`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError
from .i18n import gettext as _, ngettext
from .network import Network
from .validation import as_generator

__all__ = ["CostRow", "DEFAULT_COST_SIZES", "GradcheckResult", "cost_slope", "gradcheck", "gradient_cost",
           "numerical_gradient", "random_problem", "relative_error"]


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
    order: int = 4
    h: float = 2e-4
    #: The smallest gradient entry the finite differences resolve, about
    #: :math:`100\,\epsilon \max(1, |E|) / h` (:math:`\epsilon` of the network's dtype): below it
    #: their round-off is a sizeable part of the entry, and relative errors say little.
    resolution: float = 0.0

    @property
    def unresolved(self) -> bool:
        """True when every checked entry, backprop's and the numeric one, is below
        :attr:`resolution` (e.g. at a minimum of the loss): the comparison cannot tell a right
        gradient from a wrong one there; check at weights where the gradient is larger."""
        big = max(float(np.abs(self.analytic).max(initial=0.0)), float(np.abs(self.numeric).max(initial=0.0)))
        return len(self.indices) > 0 and big < self.resolution

    def passed(self, tol: float = 1e-6) -> bool:
        return self.max_rel_error < tol

    @property
    def sampled(self) -> bool:
        """True when only some of the parameters were checked (``max_params``/``indices``)."""
        return len(self.indices) < self.n_params

    @property
    def forward_passes(self) -> int:
        """Forward passes the finite differences took: ``order`` per checked parameter."""
        return len(_STENCILS[self.order][0]) * len(self.indices)

    @property
    def seconds_numeric_full(self) -> float:
        r"""Time a sweep over all parameters would take, :math:`t_{fd} P / k` for :math:`k`
        checked parameters (each one costs the same forward passes, whichever it is)."""
        k = len(self.indices)
        return self.seconds_numeric * self.n_params / k if k else 0.0

    def summary(self) -> str:
        return (ngettext("{k} of {n} parameters checked: max relative error {max} (at {worst}), median {median}, "
                         "max absolute error {abs}",
                         "{k} of {n} parameters checked: max relative error {max} (at {worst}), median {median}, "
                         "max absolute error {abs}", self.n_params).format(
                    k=len(self.indices), n=self.n_params, max=f"{self.max_rel_error:.3g}", worst=self.worst,
                    median=f"{self.median_rel_error:.3g}", abs=f"{self.max_abs_error:.3g}")
                + ("; " + ngettext("{n} pre-activations within a step of a ReLU kink",
                                   "{n} pre-activations within a step of a ReLU kink", self.near_kink).format(
                    n=self.near_kink) if self.near_kink else "")
                + "; " + _("backprop {backprop} ms, finite differences {numeric} ms").format(
                    backprop=f"{self.seconds_backprop * 1e3:.3g}", numeric=f"{self.seconds_numeric * 1e3:.3g}")
                + ("; " + _("every entry is below {resolution}, where finite differences are mostly round-off: "
                            "the errors say little here; check at weights with a larger gradient (e.g. "
                            "before training)").format(resolution=f"{self.resolution:.2g}")
                   if self.unresolved else ""))


_KINKED = ("relu", "leaky_relu")
_STENCILS = {2: ((1, -1), (0.5, -0.5)), 4: ((2, 1, -1, -2), (-1 / 12, 8 / 12, -8 / 12, 1 / 12))}


def numerical_gradient(network: Network, X, T, indices=None, h: float = 2e-4, order: int = 4) -> np.ndarray:
    """Central-difference gradient of the mean loss w.r.t. ``network.flat[indices]``."""
    if order not in _STENCILS:
        raise ConfigError(_ORDER().format(order=order))
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


def relative_error(analytic, numeric, floor: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    r"""Entrywise ``(relative, absolute)`` error of ``analytic`` against ``numeric``:
    :math:`r_i = |g_i - \hat g_i| / \max(|g_i|, |\hat g_i|, \phi \lVert g \rVert_\infty, 10^{-300})`
    with :math:`\phi` = ``floor`` (see the module docstring)."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    abs_err = np.abs(analytic - numeric)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    big = float(scale.max()) if scale.size else 0.0
    return abs_err / np.maximum(scale, max(floor * big, 1e-300)), abs_err


def gradcheck(network: Network, X, T, *, indices=None, max_params: int | None = None, seed=0,
              h: float = 2e-4, order: int = 4, floor: float = 1e-4) -> GradcheckResult:
    """Compare backprop's gradient with finite differences.

    ``max_params`` checks a random sample of that many parameters (seeded) instead of all.
    The network's dtype should be float64; float32 differences are dominated by round-off.
    ``seconds_backprop`` is the median time of a warm forward + backward pass (5 repeats, see
    :func:`_time_call`); ``seconds_numeric`` the one sweep over the checked parameters.
    """
    from .training import check_data  # training imports the engines, which gradcheck's users may not need

    X, T = check_data(X, T, network, "gradcheck data")
    n = network.n_params
    if indices is None:
        if max_params is not None and max_params < n:
            indices = np.sort(np.random.default_rng(seed).choice(n, max_params, replace=False))
        else:
            indices = np.arange(n)
    indices = np.asarray(indices)

    def backprop():
        network.sample_losses(X, T)
        network.backward(T, 1.0 / len(X))

    # The first call pays for cold caches and BLAS threads starting (can be 100x a warm call).
    seconds_backprop = _time_call(backprop, 5, 1e-3)
    backprop()
    analytic = network.flat_grad[indices].astype(float)
    t1 = time.perf_counter()
    numeric = numerical_gradient(network, X, T, indices, h, order)
    t2 = time.perf_counter()
    rel, abs_err = relative_error(analytic, numeric, floor)
    loss = float(network.sample_losses(X, T).mean())
    resolution = 100 * float(np.finfo(network.dtype).eps) * max(1.0, abs(loss)) / h
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
        worst=(_("{name}: backprop {analytic} vs numeric {numeric}").format(
            name=names[indices[worst]], analytic=f"{analytic[worst]:.10g}", numeric=f"{numeric[worst]:.10g}")
               if len(rel) else "-"),
        seconds_backprop=seconds_backprop, seconds_numeric=t2 - t1, n_params=n, near_kink=near_kink,
        order=order, h=h, resolution=resolution,
    )


# --------------------------------------------------------------------------- random problems
def random_problem(sizes: Sequence[int], activation="tanh", output_activation="softmax",
                   loss="cross_entropy", *, samples: int = 16, seed=0, init="glorot_uniform",
                   dtype="float64") -> tuple[Network, np.ndarray, np.ndarray]:
    """A network with random weights and a random batch to check or time it on.

    From one Generator seeded with ``seed``, in this order: the weights (``init``), the inputs
    :math:`X \\sim N(0, 1)` of shape ``(samples, sizes[0])``, then the targets of shape
    ``(samples, sizes[-1])``: one-hot rows for ``cross_entropy``, 0/1 for
    ``binary_cross_entropy``, uniform on [0, 1) otherwise (in every output range that a loss
    accepts). Returns ``(network, X, T)``.
    """
    if int(samples) < 1:
        raise ConfigError(_("the number of samples must be at least 1, got {value}").format(value=samples))
    rng = as_generator(seed)
    net = Network(sizes, activation, output_activation, loss, dtype=dtype, init=init)
    net.reset_parameters(rng, init)
    k = net.n_outputs
    X = rng.normal(size=(int(samples), net.n_inputs))
    if net.loss.name == "cross_entropy":
        T = np.eye(k)[rng.integers(0, k, int(samples))]
    elif net.loss.name == "binary_cross_entropy":
        T = rng.integers(0, 2, (int(samples), k)).astype(float)
    else:
        T = rng.uniform(size=(int(samples), k))
    return net, X.astype(net.dtype), T.astype(net.dtype)


# --------------------------------------------------------------------------- cost table
#: Architectures of about 10, 30, 100, ..., 100,000 parameters (weights + biases), two layers
#: each; the last is MNIST-shaped (784-128-10).
DEFAULT_COST_SIZES = (
    (2, 2, 2),        # 12 (at least two outputs: a softmax over one unit is constant)
    (3, 6, 2),        # 38
    (4, 12, 3),       # 99
    (10, 20, 4),      # 304
    (20, 40, 4),      # 1,004
    (30, 90, 3),      # 3,063
    (100, 90, 10),    # 10,000
    (300, 96, 10),    # 29,866
    (784, 128, 10),   # 101,770
)


@dataclass(frozen=True)
class CostRow:
    r"""One network's timings (seconds) for :func:`gradient_cost`.

    ``seconds_forward``: one forward pass with the loss over the batch (:math:`t_f`);
    ``seconds_backprop``: the backprop gradient, one forward and one backward pass
    (:math:`t_{bp}`); ``seconds_numeric``: the whole central-difference gradient
    (:math:`t_{fd}`), ``n_params`` times the median time per parameter measured over
    ``numeric_timed`` parameters: all of them, or a random sample when the full sweep was over
    budget (``estimated``); ``max_rel_error``: backprop against the differences on the timed
    parameters (see :func:`relative_error`).
    """

    sizes: tuple
    n_params: int
    batch: int
    order: int
    h: float
    seconds_forward: float
    seconds_backprop: float
    seconds_numeric: float
    numeric_timed: int
    max_rel_error: float

    @property
    def estimated(self) -> bool:
        """True when the numerical time is scaled up from a sample of the parameters."""
        return self.numeric_timed < self.n_params

    @property
    def passes_per_param(self) -> int:
        """Forward passes per parameter: 2 (order 2) or 4 (order 4)."""
        return len(_STENCILS[self.order][0])

    @property
    def forward_passes(self) -> int:
        """Forward passes of the full numerical gradient, :math:`sP`."""
        return self.passes_per_param * self.n_params

    @property
    def ratio(self) -> float:
        r""":math:`t_{fd} / t_{bp}`."""
        return self.seconds_numeric / self.seconds_backprop

    def to_dict(self) -> dict:
        return {"sizes": list(self.sizes), "n_params": self.n_params, "batch": self.batch, "order": self.order, "h": self.h,
                "seconds_forward": self.seconds_forward, "seconds_backprop": self.seconds_backprop,
                "seconds_numeric": self.seconds_numeric, "numeric_timed": self.numeric_timed,
                "estimated": self.estimated, "forward_passes": self.forward_passes, "ratio": self.ratio,
                "max_rel_error": self.max_rel_error}


def _time_call(fn: Callable[[], object], repeats: int, min_time: float, *, budget: float = math.inf,
               warmup: bool = True, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median over up to ``repeats`` repeats of the time of one call of ``fn``.

    Each repeat calls ``fn`` ``number`` times in a row, with ``number`` chosen from the first
    call so that a repeat lasts at least ``min_time``: a call of a few microseconds is then not
    lost in the clock's resolution. Once ``budget`` seconds are spent no further repeat starts
    (at least one always runs). ``warmup=False`` counts the first call as a repeat when it lasts
    at least ``min_time``, for calls too long to run twice for nothing.
    """
    t0 = clock()
    fn()
    first = clock() - t0
    spent = first
    samples = [first] if not warmup and first >= min_time else []
    number = max(1, math.ceil(min_time / max(first, 1e-9)))
    while len(samples) < repeats and not (samples and spent >= budget):
        t0 = clock()
        for _ in range(number):
            fn()
        dt = clock() - t0
        spent += dt
        samples.append(dt / number)
    return float(np.median(samples))


def gradient_cost(sizes_list: Sequence[Sequence[int]] = DEFAULT_COST_SIZES, *, batch: int = 32,
                  order: int = 2, h: float = 2e-4, repeats: int = 7, min_time: float = 2e-3,
                  numeric_budget: float = 3.0, min_sample: int = 50, seed=0, activation="tanh",
                  output_activation="softmax", loss="cross_entropy") -> list[CostRow]:
    r"""Time the backprop gradient against the numerical one for each architecture.

    For every ``sizes`` in ``sizes_list``: a :func:`random_problem` with ``batch`` samples
    (float64), then

    * :math:`t_f` and :math:`t_{bp}`: medians over ``repeats`` (see :func:`_time_call`) of
      one forward pass with the loss, and of forward + backward (``sample_losses`` then
      ``backward``, exactly what :func:`gradcheck` times);
    * :math:`t_{fd}`: :func:`numerical_gradient` of the given ``order`` over the parameters,
      timed in ``repeats`` chunks: :math:`t_{fd} = P \cdot \operatorname{median}_j(t_j / k_j)`
      for chunk :math:`j` of :math:`k_j` parameters taking :math:`t_j`. When the predicted full
      sweep :math:`s P t_f` exceeds ``numeric_budget`` seconds only
      :math:`k = \max(\text{min\_sample}, \lfloor \text{budget} / (s t_f) \rfloor)` parameters,
      drawn at random, are swept (every parameter costs the same :math:`s` forward passes, so
      any sample will do); the row's ``estimated`` says so.

    Order 2 is the default because it is the cheapest central difference, the fairest rival.
    Returns one :class:`CostRow` per architecture; nothing is printed.
    """
    if order not in _STENCILS:
        raise ConfigError(_ORDER().format(order=order))
    if int(repeats) < 1 or int(batch) < 1 or int(min_sample) < 1:
        raise ConfigError(_("repeats, batch and min_sample must be at least 1, got {repeats}, {batch}, {min_sample}").format(
            repeats=repeats, batch=batch, min_sample=min_sample))
    if not min_time >= 0 or not numeric_budget >= 0:
        raise ConfigError(_("min_time and numeric_budget must be non-negative, got {min_time}, {budget}").format(
            min_time=min_time, budget=numeric_budget))
    rng = np.random.default_rng(seed)
    passes = len(_STENCILS[order][0])
    rows = []
    for sizes in sizes_list:
        net, X, T = random_problem(sizes, activation, output_activation, loss, samples=batch, seed=rng)
        n = net.n_params
        scale = 1.0 / len(X)

        def forward():
            return net.sample_losses(X, T).mean()

        def backprop():
            net.sample_losses(X, T)
            net.backward(T, scale)

        t_f = _time_call(forward, repeats, min_time)
        t_bp = _time_call(backprop, repeats, min_time)
        backprop()
        analytic = net.flat_grad.copy()
        if passes * n * t_f <= numeric_budget:
            idx = np.arange(n)
        else:
            k = min(n, max(int(min_sample), int(numeric_budget / (passes * t_f))))
            idx = np.sort(rng.choice(n, k, replace=False))
        # The sweep is timed in `repeats` chunks and the median time per parameter kept, so that
        # a burst of other work on the machine skews it no more than the medians t_f and t_bp.
        per_param, numeric = [], []
        for chunk in np.array_split(idx, min(int(repeats), len(idx))):
            result = []
            seconds = _time_call(lambda c=chunk, r=result: r.append(numerical_gradient(net, X, T, c, h, order)),
                                 1, min_time, warmup=False)
            per_param.append(seconds / len(chunk))
            numeric.append(result[-1])
        rel, _abs = relative_error(analytic[idx], np.concatenate(numeric))
        rows.append(CostRow(sizes=tuple(net.sizes), n_params=n, batch=len(X), order=order, h=h,
                            seconds_forward=t_f, seconds_backprop=t_bp,
                            seconds_numeric=float(np.median(per_param)) * n, numeric_timed=len(idx),
                            max_rel_error=float(rel.max())))
    return rows


def cost_slope(rows: Sequence[CostRow]) -> float:
    r"""Least-squares slope :math:`\beta` of :math:`\log(t_{fd}/t_{bp}) = \alpha + \beta \log P`
    over the rows; :math:`\beta \approx 1` means the ratio grows linearly with :math:`P`."""
    if len(rows) < 2:
        raise ConfigError(_("a slope needs at least two rows"))

    x = np.log([r.n_params for r in rows])
    y = np.log([r.ratio for r in rows])
    return float(np.polyfit(x, y, 1)[0])


def _ORDER() -> str:
    return _("order must be 2 or 4, got {order}")
