"""Mini-batches and batches for the numba engine.

Where a ``?gemm`` can be called from compiled code (:mod:`.blas_lib`: NumPy's own BLAS, else
SciPy's) the whole epoch is one compiled call (:mod:`._numba_batch`). Otherwise, as below,
BLAS products run through ``np.matmul`` into preallocated buffers with compiled
elementwise steps between them.

Above a few dozen rows an update's cost is two large products per layer (``X W`` forward,
``X^T delta`` for the weight gradient), which BLAS runs near the machine's peak; what is
left to win is everything around them. So nothing is allocated per batch: the rows of a
shuffled batch are gathered with ``np.take(..., out=)``, every product writes into a buffer
(``np.matmul(..., out=)``), the activation, loss, delta and bias steps are one compiled pass
each, and the update, under any optimizer of the registry, is one compiled pass over the
flat parameters (:func:`._numba_kernels.rule_update`). A batch larger than
the chunk size is processed in chunks whose gradient sums are added, so memory does not
grow with it (chunks of at most :data:`CHUNK_ROWS` rows, where the products are fastest).
"""

from __future__ import annotations

import ctypes
import functools
import math
import threading

import numpy as np

from . import codes
from .blas_lib import gemm_for
from .numba_engine import RuleState, _padded

__all__ = ["BlasPath", "CHUNK_ROWS", "ROWS_PER_THREAD"]


