r"""Compiled mini-batch and batch epochs that call BLAS from inside the kernel.

One call runs a whole epoch: per batch the rows are gathered (when shuffled), each layer's
product ``Z = A W`` goes to ``?gemm``, the bias, activation, loss and delta steps are the
compiled row passes of :mod:`._numba_kernels`, and the weight gradients are products
``A^T D`` again. Python is not entered between batches, which is most of the gain at small
batches (a batch of 32 used to cost a dozen Python calls). BLAS's
``C = alpha op(A) op(B) + beta C`` also removes passes over the weights:

* a batch larger than one chunk accumulates each chunk's gradient with ``beta = 1``;
* plain SGD on a batch of one chunk writes the update straight into the weights,
  :math:`W \leftarrow W - \eta A^\top D` (``alpha = -lr, beta = 1``), so no gradient buffer
  is written and read back. Each layer's delta for the layer below,
  :math:`D_{l-1} = (D_l W_l^\top) \odot f'(Z_{l-1})`, is taken before :math:`W_l` changes,
  and the loss is checked before any weight does, so a non-finite batch is never applied.

The sigmoid of hidden layers, the one transcendental step of the common case, runs through
:func:`exp_nonpositive`, an ``exp`` that LLVM vectorises (numba's ``math.exp`` is a scalar
libm call per element, four times slower than the products' share would allow).

The ``?gemm`` is reached through its address (:mod:`.blas_lib`), passed in as an integer so
that the compiled kernels can be cached on disk.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# numba keys each kernel's disk cache on the content of its own file alone, and a cached
# kernel holds the compiled code of the kernels it calls: a change to the row passes of
# _numba_kernels (or to _maths) reaches the cached epochs below only if this file changes
# too. Revision of those callees: 2026-12-07, one inlined SGD loop in rule_update; tanh_from.
from ._maths import rule_scalars, sgd_step, sigmoid_from, tanh_from
from ._numba_kernels import (_INLINE, _OPTS, _hidden_delta, _output_loss_delta, _unowned,
                             _unowned_tuple, _update, gather_rows, rows_bias_activate, rows_hidden,
                             rows_output, rule_update)
from .codes import (ACT, C_LR, C_MU, C_ONE, C_SCALE_FULL, C_SCALE_LAST, C_ZERO, HAS_BIAS, MOMENTUM,
                    PLAIN, Q_DECAY, Q_NOISY, SIGMOID, TANH, TRAIN_BIAS)


@intrinsic
def _call_pointer_fn(typingctx, address, args):
    """Call the C function at ``address`` with every element of ``args`` (int64) cast to a
    pointer: the calling convention of Fortran-style BLAS, which takes everything by address."""
    if not isinstance(address, types.Integer) or not isinstance(args, types.UniTuple):
        return None
    count = args.count

    def codegen(context, builder, signature, llargs):
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [ptr] * count)
        fn = builder.inttoptr(llargs[0], fnty.as_pointer())
        builder.call(fn, [builder.inttoptr(builder.extract_value(llargs[1], i), ptr)
                          for i in range(count)])
        return context.get_dummy_value()

    return types.void(address, args), codegen


@intrinsic
def _prefetch(typingctx, address):
    """Ask the cache for the line holding ``address`` (LLVM's prefetch: read, keep in all
    levels); never faults, and the program reads nothing from it."""
    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch." + i8p.intrinsic_name)
        builder.call(fn, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(types.int64), codegen


#: Rows up to this many bytes are prefetched a chunk ahead (see :func:`prefetch_rows`)
PREFETCH_ROW_BYTES = 512


def _int64_at(builder, address):
    return builder.inttoptr(address, ir.IntType(64).as_pointer())


@intrinsic
def _atomic_add(typingctx, address, value):
    """Add ``value`` to the int64 at ``address`` atomically (sequentially consistent); returns
    the value it held before."""
    def codegen(context, builder, signature, args):
        return builder.atomic_rmw("add", _int64_at(builder, args[0]), args[1], "seq_cst")

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def _atomic_load(typingctx, address):
    """The int64 at ``address``, read atomically (acquire): a loop that waits on it reads
    memory each time instead of a value LLVM kept in a register."""
    def codegen(context, builder, signature, args):
        return builder.load_atomic(_int64_at(builder, args[0]), "acquire", 8)

    return types.int64(types.int64), codegen


@intrinsic
def _atomic_store(typingctx, address, value):
    """Store ``value`` in the int64 at ``address`` atomically (release)."""
    def codegen(context, builder, signature, args):
        builder.store_atomic(args[1], _int64_at(builder, args[0]), "release", 8)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


@intrinsic
def _call_void(typingctx, address):
    """Call the C function ``int f(void)`` at ``address``, its result ignored (here
    ``sched_yield``)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])
        return context.get_dummy_value()

    return types.void(types.int64), codegen


