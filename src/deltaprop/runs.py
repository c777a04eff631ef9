"""A training run described by a :class:`~deltaprop.config.TrainConfig`: data loaded and split,
the model and trainer built, resumed from a checkpoint, trained, summarised and saved.

This is what ``deltaprop train`` does, as library functions, so that other front ends (the
playground, a cluster driver, a notebook) run the same run from the same record::

    from deltaprop.config import resolve

    cfg = resolve({"data": "iris", "epochs": 100})   # the CLI's precedence: iris's own settings
    run = prepare_run(cfg)
    run.fit()
    print(run.summary())

The random generator seeded with ``cfg.seed`` is used in this order: the validation split,
the initial weights, then the sample order of every epoch, so the same record gives the same
weights, whoever runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from .checkpoint import Checkpointer, free_name, is_checkpoint, load_checkpoint
from .config import TrainConfig, resume_config
from .data import BUILTIN, data_format, load_data
from .data.dataset import Dataset, split_rows
from .data.partitions import is_partitioned, load_partitions, partition_files, partitioned_fingerprint
from .errors import ConfigError, DataError
from .i18n import gettext as _, ngettext
from .io import write_text_atomic
from .model import Model, build_training
from .techniques import build_callbacks, use_flat_spot
from .training import Trainer

__all__ = ["Run", "prepare_run", "data_fingerprint", "load_config_data", "data_task", "load_resume", "output_paths",
           "check_outputs", "checkpoint_certain", "default_checkpoint", "run_checkpoint", "check_resume"]


def data_fingerprint(*arrays) -> str:
    """SHA-256 of the arrays' bytes: a resumed run checks that it trains on the same data."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def default_checkpoint(cfg: TrainConfig) -> str:
    """Where the run's checkpoint goes: ``cfg.checkpoint``, else OUT.ckpt, else the working folder."""
    return cfg.checkpoint or ((cfg.out + ".ckpt") if cfg.out else "deltaprop-checkpoint.npz")


def output_paths(cfg: TrainConfig) -> list[str]:
    """Every file a run with ``cfg`` writes at its end: the model and its two side files."""
    return [cfg.out, cfg.out + ".config.toml", cfg.out + ".history.json"] if cfg.out else []


def checkpoint_certain(cfg: TrainConfig, resumed_from: str | None = None) -> bool:
    """Whether the run writes its checkpoint whatever happens: a named ``checkpoint`` or the
    one resumed from (both also written at the end), or ``checkpoint_every``. Otherwise it
    writes one only when stopped early (a signal, divergence), under a free name where the
    default one is taken (:class:`~deltaprop.checkpoint.Checkpointer`'s ``keep_existing``)."""
    return cfg.checkpoint is not None or resumed_from is not None or bool(cfg.checkpoint_every)


def run_checkpoint(cfg: TrainConfig, resumed_from: str | None = None) -> str:
    """The file the run's checkpoints go to: ``cfg.checkpoint`` where named, else the one a
    resumed run came from, else :func:`default_checkpoint`."""
    return cfg.checkpoint or resumed_from or default_checkpoint(cfg)


def _input_files(cfg: TrainConfig) -> list[str]:
    """The files the run reads its data from (a folder's or glob's partitions each)."""
    if cfg.data in BUILTIN:
        return []
    try:
        files = list(partition_files(cfg.data)) if is_partitioned(cfg.data) else [cfg.data]
    except DataError:  # none here: a cluster's workers may see partitions the driver does not
        files = []
    return [p for p in [*files, cfg.labels] if p and os.path.isfile(p)]


