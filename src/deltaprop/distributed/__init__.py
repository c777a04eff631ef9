"""Data-parallel training on a Dask cluster (the optional extra ``deltaprop[dask]``).

:class:`DaskEngine` is an engine object for :class:`~deltaprop.training.Trainer`
(``Trainer(..., engine=DaskEngine(client))``). The training rows are cut into fixed shards
(balanced, or ``shard_rows`` each, a multiple of the trainer's ``chunk_size``); each shard is
sent to one worker once and stays there, kept by one Dask actor per worker. For every update the driver
calls each of those actors once, with the current weights (directly, not through a task the
scheduler schedules); the worker computes the loss sum and the gradient sum of its shards' rows
of the batch; the driver adds them in shard order and steps the trainer's own optimizer, so every
optimizer works unchanged.

Why the weights equal the single-process NumPy engine's: the gradient of a batch is a sum over
its rows; the NumPy engine adds it chunk by chunk, in order; here each shard adds its chunks in
the same order and the driver adds the shard sums in shard order. When every shard is one chunk
(``shard_rows=chunk_size``) the additions are the same ones, in the same order; otherwise only
the grouping of the sum differs (balanced shards also start their chunks at their own first
row), which changes a step by a few units in the last place (relative 1e-16), far below the
1e-12 the tests hold it to. With ``shard_rows`` given, the shards and the order never depend on
how many workers there are or which worker holds a shard, so the result is the same bits on any
cluster; by default there is one balanced shard per worker.

Stochastic mode is sequential: the model (weights and optimizer state) moves to the shard that
holds the next samples, the worker applies their updates with the NumPy engine and sends the
model back, so the weights equal the NumPy engine's bit for bit; no speed-up, but the data stay
on the workers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import functools
import logging
import math
import time
import weakref

import numpy as np

from ..errors import ConfigError, DeltapropError
from ..i18n import gettext as _, ngettext

__all__ = ["DaskEngine", "ClusterError", "shard_bounds", "connect"]


class ClusterError(DeltapropError, RuntimeError):
    """The Dask cluster cannot be used: the extra is missing, the scheduler is gone, no workers."""


def shard_bounds(n: int, chunk: int, shards: int | None = None, shard_rows: int | None = None) -> list:
    """Row ranges ``[(lo, hi), ...]`` of the shards of ``n`` rows: ``shard_rows`` rows each (a
    multiple of ``chunk``, so that the shards' chunks are the single process's chunks: with one
    chunk per shard the very same sums), else ``shards`` balanced parts cut at round(i·n/shards),
    so that the largest shard, which every update waits for, is as small as it can be (60,000
    rows on 2 workers: 30,000 each; cut at chunk boundaries they were 28,672 and 31,328, 4% of
    the ideal speed-up lost). A shard's chunks then start at its own first row: the sums are
    grouped otherwise than in one process, a difference of rounding only (relative 1e-16 a
    step)."""
    if shard_rows is None:
        parts = max(1, shards or 1)
        cuts = [c for c in sorted({round(i * n / parts) for i in range(1, parts)}) if 0 < c < n]
        return [(lo, hi) for lo, hi in zip([0, *cuts], [*cuts, n])]
    if shard_rows % chunk:
        raise DeltapropError(_("shard_rows {rows} must be a multiple of chunk_size {chunk}").format(
            rows=shard_rows, chunk=chunk))
    return [(lo, min(n, lo + shard_rows)) for lo in range(0, n, shard_rows)]


#: BLAS and OpenMP pinned to one thread in each worker: the workers are the parallelism.
PINNED = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


@contextlib.contextmanager
def connect(spec: str):
    """A Dask client for ``spec``: ``local:N`` starts a LocalCluster of N single-threaded worker
    processes on 127.0.0.1 (shut down on leaving); ``tcp://HOST:PORT`` joins a running scheduler.
    The client talks to the workers directly (``direct_to_workers``): an update's calls and
    results skip the scheduler's relay, so the driver must reach the workers' addresses."""
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
        with _quiet_dask_logs(), \
                LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                             dashboard_address=":0", env=PINNED, silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster, direct_to_workers=True) as client:
            yield client
        return
    if not spec.startswith("tcp://"):
        raise ConfigError(_("--dask takes local:N or tcp://HOST:PORT, got {value!r}").format(value=spec))
    client = _client_within(spec, CONNECT_TIMEOUT_S)
    with _quiet_dask_logs(), client:
        yield client


#: How long ``--dask tcp://...`` waits for the scheduler's answer, all of it.
CONNECT_TIMEOUT_S = 10.0


def _client_within(address: str, seconds: float):
    """``Client(address)``, or ClusterError after ``seconds`` however the other end behaves:
    Dask's own timeout covers a refused or silent port, but not a server that accepts and
    then talks another protocol (an HTTP server keeps it waiting for ever; an SSH banner is
    read as a frame length of exabytes, a MemoryError)."""
    import threading

    from distributed import Client

    box: dict = {}

    def make():
        try:
            box["client"] = Client(address, timeout=seconds, direct_to_workers=True)
        except BaseException as exc:  # reported below, in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=make, name="deltaprop-connect", daemon=True)
    with _quiet_dask_logs():
        thread.start()
        thread.join(seconds + 2.0)
    if "client" in box:
        return box["client"]
    exc = box.get("error")
    if exc is None:
        reason = _("no Dask answer within {seconds:g} s").format(seconds=seconds)
    elif isinstance(exc, MemoryError):
        reason = _("the other end does not speak Dask's protocol")
    else:
        reason = f"{exc}" or type(exc).__name__
    raise ClusterError(_("cannot reach the Dask scheduler at {address}: {reason}").format(
        address=address, reason=reason)) from None


@contextlib.contextmanager
def _quiet_dask_logs():
    """While the CLI's cluster is in use, Dask's own log lines (a lost connection's tracebacks,
    often 30 lines) stay out of the terminal: what went wrong reaches the user as one line
    (a ClusterError)."""
    # every logger under these names: several of Dask's (distributed.client, ...) set their own
    # level and handler and do not propagate, so quieting the parent alone leaves them talking
    roots = ("distributed", "tornado", "asyncio")
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if n in roots or n.startswith(tuple(r + "." for r in roots))]
    loggers = [logging.getLogger(name) for name in dict.fromkeys([*roots, *names])]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def scheduler_workers(client) -> list:
    """The addresses of ``client``'s workers, asked of the scheduler; ClusterError ("lost the
    Dask scheduler") where it does not answer: the one message for a lost scheduler, whether
    an update, an evaluation or a gather of rows found it gone."""
    try:
        if client.status != "running":
            raise OSError(f"client {client.status}")
        return sorted(client.scheduler_info()["workers"])
    except Exception as exc:
        where = getattr(client.scheduler, "address", "")
        raise ClusterError(_("lost the Dask scheduler {address} ({reason}); training stopped").format(
            address=where, reason=f"{type(exc).__name__}: {exc}")) from None


def _add_in_order(results) -> tuple:
    """The driver's reduction: (sum of the losses, sum of the gradients) of the shards'
    ``[(loss sum, gradient sum)]``, added left to right in the order given (shard order), into
    the first gradient's array."""
    total, grad = 0.0, None
    for t, g in results:
        total += t
        if grad is None:
            grad = g if g.flags.writeable else g.copy()
        else:
            grad += g
    return total, grad


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


