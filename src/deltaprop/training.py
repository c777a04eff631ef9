r"""The one training loop. The three modes are batch schedules fed to it:

==============  ============================  ==========================
mode            batch size per update          updates per epoch (N samples)
==============  ============================  ==========================
``stochastic``  1                              N
``minibatch``   k                              :math:`\lceil N/k \rceil`
``batch``       N                              1
==============  ============================  ==========================

Each update uses the *mean* gradient of its batch. A batch larger than ``chunk_size`` rows is
processed in chunks whose gradient sums are added, so memory does not grow with N in batch
mode. Stochastic and mini-batch modes reshuffle the sample order every epoch with the run's
own seeded Generator (``shuffle=False`` keeps the data order).

The history records two losses per epoch, named for what they are:

* ``loss``: the loss re-evaluated *after* the epoch's updates (thinned with ``eval_every``;
  NaN on the epochs it is skipped), over the whole training set where N is small and after
  the last epoch of a fit of at least ``Trainer.FULL_EVAL_EPOCHS`` epochs, else over a fixed,
  evenly spaced subsample (``eval_rows``), so that it costs a tenth of the fit or less (a
  forward pass over every row is about a third of an epoch's arithmetic: at the end of a
  3-epoch fit it alone would cost the fit 11%);
* ``loss_running``: the mean of the batch losses seen *before* each update during the epoch,
  which is what FANN, scikit-learn and Keras report as "the" training loss.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .config import DEFAULTS, check_value
from .engines import select_engine
from .errors import ConfigError, DataError
from .i18n import N_, gettext as _, part, render
from .losses import BinaryCrossEntropy, CrossEntropy
from .memory import require_memory
from .network import Network
from .optimizers import Optimizer, get_optimizer
from .validation import as_float_array, as_generator, require_finite

__all__ = ["MODES", "Trainer", "History", "Callback", "EarlyStopping", "accuracy", "train", "check_data",
           "reports_accuracy"]

MODES = ("stochastic", "minibatch", "batch")


@dataclass
class History:
    """Per-epoch records (lists of equal length) plus a list of events (divergence, stops, ...)."""

    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    loss_running: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    events: list = field(default_factory=list)

    _COLUMNS = ("epoch", "loss", "loss_running", "accuracy", "val_loss", "val_accuracy", "lr",
                "updates", "samples", "seconds")

    def append(self, row: dict) -> None:
        nan = float("nan")
        for k in self._COLUMNS:
            getattr(self, k).append(row.get(k, nan))

    def last(self) -> dict:
        return {k: getattr(self, k)[-1] for k in self._COLUMNS} if self.epoch else {}

    def to_dict(self) -> dict:
        d = {k: list(getattr(self, k)) for k in self._COLUMNS}
        d["events"] = list(self.events)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls()
        for k in cls._COLUMNS:
            getattr(h, k).extend(d.get(k, []))
        h.events.extend(d.get("events", []))
        return h

    def __len__(self) -> int:
        return len(self.epoch)


class Callback:
    """Hooks into the loop. ``on_epoch_end`` may set ``trainer.stop_training = True``."""

    def on_train_begin(self, trainer: "Trainer") -> None:
        pass

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None:
        """Before the updates of ``epoch`` (1-based; called again if the epoch is re-run)."""

    def on_epoch_end(self, trainer: "Trainer", logs: dict) -> None:
        pass

    def on_train_end(self, trainer: "Trainer") -> None:
        pass

    def state_dict(self) -> dict:
        """What a checkpoint must keep for the run to continue exactly (arrays allowed)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``) has not improved by more than ``min_delta``
    for ``patience`` epochs, and restore the weights of the best epoch."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "val_loss",
                 restore_best: bool = True):
        if int(patience) < 1:
            raise ConfigError(_("patience must be >= 1, got {value}").format(value=patience))
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.monitor, self.restore_best = monitor, restore_best
        # Kept across fit() calls and in checkpoints, so that a resumed run stops where the
        # uninterrupted one would.
        self.best, self.best_epoch, self.best_params, self.wait = math.inf, 0, None, 0

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_params": self.best_params}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.wait = float(state["best"]), int(state["best_epoch"]), int(state["wait"])
        bp = state.get("best_params")
        self.best_params = None if bp is None else np.array(bp)

    def on_epoch_end(self, trainer, logs):
        value = logs.get(self.monitor, float("nan"))
        if not np.isfinite(value):
            return
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, logs["epoch"], 0
            self.best_params = trainer.network.flat.copy()
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            restored = self.restore_best and self.best_params is not None
            if restored:
                trainer.network.flat[...] = self.best_params
            parts = [part(N_("no {monitor} improvement for {patience} epochs"), monitor=str(self.monitor),
                          patience=self.patience),
                     part(N_("best {best:.6g} at epoch {epoch}"), best=float(self.best), epoch=int(self.best_epoch))]
            parts += [part(N_("its weights restored"))] if restored else []
            trainer.history.events.append({  # detail: English, stable in history files; parts: to print
                "epoch": logs["epoch"], "event": "early_stopping", "detail": render(parts, "en"), "parts": parts,
            })


