"""Rows that live on the workers of a Dask cluster, never all on the driver.

:class:`ShardedData` holds one future per shard, each ``(network, X, T)`` on a worker (the
format :class:`~deltaprop.distributed.DaskEngine` trains on), and the row count of each. Its
``.X`` and ``.T`` stand in for arrays in :meth:`Trainer.fit <deltaprop.training.Trainer.fit>`:
their length is the row count, and indexing them gathers only the rows asked for (the first
rows for the divergence yardstick, the evaluation subsample), while whole-set evaluations run on
the workers, which return loss sums and counts of right answers that the driver adds in shard
order.

:func:`prepare_partitioned_run` is ``deltaprop train --data FOLDER_OR_GLOB --dask ...``: each
worker reads its own partition files (:mod:`deltaprop.data.partitions`), the driver receives
columns, labels and row counts, draws the validation split as one process would, and the
workers compute the standardisation statistics of their training rows in one pass (count, mean,
M2 per column), combined on the driver in partition order by Chan et al.'s formula. Every
future comes from a task, not from data sent by the driver, so a lost worker's shards are read
and computed again by Dask where they are needed.
"""

from __future__ import annotations

import os

import numpy as np

from ..data.partitions import (combine_moments, moments, partition_files, partition_meta, partitioned_fingerprint,
                               read_partition, reencode, standardizer_from_moments, unify)
from ..errors import ConfigError, DataError, DeltapropError
from ..i18n import gettext as _
from ..runs import Run

__all__ = ["ShardedData", "PartitionedRun", "prepare_partitioned_run"]


class _Side:
    """The inputs (0) or targets (1) of a :class:`ShardedData`, as the Trainer uses an array."""

    def __init__(self, data: "ShardedData", which: int):
        self.sharded, self._which = data, which

    def __len__(self) -> int:
        return len(self.sharded)

    @property
    def shape(self) -> tuple:
        return (len(self.sharded), self.sharded.widths[self._which])

    def __getitem__(self, key):
        idx = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key)
        return self.sharded.take(idx)[self._which]


