"""The one table of codes that compiled code uses for activations, losses and update rules.

Compiled kernels branch on small integers, not on Python objects. Each table below is the
only place those integers are given: a row's position is its code, and the module constant
of the same name (``SIGMOID``, ``HALF_SSE``, ``MOMENTUM``, ...) is made from the row. The
maths for each code is written once, as compiled scalar functions in :mod:`._maths`; every
compiled path (the tiny-net source generator included) takes its codes from here and its
formulas from there.

This module imports nothing but the standard library, so that the engine can choose a path
and build its arguments without importing numba (``import deltaprop`` never does).

To compile a new activation: a row in ``ACTIVATIONS`` (its registry name and the attribute
holding its one parameter, if any), then its f and f' in ``_maths.activation`` and
``_maths.activation_slope``.
"""

from __future__ import annotations

#: (constant, registry name in deltaprop.activations.ACTIVATIONS, attribute passed to the
#: kernels as the activation's parameter or None). Softmax is the one row operation (its
#: maths is :func:`._maths.softmax_term` and :func:`._maths.softmax_vjp`, not f and f').
ACTIVATIONS = (
    ("IDENTITY", "identity", None),
    ("SIGMOID", "sigmoid", "flat_spot"),
    ("TANH", "tanh", None),
    ("RELU", "relu", None),
    ("LEAKY_RELU", "leaky_relu", "alpha"),
    ("SOFTPLUS", "softplus", None),
    ("SOFTMAX", "softmax", None),
    ("GELU", "gelu", None),
)

#: (constant, registry name in deltaprop.losses.LOSSES)
LOSSES = (
    ("HALF_SSE", "half_sse"),
    ("MSE", "mse"),
    ("BCE", "binary_cross_entropy"),
    ("CE", "cross_entropy"),
)

#: (constant, optimizer name in deltaprop.optimizers.OPTIMIZERS, whether the rule is linear in
#: the gradient with constant coefficients: what the per-sample kernels and the blocked
#: stochastic scheme need). SGD is three rules: plain, momentum, Nesterov. Every rule is an
#: elementwise step over the flat parameters (:func:`._maths.rule_step`); its state arrays are
#: the optimizer's own, in the order of its ``_state_names`` (slots 0, 1, 2).
RULES = (
    ("PLAIN", "sgd", True),
    ("MOMENTUM", "sgd", True),
    ("NESTEROV", "sgd", True),
    ("ADAM", "adam", False),
    ("RPROP_MINUS", "rprop-", False),
    ("RPROP_PLUS", "rprop+", False),
    ("IRPROP_MINUS", "irprop-", False),
    ("IRPROP_PLUS", "irprop+", False),
    ("QUICKPROP", "quickprop", False),
    ("SARPROP", "sarprop", False),
)

#: Entries of ``h``, a rule's float64 record: the update counter ``t`` and Adam's ``count``
#: before the next update, iRprop+'s previous loss, then the hyper-parameters (learning rate,
#: momentum, Adam's beta1, beta2, eps, RPROP's eta-, eta+, delta_min, delta_max, Quickprop's
#: mu, SARPROP's k1, k2, k3 and temperature, weight decay, gradient noise nu and gamma).
RULE_H = ("H_T", "H_COUNT", "H_PREV_LOSS", "H_LR", "H_MU", "H_B1", "H_B2", "H_EPS", "H_ETA_MINUS",
          "H_ETA_PLUS", "H_DMIN", "H_DMAX", "H_QMU", "H_K1", "H_K2", "H_K3", "H_TEMP", "H_WD",
          "H_NU", "H_GAMMA")