#: Spins of a thread waiting at a barrier before it yields its core to other work
BARRIER_SPINS = 2000
#: A barrier's int64 array (:func:`barrier`): its length, and where Python sets the abandon flag
SYNC_LENGTH, SYNC_ABANDON = 24, 16


@njit(**_OPTS)
def barrier(sync, nt, yield_fn):
    """Wait until all ``nt`` threads of a row-split epoch have arrived; False if the epoch was
    abandoned instead. ``sync``: int64, the number arrived at ``sync[0]``, the barrier's
    generation at ``sync[8]`` and the abandon flag at ``sync[16]`` (a cache line apart). The
    last to arrive resets the count, then moves the generation on, which releases the others;
    a waiting thread spins on the generation and, past :data:`BARRIER_SPINS` reads, yields its
    core each time (``sched_yield`` at ``yield_fn``), so that a machine busy with other work
    is not kept waiting for a spinning thread. The flag is set from Python when a thread
    cannot take its part (an interrupt before it started), so the others do not wait forever."""
    count = np.int64(sync.ctypes.data)
    generation, abandon = count + 64, count + 8 * SYNC_ABANDON
    seen = _atomic_load(generation)
    if _atomic_add(count, 1) == nt - 1:
        _atomic_store(count, 0)
        _atomic_add(generation, 1)
        return _atomic_load(abandon) == 0
    spins = 0
    while _atomic_load(generation) == seen:
        if _atomic_load(abandon) != 0:
            return False
        spins += 1
        if spins > BARRIER_SPINS and yield_fn != 0:
            _call_void(yield_fn)
    return _atomic_load(abandon) == 0


@njit(**_OPTS)
def prefetch_rows(X, T, order, start, stop):
    """Prefetch the rows ``order[start:stop]`` of X and T, the next chunk a shuffled epoch will
    gather, while the current one is computed. A short row is one or two cache lines at a
    random place, so gathering it waits on a cache miss (13 float32 columns: 3.8 us per 32
    rows shuffled against 0.4 in order); the prefetch overlaps that wait with the chunk's
    products. Rows over :data:`PREFETCH_ROW_BYTES` are left to the hardware prefetcher,
    which follows a row once it is read (measured: no gain at 784 columns)."""
    row = X.shape[1] * X.itemsize
    if row > PREFETCH_ROW_BYTES or row == 0:
        return
    xs, ts = X.strides[0], T.strides[0]
    xa, ta = np.int64(X.ctypes.data), np.int64(T.ctypes.data)
    for s in range(start, stop):
        r = np.int64(order[s])
        a = xa + r * xs
        for off in range(0, row, 64):
            _prefetch(a + off)
        _prefetch(a + row - 1)  # the last line, where the row is not aligned to one
        _prefetch(ta + r * ts)


@njit(**_OPTS)
def _addr(a, i):
    """Address of element i of the 1-D array a."""
    return np.int64(a.ctypes.data) + np.int64(i) * np.int64(a.itemsize)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _thin_product(A, ta, B, tb, C, alpha, beta, m, n, k):
    """``C = alpha op(A) op(B) + beta C`` for the two thin products of a layer with one unit:
    its weight gradient ``A^T d`` (C has one column, op(A) = A^T) and the delta below it
    ``d w^T`` (inner dimension one: an outer product). A few thousand multiply-adds, where
    BLAS spends more on its call (arguments checked, operands packed) than on the arithmetic:
    0.61 -> 0.23 us and 0.51 -> 0.14 us at 32 x 64, 11.3 -> 3.1 and 8.1 -> 3.8 us at
    256 x 128 (float32, one core). These loops run along rows, the contiguous direction, so
    LLVM vectorises them; each element of C is one sum in row order. As with BLAS, C is not
    read when beta is 0. The forward product of such a layer, a dot product per row, is
    :func:`_row_dots`."""
    zero = beta - beta  # 0 in C's dtype (beta * 0 would promote float32 to float64)
    if ta and n == 1:  # C[p] = alpha sum_i A[i, p] op(B)[i] + beta C[p], a pass over A's rows
        for p in range(m):
            C[p, 0] = beta * C[p, 0] if beta != zero else zero
        for i in range(k):
            b = alpha * (B[0, i] if tb else B[i, 0])
            for p in range(m):
                C[p, 0] += A[i, p] * b
        return
    # k == 1: C[i, j] = alpha op(A)[i] op(B)[j] + beta C[i, j]
    for i in range(m):
        a = alpha * (A[0, i] if ta else A[i, 0])
        if beta != zero:
            for j in range(n):
                C[i, j] = a * (B[j, 0] if tb else B[0, j]) + beta * C[i, j]
        else:
            for j in range(n):
                C[i, j] = a * (B[j, 0] if tb else B[0, j])


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _row_dots(A, B, tb, C, alpha, beta, m, k):
    """``C[i, 0] = alpha sum_p A[i, p] op(B)[p] + beta C[i, 0]``: the forward product of a layer
    with one unit (A not transposed, C one column), a dot product per row along A's
    contiguous rows, which LLVM vectorises in the order it picks (``reassoc``). Faster than
    ``?gemm``'s call on these shapes (float32, one core, OpenBLAS's Haswell kernel, contiguous
    operands: 32 x 64, 0.69 -> 0.17 us; 256 x 128, 7.4 -> 2.2 us; 32 x 13, 0.25 -> 0.15 us).
    Indexed in 2-D rather than :func:`_dot` of row views, which measured 0.37 us at 32 x 64:
    each view updates its owner's reference count."""
    zero = beta - beta  # 0 in C's dtype (beta * 0 would promote float32 to float64)
    for i in range(m):
        s = zero
        if tb:
            for p in range(k):
                s += A[i, p] * B[0, p]
        else:
            for p in range(k):
                s += A[i, p] * B[p, 0]
        C[i, 0] = alpha * s + beta * C[i, 0] if beta != zero else alpha * s


