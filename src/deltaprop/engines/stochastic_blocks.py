r"""Stochastic updates (batch size 1) of a wide first layer in blocks of B samples.

Per-sample SGD on 784-128-10 spends its time streaming the first layer's weight matrix
through the cache twice per sample (read for the forward pass, read and write for the
update). But the first layer is linear in its weights, and its input does not depend on
them, so the updates of a block of B samples can be applied without changing what any
sample sees: with :math:`W, b` the weights at the start of the block,

.. math::
    z_t = x_t W + b - \eta \textstyle\sum_{s<t} (x_t\cdot x_s + 1)\, d_s,
    \qquad
    W \leftarrow W - \eta\, X_B^\top D_B \ \text{after the block}

(the ``+ 1`` and the bias update only when the biases train). Sample *t* gets exactly the
pre-activation it would get after the *t* earlier updates, so the weights are those of
per-sample SGD up to rounding (the equivalence tests check it against the NumPy engine).
The three products :math:`X_B W`, :math:`X_B X_B^\top` and :math:`X_B^\top D_B` run in
BLAS; per sample there is only the short correction sum (t rows of the hidden width) and
the small upper layers, updated in place sample by sample.

Where a ``?gemm`` can be called from compiled code (:mod:`.blas_lib`), the whole epoch is
one compiled call (:func:`._numba_batch.block_epoch`), which also writes the first layer's
update straight through the last product and keeps the layers above it transposed so that
their per-sample loops are contiguous; otherwise the loop below runs the blocks from Python
with ``np.matmul`` (plain SGD only).

Under momentum (and Nesterov) the weights after t updates are still the block-start
weights and velocity plus a weighted sum of the block's gradients, with geometric weights
(:func:`._numba_batch._block_coefficients`), so the same scheme holds with one more product
per block for the velocity (the compiled epoch only). Used when the first layer is wide
(:data:`MIN_WEIGHTS`); small nets are faster in the streaming kernel.
"""

from __future__ import annotations

import numpy as np

from . import codes
from .blas_lib import gemm_for

__all__ = ["StochasticBlocks", "BLOCK", "BLOCK_THREADED", "MIN_WEIGHTS"]

#: Samples per block: the per-sample correction and the Gram product grow with B, the
#: products' efficiency too. Measured on 784-128-10 float32, 1 thread (compiled epoch):
#: B = 16: 261k, 24: 287k, 32: 270k, 64: 254k samples/s.
BLOCK = 24
#: Samples per block where BLAS runs more than one thread: its threads need taller products
#: (784-128-10 float32, 2 threads, B = 24 / 64: 356k / 377k sigmoid, 298k / 337k ReLU +
#: softmax; at 1 thread 64 is 14% slower than 24).
BLOCK_THREADED = 64
#: First layers with fewer weights run in the streaming per-sample kernel.
MIN_WEIGHTS = 16384


class StochasticBlocks:
    """Buffers for one network and the epoch loop over blocks."""

    def __init__(self, net, plan):
        self.net, self.plan, self.K = net, plan, plan.K
        dt = net.dtype
        first = net.layers[0]
        B = max(BLOCK, BLOCK_THREADED)  # buffers for either block size
        self.xb = np.empty((B, first.n_in), dt)
        self.tb = np.empty((B, net.n_outputs), dt)
        self.Zb = np.empty((B, first.n_out), dt)
        self.Gm = np.empty(B * B, dt)  # viewed as (m, m), contiguous for every block size
        self.D0 = np.empty((B, first.n_out), dt)
        # a ?gemm callable from compiled code: the whole epoch in one call
        self.gemm = gemm_for(dt)
        if self.gemm is None:
            self.gW = np.empty_like(first.W)  # the Python loop's gradient product
        else:
            from ._numba_batch import exp_constants
            from .numba_engine import _padded

            # the layers above the first, transposed while the epoch runs (and their
            # velocities); per layer one row of pre-activations, activations, deltas
            upper = [np.empty((0, 0), dt)] + [np.empty((l.n_out, l.n_in), dt) for l in net.layers[1:]]
            self.WTs = _padded(upper, (0, 0), dt)
            self.VTs = _padded([np.empty_like(a) for a in upper], (0, 0), dt)
            self.rows = tuple(_padded([np.empty((1, l.n_out), dt) for l in net.layers], (0, 0), dt)
                              for _ in range(3))
            self.P = np.empty((B, first.n_out), dt)
            self.Ds = np.empty((B, first.n_out), dt)
            self.coef = np.empty((3, B + 1), dt)
            self.blas_args = (np.zeros(8, self.gemm.int_dtype), np.zeros(2, dt), np.zeros(2, np.uint8))
            self.ex = exp_constants(dt)

    def handles(self, kind) -> bool:
        """Whether this path runs the optimizer ``kind`` (momentum needs the compiled epoch)."""
        return kind == codes.PLAIN or self.gemm is not None

    def block_size(self) -> int:
        """:data:`BLOCK`, or :data:`BLOCK_THREADED` where the BLAS runs several threads."""
        threads = self.gemm.threads() if self.gemm is not None else None
        return BLOCK if threads in (None, 1) else BLOCK_THREADED

    def run_epoch(self, trainer, X, T, order, kind, VWs, VBs):
        """The epoch's updates; ``c`` (the plan's constants) holds lr and mu already."""
        K, plan, net = self.K, self.plan, self.net
        first = net.layers[0]
        c = plan.c
        lr = c[codes.C_LR]
        B = self.block_size()
        if self.gemm is not None:
            from ._numba_batch import block_epoch

            running, bad, applied = block_epoch(
                X, T, order, len(X), B, plan.Ws, plan.Bs, VWs, VBs, self.WTs, self.VTs, kind,
                plan.lay, plan.actp, plan.loss, plan.fused, c, self.xb, self.tb, self.Zb, self.P,
                self.Gm, self.D0, self.Ds, self.coef, *self.rows, self.gemm.address,
                *self.blas_args, self.ex)
            return running, (bad or None), applied
        Zs, As, Ds, G = plan.buffers_for(1)
        n = len(X)
        running, applied, bad = 0.0, 0, None
        for start in range(0, n, B):
            m = min(B, n - start)
            xb, tb, Zb, D0 = self.xb[:m], self.tb[:m], self.Zb[:m], self.D0[:m]
            Gm = self.Gm[:m * m].reshape(m, m)
            K.gather_rows(X, T, order, start, m, xb, tb)
            np.matmul(xb, first.W, out=Zb)
            np.matmul(xb, xb.T, out=Gm)
            run, bad_t, done = K.block_sample_updates(Zb, Gm, D0, tb, plan.Ws, plan.Bs, VWs, VBs,
                                                      plan.lay, plan.actp, plan.loss, plan.fused,
                                                      c, Zs, As, Ds, G, m)
            running += run
            applied += done
            if done:
                np.matmul(xb[:done].T, D0[:done], out=self.gW)
                K.block_first_layer_update(first.W, self.gW, first.b, D0, done,
                                           bool(first.train_bias), lr)
            if bad_t:
                bad = start + bad_t
                break
        return running, bad, applied
