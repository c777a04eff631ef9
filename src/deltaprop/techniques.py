r"""Techniques that get training out of plateaus and poor basins, beyond the update rules of
:mod:`deltaprop.optimizers` and the schedules of :mod:`deltaprop.schedules`:

* :func:`use_flat_spot`: Fahlman's flat-spot fix for sigmoid units;
* :class:`StallDetector`: when the loss stops improving, a remedy fires by itself (new
  weights, jittered weights, or a fresh learning rate) and the history says so;
* :func:`train_with_restarts`: the best of R runs, each from fresh seeded weights.

Every random number comes from a ``numpy.random.Generator`` that is either passed in or seeded
from the run's own generator; the global ``np.random`` is never used.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from .activations import Sigmoid
from .errors import ConfigError
from .i18n import N_, gettext as _, part, render
from .network import Network
from .optimizers import Optimizer, _as_generator, _generator_from_state
from .training import Callback, EarlyStopping, History, Trainer, check_data

__all__ = ["use_flat_spot", "StallDetector", "STALL_REMEDIES", "train_with_restarts", "RestartResult",
           "build_callbacks"]


def build_callbacks(specs, *, stall_seed=None) -> list[Callback]:
    """Technique callbacks from ``(kind, params)`` pairs, in the given order: ``kind`` is a
    schedule name (:data:`deltaprop.schedules.SCHEDULES`), ``"stall"``
    (:class:`StallDetector`, with ``stall_seed`` as its generator when given) or
    ``"early_stopping"`` (:class:`~deltaprop.training.EarlyStopping`). The CLI, the
    experiments and the estimators all assemble their callbacks here."""
    from .schedules import get_schedule

    made = []
    for kind, params in specs:
        if kind == "stall":
            made.append(StallDetector(**params) if stall_seed is None else
                        StallDetector(seed=stall_seed, **params))
        elif kind == "early_stopping":
            made.append(EarlyStopping(**params))
        else:
            made.append(get_schedule(kind, **params))
    return made


def use_flat_spot(network: Network, value: float = 0.1) -> int:
    r"""Turn on the flat-spot fix (Fahlman 1988) on every sigmoid layer of ``network``:
    the derivative used in backpropagation becomes :math:`\sigma(1-\sigma) + c`, ``c = value``
    (0.1 in Fahlman's study), so a unit driven into saturation (:math:`\sigma \approx 0` or 1,
    where :math:`\sigma' \approx 0`) still passes error back and can learn its way out.

    The gradient is then deliberately inexact (gradcheck will disagree by about ``c`` times the
    upstream gradient). An output sigmoid fused with ``binary_cross_entropy`` has delta
    :math:`o - t`, which never vanishes, so it has no flat spot to fix and is left as it is:
    with the fix, the loss's own derivative :math:`(o - t)/(o(1-o))` would be multiplied by
    :math:`o(1-o) + c` instead of :math:`o(1-o)`, and a saturated wrong output would get a
    gradient of about :math:`c/\epsilon`. ``value=0`` turns the fix off. The setting is part of
    the activation, so model files keep it. Returns the number of layers changed; raises
    ConfigError if there is no sigmoid layer the fix applies to.
    """
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ConfigError(_("flat spot must be a number >= 0, got {value}").format(value=value))
    changed, skipped = 0, False
    last = network.layers[-1]
    for layer in network.layers:
        if isinstance(layer.activation, Sigmoid):
            if layer is last and network.loss.is_fused_with(Sigmoid()):
                skipped = True
                continue
            layer.activation = Sigmoid(flat_spot=value)
            changed += 1
    if not changed:
        raise ConfigError(_("the flat-spot fix applies to sigmoid units, and this network has no sigmoid layer "
                            "but its output, whose fused delta o - t with binary cross-entropy has no flat spot")
                          if skipped else
                          _("the flat-spot fix applies to sigmoid units, and this network has no sigmoid layer"))
    return changed


def _fresh_weights(network: Network, rng: np.random.Generator) -> None:
    """Draw new trainable parameters with the network's own init scheme; frozen biases keep
    their values."""
    frozen = network.flat[network.n_trainable:].copy()
    network.reset_parameters(rng)
    network.flat[network.n_trainable:] = frozen


#: The remedies a :class:`StallDetector` can apply.
STALL_REMEDIES = ("restart", "jitter", "reset_lr")


class StallDetector(Callback):
    r"""Detect a stall and apply a remedy automatically.

    A *stall*: for ``patience`` epochs, ``monitor`` (a loss: lower is better) has not once
    fallen below :math:`(1 - x)` times its best value in the current attempt, :math:`x` =
    ``min_improvement``, while it is still above ``target`` (default 1e-10: a loss that small
    only moves by round-off, which is no stall; a run at or below ``target`` is
    solved, not stalled). The remedy then fires:

    * ``"restart"``: fresh trainable weights from the network's init scheme;
    * ``"jitter"``: every trainable parameter gets :math:`+\,N(0, s^2)` noise, :math:`s` =
      ``jitter``, to shake it off a plateau or out of a shallow basin;
    * ``"reset_lr"``: weights kept.

    Every remedy also gives the optimizer a fresh start: its learning rate goes back to the
    value it had when training began, its adaptive state (momentum, RPROP step sizes, Adam
    moments) is cleared, and callbacks with a ``restart`` method (the schedules, the bold
    driver) start again. Each firing is recorded as ``{"epoch", "event": "stall", "remedy",
    "detail"}`` in ``trainer.history.events``, and a new attempt begins (the best value is
    forgotten). ``max_remedies`` limits the firings (None: no limit).

    With ``keep_best`` (default), the weights of the best epoch seen are kept aside, and if a
    remedy fired and :meth:`Trainer.fit` ends worse than that, they are handed back (event
    ``"stall_best_restored"``); a further ``fit()`` goes on from the weights training had
    reached, so training in pieces gives the weights of one long run. Place this callback
    after the others: the ones after it in the list see the remedied weights at the same
    epoch end.

    Randomness comes from ``seed`` (an int or a Generator of its own), or, left out, from a
    generator seeded from the run's. Passing the trainer's own generator works but shares its
    stream, which a checkpoint cannot restore as shared: a resumed run then differs.
    """

    def __init__(self, patience: int = 50, min_improvement: float = 0.01, remedy: str = "restart", *,
                 monitor: str = "loss", target: float = 1e-10, jitter: float = 0.1, max_remedies=None,
                 keep_best: bool = True, seed=None):
        if isinstance(patience, bool) or int(patience) != patience or patience < 1:
            raise ConfigError(_("{name} must be a positive integer, got {value}").format(name="patience", value=patience))
        self.patience = int(patience)
        self.min_improvement = float(min_improvement)
        if not 0.0 <= self.min_improvement < 1.0:
            raise ConfigError(_("{name} must be in {interval}, got {value}").format(
                name="min_improvement", interval="[0, 1)", value=min_improvement))
        if remedy not in STALL_REMEDIES:
            raise ConfigError(_("unknown stall remedy {name!r}; valid: {valid}").format(
                name=remedy, valid=", ".join(STALL_REMEDIES)))
        self.remedy, self.monitor = remedy, monitor
        self.target = float(target)
        self.jitter = float(jitter)
        if not (np.isfinite(self.jitter) and self.jitter > 0):
            raise ConfigError(_("{name} must be a positive number, got {value}").format(name="jitter", value=jitter))
        if max_remedies is not None and (int(max_remedies) != max_remedies or max_remedies < 0):
            raise ConfigError(_("max_remedies must be None or an integer >= 0, got {value}").format(value=max_remedies))
        self.max_remedies = None if max_remedies is None else int(max_remedies)
        self.keep_best = bool(keep_best)
        self.rng = _as_generator(seed)
        # State kept across fit() calls and in checkpoints.
        self.lr0 = None
        self.best, self.best_epoch = math.inf, None  # of the current attempt
        self.fired = 0
        self.overall, self.overall_epoch, self.overall_params = math.inf, None, None
        self.last = math.inf  # the monitored value of the current weights (inf: unknown)
        self._resume = None  # the weights training had reached when the best were handed back

    def on_train_begin(self, trainer):
        if self._resume is not None:  # the run goes on from where it was, not from the handed-back best
            trainer.network.flat[...] = self._resume
            self._resume = None
        if self.rng is None:
            self.rng = np.random.default_rng(int(trainer.rng.integers(2**63)))
        if self.lr0 is None:
            self.lr0 = trainer.optimizer.lr
        if self.best_epoch is None:
            self.best_epoch = trainer.epoch

    def on_epoch_end(self, trainer, logs):
        value = logs.get(self.monitor, math.nan)
        if not math.isfinite(value):
            return
        epoch = logs["epoch"]
        self.last = value
        if self.keep_best and value < self.overall:
            self.overall, self.overall_epoch = value, epoch
            self.overall_params = trainer.network.flat.copy()
        if value < self.best * (1.0 - self.min_improvement) or self.best == math.inf:
            self.best, self.best_epoch = value, epoch
            return
        if value <= self.target or epoch - self.best_epoch < self.patience:
            return
        if self.max_remedies is not None and self.fired >= self.max_remedies:
            return
        done = self._apply(trainer)
        self.fired += 1
        parts = [part(N_("{monitor} {value:.6g} had not improved by {by:g} (relative) on its best, {best:.6g} at "
                         "epoch {best_epoch}, for {n} epochs"), monitor=str(self.monitor), value=float(value),
                      by=float(self.min_improvement), best=float(self.best), best_epoch=int(self.best_epoch),
                      n=int(epoch - self.best_epoch))] + done
        trainer.history.events.append({  # detail: English, stable in history files; parts: to print
            "epoch": epoch, "event": "stall", "remedy": self.remedy, "detail": render(parts, "en"), "parts": parts,
        })
        self.best, self.best_epoch = math.inf, epoch
        if self.remedy != "reset_lr":
            self.last = math.inf

    def _apply(self, trainer) -> list:
        net, opt = trainer.network, trainer.optimizer
        if self.remedy == "restart":
            _fresh_weights(net, self.rng)
            done = part(N_("restarted from new random weights"))
        elif self.remedy == "jitter":
            net.params[...] += self.jitter * self.rng.standard_normal(net.params.shape, dtype=net.dtype)
            done = part(N_("jittered the weights (noise s.d. {sd:g})"), sd=float(self.jitter))
        else:
            done = part(N_("reset the learning rate"))
        opt.lr = self.lr0
        opt.reset()
        for cb in trainer.callbacks:
            if cb is not self and hasattr(cb, "restart"):
                cb.restart(trainer)
        return [done, part(N_("learning rate {lr:g}, optimizer state cleared"), lr=float(self.lr0))]

    def on_train_end(self, trainer):
        if self.keep_best and self.fired and self.overall_params is not None and self.last > self.overall:
            self._resume = trainer.network.flat.copy()
            trainer.network.flat[...] = self.overall_params
            parts = [part(N_("restored the weights of epoch {epoch} ({monitor} {value:.6g}), the best seen across "
                             "the {n} attempts"), epoch=int(self.overall_epoch), monitor=str(self.monitor),
                          value=float(self.overall), n=self.fired + 1)]
            trainer.history.events.append({"epoch": trainer.epoch, "event": "stall_best_restored",
                                           "detail": render(parts, "en"), "parts": parts})

    def state_dict(self):
        return {"rng": None if self.rng is None else self.rng.bit_generator.state, "lr0": self.lr0,
                "best": self.best, "best_epoch": self.best_epoch, "fired": self.fired,
                "overall": self.overall, "overall_epoch": self.overall_epoch,
                "overall_params": self.overall_params, "last": self.last, "resume": self._resume}

    def load_state_dict(self, state):
        if state.get("rng") is not None:
            self.rng = _generator_from_state(state["rng"])
        self.lr0 = state["lr0"]
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        self.fired = int(state["fired"])
        self.overall, self.overall_epoch = float(state["overall"]), state["overall_epoch"]
        op = state.get("overall_params")
        self.overall_params = None if op is None else np.array(op)
        self.last = float(state["last"])
        resume = state.get("resume")
        self._resume = None if resume is None else np.array(resume)


@dataclass
class RestartResult:
    """What :func:`train_with_restarts` found: the index of the best run, its history, and one
    record per run (``run``, ``score``, ``epochs``, ``diverged``, ``events``)."""

    best: int
    history: History
    runs: list = field(default_factory=list)


def train_with_restarts(network: Network, X, T, *, restarts: int = 5, seed: int = 0, epochs: int = 10,
                        optimizer="sgd", callbacks=(), validation_data=None, **trainer_kwargs) -> RestartResult:
    r"""Random restarts: train ``restarts`` copies of ``network``, each from fresh weights, and
    keep the best.

    Run :math:`r` draws its weights (with the network's init scheme) and its shuffling from
    ``np.random.default_rng(np.random.SeedSequence(seed).spawn(restarts)[r])``, so any one run
    can be repeated alone. Each run gets its own copy of ``optimizer`` (a name, or an instance
    that is deep-copied) and of ``callbacks``; ``trainer_kwargs`` go to
    :class:`~deltaprop.training.Trainer` (``lr``, ``mode``, ``batch_size``, ...). The score of
    a run is the loss of its final weights on ``validation_data`` when given, else on the
    training data; the lowest wins (ties: the earlier run). ``network`` ends with the winner's
    weights (frozen biases are never redrawn).
    """
    if isinstance(restarts, bool) or int(restarts) != restarts or restarts < 1:
        raise ConfigError(_("{name} must be a positive integer, got {value}").format(name="restarts", value=restarts))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(_("seed must be a non-negative integer, got {value!r}").format(value=seed))

    runs, best, best_score, best_flat, best_history = [], 0, math.inf, None, None
    for r, seq in enumerate(np.random.SeedSequence(int(seed)).spawn(int(restarts))):
        rng = np.random.default_rng(seq)
        net = network.copy()
        _fresh_weights(net, rng)
        opt = copy.deepcopy(optimizer) if isinstance(optimizer, Optimizer) else optimizer
        trainer = Trainer(net, opt, seed=rng, callbacks=[copy.deepcopy(cb) for cb in callbacks],
                          **trainer_kwargs)
        history = trainer.fit(X, T, epochs, validation_data)
        Xs, Ts = (X, T) if validation_data is None else validation_data
        score = net.evaluate(*check_data(Xs, Ts, net))[0]
        if not math.isfinite(score):
            score = math.inf
        runs.append({"run": r, "score": score, "epochs": trainer.epoch, "diverged": trainer.diverged,
                     "events": list(history.events)})
        if score < best_score or best_flat is None:
            best, best_score, best_flat, best_history = r, score, net.flat.copy(), history
    network.flat[...] = best_flat
    return RestartResult(best, best_history, runs)