#: Entries of ``q``, an update's constants in the network's dtype (as NumPy casts a Python
#: float in an array operation): the learning rate, momentum, Adam's beta1, beta2, 1 - beta1,
#: 1 - beta2, eps and bias corrections 1 - beta^k, RPROP's eta-, eta+, delta_min, delta_max,
#: Quickprop's mu and mu/(1+mu), iRprop+'s "the loss rose" (0/1), SARPROP's k1 a_t, k2 E_t,
#: k3, sqrt(E_t) and a_t, weight decay, the noise's sigma_t, whether the gradient is decayed,
#: masked, given noise (0/1), one and zero. :func:`._maths.rule_scalars` sets the ones that
#: change from update to update.
RULE_Q = ("Q_LR", "Q_MU", "Q_B1", "Q_B2", "Q_1MB1", "Q_1MB2", "Q_EPS", "Q_BC1", "Q_BC2",
          "Q_ETA_MINUS", "Q_ETA_PLUS", "Q_DMIN", "Q_DMAX", "Q_QMU", "Q_SHRINK", "Q_WORSE", "Q_K1A",
          "Q_K2L", "Q_K3", "Q_SQRTL", "Q_ANNEAL", "Q_WD", "Q_SIGMA", "Q_DECAY", "Q_MASKED",
          "Q_NOISY", "Q_ONE", "Q_ZERO")

#: Entries of ``c``, the scalar constants every kernel takes in the network's dtype (a bare
#: ``1.0`` literal in compiled code would promote float32 arithmetic to float64):
#: learning rate, momentum, 1, 0, 1/2, the dtype's eps (probability clipping), 2/m (the MSE
#: delta), 1/k for a full and for the last batch of an epoch.
CONSTS = ("C_LR", "C_MU", "C_ONE", "C_ZERO", "C_HALF", "C_EPS", "C_MSE", "C_SCALE_FULL", "C_SCALE_LAST")

#: Columns of ``lay``, one row per layer: has biases, trains them, activation code.
LAY_COLS = ("HAS_BIAS", "TRAIN_BIAS", "ACT")

#: Deepest network the general kernels take (their tuples are padded to this length).
MAX_LAYERS = 8

_g = globals()
for _table in (ACTIVATIONS, LOSSES, RULES):
    for _code, _row in enumerate(_table):
        _g[_row[0]] = _code
for _table in (CONSTS, LAY_COLS, RULE_H, RULE_Q):
    for _code, _name in enumerate(_table):
        _g[_name] = _code
N_CONSTS, N_LAY_COLS, N_RULE_H, N_RULE_Q = len(CONSTS), len(LAY_COLS), len(RULE_H), len(RULE_Q)
del _g, _table, _code, _row, _name

#: registry name -> code
ACTIVATION_CODES = {name: code for code, (_, name, _) in enumerate(ACTIVATIONS)}
LOSS_CODES = {name: code for code, (_, name) in enumerate(LOSSES)}
#: rule code -> whether it is linear in the gradient (RULES' third column)
RULE_LINEAR = tuple(linear for _, _, linear in RULES)
#: activation code -> name of its parameter attribute (or None)
ACTIVATION_PARAMS = tuple(param for _, _, param in ACTIVATIONS)


def activation_code(act) -> int | None:
    """The code of ``act`` (an Activation instance), or None where the compiled code has no
    f and f' for it. A subclass of a built-in activation may change its formulas, so only
    the registry's own classes have a code."""
    from ..activations import ACTIVATIONS as REGISTRY

    code = ACTIVATION_CODES.get(act.name)
    return code if code is not None and type(act) is REGISTRY.get(act.name) else None


def loss_code(loss) -> int | None:
    """The code of ``loss`` (a Loss instance), or None (as :func:`activation_code`)."""
    from ..losses import LOSSES as REGISTRY

    code = LOSS_CODES.get(loss.name)
    return code if code is not None and type(loss) is REGISTRY.get(loss.name) else None


def activation_param(act) -> float:
    """The one parameter the kernels take for ``act`` (sigmoid flat spot, leaky ReLU
    slope), 0 where it has none."""
    attr = ACTIVATION_PARAMS[activation_code(act)]
    return 0.0 if attr is None else float(getattr(act, attr))
