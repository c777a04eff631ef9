r"""Compiled kernels of the numba engine (imported only when that engine runs).

One call runs a whole epoch of updates, so Python is entered once per epoch. A network of
up to ``MAX_LAYERS`` layers is passed as tuples with one entry per layer (padded to
``MAX_LAYERS`` with empty arrays, so that one compiled kernel per dtype serves every depth): weights ``Ws`` (views into the
network's flat parameter vector, so updates land in place), biases ``Bs``, their
velocities ``VWs``/``VBs`` (momentum SGD) and the unit buffers ``Zs``, ``As``, ``Ds``
(pre-activations, activations, deltas; ``(k, n_out)`` per layer for k rows). ``lay`` holds
per layer whether it has biases, whether they train and the activation code; ``actp`` an
activation parameter (sigmoid flat spot, leaky ReLU slope); ``c`` scalar constants in the
network's dtype (``C_*``), so float32 arithmetic stays float32 (a bare ``1.0`` literal
would promote it to float64 in numba).

The arithmetic follows :mod:`deltaprop.layers`, :mod:`deltaprop.activations` and
:mod:`deltaprop.losses` formula by formula (``z = x W`` then ``z += b``; sigmoid from
``exp(-|z|)``; deltas scaled by ``1/n`` before they are summed; every gradient computed
with the old weights), so the weights equal the NumPy engine's up to the rounding of the
summation order.

What makes the per-sample kernel fast is that it streams the first layer's weight matrix
(by far the largest) once per sample: the pass that applies sample *s*'s update to row *i*
of ``W1`` also adds ``x_{s+1,i} W1[i, :]`` to the next sample's pre-activation, so the
forward pass of the next sample costs no second trip through memory. Inner loops run over a layer's units, contiguous in
memory, so LLVM vectorises them; views are made once per epoch, not per row, because each
view costs a reference-count update.
"""

from __future__ import annotations

import math

from numba import njit
from numba.core import cgutils
from numba.extending import intrinsic

from . import codes
from ._maths import (activation, activation_vjp, log_sum_exp, loss_delta, loss_term, loss_value,
                     rule_load, rule_scalars, rule_step, sgd_step, sigmoid_from, softmax_term,
                     softmax_vjp)
from .codes import (ACT, ADAM, C_EPS, C_HALF, C_LR, C_MSE, C_MU, C_ONE, C_ZERO, CE, HAS_BIAS,
                    LEAKY_RELU, MOMENTUM, NESTEROV, PLAIN, Q_DECAY, Q_MASKED, Q_NOISY, Q_SIGMA, Q_WD, Q_ZERO, RELU,
                    SARPROP, SOFTMAX, TANH, TRAIN_BIAS)

#: Deepest network the kernels take (the tuples below are padded to this length).
MAX_LAYERS = codes.MAX_LAYERS

_OPTS = dict(cache=True, nogil=True, error_model="numpy")
# The two-layer kernel inlines its helpers (see _inlined): in a small net a call costs more
# than the helper's body, and it runs once per sample. Elsewhere they are plain calls, which
# compile once and keep the compile time of the tests and of a first run low.
_INLINE = dict(_OPTS, inline="always")


@intrinsic
def _unowned(typingctx, arr):
    """The same array without its memory owner, so that numba does not count references to
    it (or to the views taken from it).

    Every view numba makes, and every array bound to a name in an inlined helper, updates
    the owner's reference count with an atomic instruction; in a 2-2-1 network those updates
    cost more than the arithmetic of an update. The kernels take unowned arrays once, before
    their loops; the caller keeps the real arrays alive for the duration of the call.
    """
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        return _unown_array(context, builder, aryty, args[0])

    return arr(arr), codegen


def _unown_array(context, builder, aryty, value):
    src = cgutils.create_struct_proxy(aryty)(context, builder, value=value)
    dst = cgutils.create_struct_proxy(aryty)(context, builder)
    for name in ("nitems", "itemsize", "data", "shape", "strides"):
        setattr(dst, name, getattr(src, name))
    dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
    dst.parent = cgutils.get_null_value(dst.parent.type)
    return dst._getvalue()


@intrinsic
def _unowned_tuple(typingctx, tup):
    """:func:`_unowned` for every array of a tuple of arrays."""
    def codegen(context, builder, signature, args):
        tupty = signature.args[0]
        out = cgutils.get_null_value(context.get_value_type(tupty))
        for i, aryty in enumerate(tupty):
            item = builder.extract_value(args[0], i)
            out = builder.insert_value(out, _unown_array(context, builder, aryty, item), i)
        return out

    return tup(tup), codegen