@njit(**_OPTS)
def gemm(fn, ib, fb, ch, A, ta, B, tb, C, alpha, beta):
    """Row-major ``C = alpha op(A) op(B) + beta C`` (op transposes when ``ta``/``tb``) with
    the column-major BLAS at ``fn``: row-major C is column-major C^T = op(B)^T op(A)^T, so
    the operands swap places and keep their flags. ``ib``, ``fb``, ``ch``: scratch for the
    integer, float and character arguments (BLAS takes them by address). The thin products of
    a one-unit layer run as compiled loops (:func:`_thin_product`, :func:`_row_dots`)."""
    m, n = C.shape[0], C.shape[1]
    k = A.shape[0] if ta else A.shape[1]
    if m == 0 or n == 0:
        return
    if n == 1 and not ta and k > 1:
        _row_dots(A, B, tb, C, alpha, beta, m, k)
        return
    if (n == 1 and ta) or k == 1:
        _thin_product(A, ta, B, tb, C, alpha, beta, m, n, k)
        return
    ib[0], ib[1], ib[2] = n, m, k
    ib[3] = B.strides[0] // B.itemsize
    ib[4] = A.strides[0] // A.itemsize
    ib[5] = C.strides[0] // C.itemsize
    fb[0], fb[1] = alpha, beta
    ch[0] = 84 if tb else 78  # 'T' / 'N'
    ch[1] = 84 if ta else 78
    _call_pointer_fn(fn, (_addr(ch, 0), _addr(ch, 1), _addr(ib, 0), _addr(ib, 1), _addr(ib, 2),
                          _addr(fb, 0), np.int64(B.ctypes.data), _addr(ib, 3),
                          np.int64(A.ctypes.data), _addr(ib, 4), _addr(fb, 1),
                          np.int64(C.ctypes.data), _addr(ib, 5)))


def exp_constants(dtype):
    """(float constants, integer constants) of :func:`exp_nonpositive` for ``dtype``: the
    Taylor coefficients 1/j! (j = 0..12), log2(e), ln 2 split in a high part exact in few
    bits and the rest (Cody-Waite), the clamp below which exp rounds to 0, 0.5; and the
    exponent bias and mantissa width of the dtype."""
    dt = np.dtype(dtype)
    single = dt == np.float32
    ln2_hi, ln2_lo = (0.693145751953125, 1.428606820309417232e-06) if single else \
        (0.6931471803691238164901733398437500, 1.9082149292705877000220e-10)
    floats = [1.0 / math.factorial(j) for j in range(13)]
    floats += [1.0 / math.log(2.0), ln2_hi, ln2_lo, -105.0 if single else -746.0, 0.5]
    ints = (127, 23) if single else (1023, 52)
    return np.array(floats, dt), np.array(ints, np.int32 if single else np.int64)


@intrinsic
def _bits_as_float(typingctx, like, bits):
    """The float of ``like``'s type whose bit pattern is the low bits of the integer ``bits``
    (a reinterpretation, as ``int.view(float)`` on an array, without the array)."""
    if not isinstance(like, types.Float) or not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(like)
        ity = ir.IntType(like.bitwidth)
        v = args[1]
        if v.type.width > ity.width:
            v = builder.trunc(v, ity)
        elif v.type.width < ity.width:
            v = builder.sext(v, ity)
        return builder.bitcast(v, fty)

    return like(like, bits), codegen


@njit(**_INLINE)
def _exp_load(ce, ci):
    """The constants of :func:`_exp_np` as a tuple: loaded once, held in registers (loads
    from an array inside the loop could alias its stores and stop the vectoriser)."""
    return (ce[0], ce[1], ce[2], ce[3], ce[4], ce[5], ce[6], ce[7], ce[8], ce[9], ce[10],
            ce[11], ce[12], ce[13], ce[14], ce[15], ce[16], ce[17], np.int64(ci[0]), np.int64(ci[1]))


