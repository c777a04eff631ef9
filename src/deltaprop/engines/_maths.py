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

from numba import njit, types
from numba.extending import overload

from ..activations import GELU_A, GELU_C
from .codes import (ADAM, BCE, CE, GELU, H_B1, H_B2, H_COUNT, H_GAMMA, H_K1, H_K2, H_NU,
                    H_PREV_LOSS, H_T, H_TEMP, HALF_SSE, IRPROP_MINUS, IRPROP_PLUS, LEAKY_RELU,
                    MOMENTUM, MSE, NESTEROV, PLAIN, Q_1MB1, Q_1MB2, Q_ANNEAL, Q_B1, Q_B2, Q_BC1,
                    Q_BC2, Q_DMAX, Q_DMIN, Q_EPS, Q_ETA_MINUS, Q_ETA_PLUS, Q_K1A, Q_K2L, Q_K3,
                    Q_LR, Q_MU, Q_ONE, Q_QMU, Q_SHRINK, Q_SIGMA, Q_SQRTL, Q_WORSE, Q_ZERO,
                    QUICKPROP, RELU, RPROP_MINUS, RPROP_PLUS, SARPROP, SIGMOID, SOFTMAX, SOFTPLUS,
                    TANH)

_SCALAR = dict(inline="always", nogil=True, error_model="numpy", cache=True)


def like(x, ref):
    """The float ``x`` in the type of ``ref`` (compiled code only): a constant of a formula
    in the network's dtype, rounded once, as NumPy rounds a Python float in an array
    operation (a bare literal would turn float32 arithmetic into float64)."""
    return x


@overload(like, inline="always")
def _like(x, ref):
    if isinstance(ref, types.Float):
        target = ref
        return lambda x, ref: target(x)
    return None


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
def tanh_from(e, z, one):
    r""":math:`\tanh z = \operatorname{sign}(z)\,(1-e)/(1+e)` given :math:`e = e^{-2|z|}`,
    which never overflows (the batch kernels pass an ``e`` from their vectorised exp, as for
    :func:`sigmoid_from`). Within a few units of the last place of 1 absolute (near 0 the
    difference 1 - e cancels, so the relative error grows like ulp/|z|; what a layer above
    sees is the absolute error, the same as libm's). One select, not two returns."""
    t = (one - e) / (one + e)
    return t if z >= 0 else -t


@njit(**_SCALAR)
def sigmoid(z, one):
    """:func:`sigmoid_from` with libm's exp."""
    return sigmoid_from(math.exp(-abs(z)), z, one)


@njit(**_SCALAR)
def activation(code, z, p, one, zero):
    r"""a = f(z) for an elementwise activation; ``p`` its parameter (codes.ACTIVATIONS).

    identity :math:`z`; sigmoid :func:`sigmoid`; tanh :math:`\tanh z`; ReLU
    :math:`\max(z, 0)` (NaN passes through, as ``np.maximum``); leaky ReLU :math:`z` for
    :math:`z > 0`, else :math:`p z`; softplus :math:`\max(z, 0) + \log(1 + e^{-|z|})`;
    GELU :math:`\tfrac12 z (1 + \tanh u)` (:func:`gelu_tanh`).
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
    if code == GELU:
        return like(0.5, z) * z * (one + gelu_tanh(z))
    return z


@njit(**_SCALAR)
def gelu_tanh(z):
    r""":math:`\tanh u`, :math:`u = \sqrt{2/\pi}\,(z + 0.044715 z^3)`, GELU's inner term
    (activations.GELU)."""
    return math.tanh(like(GELU_C, z) * (z + like(GELU_A, z) * (z * z * z)))


@njit(**_SCALAR)
def activation_vjp(code, z, a, d, p, one, zero):
    r""":math:`\partial E/\partial z = \partial E/\partial a \cdot f'(z)` for one unit, given
    ``d`` = :math:`\partial E/\partial a`, ``z`` and ``a = f(z)``.

    sigmoid :math:`a(1-a) + p` (``p`` the flat spot; 0 adds nothing, bit for bit); tanh
    :math:`1 - a^2`; ReLU :math:`d` where :math:`z > 0`, else 0 (a select, as
    ``np.where``: an infinite ``d`` gives 0, not NaN); leaky ReLU 1 or :math:`p`; softplus
    :math:`\sigma(z)`; GELU :math:`\tfrac12 (1 + \tanh u) + \tfrac12 z (1 - \tanh^2 u)
    \sqrt{2/\pi} (1 + 3 \cdot 0.044715 z^2)`; identity 1 (``d`` unchanged).
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
    if code == GELU:
        t = gelu_tanh(z)
        half = like(0.5, z)
        return d * (half * (one + t) + half * z * (one - t * t)
                    * (like(GELU_C, z) * (one + like(3.0 * GELU_A, z) * (z * z))))
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