@njit(**_OPTS)
def _activate(code, p, z, a, c):
    """a = f(z) for one row of units (_maths.activation, or softmax over the row)."""
    one = c[C_ONE]
    zero = c[C_ZERO]
    n = z.shape[0]
    if code == SOFTMAX:
        m = z[0]
        for j in range(1, n):
            if z[j] > m:
                m = z[j]
        s = zero
        for j in range(n):
            e = softmax_term(z[j], m)
            a[j] = e
            s += e
        for j in range(n):
            a[j] /= s
    else:
        for j in range(n):
            a[j] = activation(code, z[j], p, one, zero)


@njit(**_OPTS)
def _hidden_delta(code, p, z, a, d, c):
    r"""d (holding dE/da on entry) becomes dE/dz for one row of units (_maths.activation_vjp,
    or softmax's vector-Jacobian product)."""
    one = c[C_ONE]
    zero = c[C_ZERO]
    n = z.shape[0]
    if code == SOFTMAX:
        s = zero
        for j in range(n):
            s += d[j] * a[j]
        for j in range(n):
            d[j] = softmax_vjp(a[j], d[j], s)
    else:
        for j in range(n):
            d[j] = activation_vjp(code, z[j], a[j], d[j], p, one, zero)


@njit(**_OPTS)
def _output_loss_delta(loss, fused, code, p, z, a, d, T, r, c):
    """Per-sample loss of row r of T (returned as float64) and its output delta into d
    (_maths.loss_term, loss_value, loss_delta; then the activation's backward step unless
    fused). T and r rather than a row view: a view per sample costs a reference count update."""
    one = c[C_ONE]
    zero = c[C_ZERO]
    eps = c[C_EPS]
    n = z.shape[0]
    ts = zero  # sum of the targets: the fused softmax + CE delta
    lse = zero  # logsumexp(z): the CE value after softmax
    if loss == CE:
        for j in range(n):
            ts += T[r, j]
        if code == SOFTMAX:
            m = z[0]
            for j in range(1, n):
                if z[j] > m:
                    m = z[j]
            se = zero
            for j in range(n):
                se += softmax_term(z[j], m)
            lse = log_sum_exp(m, se)
    s = zero
    for j in range(n):
        t = T[r, j]
        s += loss_term(loss, code, z[j], a[j], t, lse, eps, one, zero)
        d[j] = loss_delta(loss, fused, a[j], t, ts, c[C_MSE], eps, one)
    value = loss_value(loss, s, n, c[C_HALF])
    if not fused:
        _hidden_delta(code, p, z, a, d, c)
    return value


@njit(**_OPTS)
def _update(w, v, g, lr, mu, kind):
    """w takes the update for the gradient g elementwise (_maths.sgd_step; v: velocity, same
    shape, or empty under plain SGD)."""
    n = g.shape[0]
    if kind == PLAIN:
        for j in range(n):
            w[j] = sgd_step(w[j], lr, g[j], lr, mu, PLAIN)[0]  # (no velocity: lr stands in)
    else:
        for j in range(n):
            wj, vj = sgd_step(w[j], v[j], g[j], lr, mu, kind)
            v[j] = vj
            w[j] = wj


@njit(**_OPTS)
def _update_row_g(W, V, i, g, lr, mu, kind):
    """Row i of W takes the update for the gradient row g."""
    if kind == PLAIN:
        _update(W[i], W[i, :0], g, lr, mu, kind)
    else:
        _update(W[i], V[i], g, lr, mu, kind)


@njit(**_OPTS)
def _forward_rows(Ws, Bs, lay, actp, Zs, As, nb, c):
    """Forward pass of rows 0..nb-1 whose first-layer sums x W1 are already in Zs[0]."""
    zero = c[C_ZERO]
    for l in range(lay.shape[0]):
        z, a = Zs[l], As[l]
        n_out = z.shape[1]
        if l > 0:
            W, ap = Ws[l], As[l - 1]
            for s in range(nb):
                for j in range(n_out):
                    z[s, j] = zero
                for i in range(W.shape[0]):
                    ai = ap[s, i]
                    for j in range(n_out):
                        z[s, j] += ai * W[i, j]
        if lay[l, HAS_BIAS]:
            b = Bs[l]
            for s in range(nb):
                for j in range(n_out):
                    z[s, j] += b[j]
        for s in range(nb):
            _activate(lay[l, ACT], actp[l], z[s], a[s], c)


@njit(**_OPTS)
def _loss_rows(lay, actp, loss, fused, Zs, As, Ds, T, order, start, nb, c):
    """Sum (float64) of the per-sample losses of rows 0..nb-1, and their output deltas."""
    lo = lay.shape[0] - 1
    z, a, d = Zs[lo], As[lo], Ds[lo]
    total = 0.0
    for s in range(nb):
        total += _output_loss_delta(loss, fused, lay[lo, ACT], actp[lo], z[s], a[s], d[s],
                                    T, order[start + s], c)
    return total


