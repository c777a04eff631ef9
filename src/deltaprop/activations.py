r"""Activation functions, each holding its forward formula and its derivative side by side.

Arrays are batch-first: ``z`` and ``a`` have shape ``(n_samples, n_units)``.

Every activation offers

* ``forward(z) -> a``: :math:`a = f(z)`;
* ``derivative(z, a) -> f'(z)``: elementwise, computed from ``a`` where that is cheaper
  (sigmoid :math:`a(1-a)`, tanh :math:`1-a^2`); softmax has no elementwise derivative;
* ``backward(z, a, da) -> dz``: the vector-Jacobian product :math:`\partial E/\partial z`
  given :math:`\partial E/\partial a`.

All forward formulas are written so that pre-activations up to :math:`|z| = 10^4` (and
beyond) raise no overflow warning and give no NaN.

To add an activation: subclass :class:`Activation`, set ``name``, and add it to
``ACTIVATIONS``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from .errors import ConfigError, unknown_name
from .i18n import gettext as _

__all__ = [
    "Activation",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softplus",
    "GELU",
    "Identity",
    "Softmax",
    "ACTIVATIONS",
    "get_activation",
]


class Activation(ABC):
    """Base class. Subclasses implement ``forward`` and ``derivative`` (or ``backward``)."""

    name = ""
    #: True where f'(z) exists elementwise (everything but softmax).
    elementwise = True
    #: Range of the output, used to check that a loss can take it.
    output_range = (-np.inf, np.inf)

    @abstractmethod
    def forward(self, z: np.ndarray) -> np.ndarray:
        """a = f(z), same shape as z."""

    @abstractmethod
    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """f'(z) elementwise, same shape as z."""

    def backward(self, z: np.ndarray, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        r""":math:`\partial E/\partial z = \partial E/\partial a \odot f'(z)`."""
        return da * self.derivative(z, a)

    def to_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    r"""Logistic sigmoid :math:`\sigma(z) = 1/(1+e^{-z})`, :math:`\sigma'(z) = \sigma(1-\sigma)`.

    ``flat_spot`` adds a constant to the derivative (Fahlman 1988 used 0.1) so that saturated
    units keep learning; it is 0 by default, and any other value makes the gradient
    deliberately inexact.
    """

    name = "sigmoid"
    output_range = (0.0, 1.0)

    def __init__(self, flat_spot: float = 0.0):
        self.flat_spot = float(flat_spot)

    def forward(self, z):
        # exp(-|z|) never overflows; both branches of the logistic are then exact: 1/(1+e)
        # for z >= 0, e/(1+e) below. Seven NumPy calls, in place where they can be: on a few
        # rows each call costs more than its arithmetic (17 -> 14 us on 4 x 2 float32), and
        # on 512 x 128 float32 the two divisions of the first version cost 3x the time.
        e = np.abs(z)
        if type(e) is not np.ndarray:  # a 0-d z gives a NumPy scalar, which out= cannot take
            e = np.asarray(e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        a = np.where(z >= 0, 1, e)  # z's dtype: the 1 is a Python scalar
        a /= e + 1
        return a

    def derivative(self, z, a):
        d = a * (1.0 - a)
        if self.flat_spot:
            d += self.flat_spot
        return d

    def to_config(self):
        cfg = {"name": self.name}
        if self.flat_spot:
            cfg["flat_spot"] = self.flat_spot
        return cfg


class Tanh(Activation):
    r""":math:`\tanh z`, derivative :math:`1 - \tanh^2 z`."""

    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, z):
        return np.tanh(z)

    def derivative(self, z, a):
        return 1.0 - a * a


class ReLU(Activation):
    r""":math:`\max(0, z)`, derivative 1 for :math:`z > 0`, else 0 (0 at the kink)."""

    name = "relu"
    output_range = (0.0, np.inf)

    def forward(self, z):
        return np.maximum(z, 0)

    def derivative(self, z, a):
        return (z > 0).astype(z.dtype)

    def backward(self, z, a, da):
        return np.where(z > 0, da, 0).astype(da.dtype, copy=False)


class LeakyReLU(Activation):
    r""":math:`z` for :math:`z > 0`, else :math:`\alpha z`; derivative 1 or :math:`\alpha`."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        self.alpha = float(alpha)

    def forward(self, z):
        return np.where(z > 0, z, self.alpha * z).astype(z.dtype, copy=False)

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, self.alpha).astype(z.dtype)

    def to_config(self):
        return {"name": self.name, "alpha": self.alpha}


class Softplus(Activation):
    r""":math:`\log(1 + e^z)`, derivative :math:`\sigma(z)`.

    Computed as :math:`\max(z, 0) + \log(1 + e^{-|z|})`, which cannot overflow.
    """

    name = "softplus"
    output_range = (0.0, np.inf)

    def forward(self, z):
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))

    def derivative(self, z, a):
        return _SIGMOID.forward(z)


#: GELU's constants: sqrt(2/pi) and the cubic coefficient of its tanh approximation
GELU_C, GELU_A = math.sqrt(2.0 / math.pi), 0.044715


class GELU(Activation):
    r"""GELU (Hendrycks & Gimpel 2016, "Gaussian error linear units"), in its tanh form:

    .. math:: f(z) = \tfrac12 z\,(1 + \tanh u),\qquad u = \sqrt{2/\pi}\,(z + 0.044715\, z^3),

    .. math:: f'(z) = \tfrac12 (1 + \tanh u) + \tfrac12 z\,(1 - \tanh^2 u)\,
              \sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\, z^2).

    This is PyTorch's ``nn.GELU(approximate="tanh")`` (and ``jax.nn.gelu``'s default), not its
    default ``approximate="none"``, :math:`\tfrac12 z (1 + \operatorname{erf}(z/\sqrt2))`:
    NumPy has no ``erf``, and the two differ by less than 5e-4 everywhere. For large
    :math:`|z|` it is :math:`z` or 0 (``tanh`` saturates, nothing overflows up to
    :math:`|z| = 10^{4}`).
    """

    name = "gelu"

    def forward(self, z):
        return 0.5 * z * (1.0 + np.tanh(GELU_C * (z + GELU_A * (z * z * z))))

    def derivative(self, z, a):
        t = np.tanh(GELU_C * (z + GELU_A * (z * z * z)))
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * (GELU_C * (1.0 + 3.0 * GELU_A * (z * z)))


class Identity(Activation):
    r""":math:`f(z) = z`, derivative 1 (linear output for regression)."""

    name = "identity"

    def forward(self, z):
        return z

    def derivative(self, z, a):
        return np.ones_like(z)

    def backward(self, z, a, da):
        return da


class Softmax(Activation):
    r"""Softmax over the units of each sample: :math:`a_i = e^{z_i} / \sum_j e^{z_j}`.

    Computed as :math:`e^{z_i - m} / \sum_j e^{z_j - m}` with :math:`m = \max_j z_j`
    (log-sum-exp shift), so large :math:`z` cannot overflow.
    Its Jacobian is not diagonal; the vector-Jacobian product is
    :math:`\partial E/\partial z_i = a_i (g_i - \sum_j g_j a_j)` with :math:`g = \partial E/\partial a`.
    Paired with categorical cross-entropy the loss fuses the two (delta :math:`a - t`).
    """

    name = "softmax"
    elementwise = False
    output_range = (0.0, 1.0)

    def forward(self, z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e

    def derivative(self, z, a):
        raise TypeError("softmax has no elementwise derivative; use backward()")

    def backward(self, z, a, da):
        return a * (da - np.sum(da * a, axis=1, keepdims=True))


_SIGMOID = Sigmoid()

ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, Softplus, GELU, Identity, Softmax)
}


def get_activation(spec) -> Activation:
    """Return an activation from a name, a config dict (``{"name": ..., **params}``) or an instance."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None)
    else:
        name, params = spec, {}
    if name not in ACTIVATIONS:
        raise unknown_name("activation", str(name), ACTIVATIONS)
    try:
        return ACTIVATIONS[name](**params)
    except TypeError as exc:
        raise ConfigError(_("activation {name!r}: bad parameters {params}: {reason}").format(
            name=name, params=params, reason=exc)) from None
