"""Data-parallel training on a Dask cluster (the optional extra ``deltaprop[dask]``).

:class:`DaskEngine` is an engine object for :class:`~deltaprop.training.Trainer`
(``Trainer(..., engine=DaskEngine(client))``). The training rows are cut into fixed shards
whose boundaries fall on multiples of the trainer's ``chunk_size``; each shard is sent to one
worker once and stays there. For every update the workers compute, at the current weights, the
loss sum and the gradient sum of their rows of the batch; the driver adds them in shard order
and steps the trainer's own optimizer, so every optimizer works unchanged.

Why the weights equal the single-process NumPy engine's: the gradient of a batch is a sum over
its rows; the NumPy engine adds it chunk by chunk, in order; here each shard adds its chunks in
the same order and the driver adds the shard sums in shard order. When every shard is one chunk
(``shard_rows=chunk_size``) the additions are the same ones, in the same order; otherwise only
the grouping of one sum differs, which changes a step by a few units in the last place (relative
1e-16), far below the 1e-12 the tests hold it to. The shards and the order never depend on how
many workers there are or which worker holds a shard, so the result is the same on any cluster.

Stochastic mode is sequential: the model (weights and optimizer state) moves to the shard that
holds the next samples, the worker applies their updates with the NumPy engine and sends the
model back, so the weights equal the NumPy engine's bit for bit; no speed-up, but the data stay
on the workers.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time

import numpy as np

from ..errors import ConfigError, DeltapropError
from ..i18n import gettext as _

__all__ = ["DaskEngine", "ClusterError", "shard_bounds", "connect"]


class ClusterError(DeltapropError, RuntimeError):
    """The Dask cluster cannot be used: the extra is missing, the scheduler is gone, no workers."""


def shard_bounds(n: int, chunk: int, shards: int | None = None, shard_rows: int | None = None) -> list:
    """Row ranges ``[(lo, hi), ...]`` of the shards of ``n`` rows: ``shard_rows`` rows each (a
    multiple of ``chunk``, so chunks never straddle two shards), else ``shards`` about equal
    parts rounded up to whole chunks."""
    if shard_rows is None:
        chunks = math.ceil(n / chunk)
        shard_rows = chunk * math.ceil(chunks / max(1, shards or 1))
    if shard_rows % chunk:
        raise DeltapropError(_("shard_rows {rows} must be a multiple of chunk_size {chunk}").format(
            rows=shard_rows, chunk=chunk))
    return [(lo, min(n, lo + shard_rows)) for lo in range(0, n, shard_rows)]


#: BLAS and OpenMP pinned to one thread in each worker: the workers are the parallelism.
PINNED = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


@contextlib.contextmanager
def connect(spec: str):
    """A Dask client for ``spec``: ``local:N`` starts a LocalCluster of N single-threaded worker
    processes on 127.0.0.1 (shut down on leaving); ``tcp://HOST:PORT`` joins a running scheduler."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(_("--dask needs the dask extra: pip install 'deltaprop[dask]'")) from None
    if spec.startswith("local:"):
        try:
            n = int(spec[6:])
            assert n >= 1
        except (ValueError, AssertionError):
            raise ConfigError(_("--dask local:N needs a positive worker count N, got {value!r}").format(
                value=spec)) from None
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=":0", env=PINNED) as cluster, Client(cluster) as client:
            yield client
        return
    if not spec.startswith("tcp://"):
        raise ConfigError(_("--dask takes local:N or tcp://HOST:PORT, got {value!r}").format(value=spec))
    try:
        client = Client(spec, timeout=10)
    except OSError as exc:
        raise ClusterError(_("cannot reach the Dask scheduler at {address}: {reason}").format(
            address=spec, reason=exc)) from None
    with client:
        yield client


def _shard_gradient(shard, flat, rows, scale, chunk):
    """On a worker: (loss sum, gradient sum x scale) of ``rows`` of the shard (None: all), in
    chunks of ``chunk`` rows added in order, exactly as Network.loss_and_gradient does."""
    net, X, T = shard
    net.flat[...] = flat
    if rows is not None:
        X, T = X[rows], T[rows]
    total = 0.0
    for i in range(0, len(X), chunk):
        total += float(net.sample_losses(X[i:i + chunk], T[i:i + chunk]).sum())
        net.backward(T[i:i + chunk], scale, accumulate=i > 0)
    return total, net.grads.copy()