@njit(**_OPTS)
def _backward_one(W, V, d, a, da, lr, mu, kind, zero):
    """One sample through a layer above the first: da = W d with the old weights and the
    update for the gradient a d^T, fused in one pass over W (kind branches outside the loops)."""
    n_in, n_out = W.shape[0], W.shape[1]
    if kind == PLAIN:
        for i in range(n_in):
            ai = a[i]
            acc = zero
            for j in range(n_out):
                w = W[i, j]
                acc += w * d[j]
                W[i, j] = sgd_step(w, lr, ai * d[j], lr, mu, PLAIN)[0]
            da[i] = acc
    else:
        for i in range(n_in):
            ai = a[i]
            acc = zero
            for j in range(n_out):
                w = W[i, j]
                acc += w * d[j]
                wn, vn = sgd_step(w, V[i, j], ai * d[j], lr, mu, kind)
                V[i, j] = vn
                W[i, j] = wn
            da[i] = acc


@njit(**_OPTS)
def _bias_update(b, vb, d, g, nb, kind, c):
    """b takes the update for the gradient sum_s d[s] (g: scratch)."""
    n_out = d.shape[1]
    g = g[:n_out]
    for j in range(n_out):
        g[j] = c[C_ZERO]
    for s in range(nb):
        for j in range(n_out):
            g[j] += d[s, j]
    _update(b, vb, g, c[C_LR], c[C_MU], kind)


@njit(**_OPTS)
def _backward_upper(Ws, Bs, VWs, VBs, lay, actp, kind, Zs, As, Ds, G, nb, c):
    """Layers L-1 .. 1 (all but the first): dE/da of the layer below with the old weights,
    the gradient, the update, then the delta of the layer below."""
    lr, mu = c[C_LR], c[C_MU]
    zero = c[C_ZERO]
    for l in range(lay.shape[0] - 1, 0, -1):
        W, V, d = Ws[l], VWs[l], Ds[l]
        ap, dp = As[l - 1], Ds[l - 1]
        n_in, n_out = W.shape[0], W.shape[1]
        if nb == 1:
            _backward_one(W, V, d[0], ap[0], dp[0], lr, mu, kind, zero)
        else:
            g = G[:n_out]
            for i in range(n_in):
                for s in range(nb):
                    acc = zero
                    for j in range(n_out):
                        acc += W[i, j] * d[s, j]
                    dp[s, i] = acc
                for j in range(n_out):
                    g[j] = zero
                for s in range(nb):
                    ai = ap[s, i]
                    for j in range(n_out):
                        g[j] += ai * d[s, j]
                _update_row_g(W, V, i, g, lr, mu, kind)
        if lay[l, TRAIN_BIAS]:
            _bias_update(Bs[l], VBs[l], d, G, nb, kind, c)
        zp = Zs[l - 1]
        for s in range(nb):
            _hidden_delta(lay[l - 1, ACT], actp[l - 1], zp[s], ap[s], dp[s], c)


@njit(**_OPTS)
def _first_layer_sums(X, order, start, nn, W, z, zero):
    """Rows 0..nn-1 of z = X[order[start:start+nn]] W (no bias yet)."""
    for s in range(nn):
        x = X[order[start + s]]
        for j in range(z.shape[1]):
            z[s, j] = zero
        for i in range(W.shape[0]):
            xi = x[i]
            for j in range(W.shape[1]):
                z[s, j] += xi * W[i, j]


