r"""One page's run: settings checked by the settings table, a run made by
:func:`deltaprop.runs.prepare_run`, and its updates released one at a time by a gate.

The run trains in a worker thread through :meth:`Trainer.fit` with a :class:`SteppingEngine`
as ``trainer.engine``: the NumPy engine's epoch of updates, which waits at the gate before
each update. The loop, the sample order, the callbacks and the optimizer are the CLI's, so
the weights after E epochs equal ``deltaprop train --engine numpy`` with the same settings
and seed, bit for bit (a test says so), whether the page played, stepped or paused.

Thread safety: the worker holds :attr:`Session.lock` while it computes and applies an update
and while the trainer's epoch-end work runs; readers (the frames sent to the page, explain,
the gradient check, export) hold it too, so they always see the weights between two updates,
with :attr:`Session.pending` the batch the next update will use.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shutil
import tempfile
import threading
import time

import numpy as np

from ..config import TrainConfig, check_value, resolve
from ..data import BUILTIN
from ..errors import ConfigError, DeltapropError
from ..explain import MAX_PARAMS, explain_model, render
from ..i18n import event_text, gettext as _
from ..training import Callback
from . import data as pdata

__all__ = ["Session", "SteppingEngine", "Gate", "Stopped", "page_settings", "PAGE_KEYS", "LIMITS",
           "defaults_for"]

#: The settings the page may send; every value is checked by the settings table
#: (:func:`deltaprop.config.check_value`), with the caps of :data:`LIMITS` on top.
PAGE_KEYS = ("hidden", "activation", "output_activation", "loss", "mode", "batch_size", "optimizer", "lr",
             "momentum", "nesterov", "opt_param", "schedule", "schedule_param", "stall", "stall_remedy",
             "seed", "epochs", "val_split", "init", "weight_decay")

#: Caps that keep one local page from taking the machine: layers and units of the network,
#: epochs of a run, epochs per second while playing, the updates of a mode comparison, the
#: playground's sessions (one per tab; the least recently seen one is closed beyond this).
LIMITS = {"layers": 4, "units": 32, "epochs": 100_000, "epochs_per_second": 500, "updates_per_second": 100_000,
          "compare_updates": 200_000, "compare_epochs": 1000, "sessions": 8}

#: The playground's own choices where a built-in set recommends a network too big to explain
#: (spirals' 2-20-20-1 has 501 parameters; explain traces at most 500: 2-16-16-1 has 337 and,
#: with the rest of the set's recommendation, solves it: 100% in 2000 epochs, measured) or
#: where a drawn set has none. Everything else is the built-in set's recommendation, else the
#: general default.
PLAYGROUND_DEFAULTS = {
    "spirals": {"hidden": "16,16"},
    "circles": {"hidden": "4", "activation": "tanh", "mode": "minibatch", "batch_size": 10, "lr": 0.1,
                "epochs": 300, "val_split": 0.2},
    "gaussians": {"hidden": "2", "activation": "tanh", "mode": "minibatch", "batch_size": 10, "lr": 0.1,
                  "epochs": 100, "val_split": 0.2},
    "csv": {"hidden": "4", "activation": "tanh", "mode": "minibatch", "batch_size": 10, "lr": 0.1,
            "epochs": 200, "val_split": 0.2},
}

#: Fixed for every playground run: the NumPy engine (the reference one; the compiled engine
#: would agree to 1e-10, not bit for bit, and explain computes in float64), float64 weights
#: (explain's digits are then the training's own), the loss re-evaluated every epoch.
FIXED = {"engine": "numpy", "dtype": "float64", "eval_every": 1}


class Stopped(Exception):
    """Raised inside the worker's update loop to end a run that was reset or closed."""


def defaults_for(data: str) -> dict:
    """The page's settings for data set ``data``: the playground's choice, else the built-in
    set's recommendation, else the general defaults (the keys of :data:`PAGE_KEYS`)."""
    if data not in pdata.DATASETS:
        raise _unknown_data(data)
    merged = resolve({"data": data if data in BUILTIN else "a-file.csv"}).to_dict()
    merged |= PLAYGROUND_DEFAULTS.get(data, {})
    return {"data": data} | {k: merged.get(k) for k in PAGE_KEYS}