def check_outputs(cfg: TrainConfig, *, resumed_from: str | None = None) -> None:
    """Before anything is trained: every output can be written, and nothing that exists is
    replaced without ``force`` (a resumed run may replace the checkpoint it resumed from);
    the training data are never an output, ``force`` or not."""
    from .io import check_writable

    ckpt = run_checkpoint(cfg, resumed_from)
    inputs = _input_files(cfg)
    for path in [*output_paths(cfg), ckpt]:
        for given in inputs:
            if os.path.exists(path) and os.path.samefile(path, given):
                raise ConfigError(_("{path} is the training data; give another output file name").format(path=path))
    for path in output_paths(cfg):
        if os.path.abspath(path) == os.path.abspath(ckpt):
            raise ConfigError(_("the checkpoint {path} would take the name of an output; give another --checkpoint").format(
                path=ckpt))
        check_writable(path, overwrite=cfg.force)
    own = resumed_from is not None and os.path.abspath(ckpt) == os.path.abspath(resumed_from)
    if not checkpoint_certain(cfg, resumed_from) and not cfg.force and os.path.lexists(ckpt):
        # written only if the run is stopped early, then under the first free name beside it
        check_writable(free_name(ckpt), overwrite=True)
        return
    if not own and os.path.lexists(ckpt) and not cfg.force and not os.path.isdir(ckpt):
        if not is_checkpoint(ckpt):
            raise ConfigError(_("{path} already exists and is not a deltaprop checkpoint; give another "
                                "--checkpoint, or --force to replace it").format(path=ckpt))
        raise ConfigError(_("checkpoint file {path} already exists; resume from it with --resume {path}, "
                            "or use --force to start afresh and replace it").format(path=ckpt))
    check_writable(ckpt, overwrite=True)


# The data set read by data_task (for config.resolve) and not yet taken by load_config_data:
# (key, Dataset), so that a run reads its file once.
_READ_FOR_TASK: list = []


def _data_key(cfg: TrainConfig):
    """What makes a read the same read: the settings it uses and the file's size and time."""
    try:
        st = os.stat(cfg.data)
    except OSError:
        return None
    return (cfg.data, cfg.target, cfg.task, cfg.labels, cfg.categorical, st.st_size, st.st_mtime_ns)


def data_task(cfg: TrainConfig) -> str | None:
    """The task of the data file ``cfg`` names: ``cfg.task`` when given, else the one the data
    imply (see :func:`deltaprop.data.encode_labels`). The data are read for it and kept for
    the :func:`load_config_data` that follows. None for a built-in set: it recommends its own
    settings."""
    if cfg.data in BUILTIN:
        return None
    if cfg.task != "auto":
        return cfg.task
    if is_partitioned(cfg.data):  # never read data larger than one machine for its task: say --task
        return None
    ds = load_config_data(cfg)
    _READ_FOR_TASK[:] = [(_data_key(cfg), ds)]
    return ds.task


def load_config_data(cfg: TrainConfig) -> Dataset:
    """The data set ``cfg.data`` names, read with the record's target, labels and categories
    (a folder or glob: its partitions one after the other, see :mod:`deltaprop.data.partitions`)."""
    if _READ_FOR_TASK:
        (key, ds), = _READ_FOR_TASK
        _READ_FOR_TASK.clear()
        if key is not None and key == _data_key(cfg):
            return ds
    if cfg.data in BUILTIN:
        return load_data(cfg.data)
    if is_partitioned(cfg.data):
        check_partitioned(cfg)
        return load_partitions(cfg.data, cfg.target, cfg.task)
    fmt = data_format(cfg.data)
    if not os.path.exists(cfg.data):
        raise DataError(_("{file}: no such file, and no built-in data set of that name ({names})").format(
            file=cfg.data, names=", ".join(BUILTIN)))
    if fmt in ("csv", "arrays") and cfg.target in (None, ""):
        raise ConfigError(_("--target is required with a CSV file (the name of the target column)") if fmt == "csv"
                          else _("--target is required with an array file (.npz: the array's name, .npy: the column)"))
    if fmt == "idx" and not cfg.labels:
        raise ConfigError(_("--labels FILE is required with IDX images (the labels file that goes with them)"))
    return load_data(cfg.data, cfg.target, task=cfg.task, labels=cfg.labels,
                     categorical=list(cfg.categorical) or None)


