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
)

#: (constant, registry name in deltaprop.losses.LOSSES)
LOSSES = (
    ("HALF_SSE", "half_sse"),
    ("MSE", "mse"),
    ("BCE", "binary_cross_entropy"),
    ("CE", "cross_entropy"),
)

#: (constant, optimizer name in deltaprop.optimizers.OPTIMIZERS, whether the rule is linear in
#: the gradient with constant coefficients: what the blocked stochastic scheme needs).
#: SGD is three rules: plain, momentum, Nesterov.
RULES = (
    ("PLAIN", "sgd", True),
    ("MOMENTUM", "sgd", True),
    ("NESTEROV", "sgd", True),
)

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
for _table in (CONSTS, LAY_COLS):
    for _code, _name in enumerate(_table):
        _g[_name] = _code
N_CONSTS, N_LAY_COLS = len(CONSTS), len(LAY_COLS)
del _g, _table, _code, _row, _name

#: registry name -> code
ACTIVATION_CODES = {name: code for code, (_, name, _) in enumerate(ACTIVATIONS)}
LOSS_CODES = {name: code for code, (_, name) in enumerate(LOSSES)}
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