def page_settings(values: dict) -> dict:
    """The page's settings checked: unknown keys refused, each value by the settings table,
    then the playground's caps. Returns the checked values (keys of :data:`PAGE_KEYS`)."""
    if not isinstance(values, dict):
        raise ConfigError(_("settings must be a JSON object"))
    out = {}
    for key, value in values.items():
        if key not in PAGE_KEYS:
            raise ConfigError(_("unknown setting {key}; the page may set: {keys}").format(key=repr(key), keys=", ".join(PAGE_KEYS)))
        out[key] = check_value(key, value)
    hidden = out.get("hidden", ())
    if len(hidden) > LIMITS["layers"] - 1:
        raise ConfigError(_("hidden: {n} hidden layers; the playground allows at most {most}").format(
            n=len(hidden), most=LIMITS["layers"] - 1))
    if any(h > LIMITS["units"] for h in hidden):
        raise ConfigError(_("hidden: a layer of {n} units; the playground allows at most {most} per layer").format(
            n=max(hidden), most=LIMITS["units"]))
    if out.get("optimizer") == "lbfgs":  # scipy drives its own iterations: no update to step through
        raise ConfigError(_("optimizer: lbfgs runs scipy's own iterations, which the playground cannot step "
                            "through one update at a time; use deltaprop train --optimizer lbfgs"))
    if out.get("epochs", 0) > LIMITS["epochs"]:
        raise ConfigError(_("epochs: {n}; the playground allows at most {most}").format(
            n=out["epochs"], most=f"{LIMITS['epochs']:,}"))
    return out


class Gate:
    """Who may run the next update: play (at most ``rate`` updates per second and
    :data:`LIMITS` ``epochs_per_second``), a budget of single steps, or nobody (paused)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.playing = False
        self.budget = 0
        self.stopped = False
        self.rate = 0.0  # updates per second while playing; 0: as fast as the caps allow
        self._next = 0.0

    def wait(self, updates_per_epoch: int) -> None:
        """Block until the next update may run; raise :class:`Stopped` when the run ends."""
        with self.cond:
            while not (self.stopped or self.playing or self.budget > 0):
                self.cond.wait()
            if self.stopped:
                raise Stopped()
            if self.budget > 0 and not self.playing:
                self.budget -= 1
                return
        # Playing: pace the updates (outside the lock, so pause and reset act at once).
        cap = LIMITS["epochs_per_second"] * updates_per_epoch
        rate = min(self.rate or cap, cap, LIMITS["updates_per_second"])
        now = time.perf_counter()
        if self._next > now:
            with self.cond:
                self.cond.wait(self._next - now)
                if self.stopped:
                    raise Stopped()
        self._next = max(self._next, now - 0.1) + 1.0 / rate

    def set(self, *, playing=None, add=0, stopped=None, rate=None) -> None:
        with self.cond:
            if playing is not None:
                self.playing = bool(playing)
                self._next = 0.0
            if stopped is not None:
                self.stopped = bool(stopped)
            if rate is not None:
                self.rate = float(rate)
            self.budget += int(add)
            self.cond.notify_all()


class SteppingEngine:
    """The NumPy engine's epoch (:class:`deltaprop.engines.numpy_engine.NumpyEngine`), one
    update at a time behind :class:`Gate`, recording each update for the page.

    The arithmetic and its order are the NumPy engine's: the same batches
    (``order[start:start + k]``), ``Network.loss_and_gradient`` and ``Optimizer.step`` with the
    batch loss; only the waiting and the records are added.
    """

    name = "numpy"

    def __init__(self, session: "Session", gate: Gate):
        self.session, self.gate = session, gate

    def unsupported(self, trainer) -> str | None:
        return None

    def run_epoch(self, trainer, X, T, order, k):
        s, gate = self.session, self.gate
        net, opt = trainer.network, trainer.optimizer
        params, chunk = net.params, trainer.chunk_size
        n = len(X)
        per_epoch = math.ceil(n / k)
        running = 0.0
        # The worker holds s.lock (see Session._work) except while it waits at the gate.
        for u, start in enumerate(range(0, n, k), start=1):
            idx = np.arange(start, min(start + k, n)) if order is None else order[start:start + k]
            s.pending = {"epoch": trainer.epoch, "update_in_epoch": u, "updates_per_epoch": per_epoch,
                         "rows": idx}
            s.version += 1
            s.lock.release()
            try:
                s.let_readers_in()
                gate.wait(per_epoch)
            finally:
                s.lock.acquire()
            xb, tb = X[idx], T[idx]
            batch_loss, grads = net.loss_and_gradient(xb, tb, chunk)
            if not math.isfinite(batch_loss):
                s.pending = None
                return running, u
            running += batch_loss * len(xb)
            opt.step(params, grads, loss=batch_loss)
            s.record_update(batch_loss, len(idx))
        s.pending = None
        return running, None


class _EpochEnd(Callback):
    """Marks the state changed after each epoch's records (the history row, events)."""

    def __init__(self, session):
        self.session = session

    def on_epoch_end(self, trainer, logs):
        self.session.version += 1


