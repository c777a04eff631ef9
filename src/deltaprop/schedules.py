r"""Learning-rate schedules, as callbacks: each sets ``trainer.optimizer.lr`` before an epoch's
updates, so the training loop has no branch for them and the history's ``lr`` column shows the
rate each epoch used.

Symbols: :math:`\eta_0` the learning rate when training begins (the optimizer's ``lr``, or the
``lr0`` given), :math:`e = 0, 1, 2, \dots` the epoch counted from the start of training (or
from the last restart by a :class:`~deltaprop.techniques.StallDetector` remedy).

==========================  ===============================================================
schedule                    :math:`\eta_e`
==========================  ===============================================================
:class:`StepDecay`          :math:`\eta_0\,\gamma^{\lfloor e / s \rfloor}`
:class:`ExponentialDecay`   :math:`\eta_0\,\gamma^{e}`
:class:`InverseScaling`     :math:`\eta_0 / (1 + c\,e)^{p}`
:class:`BoldDriver`         adaptive: :math:`\times\rho^+` after a better epoch; after a worse
                            one the epoch is undone and :math:`\times\rho^-`
==========================  ===============================================================

If something else changes the rate between epochs (the divergence guard halving it, a user),
a fixed schedule keeps that factor: it multiplies :math:`\eta_0` by the ratio of the rate it
finds to the rate it last set.

For RPROP-type optimizers ``lr`` is only the initial step size, so schedules do nothing to
them once training has started; they are meant for SGD, momentum, Nesterov, Adam and Quickprop.
Do not combine two schedules, or a schedule with :class:`BoldDriver`: each sets the rate.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from .errors import ConfigError, unknown_keywords, unknown_name
from .i18n import N_, gettext as _, part, render
from .training import Callback

__all__ = ["Schedule", "StepDecay", "ExponentialDecay", "InverseScaling", "BoldDriver", "SCHEDULES",
           "get_schedule"]


def _check_factor(name: str, value: float, lo: float, hi: float, hi_open: bool = False) -> float:
    value = float(value)
    ok = np.isfinite(value) and lo < value and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ConfigError(_("{name} must be in {interval}, got {value}").format(
            name=name, interval=f"({lo}, {hi}{')' if hi_open else ']'}", value=value))
    return value


class Schedule(Callback, ABC):
    """Base class of the fixed schedules: subclasses implement ``factor(e)``, the multiple of
    :math:`\\eta_0` for epoch ``e`` (0-based)."""

    name = ""

    def __init__(self, lr0: float | None = None):
        if lr0 is not None and not (np.isfinite(lr0) and lr0 > 0):
            raise ConfigError(_("{name} must be a positive number, got {value}").format(name="lr0", value=lr0))
        self.lr0 = None if lr0 is None else float(lr0)
        self.base = self.lr0  # lr0 times any factor imposed from outside
        self.start = None  # trainer.epoch just before the schedule's epoch 0
        self.last = None  # the rate this schedule last set

    @abstractmethod
    def factor(self, e: int) -> float:
        """The multiple of the base rate for the schedule's epoch ``e``."""

    def lr_at(self, e: int) -> float:
        """The learning rate of the schedule's epoch ``e`` (0-based)."""
        return self.base * self.factor(e)

    def on_train_begin(self, trainer):
        if self.lr0 is None:
            self.lr0 = trainer.optimizer.lr
        if self.base is None:
            self.base = self.lr0
        if self.start is None:
            self.start = trainer.epoch

    def on_epoch_begin(self, trainer, epoch):
        opt = trainer.optimizer
        if self.last is not None and opt.lr != self.last:
            self.base *= opt.lr / self.last  # someone else scaled the rate: keep their factor
        opt.lr = self.last = self.lr_at(epoch - self.start - 1)

    def restart(self, trainer) -> None:
        """Start the schedule again from :math:`\\eta_0` at the next epoch."""
        self.start, self.base, self.last = trainer.epoch, self.lr0, None

    def state_dict(self):
        return {"lr0": self.lr0, "base": self.base, "start": self.start, "last": self.last}

    def load_state_dict(self, state):
        self.lr0, self.base, self.start, self.last = (state["lr0"], state["base"], state["start"],
                                                      state["last"])