# --------------------------------------------------------------------------- per sample
@njit(**_OPTS)
def _first_layer_pass(W0, V0, X, r, rn, d0, z0, lr, mu, kind, zero):
    """Apply the update of sample X[r] to W1 row by row and, in the same pass, sum the next
    sample's pre-activation z0 = X[rn] W1 with the new weights: W1 is streamed once."""
    n_in0, n_out0 = W0.shape[0], W0.shape[1]
    for j in range(n_out0):
        z0[j] = zero
    i = 0
    if kind == PLAIN:
        # four rows at a time: one load and store of z0 per four weight rows (the velocity
        # argument of sgd_step is unused under plain SGD: lr stands in)
        while i + 4 <= n_in0:
            x0, x1, x2, x3 = X[r, i], X[r, i + 1], X[r, i + 2], X[r, i + 3]
            n0, n1, n2, n3 = X[rn, i], X[rn, i + 1], X[rn, i + 2], X[rn, i + 3]
            for j in range(n_out0):
                dj = d0[j]
                w0 = sgd_step(W0[i, j], lr, x0 * dj, lr, mu, PLAIN)[0]
                w1 = sgd_step(W0[i + 1, j], lr, x1 * dj, lr, mu, PLAIN)[0]
                w2 = sgd_step(W0[i + 2, j], lr, x2 * dj, lr, mu, PLAIN)[0]
                w3 = sgd_step(W0[i + 3, j], lr, x3 * dj, lr, mu, PLAIN)[0]
                W0[i, j] = w0
                W0[i + 1, j] = w1
                W0[i + 2, j] = w2
                W0[i + 3, j] = w3
                z0[j] += (n0 * w0 + n1 * w1) + (n2 * w2 + n3 * w3)
            i += 4
        while i < n_in0:
            xi = X[r, i]
            xni = X[rn, i]
            for j in range(n_out0):
                wj = sgd_step(W0[i, j], lr, xi * d0[j], lr, mu, PLAIN)[0]
                W0[i, j] = wj
                z0[j] += xni * wj
            i += 1
    else:
        # two rows at a time (a velocity row more to stream)
        while i + 2 <= n_in0:
            x0, x1 = X[r, i], X[r, i + 1]
            n0, n1 = X[rn, i], X[rn, i + 1]
            for j in range(n_out0):
                dj = d0[j]
                w0, v0 = sgd_step(W0[i, j], V0[i, j], x0 * dj, lr, mu, kind)
                w1, v1 = sgd_step(W0[i + 1, j], V0[i + 1, j], x1 * dj, lr, mu, kind)
                V0[i, j] = v0
                V0[i + 1, j] = v1
                W0[i, j] = w0
                W0[i + 1, j] = w1
                z0[j] += n0 * w0 + n1 * w1
            i += 2
        while i < n_in0:
            xi = X[r, i]
            xni = X[rn, i]
            for j in range(n_out0):
                wj, vj = sgd_step(W0[i, j], V0[i, j], xi * d0[j], lr, mu, kind)
                V0[i, j] = vj
                W0[i, j] = wj
                z0[j] += xni * wj
            i += 1


def _inlined(fn):
    """An always-inlined twin of the compiled helper ``fn``."""
    return njit(**_INLINE)(fn.py_func)


_activate_i, _hidden_delta_i, _output_loss_delta_i = (
    _inlined(_activate), _inlined(_hidden_delta), _inlined(_output_loss_delta))
_update_i, _backward_one_i, _first_layer_pass_i = (
    _inlined(_update), _inlined(_backward_one), _inlined(_first_layer_pass))


@njit(**_OPTS)
def sample_epoch_2(X, T, order, W0, b0, V0, vb0, W1, b1, V1, vb1, lay, actp, loss, fused, kind,
                   c, U0, U1, n_updates):
    """:func:`sample_epoch` for the common case of two layers (one hidden layer), with every
    view made before the loop: in a small net (XOR 2-2-1) the per-sample cost of making
    views and indexing tuples would otherwise be most of the time. Arrays are passed one by
    one (not in padded tuples), because the call itself costs per array argument and runs
    once per epoch; ``U0``/``U1`` hold z, a and delta of each layer as rows."""
    lr, mu = c[C_LR], c[C_MU]
    zero = c[C_ZERO]
    running = 0.0
    if n_updates == 0:
        return running, 0, 0
    X, T, order = _unowned(X), _unowned(T), _unowned(order)
    c, lay, actp = _unowned(c), _unowned(lay), _unowned(actp)
    W0, V0, b0, vb0 = _unowned(W0), _unowned(V0), _unowned(b0), _unowned(vb0)
    W1, V1, b1, vb1 = _unowned(W1), _unowned(V1), _unowned(b1), _unowned(vb1)
    U0, U1 = _unowned(U0), _unowned(U1)
    z0, a0, d0 = U0[0], U0[1], U0[2]
    z1, a1, d1 = U1[0], U1[1], U1[2]
    has_b0, has_b1 = lay[0, HAS_BIAS] != 0, lay[1, HAS_BIAS] != 0
    train_b0, train_b1 = lay[0, TRAIN_BIAS] != 0, lay[1, TRAIN_BIAS] != 0
    act0, act1, p0, p1 = lay[0, ACT], lay[1, ACT], actp[0], actp[1]
    n_in0, n_h, n_o = W0.shape[0], W0.shape[1], W1.shape[1]
    r = order[0]
    for j in range(n_h):
        z0[j] = zero
    for i in range(n_in0):
        xi = X[r, i]
        for j in range(n_h):
            z0[j] += xi * W0[i, j]
    for s in range(n_updates):
        r = order[s]
        # forward (z0 holds x W1 already)
        if has_b0:
            for j in range(n_h):
                z0[j] += b0[j]
        _activate_i(act0, p0, z0, a0, c)
        for j in range(n_o):
            z1[j] = zero
        for i in range(n_h):
            ai = a0[i]
            for j in range(n_o):
                z1[j] += ai * W1[i, j]
        if has_b1:
            for j in range(n_o):
                z1[j] += b1[j]
        _activate_i(act1, p1, z1, a1, c)
        value = _output_loss_delta_i(loss, fused, act1, p1, z1, a1, d1, T, r, c)
        if not math.isfinite(value):
            return running, s + 1, s
        running += value
        # the upper layer: dE/da below with the old weights, and its update, in one pass
        _backward_one_i(W1, V1, d1, a0, d0, lr, mu, kind, zero)
        if train_b1:
            _update_i(b1, vb1, d1, lr, mu, kind)
        _hidden_delta_i(act0, p0, z0, a0, d0, c)
        if train_b0:
            _update_i(b0, vb0, d0, lr, mu, kind)
        rn = order[s + 1] if s + 1 < n_updates else r
        _first_layer_pass_i(W0, V0, X, r, rn, d0, z0, lr, mu, kind, zero)
    return running, 0, n_updates


