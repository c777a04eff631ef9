r"""The maths of compiled code, written once: each activation's f and its backward step, each
loss's value and output delta, each update rule's step, as compiled scalar functions.

Every compiled path calls these (the general kernels of :mod:`._numba_kernels`, the batch and
blocked epochs of :mod:`._numba_batch`, the tiny-net kernels that :mod:`.tiny_kernels`
writes out), with a code from :mod:`.codes` as the first argument. They are inlined where they
are called (``inline="always"``), so a code that is a constant where it is called (as in
generated source) or the same for a whole loop costs no branch per element: after inlining,
LLVM folds the branch or moves it out of the loop.

The formulas follow :mod:`deltaprop.activations`, :mod:`deltaprop.losses` and
:mod:`deltaprop.optimizers` operation by operation, so that compiled results equal the NumPy
engine's up to the order of summation. Scalars arrive in the network's dtype (``one``,
``zero``, ``lr``, ...): a bare float literal would turn float32 arithmetic into float64.

numba caches a kernel by its own file only: after an edit here, the cached kernels of the
files that call these are stale until those files change or their ``__pycache__`` is cleared
(the tiny-net kernels carry a hash of this file in their source, so they follow by themselves).
"""

from __future__ import annotations

import math

from numba import njit

from .codes import (BCE, CE, HALF_SSE, LEAKY_RELU, MOMENTUM, MSE, PLAIN, RELU, SIGMOID, SOFTMAX,
                    SOFTPLUS, TANH)

_SCALAR = dict(inline="always", nogil=True, error_model="numpy", cache=True)


# --------------------------------------------------------------------------- activations
@njit(**_SCALAR)
def sigmoid_from(e, z, one):
    r""":math:`\sigma(z) = 1/(1+e^{-z})` given :math:`e = e^{-|z|}`, which never overflows:
    :math:`1/(1+e)` for :math:`z \ge 0`, :math:`e/(1+e)` below (activations.Sigmoid). One
    select, not two returns: LLVM then emits a blend instead of a branch, which the random
    signs of a shuffled epoch would mispredict half of the time. (The batch kernels pass an
    ``e`` from their vectorised exp.)"""
    return (one if z >= 0 else e) / (one + e)


@njit(**_SCALAR)
def sigmoid(z, one):
    """:func:`sigmoid_from` with libm's exp."""
    return sigmoid_from(math.exp(-abs(z)), z, one)


@njit(**_SCALAR)
def activation(code, z, p, one, zero):
    r"""a = f(z) for an elementwise activation; ``p`` its parameter (codes.ACTIVATIONS).

    identity :math:`z`; sigmoid :func:`sigmoid`; tanh :math:`\tanh z`; ReLU
    :math:`\max(z, 0)` (NaN passes through, as ``np.maximum``); leaky ReLU :math:`z` for
    :math:`z > 0`, else :math:`p z`; softplus :math:`\max(z, 0) + \log(1 + e^{-|z|})`.
    Softmax is a row operation: :func:`softmax_term`.
    """
    if code == SIGMOID:
        return sigmoid(z, one)
    if code == TANH:
        return math.tanh(z)
    if code == RELU:
        return zero if z < zero else z
    if code == LEAKY_RELU:
        return z if z > zero else p * z
    if code == SOFTPLUS:
        return (z if z > zero else zero) + math.log1p(math.exp(-abs(z)))
    return z


@njit(**_SCALAR)
def activation_vjp(code, z, a, d, p, one, zero):
    r""":math:`\partial E/\partial z = \partial E/\partial a \cdot f'(z)` for one unit, given
    ``d`` = :math:`\partial E/\partial a`, ``z`` and ``a = f(z)``.

    sigmoid :math:`a(1-a) + p` (``p`` the flat spot; 0 adds nothing, bit for bit); tanh
    :math:`1 - a^2`; ReLU :math:`d` where :math:`z > 0`, else 0 (a select, as
    ``np.where``: an infinite ``d`` gives 0, not NaN); leaky ReLU 1 or :math:`p`; softplus
    :math:`\sigma(z)`; identity 1 (``d`` unchanged).
    """
    if code == SIGMOID:
        return d * (a * (one - a) + p)
    if code == TANH:
        return d * (one - a * a)
    if code == RELU:
        return d if z > zero else zero
    if code == LEAKY_RELU:
        return d * (one if z > zero else p)
    if code == SOFTPLUS:
        return d * sigmoid(z, one)
    return d