def check_partitioned(cfg: TrainConfig) -> None:
    """What partitions (a folder or glob) need: a target; no labels file, no categories."""
    if cfg.target in (None, ""):
        raise ConfigError(_("--target is required with partitions (a CSV column name, or a .npy column number)"))
    if cfg.labels or cfg.categorical:
        raise ConfigError(_("{file}: partitions take no --labels file or --categorical columns").format(file=cfg.data))


def load_resume(path, given: dict) -> tuple[TrainConfig, tuple]:
    """Read a checkpoint for resuming: ``(settings, (network, trainer state, info))``, the
    second for :func:`prepare_run`'s ``resume``. ``given`` are settings asked for again (see
    :func:`deltaprop.config.resume_config`); the checkpoint stays the one resumed from unless
    ``given`` names another."""
    net, state, info = load_checkpoint(path)
    if not info.get("config"):
        raise ConfigError(_("{path}: the checkpoint holds no training settings").format(path=path))
    # Checkpoints from before target scaling trained on raw targets: resume them that way.
    saved = {"standardize_target": False} | dict(info["config"])
    cfg = resume_config(saved, given, str(path))
    done = int(state.get("epoch", 0))
    if given.get("epochs") is not None and given["epochs"] < done:
        raise ConfigError(ngettext("{path} has already run {done} epoch; --epochs is the new total: give at least "
                                   "{done}, or leave it out to finish the run",
                                   "{path} has already run {done} epochs; --epochs is the new total: give at least "
                                   "{done}, or leave it out to finish the run", done).format(path=path, done=done))
    # where the run trains is this command's choice: without --dask it resumes on this machine
    # (a cluster that is gone must not be needed to continue its run)
    cfg = cfg.replace(dask=given.get("dask") or None)
    # the checkpoints go on in the file resumed from (run_checkpoint) unless another is named;
    # the settings keep only a name the user gave, so that a saved config repeats the run
    return cfg, (net, state, info)


def r_squared(T, P) -> float:
    r"""R^2 = 1 - sum (t - p)^2 / sum (t - mean t)^2 per target column, averaged over columns
    (scikit-learn's ``r2_score``): 1 is a perfect fit, 0 predicting the mean, below 0 worse."""
    T, P = np.asarray(T, float), np.asarray(P, float)
    return r_squared_from_sums(((T - P) ** 2).sum(axis=0), ((T - T.mean(axis=0)) ** 2).sum(axis=0))


def r_squared_from_sums(ss_res, ss_tot) -> float:
    """:func:`r_squared` from its per-column sums (as workers holding parts of the data add them)."""
    ss_res, ss_tot = np.asarray(ss_res, float), np.asarray(ss_tot, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.nan)
    return float(np.mean(r2))