@njit(**_OPTS)
def sample_epoch(X, T, order, Ws, Bs, VWs, VBs, lay, actp, loss, fused, kind, c, Zs, As, Ds, G,
                 n_updates):
    """Stochastic epoch: one update per sample, in ``order``.

    Returns (sum of the per-sample losses before each update, 1-based number of the first
    update whose loss was not finite or 0, number of updates applied). The unit buffers
    hold one row; ``G`` is scratch of at least the widest layer's size.
    """
    X, T, order = _unowned(X), _unowned(T), _unowned(order)
    c, lay, actp = _unowned(c), _unowned(lay), _unowned(actp)
    Ws, Bs, VWs, VBs = _unowned_tuple(Ws), _unowned_tuple(Bs), _unowned_tuple(VWs), _unowned_tuple(VBs)
    Zs, As, Ds, G = _unowned_tuple(Zs), _unowned_tuple(As), _unowned_tuple(Ds), _unowned(G)
    lr, mu = c[C_LR], c[C_MU]
    zero = c[C_ZERO]
    running = 0.0
    if n_updates == 0:
        return running, 0, 0
    W0, V0 = Ws[0], VWs[0]
    z0, d0 = Zs[0][0], Ds[0][0]
    _first_layer_sums(X, order, 0, 1, W0, Zs[0], zero)
    for s in range(n_updates):
        r = order[s]
        _forward_rows(Ws, Bs, lay, actp, Zs, As, 1, c)
        value = _loss_rows(lay, actp, loss, fused, Zs, As, Ds, T, order, s, 1, c)
        if not math.isfinite(value):
            return running, s + 1, s
        running += value
        _backward_upper(Ws, Bs, VWs, VBs, lay, actp, kind, Zs, As, Ds, G, 1, c)
        if lay[0, TRAIN_BIAS]:
            _update(Bs[0], VBs[0], d0, lr, mu, kind)
        rn = order[s + 1] if s + 1 < n_updates else r
        _first_layer_pass(W0, V0, X, r, rn, d0, z0, lr, mu, kind, zero)
    return running, 0, n_updates


# --------------------------------------------------------------------------- BLAS path helpers
# Large batches run their matrix products through BLAS (see blas_path.py); these fuse the
# elementwise steps around them, one compiled call each, so a batch makes few Python calls.
@njit(**_OPTS)
def gather_rows(X, T, order, start, m, xb, tb):
    """xb[:m], tb[:m] = X[order[start:start+m]], T[...]: the rows of a shuffled batch
    (a plain row copy, about three times faster than np.take(..., out=))."""
    X, T, order, xb, tb = _unowned(X), _unowned(T), _unowned(order), _unowned(xb), _unowned(tb)
    for s in range(m):
        r = order[start + s]
        for j in range(X.shape[1]):
            xb[s, j] = X[r, j]
        for j in range(T.shape[1]):
            tb[s, j] = T[r, j]


@njit(**_INLINE)
def _bias_activate_rows(code, z, a, b, has_bias, p, m, one, zero):
    """Rows 0..m-1 of 2-D z and a: z += b, a = f(z) (_maths.activation). Inlined where
    ``code`` is a constant, so that LLVM folds the other activations' branches and
    vectorises the loop (ReLU's select, leaky ReLU's product)."""
    for s in range(m):
        if has_bias:
            for j in range(z.shape[1]):
                v = z[s, j] + b[j]
                z[s, j] = v
                a[s, j] = activation(code, v, p, one, zero)
        else:
            for j in range(z.shape[1]):
                a[s, j] = activation(code, z[s, j], p, one, zero)