def _hash(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _events_shown(events: list) -> list:
    """The run's training events for the page, each ``detail`` in the language of the request
    (the history keeps an English detail, a stable text of files, and the parts to render)."""
    return [{**e, "detail": event_text(e)} for e in events]


def _unknown_data(data) -> ConfigError:
    return ConfigError(_("unknown data set {name}; valid: {names}").format(name=repr(data),
                                                                          names=", ".join(pdata.DATASETS)))


class Session:
    """One page's run (one per browser tab). Made idle; :meth:`configure` starts a run, paused
    at its first update."""

    GRID = 48  # the decision regions' grid, GRID x GRID points

    def __init__(self, sid: str, folder: str | None = None):
        self.sid = sid
        self.lock = threading.RLock()
        self.gate = Gate()
        self.folder = folder or tempfile.mkdtemp(prefix="deltaprop-playground-")
        self._own_folder = folder is None
        self.run = None
        self.config: TrainConfig | None = None
        self.settings: dict = {}
        self.data_name = None
        self.pending = None
        self.version = 0
        self.updates: list[tuple[int, float, int]] = []  # (update, batch loss, samples seen)
        self.samples_seen = 0
        self.error = None
        self.finished = False
        self.thread = None
        self.listeners = 0
        self.last_seen = time.monotonic()
        self.initial_hash = None
        self.upload = None  # (text, filename) of the last uploaded CSV
        self._readers = 0
        self._readers_lock = threading.Lock()

    @contextlib.contextmanager
    def reading(self):
        """Hold :attr:`lock` to read the run; a playing worker lets a waiting reader in at its
        next update (Python's locks are not fair: without this a fast run could starve the
        frames sent to the page)."""
        with self._readers_lock:
            self._readers += 1
        try:
            self.lock.acquire()
        finally:
            with self._readers_lock:
                self._readers -= 1
        try:
            yield
        finally:
            self.lock.release()

    def let_readers_in(self) -> None:
        end = time.perf_counter() + 0.05
        while self._readers and time.perf_counter() < end:
            time.sleep(0.0002)

    # ----------------------------------------------------------------- set-up
    def data_path(self, data: str, csv: dict | None) -> tuple[str, str | None]:
        """The ``data`` and ``target`` settings for the page's data choice."""
        if data in BUILTIN:
            return data, None
        if data in pdata.DRAWN:
            return pdata.write_drawn(data, self.folder), "label"
        if data == "csv":
            if not csv:
                raise ConfigError(_("data 'csv': upload a CSV file and choose its x, y and target columns"))
            text = csv.get("text")
            if text is None and self.upload:
                text = self.upload[0]
            if not isinstance(text, str):
                raise ConfigError(_("data 'csv': upload a CSV file first"))
            name = str(csv.get("name") or "upload.csv")[:200]
            for key in ("x", "y", "target"):
                if not isinstance(csv.get(key), str):
                    raise ConfigError(_("data 'csv': choose the {key} column").format(key=key))
            path = pdata.write_upload(text, csv["x"], csv["y"], csv["target"], self.folder, name)
            self.upload = (text, name)
            return path, csv["target"]
        raise _unknown_data(data)

    def configure(self, data: str, settings: dict, csv: dict | None = None) -> TrainConfig:
        """Check the settings, stop the current run and prepare a new one (paused before its
        first update). Raises ConfigError/DataError with the message the page shows."""
        from ..runs import prepare_run

        checked = page_settings(settings)
        path, target = self.data_path(data, csv)
        cfg = resolve({**checked, **FIXED, "data": path, "target": target})
        run = prepare_run(cfg, callbacks=[_EpochEnd(self)])  # first: a bad set-up leaves the old run as it was
        self.stop()
        with self.lock:
            self.run, self.config, self.settings, self.data_name = run, cfg, checked, data
            self.gate = Gate()
            run.trainer.engine = SteppingEngine(self, self.gate)
            self.updates, self.samples_seen, self.error, self.finished, self.pending = [], 0, None, False, None
            self.initial_hash = _hash(run.model.network.flat)
            self.version += 1
        self.thread = threading.Thread(target=self._work, args=(run, self.gate), daemon=True,
                                       name=f"deltaprop-playground-{self.sid}")
        self.thread.start()
        self._wait_ready()
        return cfg

    def _wait_ready(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.reading():
                if self.pending is not None or self.finished or self.error:
                    return
            time.sleep(0.002)

    def _work(self, run, gate) -> None:
        try:
            with self.lock:
                run.fit()
        except Stopped:
            return
        except DeltapropError as exc:
            with self.lock:
                if self.run is run:
                    self.error = str(exc)
        except Exception as exc:  # shown on the page rather than lost in a thread
            with self.lock:
                if self.run is run:
                    self.error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            if self.run is run:
                self.finished, self.pending = True, None
                self.version += 1
        gate.set(playing=False)

    def stop(self) -> None:
        """End the current run's worker (it raises :class:`Stopped` at its next wait)."""
        self.gate.set(stopped=True, playing=False)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=10)
        self.thread = None

    def close(self) -> None:
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def record_update(self, batch_loss: float, rows: int) -> None:
        self.samples_seen += rows
        self.updates.append((self.run.trainer.optimizer.t, float(batch_loss), self.samples_seen))
        self.version += 1

    def epochs_done(self) -> int:
        """Epochs completed: the trainer counts the epoch it is in (waiting at an update of it)."""
        return self.run.trainer.epoch - (1 if self.pending is not None else 0)

    # ----------------------------------------------------------------- controls
    def control(self, action: str, rate: float | None = None) -> None:
        """``play``, ``pause``, ``step`` (one update), ``epoch`` (to the end of the current
        epoch, or the whole next one at an epoch's start)."""
        if self.run is None:
            raise ConfigError(_("no run yet: choose a data set and settings first"))
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0 <= rate <= LIMITS["updates_per_second"]):
                raise ConfigError(_("speed must be 0 (as fast as allowed) to {most:,} updates per second, got "
                                    "{rate}").format(most=LIMITS["updates_per_second"], rate=repr(rate)))
            self.gate.set(rate=rate)
        if action == "play":
            self.gate.set(playing=True)
        elif action == "pause":
            self.gate.set(playing=False)
        elif action == "step":
            self.gate.set(playing=False, add=1)
        elif action == "epoch":
            self._wait_ready()
            with self.reading():
                p = self.pending
                left = 0 if p is None else p["updates_per_epoch"] - p["update_in_epoch"] + 1
            self.gate.set(playing=False, add=left)
        elif action != "speed":
            raise ConfigError(_("unknown action {action}; valid: play, pause, step, epoch, speed").format(action=repr(action)))
        self.version += 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until the worker has used its step budget (tests and the compare view)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.gate.cond:
                idle = self.gate.budget == 0
            if idle:
                with self.reading():
                    if self.pending is not None or self.finished or self.error:
                        return
            time.sleep(0.002)
        raise TimeoutError(_("the run did not reach its next update in time"))

    # ----------------------------------------------------------------- what the page shows
    def setup(self) -> dict:
        """What changes only with a new run: the data points, the grid's extent, the settings."""
        with self.reading():
            run = self.run
            if run is None:
                return {"sid": self.sid, "ready": False}
            Xr = run.train.X
            net = run.model.network
            out = {"sid": self.sid, "ready": True, "data": self.data_name, "settings": self._settings_out(),
                   "config": self.config.to_dict(), "sizes": net.sizes,
                   "activations": [layer.activation.name for layer in net.layers], "loss": net.loss.name,
                   "param_names": net.param_names(), "n_train": len(run.X),
                   "n_val": 0 if run.val is None else len(run.val[0]),
                   "feature_names": run.model.feature_names, "classes": run.model.classes,
                   "explainable": net.n_params <= MAX_PARAMS, "optimizer": run.trainer.optimizer.name,
                   "initial_hash": self.initial_hash}
            if net.n_inputs == 2:
                lo, hi = Xr.min(axis=0), Xr.max(axis=0)
                pad = 0.1 * np.maximum(hi - lo, 1e-9)
                out["extent"] = [float(lo[0] - pad[0]), float(hi[0] + pad[0]),
                                 float(lo[1] - pad[1]), float(hi[1] + pad[1])]
                out["points"] = np.round(Xr, 5).tolist()
                out["labels"] = self._labels(run.T).tolist()
                if run.validation is not None:
                    out["val_points"] = np.round(run.validation.X, 5).tolist()
                    out["val_labels"] = self._labels(run.validation.T).tolist()
            return out

    def _settings_out(self) -> dict:
        cfg = self.config.to_dict()
        return {k: cfg[k] for k in PAGE_KEYS}

    @staticmethod
    def _labels(T) -> np.ndarray:
        T = np.asarray(T)
        return (T[:, 0] > 0.5).astype(int) if T.shape[1] == 1 else T.argmax(axis=1)

    def frame(self, since_update: int = 0, since_epoch: int = 0) -> dict:
        """The live state: position, weights, regions, and the records after the given ones."""
        with self.reading():
            run = self.run
            if run is None:
                return {"ready": False, "version": self.version}
            tr, net = run.trainer, run.model.network
            p = self.pending
            h = tr.history
            new_updates = self.updates[since_update:]
            if len(new_updates) > 400:  # thinned for the page; the counts stay exact
                step = math.ceil(len(new_updates) / 400)
                new_updates = new_updates[::step] + [new_updates[-1]]
            out = {
                "ready": True, "version": self.version, "epoch": self.epochs_done(), "update": tr.optimizer.t,
                "samples": self.samples_seen, "playing": self.gate.playing, "finished": self.finished,
                "error": self.error, "epochs_total": self.config.epochs,
                "pending": None if p is None else {"epoch": p["epoch"], "update_in_epoch": p["update_in_epoch"],
                                                   "updates_per_epoch": p["updates_per_epoch"],
                                                   "rows": [int(i) for i in p["rows"][:32]],
                                                   "batch": int(len(p["rows"]))},
                "n_updates": len(self.updates),
                "updates": [[u, _num(l), s] for u, l, s in new_updates],
                "history": {k: [_num(v) for v in getattr(h, k)[since_epoch:]]
                            for k in ("epoch", "loss", "loss_running", "val_loss", "accuracy", "val_accuracy",
                                      "lr", "updates", "samples")},
                "n_epochs": len(h),
                "events": _events_shown(h.events),
                "weights": [[layer.W.tolist(), layer.b.tolist()] for layer in net.layers],
                "lr": tr.optimizer.lr,
                "time": time.time(),
            }
            if net.n_inputs == 2:
                out["regions"] = self._regions()
            return out

    def _regions(self) -> list:
        """The first output (or the winning class's index + confidence) on the grid, raw units."""
        run = self.run
        lo0, hi0, lo1, hi1 = self.setup_extent()
        g = self.GRID
        xs, ys = np.linspace(lo0, hi0, g), np.linspace(hi1, lo1, g)  # rows from the top
        grid = np.column_stack([np.tile(xs, g), np.repeat(ys, g)])
        net = run.model.network
        out = net.predict(run.model.prepare(grid))
        if out.shape[1] == 1:
            vals = out[:, 0]
        else:
            vals = out.argmax(axis=1) + out.max(axis=1) * 0.999
        return np.round(vals, 3).tolist()

    def setup_extent(self):
        Xr = self.run.train.X
        lo, hi = Xr.min(axis=0), Xr.max(axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-9)
        return lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]

    # ----------------------------------------------------------------- explain, internals
    def explain(self, param: str | None = None) -> dict:
        """``deltaprop explain``'s trace of the next update's first sample at the current
        weights (what ``deltaprop explain --model M --input X --target T --lr LR`` prints for the
        model saved now), with the optimizer's own update of the whole batch beside it."""
        with self.reading():
            run = self.run
            if run is None:
                raise ConfigError(_("no run yet"))
            net, tr = run.model.network, run.trainer
            names = net.param_names()
            if param is not None and param not in names:
                raise ConfigError(_("unknown parameter {name}; this network has {first} to {last}").format(
                    name=repr(param), first=names[0], last=names[-1]))
            p = self.pending
            rows = np.array([0]) if p is None else np.asarray(p["rows"])
            i = int(rows[0])
            raw_x = run.train.X[i]
            target = run.T[i]  # what the network trains on (standardised where the model scales targets)
            raw_t = run.train.T[i]  # explain_model standardises it as the model does
            lr = tr.optimizer.lr
            trace = explain_model(run.model, raw_x, raw_t, lr=lr, source=_("the playground's model"))
            actual = self._actual_update(rows)
            out = {"trace": trace, "text": render(trace, "text"), "sample": i, "batch": len(rows),
                   "position": None if p is None else {k: p[k] for k in ("epoch", "update_in_epoch",
                                                                         "updates_per_epoch")},
                   "input": [float(v) for v in raw_x], "target": [float(v) for v in target], "lr": lr,
                   "optimizer": tr.optimizer.name, "mode": tr.mode, "actual": actual,
                   "internals": self.internals(param)}
            return out

    def _actual_update(self, rows) -> dict:
        """What the run's next update will do to every parameter: the batch's mean gradient and
        the optimizer's step, computed on copies (the run itself is not advanced)."""
        run = self.run
        net = copy.deepcopy(run.model.network)
        opt = copy.deepcopy(run.trainer.optimizer)
        before = net.params.copy()
        loss, grads = net.loss_and_gradient(run.X[rows], run.T[rows], run.trainer.chunk_size)
        grads = grads.copy()
        opt.step(net.params, grads, loss=loss)
        names = net.param_names()[: net.n_trainable]
        return {"names": names, "gradient": grads.tolist(), "delta": (net.params - before).tolist(),
                "batch_loss": float(loss)}

    def internals(self, param: str | None = None) -> dict:
        """The optimizer's state: per state array its min, median and max (and the value of
        ``param``), the learning rate per epoch (a schedule or the bold driver changes it), events."""
        with self.reading():
            run = self.run
            opt = run.trainer.optimizer
            names = run.model.network.param_names()
            state = {}
            for key, arr in opt.state.items():
                a = np.asarray(arr, dtype=float)
                if a.ndim == 0:  # a number for the whole network (e.g. iRprop+'s previous loss)
                    state[key] = {"min": float(a), "median": float(a), "max": float(a), "value": float(a),
                                  "scalar": True}
                    continue
                entry = {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}
                if param is not None and param in names and names.index(param) < a.size:
                    entry["value"] = float(a[names.index(param)])
                state[key] = entry
            return {"optimizer": opt.name, "t": opt.t, "lr": opt.lr, "hyper": {
                k: v for k, v in opt.hyperparameters().items() if isinstance(v, (int, float, bool))},
                "state": state, "lr_history": [_num(v) for v in run.trainer.history.lr],
                "events": _events_shown(run.trainer.history.events)}

    def gradcheck(self) -> dict:
        """Backprop's gradient of the current weights against central differences over the
        training set (:func:`deltaprop.gradcheck`), on a copy."""
        from ..gradcheck import gradcheck

        with self.reading():
            run = self.run
            net = copy.deepcopy(run.model.network)
            X, T = run.X, run.T
        res = gradcheck(net, X, T)
        return {"summary": res.summary(), "max_rel_error": res.max_rel_error,
                "median_rel_error": res.median_rel_error, "worst": res.worst, "n_params": res.n_params,
                "names": list(res.names), "rel_error": res.rel_error.tolist(),
                "analytic": res.analytic.tolist(), "numeric": res.numeric.tolist()}

    # ----------------------------------------------------------------- export
    def export_config(self) -> tuple[str, TrainConfig]:
        """The TOML that repeats the run's completed epochs: data named by file name (saved
        beside it), out left to the user."""
        with self.reading():
            cfg = self.config
            data = cfg.data if cfg.data in BUILTIN else os.path.basename(cfg.data)
            epochs = max(self.epochs_done(), 1)
            out = cfg.replace(data=data, epochs=epochs, out=None, checkpoint=None)
            return out.to_toml(), out

    def export_model(self) -> bytes:
        """The model file (arrays + JSON) of the current weights."""
        with self.reading():
            path = os.path.join(self.folder, "export-model.npz")
            self.run.model.save(path, overwrite=True,
                                extra={"training": self.config.to_dict() | {"epochs_run": self.epochs_done()}})
            with open(path, "rb") as f:
                return f.read()

    def export_data(self) -> tuple[str, bytes] | None:
        cfg = self.config
        if cfg.data in BUILTIN:
            return None
        with open(cfg.data, "rb") as f:
            return os.path.basename(cfg.data), f.read()


def _num(v):
    v = float(v)
    return v if math.isfinite(v) else None