def _shard_stochastic(shard, flat, optimizer, rows, chunk):
    """On a worker: the model visits this shard. One stochastic update per row of ``rows`` (in
    that order) by the NumPy engine, from weights ``flat`` and the driver's ``optimizer`` (a
    copy, state included); returns (weights, optimizer, running loss sum, diverged update)."""
    from types import SimpleNamespace

    from ..engines.numpy_engine import NumpyEngine

    net, X, T = shard
    net.flat[...] = flat
    trainer = SimpleNamespace(network=net, optimizer=optimizer, chunk_size=chunk)
    running, bad = NumpyEngine().run_epoch(trainer, X[rows], T[rows], None, 1)
    return net.flat.copy(), optimizer, running, bad


def _make_shard(config, X, T):
    from ..network import Network

    return Network.from_config(config), X, T


class DaskEngine:
    """Runs batch and mini-batch updates data-parallel on the workers of ``client``.

    ``shard_rows``: rows per shard (a multiple of the trainer's chunk_size); left out, the
    rows are cut into as many shards as the cluster has workers when training starts.
    ``workers``: the addresses of the workers to use (default: all of them).
    """

    name = "dask"
    #: Trains on rows the workers hold (deltaprop.distributed.data.ShardedData), not only on arrays.
    runs_sharded = True

    def __init__(self, client, shard_rows: int | None = None, workers=None):
        self.client, self.shard_rows = client, shard_rows
        self.use = None if workers is None else list(workers)
        self._data = None  # (X, T) the shards were made from
        self.bounds, self.shards = [], []
        self.recoveries = 0  # updates recomputed after a worker was lost

    @property
    def path(self) -> str:
        return f"dask ({len(self._workers())} workers, {len(self.bounds) or 'auto'} shards)"

    def unsupported(self, trainer) -> str | None:
        return None

    def _workers(self) -> list:
        try:
            if self.client.status != "running":
                raise OSError(f"client {self.client.status}")
            return sorted(self.client.scheduler_info()["workers"])
        except Exception as exc:  # the scheduler is gone
            where = getattr(self.client.scheduler, "address", "")
            raise ClusterError(_("lost the Dask scheduler {address} ({reason}); training stopped, the last "
                                 "checkpoint is kept").format(address=where, reason=f"{type(exc).__name__}: {exc}")
                               ) from None

    def _place(self, trainer, X, T, again: bool = False) -> None:
        """Send each shard to one worker, once (again for other data, or ``again`` after a
        worker was lost: the same shard boundaries on the workers there are now)."""
        same = self._data is not None and self._data[0] is X and self._data[1] is T
        if same and not again:
            return
        sharded = getattr(X, "sharded", None)
        if sharded is not None:  # shards made on the workers; Dask recomputes a lost one itself
            self.bounds, self.shards, self._data = sharded.bounds, sharded.shards, (X, T)
            return
        workers = [w for w in self._workers() if self.use is None or w in self.use]
        if not workers:
            raise ClusterError(_("the Dask cluster has no workers left") if self.use is None
                               else _("none of the workers {names} is in the cluster").format(names=", ".join(self.use)))
        if not same:
            self.bounds = shard_bounds(len(X), trainer.chunk_size, len(workers), self.shard_rows)
        config = trainer.network.to_config()
        self.shards = []
        for i, (lo, hi) in enumerate(self.bounds):
            w = workers[i % len(workers)]
            xf, tf = self.client.scatter([X[lo:hi], T[lo:hi]], workers=[w])
            self.shards.append(self.client.submit(_make_shard, config, xf, tf, workers=[w], pure=False))
        self._data = (X, T)

    def run_epoch(self, trainer, X, T, order, k):
        reason = self.unsupported(trainer)
        if reason:  # select_engine passes an engine object through unchecked
            raise ConfigError(_("engine {name!r} cannot run this set-up: {reason}").format(name="dask", reason=reason))
        self._place(trainer, X, T)
        if k == 1 and trainer.mode == "stochastic":
            return self._stochastic_epoch(trainer, X, T, order)
        net, opt, chunk = trainer.network, trainer.optimizer, trainer.chunk_size
        params, n = net.params, len(X)
        starts = np.array([lo for lo, _ in self.bounds])
        running = 0.0
        for u, start in enumerate(range(0, n, k), start=1):
            idx = np.arange(start, min(n, start + k)) if order is None else order[start:start + k]
            m = len(idx)
            which = np.searchsorted(starts, idx, side="right") - 1
            parts = []
            for s in np.unique(which):  # shard order: the fixed reduction order
                lo, hi = self.bounds[s]
                local = idx[which == s] - lo
                parts.append((s, None if (order is None and len(local) == hi - lo) else local))
            results = self._gradients(trainer, X, T, net.flat.copy(), parts, 1.0 / m)
            total, grad = 0.0, None
            for t, g in results:
                total += t
                if grad is None:
                    grad = g
                else:
                    grad += g
            batch_loss = total * (1.0 / m)
            if not math.isfinite(batch_loss):
                return running, u
            running += batch_loss * m
            opt.step(params, grad, loss=batch_loss)
        return running, None

    def _stochastic_epoch(self, trainer, X, T, order):
        """Stochastic mode is sequential: every update needs the weights the previous sample
        left. The order is cut into runs of consecutive positions whose rows lie in one shard;
        the model (weights and optimizer state) moves to that shard's worker, which applies the
        run's updates exactly as the NumPy engine does, and comes back. No speed-up, but the
        data stay where they are. Shuffled, the order changes shard at nearly every sample
        (one round trip each); unshuffled, the model visits each shard once per epoch."""
        net, opt = trainer.network, trainer.optimizer
        n = len(X)
        pos = np.arange(n) if order is None else np.asarray(order)
        starts = np.array([lo for lo, _ in self.bounds])
        which = np.searchsorted(starts, pos, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        running, done = 0.0, 0
        for run in np.split(np.arange(n), cuts):
            s = int(which[run[0]])
            rows = pos[run] - self.bounds[s][0]
            moving = copy.deepcopy(opt)
            moving._loss_fn = None  # a closure over the driver's data; stochastic rules never use it
            flat, back, part, bad = self._on_shard(trainer, X, T, s, _shard_stochastic, net.flat.copy(),
                                                   moving, rows, trainer.chunk_size)
            net.flat[...] = flat
            opt.load_state_dict(back.state_dict())
            running += part
            if bad is not None:
                return running, done + bad
            done += len(run)
        return running, None

    def _on_shard(self, trainer, X, T, s, fn, *args):
        """``fn(shard s, *args)`` on the worker holding shard ``s``; after a lost worker the
        shards are placed again and the call repeated with the same arguments."""
        for attempt in range(self.RETRIES + 1):
            try:
                if attempt:
                    self._place(trainer, X, T, again=True)
                return self.client.submit(fn, self.shards[s], *args, pure=False).result()
            except DeltapropError:
                raise
            except Exception as exc:
                self._workers()
                if attempt == self.RETRIES:
                    raise ClusterError(_("an update failed {n} times on the cluster: {reason}").format(
                        n=self.RETRIES + 1, reason=f"{type(exc).__name__}: {exc}")) from None
                self.recoveries += 1
                time.sleep(0.5 * attempt)

    #: How often one update is recomputed after losing workers before giving up.
    RETRIES = 5

    def _gradients(self, trainer, X, T, flat, parts, scale):
        """The shards' (loss sum, gradient sum) at ``flat``, in the order of ``parts``. A lost
        worker loses its shards: they are sent again (same boundaries) to the workers left and
        the update is recomputed from the same weights, so the result does not change."""
        lost = False
        for attempt in range(self.RETRIES + 1):
            try:
                if lost:  # inside the try: the scheduler may still list a worker that just died
                    self._place(trainer, X, T, again=True)
                # The weights travel inside each task: a broadcast (scatter) to a worker that
                # has just died is retried by the scheduler for minutes; a task is rescheduled.
                w = flat
                futures = [self.client.submit(_shard_gradient, self.shards[s], w, rows, scale,
                                              trainer.chunk_size, pure=False) for s, rows in parts]
                return self.client.gather(futures)
            except DeltapropError:
                raise
            except Exception as exc:  # a worker (or the scheduler) went away mid-update
                self._workers()  # raises ClusterError when the scheduler itself is gone
                if attempt == self.RETRIES:
                    raise ClusterError(_("an update failed {n} times on the cluster: {reason}").format(
                        n=self.RETRIES + 1, reason=f"{type(exc).__name__}: {exc}")) from None
                self.recoveries += 1
                lost = True
                time.sleep(0.5 * attempt)  # give the scheduler time to notice the loss