@dataclass
class Run:
    """Everything of one run; made by :func:`prepare_run`."""

    config: TrainConfig
    dataset: Dataset
    train: Dataset
    validation: Dataset | None
    model: Model
    trainer: Trainer
    X: np.ndarray
    T: np.ndarray
    val: tuple | None
    fingerprint: str
    checkpointer: Checkpointer | None = None
    resumed_from: str | None = None

    def describe(self) -> str:
        """The set-up in one line: network, mode, optimizer, dtype and the engine path that will
        run the updates."""
        from .engines import select_engine

        net, tr, opt = self.model.network, self.trainer, self.trainer.optimizer
        acts = "/".join(dict.fromkeys(layer.activation.name for layer in net.layers))
        mode = f"minibatch k={tr.batch_size}" if tr.mode == "minibatch" else tr.mode
        extras = ", ".join(f"{k} {v:g}" for k, v in opt.hyperparameters().items()
                           if k not in ("lr", "noise_decay") and not isinstance(v, bool) and v)
        engine = select_engine(tr.engine, tr, epochs=self.config.epochs - tr.epoch)
        n = len(self.X)

        def path_of(engine):  # the compiled engine's path (numba/batch-threads, ...), else its name
            return engine.path_of(tr, n) if hasattr(engine, "path_of") else getattr(engine, "path", engine.name)

        path = path_of(engine)
        if hasattr(engine, "choose"):  # auto: the choice the first epoch will make
            path = "auto: " + path_of(engine.choose(net, n, tr.batch_rows(n), opt))
        # a rule with its own loop (lbfgs) has no learning rate: showing one would mislead
        rule = " ".join([opt.name] + ([] if getattr(opt, "runs_own_loop", False) else [f"lr {opt.lr:g}"]))
        return _("network: {sizes} {activations}, loss {loss}, {dtype}; {mode}, {optimizer}; "
                 "engine {path}").format(sizes="-".join(map(str, net.sizes)), activations=acts,
                                         loss=net.loss.name, dtype=net.dtype.name, mode=mode,
                                         optimizer=rule + (", " + extras if extras else ""), path=path)

    def notes(self, given: dict, from_file: dict) -> list[str]:
        """What a person should know before the epoch lines: the task's own defaults that this
        run took (those neither ``given`` nor ``from_file`` set), and the units of the loss
        where the targets were standardised for training."""
        from .config import TASK_DEFAULTS

        out = []
        took = {k: v for k, v in TASK_DEFAULTS.get(self.dataset.task, {}).items()
                if given.get(k) is None and k not in from_file and getattr(self.config, k) == v}
        if took and self.resumed_from is None:
            words = {"epochs": lambda v: ngettext("up to {n} epoch", "up to {n} epochs", v).format(n=v),
                     "early_stopping": lambda v: ngettext(
                         "early stopping after {n} epoch without a better validation loss",
                         "early stopping after {n} epochs without a better validation loss", v).format(n=v)}
            items = ", ".join(words.get(k, lambda v, k=k: f"{k} {v}")(v) for k, v in took.items())
            out.append(_("{task} defaults: {items} (flags override them; see docs/defaults.md)").format(
                task=_(self.dataset.task), items=items))
        if self.model.target_scaler is not None:
            out.append(_("loss: {loss} of the standardised targets (1 is about what predicting the mean scores), "
                         "in the epoch lines and the final line; R² is the same in the targets' own units").format(
                loss=self.model.network.loss.name))
        return out

    def fit(self) -> None:
        """Train to ``config.epochs`` epochs in all (a resumed run continues where it stopped;
        one that early stopping ended is finished, as the uninterrupted run was)."""
        remaining = self.config.epochs - self.trainer.epoch
        stopped = any(ev.get("event") == "early_stopping" for ev in self.trainer.history.events)
        if remaining > 0 and not self.trainer.diverged and not stopped:
            self.trainer.fit(self.X, self.T, remaining, self.val)

    def summary(self) -> dict:
        """Final metrics on the whole training split and the held-out split. The losses are in
        the units of the epoch lines: for targets standardised for training (``loss_units``
        "standardised targets"), in those; regression adds R^2 (``train_r2``, ``heldout_r2``,
        averaged over the target columns), which is the same in any units."""
        scaled = self.model.target_scaler is not None
        parts = [("train", self.model.align(self.train))]
        if self.validation is not None:
            parts.append(("heldout", self.validation))
        out = {"updates": self.trainer.optimizer.t, "epochs": self.trainer.epoch,
               "loss_units": "standardised targets" if scaled else "targets"}
        for key, ds in parts:
            res = self.model.evaluate(ds, standardised_targets=scaled)
            out |= {f"{key}_loss": res["loss"], f"{key}_accuracy": res.get("accuracy")}
            if self.model.task == "regression":
                out[f"{key}_r2"] = r_squared(ds.T, self.model.predict(ds.X))
        return out

    def save(self, path: str | None = None) -> str:
        """Write the model with the effective settings and its two side files (the settings as
        TOML, the history as JSON). Existing files are replaced only with ``config.force``."""
        cfg = self.config if path is None else self.config.replace(out=path)
        self.model.save(cfg.out, overwrite=cfg.force,
                        extra={"training": cfg.to_dict() | {"epochs_run": self.trainer.epoch}})
        write_text_atomic(cfg.out + ".history.json", json.dumps(self.trainer.history.to_dict()),
                          overwrite=cfg.force)
        write_text_atomic(cfg.out + ".config.toml", cfg.to_toml(os.path.dirname(cfg.out)), overwrite=cfg.force)
        return cfg.out