def _sigmoid(z, a, K, c):
    # numba's exp is a scalar libm call; NumPy's is vectorised, which matters at 128 units x
    # 60,000 rows: exp(-|z|) here, the rest of the formula (_maths.sigmoid_from) compiled
    np.abs(z, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    K.rows_sigmoid_of_exp(z, a, len(z), c)


def _tanh(z, a, K, c):
    np.tanh(z, out=a)


# activation code -> in-place forward for hidden layers whose transcendental function NumPy
# vectorises and numba does not; the others run as one compiled pass with the bias
_UFUNC_ACTS = {codes.SIGMOID: _sigmoid, codes.TANH: _tanh}

#: Rows per chunk: larger chunks spill the first layer's operands out of the L2 cache and
#: run the products slower (measured on 784-128-10 float32, see docs/performance.md).
CHUNK_ROWS = 512

#: Fewest rows of a batch per thread where a batch's rows are split between threads. Measured
#: at 2 threads on 784-128-10 float32 (docs/performance.md, "Rows across threads"): full batch
#: +6-19%, batches of 1,024 +6-13% and 512 -8..+18%; 256 level, 128 15-35% slower (two
#: barriers and a pass over the summed gradient per batch against BLAS's own split).
ROWS_PER_THREAD = 256


def _yield_address() -> int:
    """The address of the C library's ``sched_yield`` (Windows: ``SwitchToThread``), 0 where
    there is none: what a thread waiting at the row-split epoch's barrier calls once it has
    spun a while."""
    try:
        return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value or 0
    except (OSError, AttributeError, TypeError):
        pass
    try:
        return ctypes.cast(ctypes.windll.kernel32.SwitchToThread, ctypes.c_void_p).value or 0
    except (OSError, AttributeError, TypeError):
        return 0


class _OneBlasThread:
    """BLAS held at one thread while training loops split rows between threads. BLAS's thread
    count belongs to the process (one per library, for both dtypes), so the hold does too:
    the first loop to hold saves the count the user set and sets one thread, the last to end
    restores it, and meanwhile every path asks :meth:`user_threads` for the saved count (two
    fits in two threads of one process, a plan rebuilt within a loop, a fit inside a
    callback). Loops are told apart by their tokens (``Trainer._loop_token``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held = {}  # library -> [saved count, set of loop tokens]

    def user_threads(self, gemm) -> int | None:
        with self._lock:
            entry = self._held.get(gemm.source)
            return entry[0] if entry is not None else gemm.threads()

    def hold(self, gemm, token) -> bool:
        """Hold BLAS at one thread for the loop ``token``; False if that loop already does."""
        with self._lock:
            entry = self._held.get(gemm.source)
            if entry is None:
                entry = self._held[gemm.source] = [gemm.threads(), set()]
                gemm.set_threads(1)
            if token in entry[1]:
                return False
            entry[1].add(token)
            return True

    def release(self, gemm, token) -> None:
        with self._lock:
            entry = self._held.get(gemm.source)
            if entry is None or token not in entry[1]:
                return
            entry[1].discard(token)
            if not entry[1]:
                del self._held[gemm.source]
                gemm.set_threads(entry[0])


ONE_BLAS_THREAD = _OneBlasThread()


def _cpus() -> int:
    from ..machine import usable_cpus

    return usable_cpus()


class _Rows:
    """One thread's buffers for the row-split epoch: its rows' activations and deltas, its
    gathered rows, BLAS's argument scratch, and its views of its row of the gradient buffer."""

    def __init__(self, net, m, G, gemm):
        dt = net.dtype
        self.xb = np.empty((m, net.n_inputs), dt)
        self.tb = np.empty((m, net.n_outputs), dt)
        self.padded = tuple(_padded([np.empty((m, layer.n_out), dt) for layer in net.layers], (0, 0), dt)
                            for _ in range(3))
        self.ib = np.zeros(8, gemm.int_dtype)
        self.fb = np.zeros(2, dt)
        self.ch = np.zeros(2, np.uint8)
        views = {(id(layer), attr): G[pos:pos + size] for layer, attr, pos, size in net._slots
                 if pos + size <= len(G)}
        self.GWs = _padded([views[(id(layer), "W")].reshape(layer.W.shape) for layer in net.layers], (0, 0), dt)
        # a frozen or absent bias has no gradient: its row pass never writes the array given
        self.GBs = _padded([views[(id(layer), "b")] if (id(layer), "b") in views else layer.db
                            for layer in net.layers], (0,), dt)


_YIELD = _yield_address()


class BlasPath:
    """One network's buffers and the epoch loop for batches of more than a few rows."""

    def __init__(self, net, plan):
        self.net = net
        self.plan = plan
        self.K = plan.K
        self.rows = 0
        self.grad_tmp = [np.empty_like(layer.W) for layer in net.layers]
        dt = net.dtype
        self.gemm = gemm_for(dt)  # DELTAPROP_BLAS=none keeps the np.matmul path
        if self.gemm is not None:
            self.GWs = _padded([layer.dW for layer in net.layers], (0, 0), dt)
            self.GBs = _padded([layer.db for layer in net.layers], (0,), dt)
            self._ib = np.zeros(8, self.gemm.int_dtype)
            self._fb = np.zeros(2, dt)
            self._ch = np.zeros(2, np.uint8)
            self._no_order = np.zeros(0, np.int64)
            from ._numba_batch import exp_constants

            self.ex = exp_constants(dt)  # the constants of the compiled epoch's exp

    def _buffers(self, m: int) -> None:
        if m <= self.rows:
            return
        dt = self.net.dtype
        net = self.net
        self.rows = m
        self.xb = np.empty((m, net.n_inputs), dt)
        self.tb = np.empty((m, net.n_outputs), dt)
        self.Z = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.A = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        self.D = [np.empty((m, layer.n_out), dt) for layer in net.layers]
        # the compiled epoch takes them as tuples padded to MAX_LAYERS
        self.padded = tuple(_padded(bufs, (0, 0), dt) for bufs in (self.Z, self.A, self.D))

    def run_epoch(self, trainer, X, T, order, k):
        net, opt = self.net, trainer.optimizer
        chunk = max(1, min(trainer.chunk_size, CHUNK_ROWS, k))
        self._buffers(chunk)
        rs = RuleState(opt, net.params)
        threads = self.row_threads(k, rs.rng is not None)
        if threads > 1:
            trainer.engine_used = "numba/batch-threads"
            if getattr(trainer, "_loop_token", None) is not None:
                self._hold_one_blas_thread(trainer)
            running, bad, applied = self._threaded_epoch(X, T, order, k, chunk, rs, threads)
        elif self.gemm is None:
            running, bad, applied = self._python_epoch(X, T, order, k, chunk, rs)
        elif rs.rng is None:
            running, bad, applied = self._compiled_epoch(X, T, order, k, chunk, rs, 0, len(X))
        else:
            # the generator's draws come from Python (numba's generators are not NumPy's
            # streams): one compiled call per update, the draws made before it and taken
            # back if its batch's loss is not finite (the NumPy engine draws after the check)
            running, bad, applied = 0.0, None, 0
            for u, start in enumerate(range(0, len(X), k), start=1):
                stop = min(start + k, len(X))
                saved = rs.rng.bit_generator.state
                rs.draw()
                r, b, a = self._compiled_epoch(X, T, order, stop - start, chunk, rs, start, stop)
                running += r
                applied += a
                if b:
                    rs.rng.bit_generator.state = saved
                    bad = u
                    break
        rs.done(opt, applied)
        return running, bad

    def row_threads(self, k: int, draws: bool) -> int:
        """How many threads run the epoch's batches of ``k`` rows, each with its share of the
        rows and one-thread BLAS (1: the one-call epoch, BLAS with its own threads). As many
        as BLAS is set to run (``OPENBLAS_NUM_THREADS``, threadpoolctl; while a loop holds it
        at one thread, the count it had), no more than the CPUs this process may use (its
        affinity and its container's CPU quota, :func:`deltaprop.machine.usable_cpus`), with
        at least :data:`ROWS_PER_THREAD` rows each. A batch of a few hundred rows gains little
        from BLAS's own threads, which split each product while the row passes between
        products stay on one thread; split by rows, every step runs on every thread. Not for
        the rules that ``draws`` random numbers per update (their draws are made from Python)."""
        if self.gemm is None or draws or k < 2 * ROWS_PER_THREAD:
            return 1
        blas = ONE_BLAS_THREAD.user_threads(self.gemm)
        if not blas or blas < 2:
            return 1
        return min(blas, _cpus(), k // ROWS_PER_THREAD)

    def _hold_one_blas_thread(self, trainer) -> None:
        """Hold BLAS at one thread until the training loop ends (:class:`_OneBlasThread`;
        released by the trainer's ``_at_loop_end``). Between epochs the loop evaluates with
        NumPy: with BLAS's own threads back, OpenBLAS's idle threads spin for a while after
        each product and took the cores from the next epoch's threads (measured: full-batch
        epochs after an evaluation 200-266 ms against 163-176 ms; with one BLAS thread the
        evaluation itself costs 14 against 10 ms). Callbacks and the validation set's
        evaluation run with BLAS at one thread too."""
        token, gemm = trainer._loop_token, self.gemm
        trainer._at_loop_end.append(functools.partial(ONE_BLAS_THREAD.release, gemm, token))
        if not ONE_BLAS_THREAD.hold(gemm, token):
            trainer._at_loop_end.pop()

    def _threaded_epoch(self, X, T, order, k, chunk, rs, threads):
        """The epoch on ``threads`` threads (:func:`._numba_batch.batch_epoch_rows`): this one
        and ``threads - 1`` started for the epoch, BLAS held at one thread meanwhile (for the
        epoch alone where no training loop holds it already)."""
        from . import _numba_batch as B

        plan, net, c, gemm = self.plan, self.net, self.plan.c, self.gemm
        n = len(X)
        c[codes.C_LR] = rs.q[codes.Q_LR]
        c[codes.C_SCALE_FULL], c[codes.C_SCALE_LAST] = 1.0 / k, 1.0 / (n % k or k)
        chunk = min(chunk, -(-k // threads))
        key = (threads, chunk)
        if getattr(self, "_rows_key", None) != key:
            self.G = np.zeros((threads, net.n_trainable), net.dtype)
            self.rows_of = [_Rows(net, chunk, self.G[t], gemm) for t in range(threads)]
            self._rows_key = key
        shuffled = order is not None
        if not shuffled:
            order = self._no_order
        sync = np.zeros(B.SYNC_LENGTH, np.int64)
        parts = np.zeros(threads)
        hs = [rs.h] + [rs.h.copy() for _ in range(threads - 1)]
        qs = [rs.q] + [rs.q.copy() for _ in range(threads - 1)]
        out, failed = [None] * threads, []

        def part(t):
            w = self.rows_of[t]
            out[t] = B.batch_epoch_rows(
                t, threads, sync, parts, _YIELD, X, T, order, shuffled, n, k, chunk, plan.Ws, plan.Bs,
                w.GWs, w.GBs, self.G, net.params, net.grads, plan.lay, plan.actp, plan.loss, plan.fused,
                c, *w.padded, w.xb, w.tb, gemm.address, w.ib, w.fb, w.ch, self.ex, rs.rule, *rs.S,
                rs.ns, rs.mask, rs.noise, rs.rnd, hs[t], qs[t])

        def helper_part(t):
            try:
                part(t)
            except BaseException as error:  # noqa: BLE001 (raised again in this thread below)
                sync[B.SYNC_ABANDON] = 1
                failed.append(error)

        token = object()  # the epoch's own hold: a no-op where its loop holds BLAS already
        helpers = []
        try:
            ONE_BLAS_THREAD.hold(gemm, token)
            for t in range(1, threads):
                helpers.append(threading.Thread(target=helper_part, args=(t,), daemon=True))
                helpers[-1].start()
            part(0)
        except BaseException:
            sync[B.SYNC_ABANDON] = 1  # the helpers leave their barrier instead of waiting for this one
            raise
        finally:
            for helper in helpers:
                if helper.ident is not None or helper.is_alive():
                    helper.join()
            ONE_BLAS_THREAD.release(gemm, token)
        if failed:
            raise failed[0]
        running, bad, applied = out[0]
        return running, (bad or None), applied

    def _compiled_epoch(self, X, T, order, k, chunk, rs, start, stop):
        """Rows start..stop-1 of the epoch (all of it, or one batch) in one compiled call."""
        from . import _numba_batch as B

        plan, net, c = self.plan, self.net, self.plan.c
        n = stop - start
        c[codes.C_LR] = rs.q[codes.Q_LR]
        c[codes.C_SCALE_FULL], c[codes.C_SCALE_LAST] = 1.0 / k, 1.0 / (n % k or k)
        m = self.rows
        Zs, As, Ds = self.padded
        shuffled = order is not None
        if shuffled:
            order = order[start:stop]
        else:
            order = self._no_order
            X, T = X[start:stop], T[start:stop]
        running, bad, applied = B.batch_epoch(
            X, T, order, shuffled, n, k, chunk, plan.Ws, plan.Bs, self.GWs, self.GBs,
            net.params, net.grads, plan.lay, plan.actp, plan.loss, plan.fused, c,
            Zs, As, Ds, self.xb[:m], self.tb[:m], self.gemm.address, self._ib, self._fb, self._ch,
            self.ex, rs.rule, *rs.S, rs.ns, rs.mask, rs.noise, rs.rnd, rs.h, rs.q)
        return running, (bad or None), applied

    def _python_epoch(self, X, T, order, k, chunk, rs):
        net, K, c = self.net, self.K, self.plan.c
        n = len(X)
        params, grads = net.params, net.grads
        running = 0.0
        applied = 0
        bad = None
        for u, start in enumerate(range(0, n, k), start=1):
            stop = min(start + k, n)
            nb = stop - start
            scale = c.dtype.type(1.0 / nb)
            total = 0.0
            for cs in range(start, stop, chunk):
                ce = min(cs + chunk, stop)
                total += self._chunk(X, T, order, cs, ce, scale, accumulate=cs > start)
            batch_loss = total * (1.0 / nb)
            if not math.isfinite(batch_loss):
                bad = u
                break
            running += batch_loss * nb
            if rs.rng is not None:
                rs.draw()
            K.rule_next(rs.rule, rs.h, rs.q, batch_loss, params, grads, rs.mask, rs.noise, rs.rnd,
                        *rs.S, rs.ns)
            applied += 1
        return running, bad, applied

    def _chunk(self, X, T, order, cs, ce, scale, accumulate):
        """Forward and backward over rows cs..ce-1 of the epoch; adds the gradient sums."""
        K, plan, c = self.K, self.plan, self.plan.c
        layers = self.net.layers
        m = ce - cs
        if order is None:
            x, t = X[cs:ce], T[cs:ce]
        else:
            x, t = self.xb[:m], self.tb[:m]
            K.gather_rows(X, T, order, cs, m, x, t)
        lo = len(layers) - 1
        a_prev = x
        for li in range(lo):
            layer = layers[li]
            z, a = self.Z[li][:m], self.A[li][:m]
            np.matmul(a_prev, layer.W, out=z)
            code = plan.lay[li, codes.ACT]
            if code in _UFUNC_ACTS:
                if layer.bias:
                    np.add(z, layer.b, out=z)
                _UFUNC_ACTS[code](z, a, K, c)
            else:
                K.rows_bias_activate(z, a, layer.b, layer.bias, code, plan.actp[li], m, c)
            a_prev = a
        out = layers[lo]
        z, d = self.Z[lo][:m], self.D[lo][:m]
        np.matmul(a_prev, out.W, out=z)
        total = K.rows_output(z, self.A[lo][:m], d, t, out.b, out.bias, out.train_bias, out.db,
                              accumulate, plan.loss, plan.fused, plan.lay[lo, codes.ACT], plan.actp[lo],
                              scale, m, c)
        for li in range(lo, -1, -1):
            layer = layers[li]
            d = self.D[li][:m]
            a_below = self.A[li - 1][:m] if li > 0 else x
            if accumulate:
                np.matmul(a_below.T, d, out=self.grad_tmp[li])
                K.add_into(layer.dW, self.grad_tmp[li])
            else:
                np.matmul(a_below.T, d, out=layer.dW)
            if li > 0:
                below = layers[li - 1]
                d_below = self.D[li - 1][:m]
                np.matmul(d, layer.W.T, out=d_below)
                K.rows_hidden(self.Z[li - 1][:m], a_below, d_below, plan.lay[li - 1, codes.ACT],
                              plan.actp[li - 1], below.train_bias, below.db, accumulate, m, c)
        return total