@njit(**_OPTS)
def rows_bias_activate(z, a, b, has_bias, code, p, m, c):
    """Rows 0..m-1: z += b (when the layer has biases), a = f(z)."""
    z, a, b, c = _unowned(z), _unowned(a), _unowned(b), _unowned(c)
    one, zero = c[C_ONE], c[C_ZERO]
    # one loop per common activation, the code a constant in it: the same operations as the
    # general loop below, which branches on the code for every element and is not
    # vectorised (measured 784-256-128-10 ReLU, 256 rows: 5 us per row for both layers)
    if code == RELU:
        _bias_activate_rows(RELU, z, a, b, has_bias, p, m, one, zero)
    elif code == LEAKY_RELU:
        _bias_activate_rows(LEAKY_RELU, z, a, b, has_bias, p, m, one, zero)
    elif code == TANH:
        _bias_activate_rows(TANH, z, a, b, has_bias, p, m, one, zero)
    else:
        for s in range(m):
            zs = z[s]
            if has_bias:
                for j in range(zs.shape[0]):
                    zs[j] += b[j]
            _activate(code, p, zs, a[s], c)


@njit(**_OPTS)
def rows_sigmoid_of_exp(z, a, m, c):
    """Rows 0..m-1: a, holding exp(-|z|) on entry (NumPy's vectorised exp, where no BLAS can
    be called from compiled code), becomes sigmoid(z) (_maths.sigmoid_from)."""
    z, a, c = _unowned(z), _unowned(a), _unowned(c)
    one = c[C_ONE]
    for s in range(m):
        for j in range(z.shape[1]):
            a[s, j] = sigmoid_from(a[s, j], z[s, j], one)


@njit(**_OPTS)
def rows_output(z, a, d, T, b, has_bias, train_bias, db, accumulate, loss, fused, code, p, scale,
                m, c):
    """The output layer of rows 0..m-1: bias and activation, the per-sample losses (their
    sum is returned, float64), the deltas times ``scale`` (1/n of the batch mean) in d, and
    the bias gradient added to (or written into) db."""
    z, a, d, T, b, db, c = (_unowned(z), _unowned(a), _unowned(d), _unowned(T), _unowned(b),
                            _unowned(db), _unowned(c))
    total = 0.0
    for s in range(m):
        zs, as_, ds = z[s], a[s], d[s]
        if has_bias:
            for j in range(zs.shape[0]):
                zs[j] += b[j]
        _activate_i(code, p, zs, as_, c)
        total += _output_loss_delta_i(loss, fused, code, p, zs, as_, ds, T, s, c)
        if scale != c[C_ONE]:
            for j in range(ds.shape[0]):
                ds[j] = ds[j] * scale
    if train_bias:
        _column_sums(d, db, m, accumulate)
    return total


@njit(**_OPTS)
def _column_sums(d, out, m, accumulate):
    if not accumulate:
        for j in range(out.shape[0]):
            out[j] = d[0, j]
    for s in range(0 if accumulate else 1, m):
        for j in range(out.shape[0]):
            out[j] += d[s, j]


@njit(**_OPTS)
def rows_hidden(z, a, d, code, p, train_bias, db, accumulate, m, c):
    """Rows 0..m-1 of a hidden layer: d (holding dE/da) becomes dE/dz, and the bias
    gradient is added to (or written into) db."""
    z, a, d, db, c = _unowned(z), _unowned(a), _unowned(d), _unowned(db), _unowned(c)
    one, zero = c[C_ONE], c[C_ZERO]
    # as rows_bias_activate: a loop per common activation, the code a constant in it
    if code == RELU:
        _hidden_rows(RELU, z, a, d, p, m, one, zero)
    elif code == LEAKY_RELU:
        _hidden_rows(LEAKY_RELU, z, a, d, p, m, one, zero)
    elif code == TANH:
        _hidden_rows(TANH, z, a, d, p, m, one, zero)
    else:
        for s in range(m):
            _hidden_delta(code, p, z[s], a[s], d[s], c)
    if train_bias:
        _column_sums(d, db, m, accumulate)


@njit(**_INLINE)
def _hidden_rows(code, z, a, d, p, m, one, zero):
    """Rows 0..m-1 of 2-D z, a, d: d = dE/dz from dE/da (_maths.activation_vjp), for an
    elementwise activation; inlined where ``code`` is a constant."""
    for s in range(m):
        for j in range(z.shape[1]):
            d[s, j] = activation_vjp(code, z[s, j], a[s, j], d[s, j], p, one, zero)


