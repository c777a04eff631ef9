r"""Update rules. Each optimizer owns its state, updates a flat parameter vector in place and
counts its updates (``optimizer.t``), so "updates per epoch" is measured, not assumed.

Symbols: :math:`\theta` the trainable parameters, :math:`g = \nabla_\theta E` the gradient of
the batch loss (a mean over the batch), :math:`\eta` the learning rate, :math:`t` the update
count.

To add an optimizer: subclass :class:`Optimizer`, implement ``_update``, list its state arrays
in ``_state_names`` and add it to ``OPTIMIZERS``.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, unknown_name

__all__ = ["Optimizer", "SGD", "OPTIMIZERS", "get_optimizer"]


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value}")
    return value


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 <= value < 1.0):
        raise ConfigError(f"{name} must be in [0, 1), got {value}")
    return value


class Optimizer:
    """Base class: validated hyper-parameters, explicit state, an update counter."""

    name = ""
    #: Names of per-parameter state arrays (allocated lazily, saved in checkpoints).
    _state_names: tuple[str, ...] = ()
    #: Whether the rule needs the gradient of the whole data set (RPROP, Quickprop).
    batch_only = False

    def __init__(self, lr: float = 0.1):
        self.lr = _check_positive("learning rate", lr)
        self.t = 0
        self.state: dict[str, np.ndarray] = {}

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Apply one update to ``params`` in place, given the batch gradient ``grads``."""
        if not self.state and self._state_names:
            self.state = {k: np.zeros_like(params) for k in self._state_names}
        self.t += 1
        self._update(params, grads)

    def _update(self, params: np.ndarray, grads: np.ndarray) -> None:
        params -= self.lr * grads

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: hyper-parameters, counter, state arrays."""
        return {"name": self.name, "hyper": self.hyperparameters(), "t": self.t,
                "state": {k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, d: dict) -> None:
        if d.get("name") != self.name:
            raise ConfigError(f"optimizer state is for {d.get('name')!r}, not {self.name!r}")
        for k, v in d["hyper"].items():
            setattr(self, k, v)
        self.t = int(d["t"])
        self.state = {k: np.array(v) for k, v in d["state"].items()}

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    r"""Gradient descent, optionally with momentum or Nesterov momentum.

    Plain: :math:`\theta_{t} = \theta_{t-1} - \eta g_t`.

    Momentum :math:`\mu` (the classic form, Rumelhart, Hinton & Williams 1986):
    :math:`v_t = \mu v_{t-1} - \eta g_t,\ \theta_t = \theta_{t-1} + v_t`.

    Nesterov (Sutskever et al. 2013, in the form used by PyTorch and Keras):
    :math:`v_t = \mu v_{t-1} - \eta g_t,\ \theta_t = \theta_{t-1} + \mu v_t - \eta g_t`.

    Note: PyTorch keeps :math:`v` without the learning rate (:math:`v = \mu v + g`,
    :math:`\theta -= \eta v`); the two agree while :math:`\eta` is constant.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(lr)
        self.momentum = _check_unit("momentum", momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and not self.momentum:
            raise ConfigError("nesterov needs a momentum > 0")
        self._state_names = ("velocity",) if self.momentum else ()

    def _update(self, params, grads):
        if not self.momentum:
            params -= self.lr * grads
            return
        v = self.state["velocity"]
        v *= self.momentum
        v -= self.lr * grads
        if self.nesterov:
            params += self.momentum * v - self.lr * grads
        else:
            params += v

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD,)}


def get_optimizer(spec, **kwargs) -> Optimizer:
    """Return an optimizer from a name (plus keyword hyper-parameters) or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    if spec not in OPTIMIZERS:
        raise unknown_name("optimizer", str(spec), OPTIMIZERS)
    try:
        return OPTIMIZERS[spec](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"optimizer {spec!r}: {exc}") from None