#: glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.lru_cache(maxsize=None)
def _reuse_freed_buffers() -> bool:
    """Let glibc's malloc reuse freed message buffers instead of mapping fresh pages for each
    (on each worker holding shards, and in the driver). Dask receives every message into new
    buffers, and starts workers with MALLOC_TRIM_THRESHOLD_=64 KiB (to hand memory back to the
    system), which also fixes the mmap threshold at 128 KiB: each buffer above it (the weights
    in, the gradients out: 407 KB a step for 784-128-10) is a new mapping whose pages fault in
    on first touch. On 2 local workers that was 206 page faults per step in each worker and 172
    in the driver, and 7.7 -> 4.3 ms of a 407 KB step (measured on a 2-CPU virtual machine,
    where a fault costs about 10 us). Up to 32 MiB a buffer now comes from the heap, and up to
    64 MiB of freed heap is kept per process. The setting is the whole process's and stays
    (DaskEngine's ``reuse_freed_buffers=False`` leaves it alone); made once per process. False
    where the C library is not glibc (nothing changed)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the symbols already loaded: glibc's, where it is
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 64 << 20))


class _Holder:
    """A Dask actor on one worker: the shards placed there, ``(Network, X, T)`` each, kept for
    the whole run. The driver calls it directly (one message out with the weights, one back
    with the shards' sums), with no task for the scheduler to schedule.

    Its methods are coroutines, so Dask runs them on the worker's event loop: a small job (at
    most ``inline_work`` rows x parameters in at most INLINE_STEPS chunks or updates, each of
    which costs some Python besides its arithmetic) runs right there, saving the hop to a
    thread and back; a larger one runs on the holder's own thread, so that the worker keeps
    answering the scheduler (heartbeats, other transfers) meanwhile. One job at a time per
    worker process (a lock): a call the driver stopped waiting for (Ctrl-C, a lost worker)
    may still be running when the next arrives, and both would write the same network."""

    INLINE_STEPS = 16

    def __init__(self, inline_work, reuse_freed_buffers, *shards):
        self.shards, self.inline_work = shards, inline_work
        self._thread = None
        if reuse_freed_buffers:
            _reuse_freed_buffers()

    async def _run(self, work, steps, fn, *args):
        loop = asyncio.get_running_loop()
        lock = _JOBS.get(loop)
        if lock is None:
            lock = _JOBS[loop] = asyncio.Lock()
        async with lock:
            if work <= self.inline_work and steps <= self.INLINE_STEPS:
                return fn(*args)
            if self._thread is None:
                self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="deltaprop-holder")
            return await loop.run_in_executor(self._thread, fn, *args)

    def _sums(self, flat, jobs, scale, chunk):
        return [_shard_gradient(self.shards[j], flat, rows, scale, chunk) for j, rows in jobs]

    async def gradients(self, flat, jobs, scale, chunk):
        """[(loss sum, gradient sum x scale)] of each ``(local shard index, rows)`` of ``jobs``."""
        sizes = [len(self.shards[j][1]) if r is None else len(r) for j, r in jobs]
        return await self._run(len(flat) * sum(sizes), sum(-(-m // chunk) for m in sizes), self._sums, flat, jobs,
                               scale, chunk)

    async def stochastic(self, j, flat, optimizer, rows, chunk):
        return await self._run(len(flat) * len(rows), len(rows), _shard_stochastic, self.shards[j], flat, optimizer,
                               rows, chunk)


#: One lock over holder jobs per event loop (a worker process has one; in-process workers of a
#: LocalCluster(processes=False) share theirs), made on first use.
_JOBS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _WorkerLost(Exception):
    """A worker holding shards left the cluster while an update waited for it."""


class DaskEngine:
    """Runs batch and mini-batch updates data-parallel on the workers of ``client``.

    ``shard_rows``: rows per shard (a multiple of the trainer's chunk_size); left out, the
    rows are cut into as many shards as the cluster has workers when training starts.
    ``workers``: the addresses of the workers to use (default: all of them).
    ``reuse_freed_buffers``: let malloc keep freed message buffers for reuse in this process
    and in the workers holding shards (:func:`_reuse_freed_buffers`; glibc only); False leaves
    every process's allocator as it was.

    Each worker holding shards gets one Dask actor (:class:`_Holder`) that keeps them. An
    update is one call per worker, carrying the weights and returning the sums of its shards:
    the weights go out once per worker and step, and no task passes through the scheduler. With
    ``Client(..., direct_to_workers=True)`` (what ``--dask`` makes) the calls go straight to the
    workers; otherwise the scheduler relays them.
    """

    name = "dask"
    #: Trains on rows the workers hold (deltaprop.distributed.data.ShardedData), not only on arrays.
    runs_sharded = True
    #: How often one update is recomputed after losing workers before giving up.
    RETRIES = 5
    #: Seconds between checks, while an update waits, that its workers are still in the cluster.
    POLL_S = 0.5
    #: A worker's job of at most this many rows x parameters runs on its event loop, larger ones
    #: on a thread (_Holder): 2 Mi is about a millisecond of BLAS on one core. An instance may
    #: set its own (0: every job on the thread).
    INLINE_WORK = 1 << 21

    def __init__(self, client, shard_rows: int | None = None, workers=None, reuse_freed_buffers: bool = True):
        self.client, self.shard_rows = client, shard_rows
        self.reuse_freed_buffers = reuse_freed_buffers
        self.use = None if workers is None else list(workers)
        self._data = None  # (X, T) the shards were made from
        self.bounds, self.shards = [], []
        self._holders = []  # [(worker address, actor future, actor)]
        self._where = []  # shard s is self._where[s] = (holder index, index among its shards)
        self.recoveries = 0  # updates recomputed after a worker was lost

    @property
    def path(self) -> str:
        """What the set-up line shows: the worker count and the shards (one per worker until placed)."""
        n = len(self._workers())
        workers = ngettext("{n} worker", "{n} workers", n).format(n=n)
        shards = (ngettext("{n} shard", "{n} shards", len(self.bounds)).format(n=len(self.bounds)) if self.bounds
                  else _("one shard per worker") if self.shard_rows is None
                  else _("shards of {rows} rows").format(rows=self.shard_rows))
        return f"dask ({workers}, {shards})"

    def unsupported(self, trainer) -> str | None:
        if getattr(trainer, "sample_weight", None) is not None:  # the workers' sums are unweighted
            return _("sample weights are not supported on a Dask cluster; train without them, or on the numpy "
                     "or numba engine")
        return None

    def _workers(self) -> list:
        return scheduler_workers(self.client)

    def _place(self, trainer, X, T, again: bool = False) -> None:
        """Send each shard to one worker, once, and start one holder per worker that has shards
        (again for other data, or ``again`` after a worker was lost: the same shard boundaries
        on the workers there are now)."""
        same = self._data is not None and self._data[0] is X and self._data[1] is T
        if same and not again:
            return
        self._drop_holders()
        if self.reuse_freed_buffers:
            _reuse_freed_buffers()
        sharded = getattr(X, "sharded", None)
        if sharded is not None:  # shards made on the workers; Dask recomputes a lost one itself
            from distributed import wait

            self.bounds, self.shards = sharded.bounds, sharded.shards
            wait(self.shards)
            for f in self.shards:
                if f.status == "error":
                    f.result()  # the shard's own error (a DataError names the file or the block)
            who = self.client.who_has(self.shards)
            at = [sorted(who[f.key])[0] for f in self.shards]
        else:
            workers = [w for w in self._workers() if self.use is None or w in self.use]
            if not workers:
                raise ClusterError(_("the Dask cluster has no workers left") if self.use is None
                                   else _("none of the workers {names} is in the cluster").format(
                                       names=", ".join(self.use)))
            if not same:
                self.bounds = shard_bounds(len(X), trainer.chunk_size, len(workers), self.shard_rows)
            config = trainer.network.to_config()
            self.shards, at = [], []
            for i, (lo, hi) in enumerate(self.bounds):
                w = workers[i % len(workers)]
                xf, tf = self.client.scatter([X[lo:hi], T[lo:hi]], workers=[w])
                self.shards.append(self.client.submit(_make_shard, config, xf, tf, workers=[w], pure=False))
                at.append(w)
        self._data = (X, T)
        self._where = [None] * len(self.shards)
        for w in sorted(set(at)):
            mine = [s for s in range(len(self.shards)) if at[s] == w]
            for j, s in enumerate(mine):
                self._where[s] = (len(self._holders), j)
            future = self.client.submit(_Holder, self.INLINE_WORK, self.reuse_freed_buffers,
                                        *[self.shards[s] for s in mine],
                                        workers=[w], allow_other_workers=False, actor=True, pure=False)
            self._holders.append((w, future, self._wait([([w], future)])[0]))

    def _drop_holders(self) -> None:
        """Forget the holders: cancelled, so that Dask does not start them again elsewhere."""
        futures = [f for _, f, _ in self._holders]
        self._holders = []
        if futures:
            with contextlib.suppress(Exception):
                self.client.cancel(futures)

    def _ready(self, trainer, X, T) -> None:
        """Refuse what the engine cannot run (select_engine passes an engine object through
        unchecked), then place the shards (once per data set)."""
        reason = self.unsupported(trainer)
        if reason:
            raise ConfigError(_("engine {name!r} cannot run this set-up: {reason}").format(name="dask", reason=reason))
        self._retrying(trainer, X, T, self._place, trainer, X, T)

    def run_epoch(self, trainer, X, T, order, k):
        self._ready(trainer, X, T)
        if k == 1 and trainer.mode == "stochastic":
            return self._stochastic_epoch(trainer, X, T, order)
        net, opt = trainer.network, trainer.optimizer
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
            total, grad = _add_in_order(self._gradients(trainer, X, T, net.flat.copy(), parts, 1.0 / m))
            batch_loss = total * (1.0 / m)
            if not math.isfinite(batch_loss):
                return running, u
            running += batch_loss * m
            opt.step(params, grad, loss=batch_loss)
        return running, None

    def loss_and_gradient(self, trainer, X, T):
        """The mean loss over all rows and its gradient at the network's weights, summed on the
        workers: the objective of optimizers that run their own loop (L-BFGS), one full-batch
        reduction per evaluation, equal to ``Network.loss_and_gradient`` in one process."""
        self._ready(trainer, X, T)
        n = len(X)
        total, grad = _add_in_order(self._gradients(trainer, X, T, trainer.network.flat.copy(),
                                                    [(s, None) for s in range(len(self.bounds))], 1.0 / n))
        return total / n, grad

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
            flat, back, part, bad = self._retrying(trainer, X, T, self._visit, s, net.flat.copy(), moving, rows,
                                                   trainer.chunk_size)
            net.flat[...] = flat
            opt.load_state_dict(back.state_dict())
            running += part
            if bad is not None:
                return running, done + bad
            done += len(run)
        return running, None

    def _visit(self, s, flat, optimizer, rows, chunk):
        h, j = self._where[s]
        return self._call([(h, "stochastic", (j, flat, optimizer, rows, chunk))])[0]

    def _gradients(self, trainer, X, T, flat, parts, scale):
        """The shards' (loss sum, gradient sum) at ``flat``, in the order of ``parts``: one call
        per holder, the weights in it. A lost worker loses its shards: they are placed again
        (same boundaries) on the workers left and the update is recomputed from the same
        weights, so the result does not change."""
        return self._retrying(trainer, X, T, self._reduce, flat, parts, scale, trainer.chunk_size)

    def _reduce(self, flat, parts, scale, chunk):
        jobs = {}  # holder index -> [(index among its shards, rows)], in shard order
        for s, rows in parts:
            h, j = self._where[s]
            jobs.setdefault(h, []).append((j, rows))
        calls = [(h, "gradients", (flat, js, scale, chunk)) for h, js in jobs.items()]
        got = dict(zip(jobs, self._call(calls)))
        taken = dict.fromkeys(jobs, 0)
        out = []
        for s, _ in parts:  # back in shard order
            h = self._where[s][0]
            out.append(got[h][taken[h]])
            taken[h] += 1
        return out

    def _call(self, calls) -> list:
        """The results of ``[(holder index, method, args)]``, called on all the holders at once.
        The calls are made and awaited in one coroutine on the client's event loop: one hand-over
        from this thread to the loop and one back per update, where calls made and waited for
        from this thread cost two of each per worker (about 1 ms a step at 2 workers)."""
        holders = [self._holders[h] for h, _, _ in calls]

        async def together():
            pending = [getattr(actor, method)(*args) for (_, _, actor), (_, method, args) in zip(holders, calls)]
            return [await p for p in pending]

        done = asyncio.run_coroutine_threadsafe(together(), self.client.loop.asyncio_loop)
        try:
            return self._wait([([w for w, _, _ in holders], done)])[0]
        finally:
            done.cancel()  # after a lost worker: stop waiting here (the calls already sent still run)

    def _wait(self, calls) -> list:
        """The results of ``[(worker addresses, future)]``. A call to a worker that has died may
        not fail for a while (its connection is retried for the connect timeout, 30 s by
        default): every POLL_S of waiting the scheduler is asked whether the workers are still
        there. An update that is not late costs no such question."""
        out = []
        for ws, call in calls:
            while True:
                try:
                    out.append(call.result(timeout=self.POLL_S))
                    break
                except (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError):
                    if call.done():  # the call's own error, not the poll's: one class from Python 3.11 on
                        raise
                    there = self._workers()
                    lost = [w for w in ws if w not in there]
                    if lost:
                        raise _WorkerLost(lost[0]) from None
        return out

    def _retrying(self, trainer, X, T, fn, *args):
        """``fn(*args)`` on the holders; after a lost worker the shards are placed again and the
        call repeated with the same arguments (nothing was applied yet)."""
        lost = False
        for attempt in range(self.RETRIES + 1):
            try:
                if self.client.status != "running":
                    self._workers()  # raises ClusterError: the scheduler is gone
                if lost:  # inside the try: the scheduler may still list a worker that just died
                    self._place(trainer, X, T, again=True)
                return fn(*args)
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