@njit(**_INLINE)
def _exp_np(v, k):
    """exp(v) for v <= 0 (NaN stays NaN) in straight-line arithmetic LLVM vectorises, with
    the constants ``k`` of :func:`_exp_load`; the formula is :func:`exp_nonpositive`'s."""
    log2e, ln2_hi, ln2_lo, lo, half, bias, bits = k[13], k[14], k[15], k[16], k[17], k[18], k[19]
    v = lo if v < lo else v
    n = np.floor(v * log2e + half)
    r = (v - n * ln2_hi) - n * ln2_lo
    p = k[12] * r + k[11]
    p = p * r + k[10]
    p = p * r + k[9]
    p = p * r + k[8]
    p = p * r + k[7]
    p = p * r + k[6]
    p = p * r + k[5]
    p = p * r + k[4]
    p = p * r + k[3]
    p = p * r + k[2]
    p = p * r + k[1]
    p = p * r + k[0]
    ni = np.int64(n if n == n else half)  # (NaN to integer is undefined in LLVM; p is NaN)
    n1 = ni >> 1
    return p * _bits_as_float(p, (n1 + bias) << bits) * _bits_as_float(p, (ni - n1 + bias) << bits)


@njit(**_OPTS)
def exp_nonpositive(x, out, ce, ci):
    r"""out = exp(x) for x <= 0 (NaN stays NaN), 1-D arrays, in a loop LLVM vectorises.

    :math:`e^x = 2^k e^r` with :math:`k = \lfloor x \log_2 e + 1/2 \rfloor` and
    :math:`r = x - k \ln 2` (:math:`|r| \le \ln 2 / 2`, ln 2 in two parts so that
    :math:`k \ln 2` is exact); :math:`e^r` by its Taylor polynomial of degree 12 (truncation
    below 2e-16 relative); :math:`2^k` as two factors :math:`2^{k_1} 2^{k_2}`,
    :math:`k_1 = \lfloor k/2 \rfloor`, each built from its exponent bits, so that results
    down to the smallest subnormal round correctly. Measured: at most 1.1 ulp (float32) and
    3 ulp (float64) from the exact value.
    """
    k = _exp_load(ce, ci)
    for i in range(x.shape[0]):
        out[i] = _exp_np(x[i], k)


@njit(**_OPTS)
def bias_exp_activate(z, a, b, has_bias, m, c, ex, tanh):
    """Rows 0..m-1 of a hidden layer: z += b, then a = sigmoid(z) (_maths.sigmoid_from, from
    exp(-|z|)) or, with ``tanh``, a = tanh(z) (_maths.tanh_from, from exp(-2|z|)), the exp
    from the vectorised :func:`exp_nonpositive` (constants ``ex``); numba's ``math.exp`` and
    ``math.tanh`` are scalar libm calls per element (784-512-10 tanh at batch 64: a third of
    the epoch). The bias is added in its own pass over the row, which is in L1 by then."""
    w = z.shape[1]
    k = _exp_load(ex[0], ex[1])
    one = c[C_ONE]
    two = one + one
    z, a, b = _unowned(z), _unowned(a), _unowned(b)
    for s in range(m):
        zs, as_ = z[s], a[s]
        if has_bias:
            for j in range(w):
                zs[j] += b[j]
        if tanh:
            for j in range(w):
                as_[j] = tanh_from(_exp_np(-two * abs(zs[j]), k), zs[j], one)
        else:
            for j in range(w):
                as_[j] = sigmoid_from(_exp_np(-abs(zs[j]), k), zs[j], one)


@njit(**_INLINE)
def chunk_pass(x, t, m, acc, direct, Ws, Bs, GWs, GBs, lay, actp, loss, fused, c, scale, Zs, As, Ds,
               fn, ib, fb, ch, ex):
    r"""Forward and backward over the m rows ``x``, ``t`` of one chunk; returns the sum of their
    losses. Forward :math:`Z_l = A_{l-1} W_l`, :math:`A_l = f(Z_l + b_l)`; backward
    :math:`D_{l-1} = (D_l W_l^\top) \odot f'(Z_{l-1})`; the weight gradient
    :math:`A_{l-1}^\top D_l` is written into ``GWs`` (added to it where ``acc``), or with
    ``direct`` taken as plain SGD's step :math:`W_l \leftarrow W_l - \eta A_{l-1}^\top D_l`
    straight into the weights, after the loss is checked (a non-finite chunk changes nothing)."""
    nl = lay.shape[0]
    one, zero = c[C_ONE], c[C_ZERO]
    a_prev = x
    for li in range(nl - 1):
        z, a = Zs[li][:m], As[li][:m]
        gemm(fn, ib, fb, ch, a_prev, False, Ws[li], False, z, one, zero)
        if lay[li, ACT] == SIGMOID or lay[li, ACT] == TANH:
            bias_exp_activate(z, a, Bs[li], lay[li, HAS_BIAS], m, c, ex, lay[li, ACT] == TANH)
        else:
            rows_bias_activate(z, a, Bs[li], lay[li, HAS_BIAS], lay[li, ACT], actp[li], m, c)
        a_prev = a
    lo = nl - 1
    z, d = Zs[lo][:m], Ds[lo][:m]
    gemm(fn, ib, fb, ch, a_prev, False, Ws[lo], False, z, one, zero)
    total = rows_output(z, As[lo][:m], d, t, Bs[lo], lay[lo, HAS_BIAS], lay[lo, TRAIN_BIAS],
                        GBs[lo], acc, loss, fused, lay[lo, ACT], actp[lo], scale, m, c)
    if direct and not np.isfinite(total):
        return total
    for li in range(lo, -1, -1):
        d = Ds[li][:m]
        a_below = As[li - 1][:m] if li > 0 else x
        if li > 0:
            d_below = Ds[li - 1][:m]
            gemm(fn, ib, fb, ch, d, False, Ws[li], True, d_below, one, zero)
            rows_hidden(Zs[li - 1][:m], a_below, d_below, lay[li - 1, ACT], actp[li - 1],
                        lay[li - 1, TRAIN_BIAS], GBs[li - 1], acc, m, c)
        if direct:
            gemm(fn, ib, fb, ch, a_below, True, d, False, Ws[li], -c[C_LR], one)
        else:
            gemm(fn, ib, fb, ch, a_below, True, d, False, GWs[li], one, one if acc else zero)
    return total