@njit(**_OPTS)
def add_into(out, x):
    """out += x (accumulating a chunk's weight gradient)."""
    o = _unowned(out).ravel()
    v = _unowned(x).ravel()
    for j in range(o.shape[0]):
        o[j] += v[j]


@njit(**_INLINE)
def _rule_at(rule, params, grads, mask, noise, rnd, s0, s1, s2, i, q):
    """The transforms and ``rule``'s step for parameter i (:func:`._maths.rule_step`); returns
    its new state entries."""
    w, g = params[i], grads[i]
    if q[Q_DECAY] != q[Q_ZERO]:  # transforms.AddDecayedWeights, then AddNoise
        g = g + q[Q_WD] * (w * mask[i] if q[Q_MASKED] != q[Q_ZERO] else w)
    if q[Q_NOISY] != q[Q_ZERO]:
        g = g + q[Q_SIGMA] * noise[i]
    w, a, b, c = rule_step(rule, w, g, s0, s1, s2, rnd[i] if rule == SARPROP else q[Q_ZERO], q)
    params[i] = w
    return a, b, c


@njit(**_INLINE)
def _rule_loop(rule, params, grads, mask, noise, rnd, S0, S1, S2, ns, k):
    """:func:`_rule_at` over every parameter: one loop per number of state arrays (the unused
    ones are never read)."""
    zero = k[Q_ZERO]
    if ns == 0:
        for i in range(params.shape[0]):
            _rule_at(rule, params, grads, mask, noise, rnd, zero, zero, zero, i, k)
    elif ns == 1:
        for i in range(params.shape[0]):
            S0[i] = _rule_at(rule, params, grads, mask, noise, rnd, S0[i], zero, zero, i, k)[0]
    elif ns == 2:
        for i in range(params.shape[0]):
            a, b, _ = _rule_at(rule, params, grads, mask, noise, rnd, S0[i], S1[i], zero, i, k)
            S0[i], S1[i] = a, b
    else:
        for i in range(params.shape[0]):
            S0[i], S1[i], S2[i] = _rule_at(rule, params, grads, mask, noise, rnd, S0[i],
                                           S1[i], S2[i], i, k)


@njit(**_OPTS)
def rule_update(rule, params, grads, mask, noise, rnd, S0, S1, S2, ns, q):
    """One update of the flat trainable parameters under any optimizer of the registry, in one
    pass: ``params`` takes the step of ``rule`` (codes.RULES) for ``grads`` after the
    optimizer's transforms (weight decay with ``mask``, the noise draws ``noise``), with the
    constants ``q`` of :func:`._maths.rule_scalars`. ``S0..S2``: the optimizer's state arrays
    (its ``_state_names``; the first ``ns`` are used); ``rnd``: SARPROP's uniform draws."""
    params, grads, mask, noise, rnd = (_unowned(params), _unowned(grads), _unowned(mask),
                                       _unowned(noise), _unowned(rnd))
    S0, S1, S2 = _unowned(S0), _unowned(S1), _unowned(S2)
    k = rule_load(q)
    bare = k[Q_DECAY] == k[Q_ZERO] and k[Q_NOISY] == k[Q_ZERO]
    # The common rules without transforms get a loop each with the rule a constant: LLVM folds
    # the other rules' branches away and vectorises the loop, the same operations (Adam,
    # 235,146 float32 parameters: 2.3 ms -> 0.27 ms; momentum, 407,050: see
    # docs/performance.md). The general loop branches on the rule per parameter.
    if bare and rule == ADAM:
        _adam_loop(params, grads, S0, S1, k)
    elif bare and rule == MOMENTUM:
        _sgd_loop(MOMENTUM, params, grads, S0, k)
    elif bare and rule == NESTEROV:
        _sgd_loop(NESTEROV, params, grads, S0, k)
    elif bare and rule == PLAIN:
        _sgd_loop(PLAIN, params, grads, S0, k)
    else:
        _rule_loop(rule, params, grads, mask, noise, rnd, S0, S1, S2, ns, k)


@njit(**_INLINE)
def _adam_loop(params, grads, S0, S1, k):
    """Adam without transforms over every parameter (:func:`._maths.rule_step`)."""
    zero = k[Q_ZERO]
    for i in range(params.shape[0]):
        w, a, b, _ = rule_step(ADAM, params[i], grads[i], S0[i], S1[i], zero, zero, k)
        params[i] = w
        S0[i], S1[i] = a, b