class StepDecay(Schedule):
    r"""Multiply the rate by :math:`\gamma` every ``step_size`` epochs:
    :math:`\eta_e = \eta_0\,\gamma^{\lfloor e / s \rfloor}`."""

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.5, lr0: float | None = None):
        super().__init__(lr0)
        if isinstance(step_size, bool) or int(step_size) != step_size or step_size < 1:
            raise ConfigError(_("{name} must be a positive integer, got {value}").format(name="step_size", value=step_size))
        self.step_size = int(step_size)
        self.gamma = _check_factor("gamma", gamma, 0.0, 1.0)

    def factor(self, e):
        return self.gamma ** (e // self.step_size)


class ExponentialDecay(Schedule):
    r""":math:`\eta_e = \eta_0\,\gamma^{e}`."""

    name = "exponential"

    def __init__(self, gamma: float = 0.99, lr0: float | None = None):
        super().__init__(lr0)
        self.gamma = _check_factor("gamma", gamma, 0.0, 1.0)

    def factor(self, e):
        return self.gamma ** e


class InverseScaling(Schedule):
    r""":math:`\eta_e = \eta_0 / (1 + c\,e)^{p}`; with :math:`c = 1` this is scikit-learn's
    ``invscaling`` (:math:`\eta_0 / t^{p}`, :math:`t = e + 1`) counted in epochs."""

    name = "invscaling"

    def __init__(self, power: float = 0.5, scale: float = 1.0, lr0: float | None = None):
        super().__init__(lr0)
        self.power = _check_factor("power", power, 0.0, math.inf, hi_open=True)
        self.scale = _check_factor("scale", scale, 0.0, math.inf, hi_open=True)

    def factor(self, e):
        return (1.0 + self.scale * e) ** -self.power


class BoldDriver(Callback):
    r"""The "bold driver" (Vogl et al. 1988, "Accelerating the convergence of the
    back-propagation method", Biol. Cybern. 59; named by Battiti 1989): after an epoch whose
    loss :math:`E_e` is lower than the last accepted one, :math:`\eta \leftarrow \rho^+ \eta`;
    after an epoch whose loss is higher than :math:`(1 + \tau)` times it, the epoch is
    **undone** (weights back to where the epoch began), the optimizer's momentum and other
    adaptive state are cleared (Vogl et al. set the momentum to zero) and
    :math:`\eta \leftarrow \rho^- \eta`. The first epoch sets the reference.

    Compares ``monitor`` (default the re-evaluated training ``loss``, so keep ``eval_every=1``;
    an epoch without a value is accepted unchanged). Each undo is recorded in
    ``history.events`` (``"bold_driver_undo"``); the history keeps the undone epoch's row, so
    its ``loss`` is the loss that was rejected. Works in every mode; the update counter ``t``
    still counts the undone updates.
    """

    def __init__(self, increase: float = 1.1, decrease: float = 0.5, tolerance: float = 0.0,
                 monitor: str = "loss", min_lr: float = 0.0, max_lr: float = math.inf):
        self.increase = float(increase)
        if not (np.isfinite(self.increase) and self.increase >= 1.0):
            raise ConfigError(_("{name} must be a number >= 1, got {value}").format(name="increase", value=increase))
        self.decrease = _check_factor("decrease", decrease, 0.0, 1.0, hi_open=True)
        self.tolerance = float(tolerance)
        if not (np.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ConfigError(_("{name} must be a number >= 0, got {value}").format(name="tolerance", value=tolerance))
        self.monitor = monitor
        self.min_lr, self.max_lr = float(min_lr), float(max_lr)
        if not 0.0 <= self.min_lr < self.max_lr:
            raise ConfigError(_("need 0 <= min_lr < max_lr, got {min_lr} and {max_lr}").format(min_lr=min_lr, max_lr=max_lr))
        self.reference = None  # the loss of the last accepted epoch
        self.undone = 0
        self._saved = None

    def on_epoch_begin(self, trainer, epoch):
        flat = trainer.network.flat
        if self._saved is None or self._saved.shape != flat.shape:
            self._saved = flat.copy()
        else:
            np.copyto(self._saved, flat)

    def on_epoch_end(self, trainer, logs):
        value = logs.get(self.monitor, math.nan)
        if not math.isfinite(value):
            return
        opt = trainer.optimizer
        if self.reference is None or value < self.reference:
            if self.reference is not None:
                opt.lr = min(opt.lr * self.increase, self.max_lr)
            self.reference = value
            return
        if value <= self.reference * (1.0 + self.tolerance):
            return
        trainer.network.flat[...] = self._saved
        opt.reset()
        opt.lr = max(opt.lr * self.decrease, self.min_lr)
        self.undone += 1
        parts = [part(N_("{monitor} rose from {before:.6g} to {after:.6g}"), monitor=str(self.monitor),
                      before=float(self.reference), after=float(value)),
                 part(N_("the epoch's updates were undone and the learning rate cut to {lr:.6g}"), lr=float(opt.lr))]
        trainer.history.events.append({  # detail: English, stable in history files; parts: to print
            "epoch": logs["epoch"], "event": "bold_driver_undo", "detail": render(parts, "en"), "parts": parts,
        })

    def restart(self, trainer) -> None:
        """New weights from outside: forget the reference loss."""
        self.reference = None

    def state_dict(self):
        return {"reference": self.reference, "undone": self.undone}

    def load_state_dict(self, state):
        self.reference = state["reference"]
        self.undone = int(state["undone"])


#: name -> class; the CLI's ``--schedule`` choices.
SCHEDULES: dict[str, type[Callback]] = {
    "step": StepDecay, "exponential": ExponentialDecay, "invscaling": InverseScaling, "bold_driver": BoldDriver,
}


def get_schedule(name: str, **kwargs) -> Callback:
    """A schedule from its name in :data:`SCHEDULES` and keyword parameters."""
    if name not in SCHEDULES:
        raise unknown_name("schedule", str(name), SCHEDULES)
    bad = unknown_keywords("schedule", name, SCHEDULES[name], kwargs)
    if bad is not None:
        raise bad
    try:
        return SCHEDULES[name](**kwargs)
    except (TypeError, ValueError) as exc:  # an unknown keyword; a text value where a number goes
        raise ConfigError(_("schedule {name!r}: {reason}").format(name=name, reason=exc)) from None