@njit(**_INLINE)
def rows_pass(X, T, order, shuffled, lo, hi, ahead, k, chunk, direct, Ws, Bs, GWs, GBs, lay, actp, loss,
              fused, c, scale, Zs, As, Ds, xb, tb, fn, ib, fb, ch, ex):
    """Rows ``lo..hi-1`` of the epoch (``order[lo:hi]`` where ``shuffled``) through
    :func:`chunk_pass` in chunks of at most ``chunk``, their gradients added (the first chunk
    writes them); returns the sum of their losses. A shuffled chunk's rows are gathered, and
    the next chunk's (up to row ``ahead`` of the order) prefetched meanwhile. With ``direct``
    a chunk whose loss is not finite ends the pass before any weight changes."""
    total = 0.0
    for cs in range(lo, hi, chunk):
        ce = min(cs + chunk, hi)
        m = ce - cs
        if shuffled:
            gather_rows(X, T, order, cs, m, xb, tb)
            prefetch_rows(X, T, order, ce, min(ce + min(chunk, k), ahead))
            x, t = xb[:m], tb[:m]
        else:
            x, t = X[cs:ce], T[cs:ce]
        part = chunk_pass(x, t, m, cs > lo, direct, Ws, Bs, GWs, GBs, lay, actp, loss, fused, c, scale,
                          Zs, As, Ds, fn, ib, fb, ch, ex)
        total += part
        if direct and not np.isfinite(part):
            break  # nothing applied yet
    return total


@njit(**_OPTS)
def batch_epoch(X, T, order, shuffled, n, k, chunk, Ws, Bs, GWs, GBs, params, grads, lay, actp,
                loss, fused, c, Zs, As, Ds, xb, tb, fn, ib, fb, ch, ex, rule, S0, S1, S2, ns, mask,
                noise, rnd, h, q):
    """One epoch of updates on batches of k rows (the last may be shorter), chunks of at most
    ``chunk`` rows each; after each batch's gradient, the update of any rule of codes.RULES as
    one compiled pass (:func:`._maths.rule_scalars`, :func:`rule_update`; its arguments from
    ``rule`` on are those). Returns (sum of batch loss x batch size, 1-based number of the
    first batch whose loss is not finite or 0, updates applied)."""
    nl = lay.shape[0]
    lr = c[C_LR]
    zero = c[C_ZERO]
    # no reference counts on the layers' arrays and their views in the loop (the caller keeps
    # them alive): each count is an atomic instruction, a few microseconds per batch in all
    Ws, Bs, GWs, GBs = _unowned_tuple(Ws), _unowned_tuple(Bs), _unowned_tuple(GWs), _unowned_tuple(GBs)
    Zs, As, Ds = _unowned_tuple(Zs), _unowned_tuple(As), _unowned_tuple(Ds)
    running = 0.0
    applied = 0
    bad = 0
    u = 0
    for start in range(0, n, k):
        u += 1
        stop = min(start + k, n)
        nb = stop - start
        # 1/nb in the network's dtype (one / nb would promote float32 to float64)
        scale = c[C_SCALE_FULL] if nb == k else c[C_SCALE_LAST]
        direct = rule == PLAIN and q[Q_DECAY] == zero and q[Q_NOISY] == zero and nb <= chunk
        total = rows_pass(X, T, order, shuffled, start, stop, n, k, chunk, direct, Ws, Bs, GWs, GBs, lay, actp,
                          loss, fused, c, scale, Zs, As, Ds, xb, tb, fn, ib, fb, ch, ex)
        batch_loss = total / nb
        if not np.isfinite(batch_loss):
            bad = u
            break
        running += batch_loss * nb
        if direct:  # the weights took their step in the gradient product; the biases now
            for li in range(nl):
                if lay[li, TRAIN_BIAS]:
                    b = _unowned(Bs[li])
                    _update(b, b[:0], _unowned(GBs[li]), lr, lr, PLAIN)
        else:
            rule_scalars(rule, h, q, batch_loss)
            rule_update(rule, params, grads, mask, noise, rnd, S0, S1, S2, ns, q)
        applied += 1
    return running, bad, applied