class ShardedData:
    """Shards on the workers: ``shards[i]`` a future of ``(Network, X_i, T_i)``, ``rows[i]`` its
    row count; the whole set is the shards one after the other. ``t_range``: the targets'
    (min, max) over the whole set (accuracy with one output that is not a probability)."""

    def __init__(self, client, shards, rows, n_features: int, n_outputs: int, dtype, t_range=(0.0, 1.0)):
        self.client, self.shards, self.rows = client, list(shards), [int(r) for r in rows]
        self.widths, self.dtype, self.t_range = (int(n_features), int(n_outputs)), np.dtype(dtype), t_range
        self.starts = np.concatenate([[0], np.cumsum(self.rows)])
        self.X, self.T = _Side(self, 0), _Side(self, 1)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def bounds(self) -> list:
        return [(int(a), int(b)) for a, b in zip(self.starts[:-1], self.starts[1:])]

    def check(self, network, what: str | None = None) -> None:
        """Shapes and dtype against ``network`` (the values were checked where they were read)."""
        what = what or _("training data")
        if len(self) == 0:
            raise DataError(_("{what} is empty (0 samples)").format(what=what))
        if self.widths != (network.n_inputs, network.n_outputs):
            raise DataError(_("{what} has {inputs} input and {targets} target columns; the network takes {n_in} "
                              "inputs and gives {n_out} outputs").format(
                what=what, inputs=self.widths[0], targets=self.widths[1], n_in=network.n_inputs,
                n_out=network.n_outputs))
        if self.dtype != network.dtype:
            raise DataError(_("{what} on the workers are {dtype}, the network {net_dtype}").format(
                what=what, dtype=self.dtype.name, net_dtype=network.dtype.name))

    def take(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``idx`` (any order) gathered from the shards that hold them."""
        idx = np.asarray(idx, dtype=np.int64)
        sort = np.argsort(idx, kind="stable")
        which = np.searchsorted(self.starts, idx[sort], side="right") - 1
        futures = [self.client.submit(_take, self.shards[s], idx[sort][which == s] - self.starts[s], pure=False)
                   for s in np.unique(which)]
        parts = _gathered(self.client, futures)
        X = np.empty((len(idx), self.widths[0]), self.dtype)
        T = np.empty((len(idx), self.widths[1]), self.dtype)
        if parts:
            X[sort] = np.concatenate([p[0] for p in parts])
            T[sort] = np.concatenate([p[1] for p in parts])
        return X, T

    def evaluate(self, network, chunk: int) -> tuple[float, float]:
        """(mean loss, accuracy) of ``network`` over all rows: each worker sums its shard's
        losses in chunks and counts its right answers; the driver adds them in shard order."""
        w = network.flat.copy()  # inside each task: once per evaluation, not per update
        parts = _gathered(self.client, [self.client.submit(_evaluate, s, w, chunk, self.t_range, pure=False)
                                        for s in self.shards])
        loss = sum(p[0] for p in parts)
        right = sum(p[1] for p in parts)
        return loss / len(self), right / len(self)

    @classmethod
    def from_dask_arrays(cls, X, T, network, client=None) -> "ShardedData":
        """Shards from dask arrays: one per block of rows, computed and kept on the workers
        (the blocks' boundaries are those of ``X``; ``T`` is rechunked to them)."""
        import dask.array as da
        from distributed import default_client

        client = client or default_client()
        dtype, config = network.dtype, network.to_config()
        X, T = da.asarray(X), da.asarray(T)
        if T.ndim == 1:
            T = T.reshape(-1, 1)
        if X.ndim != 2 or T.ndim != 2 or X.shape[0] != T.shape[0]:
            raise DataError(_("dask arrays of shapes {x_shape} and {t_shape}: give (n, d) inputs and (n,) or "
                              "(n, k) targets with the same n").format(x_shape=X.shape, t_shape=T.shape))
        X = X.rechunk({1: -1}).astype(dtype)
        T = T.rechunk({0: X.chunks[0], 1: -1}).astype(dtype)
        xs, ts = X.to_delayed().ravel().tolist(), T.to_delayed().ravel().tolist()
        xs, ts = client.compute(xs), client.compute(ts)
        shards = [client.submit(_check_block, x, t, i, config, pure=False) for i, (x, t) in enumerate(zip(xs, ts))]
        t_ranges = client.gather([client.submit(_t_range, s, pure=False) for s in shards])
        lo = min(r[0] for r in t_ranges)
        hi = max(r[1] for r in t_ranges)
        return cls(client, shards, X.chunks[0], X.shape[1], T.shape[1], dtype, (lo, hi))


def _check_block(X, T, i, config):
    from ..network import Network
    from ..validation import require_finite

    require_finite(X, f"inputs, block {i} of the dask array")
    require_finite(T, f"targets, block {i} of the dask array")
    return Network.from_config(config), np.ascontiguousarray(X), np.ascontiguousarray(T)


def _t_range(shard):
    T = shard[2]
    return (float(T.min()), float(T.max())) if T.size else (np.inf, -np.inf)


def _take(shard, local):
    _, X, T = shard
    return X[local], T[local]


def _evaluate(shard, flat, chunk, t_range):
    from ..training import accuracy

    net, X, T = shard
    net.flat[...] = flat
    total, right = 0.0, 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(0, len(X), chunk):
            total += float(net.sample_losses(X[i:i + chunk], T[i:i + chunk]).sum())
            right += round(accuracy(net, net.layers[-1].a, T[i:i + chunk], t_range) * len(T[i:i + chunk]))
    return total, right


def _gathered(client, futures) -> list:
    """``client.gather(futures)``; a scheduler lost meanwhile is the engine's ClusterError (one
    line and the resume hint from the CLI), not Dask's own exception."""
    from . import scheduler_workers

    try:
        return client.gather(futures)
    except DeltapropError:
        raise
    except Exception:
        scheduler_workers(client)  # raises ClusterError where the scheduler is gone
        raise  # still there: a task's own error, shown as it is


# ---------------------------------------------------------------- partitions read by the workers
def _read(path, target, task):
    """On a worker: its partition ``path`` (absolute, as the driver found it). A worker that
    cannot see the file says so, and which worker it is."""
    if not os.path.exists(path):
        from distributed import get_worker

        try:
            where = get_worker().address
        except ValueError:  # (not on a worker)
            where = "?"
        raise DataError(_("{file}: no such file on the Dask worker {worker} (the driver sees it; give the "
                          "workers the same files at the same absolute path)").format(file=path, worker=where))
    return read_partition(path, target, task)


def _stats(ds, train_rows, want_t):
    """One pass over a partition's training rows: moments of the inputs (and of the targets
    for target scaling), the rows' fingerprint, the targets' range."""
    from ..runs import data_fingerprint

    X, T = ds.X[train_rows], ds.T[train_rows]
    return {"x": moments(X), "t": moments(T) if want_t else None, "fingerprint": data_fingerprint(X, T),
            "t_range": (float(T.min()), float(T.max())) if len(T) else (np.inf, -np.inf)}


def _shard(ds, rows, std, tsc, config, dtype):
    from ..network import Network

    X, T = ds.X[rows], ds.T[rows]
    X = std.transform(X) if std is not None else X
    T = tsc.transform(T) if tsc is not None else T
    net = Network.from_config(config) if config is not None else None
    return net, np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(T, dtype=dtype)


def _model_eval(model, ds, rows, t_range, scaled):
    """(rows, loss sum, right answers, regression sums) of ``model`` on a partition's ``rows``,
    raw data in; the loss in standardised-target units where ``scaled`` (as the epoch lines);
    for regression the targets' :func:`~deltaprop.data.partitions.moments` and the per-column
    sum of squared residuals in the targets' units, from which the driver forms R^2."""
    from ..data.partitions import moments

    if len(rows) == 0:
        return 0, 0.0, 0.0, None
    sub = model.align(ds.subset(rows))
    res = model.evaluate(sub, t_range, standardised_targets=scaled)
    n = res["samples"]
    sums = None
    if model.task == "regression":
        T = np.asarray(sub.T, dtype=np.float64)
        sums = (moments(T), ((T - np.asarray(model.predict(sub.X), dtype=np.float64)) ** 2).sum(axis=0))
    return n, res["loss"] * n, round(res.get("accuracy", 0.0) * n), sums


class _Summary:
    """What the CLI and a Run show of data they do not hold: name, rows, columns, task."""

    def __init__(self, name, rows, feature_names, target_names, task, classes):
        self.name, self._rows, self.task, self.classes = name, rows, task, classes
        self.feature_names, self.target_names = list(feature_names), list(target_names)
        self.n_features, self.categories = len(self.feature_names), None

    def __len__(self) -> int:
        return self._rows


def prepare_partitioned_run(cfg, client, *, callbacks=(), checkpoint=None, resume=None):
    """:func:`deltaprop.runs.prepare_run` for ``cfg.data`` a folder or glob of partitions read
    by the workers of ``client``; the same settings give the same run as one process (the same
    split, statistics to rounding, the weights to 1e-12 in float64)."""
    from ..checkpoint import Checkpointer
    from ..data.dataset import split_rows
    from ..model import Model, default_head, scales_targets
    from ..network import Network
    from ..runs import check_resume
    from ..techniques import build_callbacks, use_flat_spot
    from ..training import Trainer, reports_accuracy
    from . import ClusterError, scheduler_workers

    # absolute: a worker started in another folder reads the same files (the driver's relative
    # names would be read against the worker's own working folder)
    files = [os.path.abspath(f) for f in partition_files(cfg.data)]
    workers = scheduler_workers(client)
    if not workers:
        raise ClusterError(_("the Dask cluster has no workers"))

    def on(i, fn, *args):  # partition i's tasks on one worker, elsewhere when it is gone
        return client.submit(fn, *args, workers=[workers[i % len(workers)]], allow_other_workers=True,
                             pure=False)

    raw = [on(i, _read, f, cfg.target, cfg.task) for i, f in enumerate(files)]
    metas = client.gather([on(i, partition_meta, r) for i, r in enumerate(raw)])
    task, classes = unify(metas, cfg.task)
    raw = [on(i, reencode, r, task, classes) for i, r in enumerate(raw)]
    counts = [m["rows"] for m in metas]
    starts = np.concatenate([[0], np.cumsum(counts)])
    n = int(starts[-1])
    first = metas[0]
    if task == "classification":
        n_outputs = len(classes) if len(classes) > 2 else 1
    else:  # a partition read as classes alone is one column of values
        n_outputs = next((m["n_outputs"] for m in metas if m["task"] == "regression"), 1)

    optimizer = cfg.make_optimizer()
    techniques = build_callbacks(cfg.callback_specs())
    rng = np.random.default_rng(cfg.seed)
    rows = split_rows(n, cfg.val_split, rng)
    train_rows, val_rows = (np.arange(n), None) if rows is None else rows

    def local(rows_):
        return [rows_[(rows_ >= a) & (rows_ < b)] - a for a, b in zip(starts[:-1], starts[1:])]

    tr_local = local(train_rows)
    out_act, loss = default_head(task, n_outputs, cfg.loss, cfg.output_activation)
    net = Network([first["n_features"], *[int(h) for h in cfg.hidden], n_outputs], cfg.activation, out_act, loss,
                  dtype=cfg.dtype, init=cfg.init)
    net.reset_parameters(rng, cfg.init)
    meta_train = _Summary(cfg.data, len(train_rows), first["features"], first["targets"], task, classes)
    want_t = cfg.standardize_target and scales_targets(task, net)
    stats = client.gather([on(i, _stats, r, tr_local[i], want_t) for i, r in enumerate(raw)])
    fingerprint = partitioned_fingerprint([s["fingerprint"] for s in stats])
    std = standardizer_from_moments(*combine_moments([s["x"] for s in stats])) if cfg.standardize else None
    tsc = standardizer_from_moments(*combine_moments([s["t"] for s in stats])) if want_t else None
    t_lo = min(s["t_range"][0] for s in stats)
    t_hi = max(s["t_range"][1] for s in stats)
    t_range = (t_lo, t_hi)  # accuracy's (classification: no target scaling)

    config = net.to_config()
    train = ShardedData(client, [on(i, _shard, r, tr_local[i], std, tsc, config, net.dtype) for i, r in enumerate(raw)],
                        [len(r) for r in tr_local], first["n_features"], n_outputs, net.dtype, t_range)
    val, val_data, meta_val = None, None, None
    if val_rows is not None:
        va_local = local(val_rows)
        val_data = ShardedData(client, [on(i, _shard, r, va_local[i], std, tsc, config, net.dtype)
                                        for i, r in enumerate(raw)],
                               [len(r) for r in va_local], first["n_features"], n_outputs, net.dtype, t_range)
        val = (val_data.X, val_data.T)
        meta_val = _Summary(cfg.data, len(val_rows), first["features"], first["targets"], task, classes)
    if cfg.early_stopping and val is None:
        raise ConfigError(_("early stopping watches the validation loss: give a validation split"))
    checkpointer = None
    cbs = [*build_callbacks([("early_stopping", {"patience": cfg.early_stopping})] if cfg.early_stopping else []),
           *techniques, *callbacks]
    if checkpoint:
        checkpointer = Checkpointer(checkpoint, cfg.checkpoint_every or 0,
                                    {"config": cfg.to_dict(), "data_fingerprint": fingerprint})
        cbs.append(checkpointer)
    trainer = Trainer(net, optimizer, mode=cfg.mode, batch_size=cfg.batch_size, shuffle=cfg.shuffle, seed=rng,
                      eval_every=cfg.eval_every, eval_rows=cfg.eval_rows, accuracy=reports_accuracy(net, task),
                      callbacks=cbs, on_divergence=cfg.on_divergence, engine=cfg.engine)
    model = Model(net, task=task, classes=classes, feature_names=first["features"], target_names=first["targets"],
                  standardizer=std, target_scaler=tsc)
    if cfg.flat_spot:
        use_flat_spot(net, cfg.flat_spot)
    summary = _Summary(cfg.data, n, first["features"], first["targets"], task, classes)
    run = PartitionedRun(cfg, summary, meta_train, meta_val, model, trainer, train.X, train.T, val, fingerprint,
                         checkpointer)
    run.parts = (raw, tr_local, None if val_rows is None else va_local, t_range, on)
    if resume is not None:
        check_resume(run, resume, checkpoint)
    return run


class PartitionedRun(Run):
    """A :class:`~deltaprop.runs.Run` whose data stay on the workers; its summary is computed
    there, in the units one process reports."""

    parts = None

    def summary(self) -> dict:
        """:meth:`Run.summary`'s figures, each worker adding up its rows' part."""
        from ..data.partitions import combine_moments
        from ..runs import r_squared_from_sums

        raw, tr_local, va_local, t_range, on = self.parts
        scaled = self.model.target_scaler is not None

        def metrics(key, local):
            got = self.X.sharded.client.gather([on(i, _model_eval, self.model, r, local[i], t_range, scaled)
                                                for i, r in enumerate(raw)])
            n = sum(g[0] for g in got)
            out = {f"{key}_loss": sum(g[1] for g in got) / n,
                   f"{key}_accuracy": sum(g[2] for g in got) / n if self.model.task == "classification" else None}
            if self.model.task == "regression":
                sums = [g[3] for g in got if g[3] is not None]
                _, _, ss_tot = combine_moments([m for m, _ in sums])
                out[f"{key}_r2"] = r_squared_from_sums(sum(r for _, r in sums), ss_tot)
            return out

        out = {"updates": self.trainer.optimizer.t, "epochs": self.trainer.epoch,
               "loss_units": "standardised targets" if scaled else "targets"} | metrics("train", tr_local)
        if va_local is not None:
            out |= metrics("heldout", va_local)
        return out