@njit(**_INLINE)
def _sgd_loop(rule, params, grads, S0, k):
    """SGD (plain, momentum or Nesterov) without transforms over every parameter
    (:func:`._maths.rule_step`). Inlined where ``rule`` is a constant, so LLVM folds the other
    kinds' branches and vectorises the loop; plain SGD has no velocity (``S0`` may be empty)
    and never touches it."""
    zero = k[Q_ZERO]
    plain = rule == PLAIN
    for i in range(params.shape[0]):
        w, v, _, _ = rule_step(rule, params[i], grads[i], zero if plain else S0[i], zero, zero, zero, k)
        params[i] = w
        if not plain:
            S0[i] = v


@njit(**_OPTS)
def rule_next(rule, h, q, loss, params, grads, mask, noise, rnd, S0, S1, S2, ns):
    """One whole update: :func:`._maths.rule_scalars` then :func:`rule_update` (the
    matmul path calls it from Python once per update)."""
    rule_scalars(rule, h, q, loss)
    rule_update(rule, params, grads, mask, noise, rnd, S0, S1, S2, ns, q)


# --------------------------------------------------------------------------- blocked stochastic
@njit(**_OPTS)
def block_sample_updates(Zb, Gm, D0, tb, Ws, Bs, VWs, VBs, lay, actp, loss, fused, c, Zs, As, Ds,
                         G, m):
    r"""The per-sample part of B stochastic updates whose first-layer products come from BLAS
    (see stochastic_blocks.py). Plain SGD only.

    With :math:`W, b` the first layer's weights and biases at the start of the block, sample
    *t* of the block sees :math:`W - \eta\sum_{s<t} x_s d_s^\top` and
    :math:`b - \eta\sum_{s<t} d_s` (the updates of the samples before it), so its
    pre-activation is, exactly,

    .. math:: z_t = x_t W + b - \eta \textstyle\sum_{s<t} (x_t \cdot x_s + [b\ \text{trained}])\, d_s,

    with ``Zb[t]`` = :math:`x_t W` and ``Gm[t, s]`` = :math:`x_t\cdot x_s` computed for the
    whole block by two matrix products. The layers above are small and updated in place per
    sample. The first layer's delta of each sample goes to ``D0[t]``; the caller applies
    :math:`W \mathrel{-}= \eta X_B^\top D_B` with one more product.

    Returns (sum of the per-sample losses, 1-based index in the block of the first sample
    whose loss was not finite or 0, samples done).
    """
    Zb, Gm, D0, tb = _unowned(Zb), _unowned(Gm), _unowned(D0), _unowned(tb)
    c, lay, actp = _unowned(c), _unowned(lay), _unowned(actp)
    Ws, Bs, VWs, VBs = _unowned_tuple(Ws), _unowned_tuple(Bs), _unowned_tuple(VWs), _unowned_tuple(VBs)
    Zs, As, Ds, G = _unowned_tuple(Zs), _unowned_tuple(As), _unowned_tuple(Ds), _unowned(G)
    lr = c[C_LR]
    one = c[C_ONE]
    bias_term = one if lay[0, TRAIN_BIAS] else c[C_ZERO]
    z0, d0 = Zs[0][0], Ds[0][0]
    lo = lay.shape[0] - 1
    z_o, a_o, d_o, act_o, p_o = Zs[lo][0], As[lo][0], Ds[lo][0], lay[lo, ACT], actp[lo]
    n_h = z0.shape[0]
    running = 0.0
    for t in range(m):
        for j in range(n_h):
            z0[j] = Zb[t, j]
        for s in range(t):
            f = lr * (Gm[t, s] + bias_term)
            for j in range(n_h):
                z0[j] -= f * D0[s, j]
        _forward_rows(Ws, Bs, lay, actp, Zs, As, 1, c)
        value = _output_loss_delta(loss, fused, act_o, p_o, z_o, a_o, d_o, tb, t, c)
        if not math.isfinite(value):
            return running, t + 1, t
        running += value
        _backward_upper(Ws, Bs, VWs, VBs, lay, actp, PLAIN, Zs, As, Ds, G, 1, c)
        for j in range(n_h):
            D0[t, j] = d0[j]
    return running, 0, m


@njit(**_OPTS)
def block_first_layer_update(W, gW, b, D0, m, train_bias, lr):
    """The plain SGD step for the gradients gW = X_B^T D_B and (biases) the sum of the
    block's first-layer deltas (the velocity argument of sgd_step, unused, is lr)."""
    W, gW, b, D0 = _unowned(W), _unowned(gW), _unowned(b), _unowned(D0)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            W[i, j] = sgd_step(W[i, j], lr, gW[i, j], lr, lr, PLAIN)[0]
    if train_bias:
        for j in range(b.shape[0]):
            g = D0[0, j]
            for s in range(1, m):
                g += D0[s, j]
            b[j] = sgd_step(b[j], lr, g, lr, lr, PLAIN)[0]