@njit(**_SCALAR)
def rule_scalars(rule, h, q, loss):
    r"""The scalars of the next update that change with it, computed as the optimizers compute
    them (float64, then cast to the dtype of ``q``): :math:`t \leftarrow t + 1`; the noise's
    :math:`\sigma_t = \sqrt{\nu / (1 + t)^\gamma}` (transforms.AddNoise); Adam's
    :math:`k \leftarrow k + 1` and bias corrections :math:`1 - \beta_1^k`, :math:`1 - \beta_2^k`;
    iRprop+'s :math:`[E_t > E_{t-1}]`, then :math:`E_{t-1} \leftarrow E_t`; SARPROP's
    :math:`a_t = 2^{-T t}`, :math:`k_1 a_t`, :math:`k_2 E_t` and :math:`\sqrt{E_t}` with
    :math:`E_t` clipped at 0. ``loss``: the batch loss :math:`E_t` (float64)."""
    t = h[H_T] + 1.0
    h[H_T] = t
    if h[H_NU] != 0.0:
        q[Q_SIGMA] = math.sqrt(h[H_NU] / (1.0 + t) ** h[H_GAMMA])
    if rule == ADAM:
        k = h[H_COUNT] + 1.0
        h[H_COUNT] = k
        q[Q_BC1] = 1.0 - h[H_B1] ** k
        q[Q_BC2] = 1.0 - h[H_B2] ** k
    elif rule == IRPROP_PLUS:
        q[Q_WORSE] = 1.0 if loss > h[H_PREV_LOSS] else 0.0
        h[H_PREV_LOSS] = loss
    elif rule == SARPROP:
        a = 2.0 ** (-h[H_TEMP] * t)
        e = max(loss, 0.0)
        q[Q_ANNEAL], q[Q_K1A] = a, h[H_K1] * a
        q[Q_K2L], q[Q_SQRTL] = h[H_K2] * e, math.sqrt(e)


@njit(**_SCALAR)
def rule_load(q):
    """The entries of ``q`` as a tuple, loaded once before a loop over the parameters (held in
    registers: loads from an array inside the loop could alias its stores)."""
    return (q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], q[11], q[12], q[13],
            q[14], q[15], q[16], q[17], q[18], q[19], q[20], q[21], q[22], q[23], q[24], q[25],
            q[26], q[27])


@njit(**_SCALAR)
def sign(x, one, zero):
    """np.sign for one value: 1, -1, 0 (for either zero), NaN stays NaN."""
    if x > zero:
        return one
    if x < zero:
        return -one
    return zero if x == zero else x


