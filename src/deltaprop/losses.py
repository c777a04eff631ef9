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

Settings follow the activations' protocol: :func:`get_loss` takes a name, a config dict
``{"name": ..., **params}`` or an instance; :meth:`Loss.to_config` gives the dict back, with
every parameter, so a model file keeps them. A key the loss does not take and a parameter
out of range are a :class:`~deltaprop.errors.ConfigError`.

To add a loss: subclass :class:`Loss`, set ``name`` (and ``params``, the keywords of
``__init__``, with :meth:`Loss.param_values` where an attribute's name differs from its
key), and add it to ``LOSSES``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .activations import Activation, Sigmoid, Softmax
from .errors import ConfigError, unknown_name
from .i18n import gettext as _, ngettext

__all__ = [
    "Loss",
    "HalfSquaredError",
    "MeanSquaredError",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Huber",
    "LOSSES",
    "get_loss",
]


class Loss(ABC):
    name = ""
    #: Output activations whose range the loss cannot take (checked when a network is built).
    needs_probabilities = False
    #: Config keys besides ``"name"``: the keywords of ``__init__``.
    params: tuple[str, ...] = ()

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
                raise ConfigError(_("loss {loss!r} needs outputs in (0, 1), but the output activation "
                                    "{activation!r} gives values in [{lo}, {hi}]; use 'sigmoid' or 'softmax' "
                                    "on the output layer").format(loss=self.name, activation=activation.name,
                                                                   lo=lo, hi=hi))

    def param_values(self) -> dict:
        """The parameters by config key (the attributes of those names, by default)."""
        return {p: getattr(self, p) for p in self.params}

    def to_config(self) -> dict:
        # every parameter, defaults included: a file then means the same loss even if a
        # later release changes a default
        return {"name": self.name, **self.param_values()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.param_values().items())
        return f"{type(self).__name__}({args})"


def _positive_number(loss: str, param: str, value) -> float:
    """``value`` as a float when it is a finite number > 0, else the ConfigError saying so."""
    # bool is an int to Python, but True for a width is a slip, not a setting
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
        if np.isfinite(number) and number > 0.0:
            return number
    raise ConfigError(_("{loss} {param} must be a finite number > 0, got {value!r}").format(
        loss=loss, param=param, value=value))


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


class Huber(Loss):
    r"""Huber loss, summed over the outputs like ``half_sse``: with the residual
    :math:`r_k = a_k - t_k` and the threshold :math:`\delta > 0` (config key ``delta``,
    attribute ``threshold``),

    .. math::

        E_s = \sum_k h(r_k), \qquad
        h(r) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
                             \delta\,(|r| - \tfrac12 \delta) & |r| > \delta \end{cases}

    and :math:`\partial E_s/\partial a_k = \operatorname{clip}(r_k, -\delta, \delta)`.

    Within :math:`\pm\delta` of the target it is ``half_sse`` exactly (not divided by the
    number of outputs, unlike ``mse``); beyond, it grows linearly, so an outlier pulls with
    at most :math:`\delta`. Value and slope are continuous at :math:`|r| = \delta`
    (:math:`\tfrac12\delta^2` and :math:`\pm\delta` from both sides); the second derivative
    jumps there.
    """

    name = "huber"
    params = ("delta",)

    def __init__(self, delta: float = 1.0):
        # kept as ``threshold``: ``delta`` is already the output-delta method of every loss
        self.threshold = _positive_number(self.name, "delta", delta)

    def param_values(self):
        return {"delta": self.threshold}

    def value(self, a, t, z=None, activation=None):
        r = np.abs(a - t)
        # q (r - q/2) with q = min(r, delta) is both branches of h in one expression
        q = np.minimum(r, self.threshold)
        return (q * (r - 0.5 * q)).sum(axis=1)

    def grad(self, a, t):
        return np.clip(a - t, -self.threshold, self.threshold)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (HalfSquaredError, MeanSquaredError, BinaryCrossEntropy, CrossEntropy, Huber)
}


def get_loss(spec) -> Loss:
    """Return a loss from a name, a config dict (``{"name": ..., **params}``) or an instance."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None)
    else:
        name, params = spec, {}
    if not isinstance(name, str) or name not in LOSSES:
        raise unknown_name("loss", str(name), LOSSES)
    cls = LOSSES[name]
    unknown = [key for key in params if key not in cls.params]
    if unknown:
        keys = ", ".join(map(repr, unknown))
        # English says "no key" for one and several alike; Russian needs the number
        raise ConfigError(ngettext("loss {name!r} takes no key {keys}; valid keys: {valid}",
                                   "loss {name!r} takes no key {keys}; valid keys: {valid}", len(unknown)).format(
            name=name, keys=keys, valid=", ".join(("name",) + cls.params)))

    return cls(**params)