@njit(**_SCALAR)
def softmax_term(z, m):
    r""":math:`e^{z - m}`, the numerator of softmax with the row's maximum :math:`m`
    subtracted (so it cannot overflow); :math:`a_i` is it over the row's sum of them."""
    return math.exp(z - m)


@njit(**_SCALAR)
def log_sum_exp(m, s):
    r""":math:`\operatorname{logsumexp}(z) = m + \log \sum_j e^{z_j - m}` from the row's
    maximum :math:`m` and ``s``, the sum of its :func:`softmax_term`\ s."""
    return m + math.log(s)


@njit(**_SCALAR)
def softmax_vjp(a, d, s):
    r"""Softmax's vector-Jacobian product for unit i: :math:`a_i (d_i - s)`,
    :math:`s = \sum_j d_j a_j`."""
    return a * (d - s)


# --------------------------------------------------------------------------- losses
@njit(**_SCALAR)
def clip_probability(a, eps, one):
    """a clipped to [eps, 1 - eps], so that its logarithms are finite (losses._clip_probs)."""
    return min(max(a, eps), one - eps)


@njit(**_SCALAR)
def loss_term(loss, code, z, a, t, lse, eps, one, zero):
    r"""One output unit's term of the per-sample loss (summed over the units, then
    :func:`loss_value`). ``code``: the output activation; ``lse``: the row's
    :math:`\operatorname{logsumexp}(z)` (used by cross-entropy after softmax only).

    squared errors :math:`(a - t)^2`; binary cross-entropy after a sigmoid, from the logit,
    :math:`\max(z, 0) - z t + \log(1 + e^{-|z|})`, else
    :math:`-[t \log q + (1-t)\log(1-q)]`; cross-entropy after softmax
    :math:`t(\operatorname{logsumexp}(z) - z)`, else :math:`-t \log q`; :math:`q` the output
    clipped (:func:`clip_probability`).
    """
    if loss == HALF_SSE or loss == MSE:
        e = a - t
        return e * e
    if loss == BCE:
        if code == SIGMOID:
            return (z if z > zero else zero) - z * t + math.log1p(math.exp(-abs(z)))
        q = clip_probability(a, eps, one)
        return -(t * math.log(q) + (one - t) * math.log1p(-q))
    if code == SOFTMAX:
        return t * (lse - z)
    return -(t * math.log(clip_probability(a, eps, one)))


@njit(**_SCALAR)
def loss_value(loss, s, n, half):
    r"""The per-sample loss (float64) from the sum ``s`` of its ``n`` units' terms: half
    squared error :math:`s/2`, MSE :math:`s/n`, the cross-entropies :math:`s`."""
    if loss == HALF_SSE:
        return float(half * s)
    if loss == MSE:
        return float(s / n)
    return float(s)


@njit(**_SCALAR)
def loss_delta(loss, fused, a, t, ts, cmse, eps, one):
    r""":math:`\partial E_s/\partial a` of one output unit, or, ``fused`` (softmax + CE,
    sigmoid + BCE without a flat spot), :math:`\partial E_s/\partial z` directly.

    half squared error :math:`a - t`; MSE :math:`\tfrac2m (a - t)` (``cmse`` = 2/m); binary
    cross-entropy fused :math:`a - t`, else :math:`(q - t)/(q(1-q))`; cross-entropy fused
    :math:`a \sum_k t_k - t` (``ts`` = :math:`\sum_k t_k`; :math:`a - t` for targets summing
    to 1), else :math:`-t/q`.
    """
    if loss == HALF_SSE:
        return a - t
    if loss == MSE:
        return cmse * (a - t)
    if loss == BCE:
        if fused:
            return a - t
        q = clip_probability(a, eps, one)
        return (q - t) / (q * (one - q))
    if fused:
        return a * ts - t
    return -t / clip_probability(a, eps, one)


# --------------------------------------------------------------------------- update rules
@njit(**_SCALAR)
def sgd_step(w, v, g, lr, mu, kind):
    r"""One parameter's SGD update (optimizers.SGD); returns (new w, new velocity).

    plain :math:`w - \eta g` (the velocity is returned unchanged); momentum
    :math:`v' = \mu v - \eta g,\ w + v'`; Nesterov :math:`v' = \mu v - \eta g,\
    w + (\mu v' - \eta g)`.
    """
    if kind == PLAIN:
        return w - lr * g, v
    vn = mu * v - lr * g
    if kind == MOMENTUM:
        return w + vn, vn
    return w + (mu * vn - lr * g), vn