@njit(**_SCALAR)
def rule_step(rule, w, g, s0, s1, s2, r, q):
    r"""One parameter's update under ``rule`` (codes.RULES) for the gradient ``g`` (after the
    transforms); returns (new w, new s0, s1, s2). ``s0..s2``: the parameter's entries of the
    optimizer's state arrays, in the order of its ``_state_names``; ``r``: SARPROP's uniform
    draw; ``q``: :func:`rule_load`'s tuple. The formulas are the optimizers' docstrings',
    in the order of their NumPy operations:

    * SGD (velocity): :func:`sgd_step`.
    * Adam (m, v): :math:`m' = \beta_1 m + (1-\beta_1) g`, :math:`v' = \beta_2 v +
      (1-\beta_2) g^2`, :math:`w - \eta\, (m'/(1-\beta_1^k)) / (\sqrt{v'/(1-\beta_2^k)} +
      \epsilon)`.
    * RPROP family (step size :math:`\Delta`, previous gradient, previous update): with
      :math:`p = g_{t-1} g`, :math:`\Delta' = \min(\eta^+\Delta, \Delta_{\max})` if
      :math:`p > 0`, :math:`\max(\eta^-\Delta, \Delta_{\min})` if :math:`p < 0`; Rprop-
      :math:`w - \operatorname{sign}(g)\Delta'`; iRprop- the same with :math:`g := 0` where
      :math:`p < 0`; Rprop+ and iRprop+ undo the last update where :math:`p < 0` (iRprop+
      only if the loss rose) and store :math:`g := 0` there.
    * Quickprop (previous gradient, previous update :math:`d`): the parabola step with
      Fahlman's safeguards (optimizers.Quickprop).
    * SARPROP (step size, previous gradient): :math:`\tilde g = g + k_1 a_t w`, the step size
      as RPROP's except that a small one after a sign change gets the kick
      :math:`\min(\eta^-\Delta + k_3 r \sqrt{E_t} a_t, \Delta_{\max})`, then iRprop-'s step.
    """
    one, zero = q[Q_ONE], q[Q_ZERO]
    if rule == PLAIN or rule == MOMENTUM or rule == NESTEROV:
        wn, vn = sgd_step(w, s0, g, q[Q_LR], q[Q_MU], rule)
        return wn, vn, s1, s2
    if rule == ADAM:
        m = s0 * q[Q_B1] + q[Q_1MB1] * g
        v = s1 * q[Q_B2] + q[Q_1MB2] * g * g
        return w - q[Q_LR] * (m / q[Q_BC1]) / (math.sqrt(v / q[Q_BC2]) + q[Q_EPS]), m, v, s2
    if rule == QUICKPROP:  # s0 previous gradient, s1 previous update d
        d, gp = s1, s0
        sg = sign(d, one, zero)
        step = -q[Q_LR] * g
        linear = step if sg * g < zero else zero
        moving = d != zero
        grow = moving and sg * g < q[Q_SHRINK] * sg * gp
        denom = gp - g
        if grow:
            u = q[Q_QMU] * d + linear
        elif moving and sg * denom < zero:
            u = d * g / denom + linear
        else:
            u = step
        return w + u, g, u, s2
    if rule == SARPROP:
        g = g + q[Q_K1A] * w
    p = s1 * g
    step = s0
    if p > zero:
        step = min(step * q[Q_ETA_PLUS], q[Q_DMAX])
    elif p < zero:
        if rule == SARPROP and step < q[Q_K2L]:
            step = min(step * q[Q_ETA_MINUS] + q[Q_K3] * r * q[Q_SQRTL] * q[Q_ANNEAL], q[Q_DMAX])
        else:
            step = max(step * q[Q_ETA_MINUS], q[Q_DMIN])
    flipped = p < zero
    if rule == RPROP_MINUS:
        return w - sign(g, one, zero) * step, step, g, s2
    if rule == IRPROP_MINUS or rule == SARPROP:
        g = zero if flipped else g
        return w - sign(g, one, zero) * step, step, g, s2
    # Rprop+, iRprop+ (s2: the previous update)
    if flipped:
        u = -s2 if (rule == RPROP_PLUS or q[Q_WORSE] != zero) else zero
        return w + u, step, zero, u
    u = -sign(g, one, zero) * step
    return w + u, step, g, u