def check_data(X, T, network: Network, what: str = N_("training data")) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs and targets to the network's dtype; raise DataError. A
    scipy.sparse ``X`` stays sparse (CSR). ``what``: English, marked with ``N_``."""
    what = _(what)
    inputs, targets = _("{what} inputs").format(what=what), _("{what} targets").format(what=what)
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        X = network.check_input(X, inputs)
    else:
        X = network.check_input(as_float_array(X, inputs, network.dtype), inputs)
    T = as_float_array(T, targets, network.dtype)
    if T.ndim == 1:
        T = T.reshape(-1, 1)
    n = X.shape[0]
    if n == 0:
        raise DataError(_("{what} is empty (0 samples)").format(what=what))
    if T.shape != (n, network.n_outputs):
        raise DataError(_("{targets} have shape {shape}, expected {expected} ({n} samples x {k} outputs)").format(
            targets=targets, shape=T.shape, expected=(n, network.n_outputs), n=n, k=network.n_outputs))
    require_finite(X, inputs)
    require_finite(T, targets)
    return X, T


def check_sample_weight(w, n: int) -> np.ndarray:
    """Sample weights as a float64 vector of length ``n`` scaled to sum to ``n`` (a common factor
    changes no weighted mean, and the epoch's running loss stays a sum over n rows); DataError
    when not 1-D of length n, not finite, negative or all zero."""
    w = as_float_array(w, _("sample weights"), np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise DataError(_("sample weights have shape {shape}, expected ({n},): one per sample").format(
            shape=w.shape, n=n))
    require_finite(w.reshape(-1, 1), _("sample weights"))
    if (w < 0).any():
        raise DataError(_("sample weights must be >= 0; row {row} has {value:g}").format(
            row=int(np.argmax(w < 0)), value=w[w < 0][0]))
    total = w.sum()
    if total <= 0:
        raise DataError(_("sample weights are all zero"))
    return w * (n / total)


def accuracy(network: Network, out: np.ndarray, T: np.ndarray, t_range=None) -> float:
    """Share of samples classified right: argmax for several outputs; one output is
    thresholded at 0.5 (probability outputs) or halfway between the target values
    (``t_range``: their (min, max) over the whole set, where ``T`` is a part of it)."""
    if T.shape[1] == 1:
        lo, hi = network.output_activation.output_range
        t_lo, t_hi = (T.min(), T.max()) if t_range is None else t_range
        threshold = 0.5 if (lo, hi) == (0.0, 1.0) else 0.5 * (t_lo + t_hi)
        return float(np.mean((out[:, 0] > threshold) == (T[:, 0] > threshold)))
    return float(np.mean(out.argmax(axis=1) == T.argmax(axis=1)))


def reports_accuracy(network: Network, task: str | None = None) -> bool:
    """Whether accuracy means something for this run: a classification task, or (task unknown)
    a cross-entropy loss."""
    return task == "classification" or isinstance(network.loss, (CrossEntropy, BinaryCrossEntropy))


class Trainer:
    """Trains a :class:`Network` in one of the three modes.

    Parameters
    ----------
    network : Network
    optimizer : str or Optimizer
        Default plain gradient descent (``"sgd"``) with learning rate ``lr``.
    mode : ``"stochastic"``, ``"minibatch"`` or ``"batch"``
    batch_size : int
        k for mini-batch mode (ignored by the other modes). A k above N is clipped to N with a
        warning.
    shuffle : bool
        Reshuffle each epoch (stochastic and mini-batch).
    seed : int or Generator
        The run's one source of randomness (shuffling).
    chunk_size : int
        Rows per forward/backward pass inside one update's batch.
    eval_every : int
        Re-evaluate the training loss every this many epochs and after the last one (0: never).
    eval_rows : int or None
        How many training rows that re-evaluation uses: a fixed, evenly spaced subsample (no
        random numbers drawn), the whole set after the last epoch of a ``fit`` of at least
        :attr:`FULL_EVAL_EPOCHS` epochs. ``None``:
        all rows up to :attr:`EVAL_ROWS_MIN`, else N/16 of them but at least
        :attr:`EVAL_ROWS_MIN` and at most :attr:`EVAL_ROWS_MAX`, which keeps the evaluation
        near or below a tenth of an epoch's cost; a number: that many (N or more: every row,
        every time).
    accuracy : bool or None
        Record accuracy; ``None`` means "when the loss is a cross-entropy".
    callbacks : list of Callback
    engine : ``"auto"``, ``"numpy"`` or another name in :data:`deltaprop.engines.ENGINES`
        Which engine runs the updates; ``"auto"`` picks the fastest one that supports the
        set-up. All give the same weights.
    on_divergence : ``"stop"`` or ``"halve-lr"``
        When the loss (or the weights) turn NaN or inf, or the loss grows more than
        :attr:`DIVERGENCE_GROWTH` times above its value at the starting weights, the weights and optimizer state
        of the last good epoch are restored; then either training stops, or the learning rate is
        halved and the epoch is run again, at most ``max_halvings`` times.
    """

    #: A finite loss this many times the loss at the starting weights counts as diverging.
    DIVERGENCE_GROWTH = 1e6
    #: The automatic evaluation subsample (see ``eval_rows``): every row up to the minimum.
    #: 512, not 1,024: on 5,000 rows of 784-128-10 (stochastic, compiled blocks) 1,024 rows
    #: cost 9.6% of an epoch to evaluate and the defaults fit ran 15% over the same fit
    #: without evaluation; 512 rows: 6%. The rows are the same every epoch, so the curve
    #: stays smooth; only its level is an estimate.
    EVAL_ROWS_MIN, EVAL_ROWS_MAX = 512, 8192
    #: A fit of at least this many epochs re-evaluates every row after its last one: a forward
    #: pass over N rows is about a third of an epoch's arithmetic, so 3% of such a fit; in a
    #: shorter fit the last epoch uses the subsample like the others.
    FULL_EVAL_EPOCHS = 10

    def __init__(self, network: Network, optimizer=DEFAULTS.optimizer, *, lr: float = DEFAULTS.lr,
                 mode: str = DEFAULTS.mode, batch_size: int = DEFAULTS.batch_size, shuffle: bool = DEFAULTS.shuffle,
                 seed=None, chunk_size: int = 4096, eval_every: int = DEFAULTS.eval_every,
                 eval_rows: int | None = DEFAULTS.eval_rows, accuracy=None,
                 callbacks=(), engine=DEFAULTS.engine, on_divergence: str = DEFAULTS.on_divergence,
                 max_halvings: int = 10):
        if mode not in MODES:
            raise ConfigError(_("unknown mode {mode!r}; valid: {valid}").format(mode=mode, valid=", ".join(MODES)))
        # The settings of the table are checked by the table, so every front end says the same.
        batch_size, eval_every = check_value("batch_size", batch_size), check_value("eval_every", eval_every)
        on_divergence = check_value("on_divergence", on_divergence)
        if int(chunk_size) <= 0:
            raise ConfigError(_("chunk size must be a positive integer, got {value}").format(value=chunk_size))
        self.network = network
        self.optimizer: Optimizer = (optimizer if isinstance(optimizer, Optimizer)
                                     else get_optimizer(optimizer, lr=lr))
        if self.optimizer.batch_only and mode != "batch":
            raise ConfigError(_("optimizer {name!r} needs the whole data set's gradient; use mode 'batch'").format(
                name=self.optimizer.name))
        self.mode = mode
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.rng = as_generator(seed)
        self.chunk_size = int(chunk_size)
        self.eval_every = int(eval_every)
        self.eval_rows = check_value("eval_rows", eval_rows)
        self.accuracy = reports_accuracy(network) if accuracy is None else bool(accuracy)
        self.on_divergence, self.max_halvings, self.halvings = on_divergence, int(max_halvings), 0
        self.callbacks = list(callbacks)
        self.engine = engine
        self.engine_used = None
        self.history = History()
        self.initial_loss = None  # loss at the weights training started from (set by fit)
        self.epoch = 0
        self.stop_training = False
        self.diverged = False
        self.sample_weight = None  # of the current fit (check_sample_weight's scaling)
        self.sparse_input = False  # whether the current fit's X is a scipy.sparse matrix

    def batch_rows(self, n: int) -> int:
        """Rows per update for ``n`` training rows: 1, ``min(k, n)`` or ``n`` by mode."""
        return {"stochastic": 1, "batch": n}.get(self.mode, min(self.batch_size, n))

    def effective_batch_size(self, n: int) -> int:
        """:meth:`batch_rows`, warning when a mini-batch size above ``n`` is clipped."""
        if self.mode == "minibatch" and self.batch_size > n:
            warnings.warn(_("batch size {k} is larger than the {n} training samples; using {n}").format(
                k=self.batch_size, n=n), stacklevel=3)
        return self.batch_rows(n)

    def updates_per_epoch(self, n: int) -> int:
        return math.ceil(n / self.effective_batch_size(n))

    def fit(self, X, T, epochs: int = 10, validation_data=None, sample_weight=None) -> History:
        r"""Train for ``epochs`` more epochs; returns the (cumulative) history.

        ``sample_weight`` (shape ``(n,)``, finite, :math:`\ge 0`, not all 0): each update's
        loss is the weighted mean :math:`\sum_i w_i E_i / \sum_i w_i` over its batch (see
        :meth:`Network.loss_and_gradient`), so integer weights equal repeated rows in batch
        mode; the NumPy engine runs weighted fits."""
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
            raise ConfigError(_("epochs must be a non-negative integer, got {value}").format(value=epochs))
        net = self.network
        X, T, sharded = _sharded_inputs(X, T, self)
        if sharded is None:
            X, T = check_data(X, T, net)
        else:  # rows on a cluster's workers (deltaprop.distributed.data), checked there
            sharded.check(net)
            if sample_weight is not None:
                raise ConfigError(_("sample weights are not supported for data held on a cluster's workers"))
        self.sample_weight = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])
        self.sparse_input = sharded is None and not isinstance(X, np.ndarray)
        val = None
        if validation_data is not None and getattr(validation_data[0], "sharded", None) is not None:
            validation_data[0].sharded.check(net, _("validation data"))
            val = validation_data
        elif validation_data is not None:
            val = check_data(*validation_data, net, what=N_("validation data"))
        k = self.effective_batch_size(X.shape[0])  # warns when k > N
        self._check_memory(min(k, self.chunk_size))
        if self.initial_loss is None:  # the yardstick for a loss that explodes (first rows: no randomness used)
            rows = min(X.shape[0], self.chunk_size)
            with np.errstate(over="ignore", invalid="ignore"):
                self.initial_loss = float(net.evaluate(X[:rows], T[:rows], self.chunk_size)[0])
        self.stop_training = False
        self.optimizer.attach(self, X, T)
        for cb in self.callbacks:
            cb.on_train_begin(self)
        # Overflow is detected from the loss below and handled as divergence, so numpy's
        # warnings about it would only be noise.
        with np.errstate(over="ignore", invalid="ignore"):
            self._run_epochs(X, T, int(epochs), k, val)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def __getstate__(self) -> dict:
        # a copy (deepcopy, pickle) made inside a training loop is not in that loop, and the
        # loop's undo list holds engine objects that do not pickle
        state = self.__dict__.copy()
        state.pop("_at_loop_end", None)
        state["_loop_token"] = None
        return state

    def _run_epochs(self, X, T, epochs, k, validation_data):
        if getattr(self.optimizer, "runs_own_loop", False):  # L-BFGS: scipy's loop, an epoch per iteration
            return self._run_own_loop(X, T, epochs, validation_data)
        engine = select_engine(self.engine, self, epochs=epochs)
        self.engine_used = engine.name
        # a fit called from this trainer's own callback runs a loop inside the loop
        outer = getattr(self, "_loop_token", None), getattr(self, "_at_loop_end", [])
        self._loop_token = object()  # one per loop: engines may check the network once per loop
        self._at_loop_end = []  # what an engine set for the loop and undoes after it
        try:
            self._epoch_loop(engine, X, T, k, self.epoch + epochs, epochs >= self.FULL_EVAL_EPOCHS, validation_data)
        finally:  # a direct run_epoch call later is not part of this loop
            undo, (self._loop_token, self._at_loop_end) = self._at_loop_end, outer
            for fn in reversed(undo):
                fn()

    def _epoch_loop(self, engine, X, T, k, end, full_at_end, validation_data):
        """Epochs until ``end`` (or a stop): updates, the checks for divergence, the evaluation
        (every row after the last epoch where ``full_at_end``, else the fixed subsample), the
        history and the callbacks."""
        net, opt = self.network, self.optimizer
        n = X.shape[0]
        subsample = None  # the evaluation's rows (X, T, weights), copied when first evaluated on
        good = self._snapshot()  # the last weights (and optimizer state) known to be finite
        while self.epoch < end:
            t0 = time.perf_counter()
            self.epoch += 1
            for cb in self.callbacks:
                cb.on_epoch_begin(self, self.epoch)
            order = self.rng.permutation(n) if self.shuffle and k < n else None
            running, bad_update = engine.run_epoch(self, X, T, order, k)
            if bad_update is not None:
                if self._diverged(good, bad_update):
                    continue
                break
            row = {"epoch": self.epoch, "loss_running": running / n, "lr": opt.lr, "updates": opt.t,
                   "samples": self.epoch * n}
            if not np.isfinite(net.flat).all():
                if self._diverged(good, None):
                    continue
                break
            last = self.epoch == end
            if self.eval_every and (self.epoch % self.eval_every == 0 or last):
                if last and full_at_end:
                    row.update(self._evaluate(X, T, "", keep_accuracy=self.accuracy, weights=self.sample_weight))
                else:
                    if subsample is None:
                        subsample = self._eval_subset(X, T)
                    Xe, Te, We = subsample
                    row.update(self._evaluate(Xe, Te, "", keep_accuracy=self.accuracy, weights=We))
                if not math.isfinite(row["loss"]):
                    if self._diverged(good, None):
                        continue
                    break
            grown = self._explosion(row)
            if grown:
                if self._diverged(good, None, grown):
                    continue
                break
            good = self._snapshot()
            if validation_data is not None:
                row.update(self._evaluate(*validation_data, "val_", keep_accuracy=self.accuracy))
            row["seconds"] = time.perf_counter() - t0
            self.history.append(row)
            for cb in self.callbacks:
                cb.on_epoch_end(self, row)
            if self.stop_training:
                break

    def _run_own_loop(self, X, T, epochs, validation_data):
        """The epochs of a rule that runs its own loop (:class:`~deltaprop.optimizers.LBFGS`):
        one per iteration, each recorded, evaluated and handed to the callbacks as in
        :meth:`_run_epochs` (``samples``: rows times the loss evaluations so far). Why the loop
        ended before the budget is a history event: ``converged``, or ``lbfgs_stopped`` (scipy's limit or failed line search)."""
        local = isinstance(self.engine, str) and self.engine in ("auto", "numpy")
        if not local and not hasattr(self.engine, "loss_and_gradient"):
            raise ConfigError(_("optimizer {name!r} evaluates its loss and gradient in this process (the NumPy "
                                "engine); engine {engine!r} cannot run it").format(
                name=self.optimizer.name, engine=getattr(self.engine, "name", self.engine)))
        # an engine object that sums the full-batch loss and gradient elsewhere (DaskEngine:
        # on the workers) evaluates the objective; else the network does, in this process
        objective = None if local else (lambda: self.engine.loss_and_gradient(self, X, T))
        self.engine_used = "numpy" if local else self.engine.name
        opt, n = self.optimizer, X.shape[0]
        end = self.epoch + epochs
        Xe, Te, We = self._eval_subset(X, T)
        t0 = [time.perf_counter()]

        def epoch_end(loss_before: float) -> bool:
            self.epoch += 1
            for cb in self.callbacks:
                cb.on_epoch_begin(self, self.epoch)
            row = {"epoch": self.epoch, "loss_running": loss_before, "lr": opt.lr, "updates": opt.t,
                   "samples": opt.n_fun * n}
            last = self.epoch == end
            if self.eval_every and (self.epoch % self.eval_every == 0 or last):
                row.update(self._evaluate(X, T, "", keep_accuracy=self.accuracy, weights=self.sample_weight)
                           if last else self._evaluate(Xe, Te, "", keep_accuracy=self.accuracy, weights=We))
            if validation_data is not None:
                row.update(self._evaluate(*validation_data, "val_", keep_accuracy=self.accuracy))
            row["seconds"] = time.perf_counter() - t0[0]
            self.history.append(row)
            for cb in self.callbacks:
                cb.on_epoch_end(self, row)
            t0[0] = time.perf_counter()
            return self.stop_training

        opt.run(self, X, T, end - self.epoch, epoch_end, objective)
        if not np.isfinite(self.network.flat).all():  # not seen: the line search only accepts a lower loss
            self.diverged = self.stop_training = True
            parts = [part(N_("{name}: the weights are not finite"), name=opt.name)]
            self.history.events.append({"epoch": self.epoch, "event": "divergence", "detail": render(parts, "en"),
                                        "parts": parts})
        elif not self.stop_training and opt.status in (0, 1, 2) and self.epoch < end:
            self.stop_training = True
            # scipy's own reason stays English inside the line, as a quoted name
            parts = [part(N_("{name} stopped after {iterations} iterations and {evaluations} loss evaluations: "
                             "{reason}"), name=opt.name, iterations=int(opt.t), evaluations=int(opt.n_fun),
                          reason=str(opt.message))]
            self.history.events.append({"epoch": self.epoch, "event": "converged" if opt.status == 0 else "lbfgs_stopped",
                                        "detail": render(parts, "en"), "parts": parts})

    def eval_rows_for(self, n: int) -> int:
        """How many of ``n`` training rows the per-epoch re-evaluation uses (see ``eval_rows``)."""
        if self.eval_rows is not None:
            return min(n, self.eval_rows)
        if n <= self.EVAL_ROWS_MIN:
            return n
        return min(max(self.EVAL_ROWS_MIN, math.ceil(n / 16)), self.EVAL_ROWS_MAX)

    def _eval_subset(self, X, T):
        """The fixed, evenly spaced rows the per-epoch evaluation uses (a copy of at most
        EVAL_ROWS_MAX rows; X itself when every row is used)."""
        n = X.shape[0]
        m = self.eval_rows_for(n)
        if m >= n:
            return X, T, self.sample_weight
        idx = (np.arange(m) * n) // m
        return X[idx], T[idx], None if self.sample_weight is None else self.sample_weight[idx]

    def _check_memory(self, rows: int) -> None:
        """Refuse before the first update when the optimizer state, the roll-back snapshot and
        the per-chunk buffers (see :mod:`deltaprop.memory`) would not fit."""
        net = self.network
        n_state = len(getattr(self.optimizer, "_state_names", ()))
        widths = net.n_inputs + sum(layer.n_out for layer in net.layers)
        need = net.dtype.itemsize * (net.flat.size * (2 * n_state + 1) + 3 * rows * widths)
        require_memory(need, _("training this {n:,}-parameter network ({rows} rows at a time)").format(
            n=net.flat.size, rows=rows))

    def _explosion(self, row: dict) -> str | None:
        """Why this epoch counts as diverging although its loss is finite: it grew more than
        :attr:`DIVERGENCE_GROWTH` times above the loss at the starting weights (a run heading
        for overflow gets there within a few epochs; waiting for inf would keep weights of 1e150)."""
        first = self.initial_loss
        if first is None or not (math.isfinite(first) and first > 0):
            return None
        for key in ("loss_running", "loss"):
            v = row.get(key, math.nan)
            if math.isfinite(v) and v > self.DIVERGENCE_GROWTH * first:
                return part(N_("the loss grew from {first:.4g} at the start to {last:.4g} after epoch {epoch}"),
                            first=float(first), last=float(v), epoch=int(self.epoch))
        return None

    def _evaluate(self, X, T, prefix: str, keep_accuracy: bool, weights=None) -> dict:
        sharded = getattr(X, "sharded", None)
        if sharded is not None:  # on the workers: the sums of their rows, added on the driver
            loss, acc = sharded.evaluate(self.network, self.chunk_size)
            return {prefix + "loss": loss} | ({prefix + "accuracy": acc} if keep_accuracy else {})
        loss, out = self.network.evaluate(X, T, self.chunk_size, weights)
        row = {prefix + "loss": loss}
        if keep_accuracy:
            row[prefix + "accuracy"] = accuracy(self.network, out, T)
        return row

    def _snapshot(self) -> tuple[np.ndarray, dict]:
        return self.network.flat.copy(), self.optimizer.state_dict()

    def _diverged(self, good, update, why: dict | None = None) -> bool:
        """Roll back to ``good``; return True when training goes on with a halved learning rate.
        ``why``: what happened (an :func:`~deltaprop.i18n.part`), when it was not a NaN or inf."""
        params, opt_state = good
        lr = self.optimizer.lr  # may already have been halved since the snapshot
        self.network.flat[...] = params
        self.optimizer.load_state_dict(opt_state)
        self.optimizer.lr = lr
        what = why or (part(N_("the loss became NaN or inf at update {update} of epoch {epoch}"), update=int(update),
                            epoch=int(self.epoch)) if update else
                       part(N_("the loss became NaN or inf after epoch {epoch}"), epoch=int(self.epoch)))
        # An event's detail is English, a stable text of history files; its parts are printed
        # in the reader's language (i18n.event_text).
        if self.on_divergence == "halve-lr" and self.halvings < self.max_halvings:
            self.halvings += 1
            self.optimizer.lr = lr / 2.0
            parts = [what, part(N_("rolled back to the last good epoch and halved the learning rate to {lr:g} "
                                   "({halvings} of at most {most} halvings)"), lr=float(self.optimizer.lr),
                                halvings=self.halvings, most=self.max_halvings)]
            self.history.events.append({"epoch": self.epoch, "event": "lr_halved", "detail": render(parts, "en"),
                                        "parts": parts})
            self.epoch -= 1  # the epoch is run again
            return True
        self.diverged = True
        self.stop_training = True
        parts = [what, part(N_("training stopped and the weights of the last good epoch were kept "
                               "(try a smaller learning rate, or on_divergence='halve-lr' (--on-divergence halve-lr))")
                            if self.on_divergence == "stop" else
                            N_("training stopped and the weights of the last good epoch were kept "
                               "(try a smaller learning rate)"))]
        self.history.events.append({"epoch": self.epoch, "event": "divergence", "detail": render(parts, "en"),
                                    "parts": parts})
        self.epoch -= 1  # the failed epoch does not count
        return False

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue bitwise identically: weights, optimizer state, the
        random generator's state, the epoch reached, the history and the callbacks' state."""
        return {
            "epoch": self.epoch,
            "params": self.network.flat.copy(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "history": self.history.to_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "halvings": self.halvings,
            "diverged": self.diverged,
            "initial_loss": self.initial_loss,
            "settings": {"mode": self.mode, "batch_size": self.batch_size, "shuffle": self.shuffle,
                         "chunk_size": self.chunk_size, "eval_every": self.eval_every},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output into a trainer built with the same settings."""
        mine = self.state_dict()["settings"]
        if state["settings"] != mine:
            diff = {k: (state["settings"].get(k), v) for k, v in mine.items() if state["settings"].get(k) != v}
            raise ConfigError(_("checkpoint was written with other training settings: {settings}").format(
                settings=", ".join(_("{key} {saved!r} (now {now!r})").format(key=k, saved=a, now=b)
                                   for k, (a, b) in diff.items())))
        params = np.asarray(state["params"])
        if params.shape != self.network.flat.shape:
            raise ConfigError(_("checkpoint has {saved} parameters, the network {n}").format(
                saved=params.size, n=self.network.flat.size))
        self.network.flat[...] = params
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self.history = History.from_dict(state["history"])
        saved, cbs = list(state["callbacks"]), list(self.callbacks)
        if len(saved) != len(cbs):
            # Callbacks without state (printers, checkpointers) differ between front ends; the
            # ones with state must pair up in order.
            saved = [s for s in saved if s]
            cbs = [cb for cb in cbs if cb.state_dict()]
        if len(saved) != len(cbs):
            raise ConfigError(_("checkpoint has state for a different set of callbacks"))
        for cb, cb_state in zip(cbs, saved):
            cb.load_state_dict(cb_state)
        self.halvings = int(state["halvings"])
        self.diverged = bool(state["diverged"])
        # Checkpoints of the first release have none; fit then measures it at the resumed weights.
        init = state.get("initial_loss")
        self.initial_loss = None if init is None else float(init)


def _sharded_inputs(X, T, trainer):
    """``(X, T, sharded data or None)``: rows held by a Dask cluster's workers (``ShardedData``'s
    ``.X``/``.T``, or dask arrays, which are made into one) train on the Dask engine only."""
    dask_arrays = type(X).__module__.startswith("dask.") or type(T).__module__.startswith("dask.")
    if (dask_arrays or getattr(X, "sharded", None) is not None) and not getattr(trainer.engine, "runs_sharded", False):
        raise ConfigError(_("data held by a Dask cluster train on its workers: use "
                            "engine=deltaprop.distributed.DaskEngine(client)"))
    if dask_arrays:
        from .distributed.data import ShardedData

        data = ShardedData.from_dask_arrays(X, T, trainer.network, trainer.engine.client)
        X, T = data.X, data.T
    return X, T, getattr(X, "sharded", None)


def train(network: Network, X, T, *, epochs: int = 10, mode: str = DEFAULTS.mode,
          batch_size: int = DEFAULTS.batch_size, lr: float = DEFAULTS.lr, optimizer=DEFAULTS.optimizer, seed=None,
          validation_data=None, **kwargs) -> History:
    """Convenience wrapper: build a :class:`Trainer` and run :meth:`Trainer.fit`.

    Defaults are those of :data:`deltaprop.config.DEFAULTS` but ``epochs`` (10: a quick look)
    and ``seed`` (None: fresh entropy, as NumPy's generators have it). ``epochs`` is at least
    1, as in ``deltaprop train`` (:meth:`Trainer.fit`, which adds epochs to a trainer's run,
    takes 0)."""
    if isinstance(epochs, (int, float)) and not isinstance(epochs, bool) and epochs < 1:
        raise ConfigError(_("epochs must be at least 1, got {value}").format(value=epochs))
    trainer = Trainer(network, optimizer, lr=lr, mode=mode, batch_size=batch_size, seed=seed, **kwargs)
    return trainer.fit(X, T, epochs, validation_data)
