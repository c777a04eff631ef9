r"""Loss functions: value and gradient side by side.

Conventions (the same in every training mode):

* the **per-sample** loss sums over the output units, e.g. the classic
  :math:`E = \sum_k \tfrac12 (t_k - o_k)^2` (MSE is the one exception: it *averages* over
  outputs, as its name says);
* the loss of a **batch** is the *mean* of its per-sample losses, so its gradient is the mean
  of the per-sample gradients and a learning rate means the same thing in stochastic, batch
  and mini-batch mode.

Shapes: outputs ``a`` and targets ``t`` are ``(n_samples, n_outputs)``; ``value`` returns
``(n_samples,)``; ``grad`` returns :math:`\partial E_s / \partial a` per sample, unscaled.

Fusion is explicit: :class:`CrossEntropy` after a softmax output and
:class:`BinaryCrossEntropy` after a sigmoid output give the output delta
:math:`\partial E/\partial z = a - t` directly, and compute their value from the
pre-activation :math:`z` (log-sum-exp / softplus form), so saturated outputs stay finite and
exact. With any other output activation they back-propagate through it like any loss.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .activations import Activation, Sigmoid, Softmax
from .errors import ConfigError, unknown_name

__all__ = [
    "Loss",
    "HalfSquaredError",
    "MeanSquaredError",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "LOSSES",
    "get_loss",
]


class Loss(ABC):
    name = ""
    #: Output activations whose range the loss cannot take (checked when a network is built).
    needs_probabilities = False

    @abstractmethod
    def value(self, a, t, z=None, activation=None) -> np.ndarray:
        """Per-sample loss, shape ``(n_samples,)``. ``z``/``activation`` allow a fused, stable form."""

    @abstractmethod
    def grad(self, a, t) -> np.ndarray:
        r""":math:`\partial E_s/\partial a`, shape ``(n_samples, n_outputs)``."""

    def delta(self, z, a, t, activation: Activation) -> np.ndarray:
        r"""Output delta :math:`\partial E_s/\partial z` = ``activation.backward(z, a, grad(a, t))``."""
        return activation.backward(z, a, self.grad(a, t))

    def is_fused_with(self, activation: Activation) -> bool:
        return False

    def check_output_activation(self, activation: Activation) -> None:
        """Raise ConfigError when the output activation's range does not suit this loss."""
        if self.needs_probabilities:
            lo, hi = activation.output_range
            if lo < 0.0 or hi > 1.0:
                raise ConfigError(
                    f"loss {self.name!r} needs outputs in (0, 1), but the output activation "
                    f"{activation.name!r} gives values in [{lo}, {hi}]; use 'sigmoid' or 'softmax' "
                    "on the output layer"
                )

    def to_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HalfSquaredError(Loss):
    r"""Half squared error :math:`E_s = \sum_k \tfrac12 (t_k - a_k)^2`; :math:`\partial E_s/\partial a_k = a_k - t_k`.

    The loss of Mazur's worked example ("E_total").
    """

    name = "half_sse"

    def value(self, a, t, z=None, activation=None):
        d = a - t
        return 0.5 * np.einsum("ij,ij->i", d, d)

    def grad(self, a, t):
        return a - t


class MeanSquaredError(Loss):
    r"""Mean squared error over the outputs: :math:`E_s = \tfrac1m \sum_k (t_k - a_k)^2`;
    :math:`\partial E_s/\partial a_k = \tfrac2m (a_k - t_k)`."""

    name = "mse"

    def value(self, a, t, z=None, activation=None):
        d = a - t
        return np.einsum("ij,ij->i", d, d) / a.shape[1]

    def grad(self, a, t):
        return (2.0 / a.shape[1]) * (a - t)


def _clip_probs(a):
    # Keep log() finite: an output of exactly 0 or 1 would give -inf.
    eps = np.finfo(a.dtype).eps
    return np.clip(a, eps, 1.0 - eps)


class BinaryCrossEntropy(Loss):
    r"""Binary cross-entropy summed over independent outputs:
    :math:`E_s = -\sum_k [t_k \log a_k + (1 - t_k) \log(1 - a_k)]`,
    :math:`\partial E_s/\partial a_k = (a_k - t_k) / (a_k (1 - a_k))`.

    After a sigmoid output it is fused: delta :math:`a - t`, and the value is computed from the
    logits as :math:`\max(z,0) - z t + \log(1 + e^{-|z|})`.
    """

    name = "binary_cross_entropy"
    needs_probabilities = True

    def is_fused_with(self, activation):
        return isinstance(activation, Sigmoid) and not activation.flat_spot

    def value(self, a, t, z=None, activation=None):
        if z is not None and activation is not None and isinstance(activation, Sigmoid):
            per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
            return per.sum(axis=1)
        p = _clip_probs(a)
        return -(t * np.log(p) + (1.0 - t) * np.log1p(-p)).sum(axis=1)

    def grad(self, a, t):
        p = _clip_probs(a)
        return (p - t) / (p * (1.0 - p))

    def delta(self, z, a, t, activation):
        if self.is_fused_with(activation):
            return a - t
        return super().delta(z, a, t, activation)


class CrossEntropy(Loss):
    r"""Categorical cross-entropy :math:`E_s = -\sum_k t_k \log a_k`,
    :math:`\partial E_s/\partial a_k = -t_k / a_k`.

    After a softmax output it is fused (``softmax`` + ``cross_entropy``): delta
    :math:`a - t` (for targets that sum to 1 per sample), value from the logits as
    :math:`\sum_k t_k (\operatorname{logsumexp}(z) - z_k)`.
    """

    name = "cross_entropy"
    needs_probabilities = True

    def is_fused_with(self, activation):
        return isinstance(activation, Softmax)

    def value(self, a, t, z=None, activation=None):
        if z is not None and isinstance(activation, Softmax):
            m = z.max(axis=1, keepdims=True)
            lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
            return (t * (lse - z)).sum(axis=1)
        return -(t * np.log(_clip_probs(a))).sum(axis=1)

    def grad(self, a, t):
        return -t / _clip_probs(a)

    def delta(self, z, a, t, activation):
        if self.is_fused_with(activation):
            # d/dz_i of sum_k t_k (lse - z_k) = a_i * sum_k t_k - t_i; = a - t when sum t = 1.
            return a * t.sum(axis=1, keepdims=True) - t
        return super().delta(z, a, t, activation)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (HalfSquaredError, MeanSquaredError, BinaryCrossEntropy, CrossEntropy)
}


def get_loss(spec) -> Loss:
    """Return a loss from a name, a config dict or an instance."""
    if isinstance(spec, Loss):
        return spec
    name = spec.get("name") if isinstance(spec, dict) else spec
    if name not in LOSSES:
        raise unknown_name("loss", str(name), LOSSES)
    return LOSSES[name]()
