r"""Weight initialisation schemes, all drawn from one explicit ``numpy.random.Generator``.

For a layer with fan-in :math:`n_{in}` and fan-out :math:`n_{out}`:

* ``glorot_uniform``: :math:`U(-r, r)`, :math:`r = \sqrt{6/(n_{in}+n_{out})}` (Glorot & Bengio 2010);
* ``glorot_normal``: :math:`N(0, 2/(n_{in}+n_{out}))`;
* ``he_uniform``: :math:`U(-r, r)`, :math:`r = \sqrt{6/n_{in}}` (He et al. 2015);
* ``he_normal``: :math:`N(0, 2/n_{in})`;
* ``uniform``: :math:`U(-r, r)` with a fixed ``scale`` r (the classic choice, e.g. 0.5 or 1),
  biases drawn from the same range;
* ``sklearn``: scikit-learn's MLP (``BaseMultilayerPerceptron._init_coef``), weights and biases
  both from :math:`U(-r, r)`, :math:`r = \sqrt{f/(n_{in}+n_{out})}` with :math:`f = 2` where
  the hidden units are logistic (sigmoid) and :math:`f = 6` otherwise (then the weights are
  Glorot's); per layer the weights are drawn first, then the biases, as scikit-learn does. The
  estimators' default. scikit-learn's ``f`` follows its one hidden ``activation`` for every layer,
  the output layer included; with one activation per hidden layer, each hidden layer follows its
  own and the output layer the last hidden one's (no hidden layer: :math:`f = 6`).

Glorot and He schemes start biases at zero. ``zeros`` starts everything at zero: only for
weights set by hand (a network of equal units stays symmetric under backpropagation).
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, unknown_name
from .i18n import gettext as _

__all__ = ["INITIALIZERS", "initialize_layer", "parse_init"]


def _glorot_uniform(rng, n_in, n_out, shape):
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, shape)


def _glorot_normal(rng, n_in, n_out, shape):
    return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), shape)


def _he_uniform(rng, n_in, n_out, shape):
    r = np.sqrt(6.0 / n_in)
    return rng.uniform(-r, r, shape)


def _he_normal(rng, n_in, n_out, shape):
    return rng.normal(0.0, np.sqrt(2.0 / n_in), shape)


INITIALIZERS = {
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
    "uniform": None,  # needs a scale; handled in initialize_layer
    "sklearn": None,  # needs the hidden units' activation; handled in initialize_layer
    "zeros": lambda rng, n_in, n_out, shape: np.zeros(shape),  # only when asked for (hand-set weights)
}


def parse_init(spec) -> tuple[str, float]:
    """Accept ``"glorot_uniform"``, ``"uniform:0.5"`` or ``("uniform", 0.5)``; return (name, scale)."""
    if isinstance(spec, (tuple, list)):
        name, scale = spec[0], float(spec[1])
    elif isinstance(spec, str) and ":" in spec:
        name, _colon, s = spec.partition(":")
        try:
            scale = float(s)
        except ValueError:
            raise ConfigError(_("init {spec!r}: scale {scale!r} is not a number").format(spec=spec, scale=s)) from None
    else:
        name, scale = spec, 0.5
    if name not in INITIALIZERS:
        raise unknown_name("init", str(name), INITIALIZERS)
    if not np.isfinite(scale) or scale <= 0:
        raise ConfigError(_("init {spec!r}: scale must be a positive number").format(spec=spec))

    return name, scale


def sklearn_bound(n_in: int, n_out: int, hidden_activation: str | None) -> float:
    r"""scikit-learn's :math:`r = \sqrt{f/(n_{in}+n_{out})}`, :math:`f = 2` for logistic hidden
    units (deltaprop's ``sigmoid``), else 6."""
    return float(np.sqrt((2.0 if hidden_activation == "sigmoid" else 6.0) / (n_in + n_out)))


def initialize_layer(layer, rng: np.random.Generator, spec="glorot_uniform",
                     hidden_activation: str | None = None) -> None:
    """Fill ``layer.W`` and ``layer.b`` in place. ``hidden_activation``: the activation of the
    hidden units the layer belongs to (``sklearn``'s factor; see the module docstring)."""
    name, scale = parse_init(spec)
    shape = layer.W.shape
    if name in ("uniform", "sklearn"):
        if name == "sklearn":
            scale = sklearn_bound(layer.n_in, layer.n_out, hidden_activation)
        layer.W[...] = rng.uniform(-scale, scale, shape)
        if layer.bias:
            layer.b[...] = rng.uniform(-scale, scale, layer.b.shape)
    else:
        layer.W[...] = INITIALIZERS[name](rng, layer.n_in, layer.n_out, shape)
        layer.b[...] = 0.0