def prepare_run(cfg: TrainConfig, *, callbacks=(), checkpoint: str | None = None, resume=None,
                client=None) -> Run:
    """Load and split the data, build the model and trainer; nothing is trained yet.

    ``callbacks`` run after the record's own techniques (schedule, stall detection) and
    before the checkpointer. ``checkpoint`` is the file for checkpoints (none without it).
    ``resume`` is :func:`load_resume`'s ``(network, state, info)``: the trainer continues from
    it, after checking that the data are those the checkpointed run trained on. ``client``: a
    Dask client whose workers read ``cfg.data``'s partitions themselves (a folder or glob; other
    data are read here and sent).
    """
    if client is not None and is_partitioned(cfg.data):
        from .distributed.data import prepare_partitioned_run

        check_partitioned(cfg)
        return prepare_partitioned_run(cfg, client, callbacks=callbacks, checkpoint=checkpoint, resume=resume)
    optimizer = cfg.make_optimizer()
    techniques = build_callbacks(cfg.callback_specs())
    ds = load_config_data(cfg)
    rng = np.random.default_rng(cfg.seed)
    parts = getattr(ds, "partition_rows", None)
    rows = split_rows(len(ds), cfg.val_split, rng)
    train_ds, val_ds = (ds, None) if rows is None else (ds.subset(rows[0]), ds.subset(rows[1]))
    fingerprint = data_fingerprint(train_ds.X, train_ds.T)
    if parts is not None:  # per partition, as a cluster's workers compute it
        kept = np.arange(len(ds)) if rows is None else rows[0]
        cuts = np.searchsorted(kept, np.cumsum(parts)[:-1])
        fingerprint = partitioned_fingerprint([data_fingerprint(x, t) for x, t in
                                               zip(np.split(train_ds.X, cuts), np.split(train_ds.T, cuts))])
    checkpointer = None
    cbs = [*techniques, *callbacks]
    if checkpoint:
        checkpointer = Checkpointer(checkpoint, cfg.checkpoint_every or 0,
                                    {"config": cfg.to_dict(), "data_fingerprint": fingerprint})
        cbs.append(checkpointer)
    model, trainer, (X, T), val = build_training(
        train_ds, hidden=cfg.hidden, activation=cfg.activation, output_activation=cfg.output_activation,
        loss=cfg.loss, mode=cfg.mode, batch_size=cfg.batch_size, optimizer=optimizer, seed=rng, init=cfg.init,
        dtype=cfg.dtype, standardize=cfg.standardize, standardize_target=cfg.standardize_target,
        validation=val_ds, early_stopping=cfg.early_stopping,
        eval_every=cfg.eval_every, eval_rows=cfg.eval_rows, shuffle=cfg.shuffle, callbacks=cbs,
        on_divergence=cfg.on_divergence, engine=cfg.engine)
    if cfg.flat_spot:
        use_flat_spot(model.network, cfg.flat_spot)
    run = Run(cfg, ds, train_ds, val_ds, model, trainer, X, T, val, fingerprint, checkpointer)
    if resume is not None:
        check_resume(run, resume, checkpoint)
    return run


def check_resume(run: Run, resume, checkpoint) -> None:
    """Continue ``run`` from :func:`load_resume`'s ``resume``, after checking that its data and
    network are those the checkpointed run had."""
    net, state, info = resume
    if info.get("data_fingerprint") != run.fingerprint:
        raise ConfigError(_("the data of {file} differ from those the checkpointed run trained on").format(
            file=run.config.data))
    if net.to_config() != run.model.network.to_config():
        raise ConfigError(_("{path}: the checkpoint's network does not match its settings").format(path=checkpoint))
    run.trainer.load_state_dict(state)
    run.resumed_from = checkpoint