@njit(**_OPTS)
def batch_epoch_rows(tid, nt, sync, parts, yield_fn, X, T, order, shuffled, n, k, chunk, Ws, Bs, GWs, GBs,
                     G, params, grads, lay, actp, loss, fused, c, Zs, As, Ds, xb, tb, fn, ib, fb, ch, ex,
                     rule, S0, S1, S2, ns, mask, noise, rnd, h, q):
    r"""Thread ``tid`` of ``nt`` running :func:`batch_epoch`'s epoch together, each batch's rows
    split between them. Per batch of :math:`n_b` rows, thread :math:`t` takes rows
    :math:`\lfloor t n_b / n_t \rfloor` to :math:`\lfloor (t+1) n_b / n_t \rfloor - 1` (in
    chunks of at most ``chunk``), with one-thread BLAS, and writes their gradient sum into its
    row ``G[tid]`` of the flat gradient buffers (``GWs``, ``GBs``: its views) and its loss sum
    into ``parts[tid]``. After a barrier each thread adds the threads' gradients in thread
    order, :math:`g = ((g_0 + g_1) + g_2) + \dots`, into ``grads`` and takes the update of
    ``rule`` for its own contiguous share of the parameters; ``h`` and ``q`` are its own copies
    of the rule's scalars, computed alike by every thread; a second barrier ends the batch.
    Every thread sees the same loss sums, so all stop together at a non-finite batch loss.
    Returns what :func:`batch_epoch` returns."""
    zero = c[C_ZERO]
    Ws, Bs, GWs, GBs = _unowned_tuple(Ws), _unowned_tuple(Bs), _unowned_tuple(GWs), _unowned_tuple(GBs)
    Zs, As, Ds = _unowned_tuple(Zs), _unowned_tuple(As), _unowned_tuple(Ds)
    nw = params.shape[0]
    share = ((nw + nt - 1) // nt + 15) // 16 * 16  # whole cache lines of float32
    plo, phi = min(tid * share, nw), min((tid + 1) * share, nw)
    mine = G[tid]
    running = 0.0
    applied = 0
    bad = 0
    u = 0
    for start in range(0, n, k):
        u += 1
        stop = min(start + k, n)
        nb = stop - start
        scale = c[C_SCALE_FULL] if nb == k else c[C_SCALE_LAST]
        lo, hi = start + (tid * nb) // nt, start + ((tid + 1) * nb) // nt
        if hi == lo:  # a last batch of fewer rows than threads
            mine[:] = zero
        parts[tid] = rows_pass(X, T, order, shuffled, lo, hi, hi, k, chunk, False, Ws, Bs, GWs, GBs, lay,
                               actp, loss, fused, c, scale, Zs, As, Ds, xb, tb, fn, ib, fb, ch, ex)
        if not barrier(sync, nt, yield_fn):
            break
        total = 0.0
        for i in range(nt):
            total += parts[i]
        batch_loss = total / nb
        if not np.isfinite(batch_loss):
            bad = u
            break
        running += batch_loss * nb
        for i in range(plo, phi):
            g = G[0, i]
            for j in range(1, nt):
                g += G[j, i]
            grads[i] = g
        rule_scalars(rule, h, q, batch_loss)
        # every array of one entry per parameter, sliced alike; an unused one is empty
        rule_update(rule, params[plo:phi], grads[plo:phi], mask[plo:phi], noise[plo:phi], rnd[plo:phi],
                    S0[plo:phi], S1[plo:phi], S2[plo:phi], ns, q)
        applied += 1
        if not barrier(sync, nt, yield_fn):
            break
    return running, bad, applied


# --------------------------------------------------------------------------- blocked stochastic
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _dot(a, w):
    """sum_i a[i] w[i], summed in the order LLVM's vectoriser picks (``reassoc``; NaN and
    inf behave as in any sum)."""
    acc = a[0] * w[0]
    for i in range(1, a.shape[0]):
        acc += a[i] * w[i]
    return acc


@njit(**_OPTS)
def _block_coefficients(coef, mu, kind, one, zero):
    r"""Rows of ``coef`` (3, B+1) for blocks under momentum: ``alpha[t]``, ``beta[k]``,
    ``mu^k``. After t per-sample updates from :math:`(W_0, V_0)` with gradients
    :math:`g_u`, the weights are

    .. math:: W_t = W_0 + \alpha_t V_0 - \eta \textstyle\sum_{u<t} \beta_{t-u}\, g_u,
              \qquad V_t = \mu^t V_0 - \eta \textstyle\sum_{u<t} \mu^{t-1-u} g_u

    with, for momentum (:math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + v`),
    :math:`\alpha_t = \sum_{s=1}^{t} \mu^s` and :math:`\beta_k = \sum_{j<k} \mu^j`; for
    Nesterov (:math:`w \leftarrow w + \mu v - \eta g`), :math:`\alpha_t = \mu \sum_{s=1}^t
    \mu^s` and :math:`\beta_k = 1 + \mu \sum_{j<k} \mu^j`; for plain SGD 0 and 1."""
    a, b, pw = zero, zero, one
    coef[0, 0], coef[1, 0], coef[2, 0] = zero, zero, one
    for k in range(1, coef.shape[1]):
        b += pw  # sum_{j<k} mu^j
        pw = pw * mu
        a += pw  # sum_{s=1..k} mu^s
        coef[2, k] = pw
        if kind == PLAIN:
            coef[0, k], coef[1, k] = zero, one
        elif kind == MOMENTUM:
            coef[0, k], coef[1, k] = a, b
        else:
            coef[0, k], coef[1, k] = mu * a, mu * b + one


@njit(**_OPTS)
def _transpose(A, AT, back):
    """AT = A^T, or with ``back`` A = AT^T."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if back:
                A[i, j] = AT[j, i]
            else:
                AT[j, i] = A[i, j]


@njit(**_OPTS)
def block_epoch(X, T, order, n, B, Ws, Bs, VWs, VBs, WTs, VTs, kind, lay, actp, loss, fused, c,
                xb, tb, Zb, P, Gf, D0, Ds, coef, Zr, Ar, Dr, fn, ib, fb, ch, ex):
    r"""A stochastic epoch (SGD: plain, momentum or Nesterov) of a net with a wide first
    layer, in blocks of B samples, as one compiled call (the algorithm:
    stochastic_blocks.py).

    Per block: the rows are gathered, :math:`Z_B = X_B W` and :math:`G = X_B X_B^\top`
    (and, under momentum, :math:`P_B = X_B V`) are ``?gemm`` calls, then per sample *t*, with
    the coefficients of :func:`_block_coefficients`,

    .. math:: z_t = Z_B[t] + \alpha_t P_B[t] - \eta \textstyle\sum_{s<t} \beta_{t-s}
              (G[t, s] + [b\ \text{trained}])\, d_s
              \quad (+\ b + \alpha_t v_b)

    and the sample's forward pass, loss, and update of the layers above the first; after
    the block, :math:`W \leftarrow W + \alpha_m V - \eta X_B^\top \mathrm{diag}(\beta_{m-s})
    D_B` and :math:`V \leftarrow \mu^m V - \eta X_B^\top \mathrm{diag}(\mu^{m-1-s}) D_B` are
    ``?gemm`` calls with ``beta`` = 1 and :math:`\mu^m` (plain SGD: one product,
    ``alpha = -lr``, ``beta = 1``). The layers above the first (and their velocities) are
    kept transposed (``WTs``, ``VTs``, written back at the end), so that their per-sample
    loops run along each layer's inputs, contiguous: the delta :math:`W_l d_l` and the
    update in one pass, the forward sums as dot products.

    ``Zr``/``Ar``/``Dr``: per layer a (1, width) row of pre-activations, activations and
    deltas (the first layer's deltas go to ``D0``); ``P``, ``Ds`` and the velocities are
    untouched under plain SGD. Returns (sum of the per-sample losses, 1-based number of the
    first sample whose loss was not finite or 0, samples applied).
    """
    X, T, order = _unowned(X), _unowned(T), _unowned(order)
    Ws, Bs, VWs, VBs = _unowned_tuple(Ws), _unowned_tuple(Bs), _unowned_tuple(VWs), _unowned_tuple(VBs)
    WTs, VTs = _unowned_tuple(WTs), _unowned_tuple(VTs)
    Zr, Ar, Dr = _unowned_tuple(Zr), _unowned_tuple(Ar), _unowned_tuple(Dr)
    D0, Zb, Gf, xb, tb = _unowned(D0), _unowned(Zb), _unowned(Gf), _unowned(xb), _unowned(tb)
    P, Ds, coef = _unowned(P), _unowned(Ds), _unowned(coef)
    lr, mu = c[C_LR], c[C_MU]
    one, zero = c[C_ONE], c[C_ZERO]
    plain = kind == PLAIN
    _block_coefficients(coef, mu, kind, one, zero)
    nl = lay.shape[0]
    lo = nl - 1
    W0, b0, V0, vb0 = Ws[0], Bs[0], VWs[0], VBs[0]
    for l in range(1, nl):
        _transpose(Ws[l], WTs[l], False)
        if not plain:
            _transpose(VWs[l], VTs[l], False)
    has_b0, train_b0 = lay[0, HAS_BIAS] != 0, lay[0, TRAIN_BIAS] != 0
    bias_term = one if train_b0 else zero
    n_h = W0.shape[1]
    zr = Zr[0][0]
    running = 0.0
    applied = 0
    bad = 0
    for start in range(0, n, B):
        m = min(B, n - start)
        gather_rows(X, T, order, start, m, xb, tb)
        x = xb[:m]
        gemm(fn, ib, fb, ch, x, False, W0, False, Zb[:m], one, zero)
        if not plain:
            gemm(fn, ib, fb, ch, x, False, V0, False, P[:m], one, zero)
        G = Gf[:m * m].reshape((m, m))
        gemm(fn, ib, fb, ch, x, False, x, True, G, one, zero)
        done = m
        for t in range(m):
            for j in range(n_h):
                zr[j] = Zb[t, j]
            if not plain:
                at = coef[0, t]
                for j in range(n_h):
                    zr[j] += at * P[t, j]
                if train_b0:
                    for j in range(n_h):
                        zr[j] += at * vb0[j]
            for s in range(t):
                f = lr * (coef[1, t - s] * (G[t, s] + bias_term))
                for j in range(n_h):
                    zr[j] -= f * D0[s, j]
            # forward: bias and activation of each layer (sums of layers above the first as
            # dot products with their transposed weights)
            for l in range(nl):
                z, a = Zr[l], Ar[l]
                if l > 0:
                    ap, WT = Ar[l - 1][0], WTs[l]
                    for j in range(z.shape[1]):
                        z[0, j] = _dot(ap, WT[j])
                if l < lo and lay[l, ACT] == SIGMOID:
                    bias_exp_activate(z, a, Bs[l], lay[l, HAS_BIAS], 1, c, ex, False)
                else:
                    rows_bias_activate(z, a, Bs[l], lay[l, HAS_BIAS], lay[l, ACT], actp[l], 1, c)
            value = _output_loss_delta(loss, fused, lay[lo, ACT], actp[lo], Zr[lo][0], Ar[lo][0],
                                       Dr[lo][0], tb, t, c)
            if not math.isfinite(value):
                bad = start + t + 1
                done = t
                break
            running += value
            # backward: per layer above the first, dE/da below with the old weights and the
            # layer's update in one pass per unit, then the delta of the layer below
            for l in range(lo, 0, -1):
                d_l, ap = Dr[l][0], Ar[l - 1][0]
                da = D0[t] if l == 1 else Dr[l - 1][0]
                for i in range(da.shape[0]):
                    da[i] = zero
                WT = WTs[l]
                for j in range(d_l.shape[0]):
                    d = d_l[j]
                    w = WT[j]
                    if plain:  # (sgd_step's velocity argument unused: lr stands in)
                        for i in range(da.shape[0]):
                            wi = w[i]
                            da[i] += wi * d
                            w[i] = sgd_step(wi, lr, ap[i] * d, lr, mu, PLAIN)[0]
                    else:
                        v = VTs[l][j]
                        for i in range(da.shape[0]):
                            wi = w[i]
                            da[i] += wi * d
                            wn, vn = sgd_step(wi, v[i], ap[i] * d, lr, mu, kind)
                            v[i] = vn
                            w[i] = wn
                if lay[l, TRAIN_BIAS]:
                    _update(Bs[l], VBs[l], d_l, lr, mu, kind)
                _hidden_delta(lay[l - 1, ACT], actp[l - 1], Zr[l - 1][0], ap, da, c)
        if done:
            xd, dd = x[:done], D0[:done]
            if plain:
                gemm(fn, ib, fb, ch, xd, True, dd, False, W0, -lr, one)
            else:
                aw = coef[0, done]
                for i in range(W0.shape[0]):
                    for j in range(n_h):
                        W0[i, j] += aw * V0[i, j]
                for s in range(done):
                    f = coef[1, done - s]
                    for j in range(n_h):
                        Ds[s, j] = f * D0[s, j]
                gemm(fn, ib, fb, ch, xd, True, Ds[:done], False, W0, -lr, one)
                for s in range(done):
                    f = coef[2, done - 1 - s]
                    for j in range(n_h):
                        Ds[s, j] = f * D0[s, j]
                gemm(fn, ib, fb, ch, xd, True, Ds[:done], False, V0, -lr, coef[2, done])
            if train_b0:
                for j in range(n_h):
                    gb, gv = zero, zero
                    for s in range(done):
                        gb += coef[1, done - s] * D0[s, j]
                        gv += coef[2, done - 1 - s] * D0[s, j]
                    if plain:
                        b0[j] = sgd_step(b0[j], lr, gb, lr, mu, PLAIN)[0]
                    else:  # the block's closed form of the momentum rule (_block_coefficients)
                        vold = vb0[j]
                        b0[j] = b0[j] + coef[0, done] * vold - lr * gb
                        vb0[j] = coef[2, done] * vold - lr * gv
        applied += done
        if bad:
            break
    for l in range(1, nl):
        _transpose(Ws[l], WTs[l], True)
        if not plain:
            _transpose(VWs[l], VTs[l], True)
    return running, bad, applied
