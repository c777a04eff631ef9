r"""A stack of :class:`~deltaprop.layers.Dense` layers with a loss.

Backpropagation over a batch of :math:`n` samples, for layers :math:`l = L, \dots, 1`:

.. math::
    \delta^{(L)} = \tfrac1n\,\partial E_s/\partial z^{(L)}, \qquad
    \delta^{(l-1)} = \big(\delta^{(l)} W^{(l)\top}\big) \odot f'_{l-1}(z^{(l-1)}),

    \partial E/\partial W^{(l)} = a^{(l-1)\top} \delta^{(l)}, \qquad
    \partial E/\partial b^{(l)} = \textstyle\sum_s \delta^{(l)}_s,

where :math:`E` is the batch loss (mean of the per-sample losses), so the gradient of a batch
is the mean of the per-sample gradients.

All parameters live in one flat vector, ``network.flat``; every layer's ``W`` and ``b`` are
views into it, and likewise the gradients into ``network.flat_grad``. Trainable parameters
come first, so ``network.params`` (a view of the first ``n_trainable`` entries) is what an
optimizer updates; frozen biases sit after them and are never touched.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from .activations import get_activation
from .errors import ConfigError, DataError
from .i18n import gettext as _, ngettext
from .initializers import initialize_layer
from .layers import Dense
from .losses import Loss, get_loss
from .memory import require_memory
from .validation import as_generator, require_finite

__all__ = ["Network"]


def _is_sparse(X) -> bool:
    # scipy is not a dependency of the core: only a matrix that is already sparse needs it
    return hasattr(X, "tocsr") and hasattr(X, "nnz")

_DTYPES = {"float32": np.float32, "float64": np.float64}
#: The names of the two dtypes (NumPy's ``dtype.name`` is computed in Python on each access:
#: 6 us, a part of every check that a compiled plan still fits its network)
_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def _as_dtype(dtype) -> np.dtype:
    dt = np.dtype(_DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype)
    if dt not in (np.float32, np.float64):
        raise ConfigError(_("dtype must be float32 or float64, got {value}").format(value=dt))
    return dt


def hidden_activations(activation, n_hidden: int) -> list:
    """One activation per hidden layer: ``activation`` repeated where it is one name (or an
    Activation object), else the sequence itself, which must have ``n_hidden`` entries."""
    if isinstance(activation, str) or not isinstance(activation, (list, tuple)):
        return [activation] * n_hidden
    if len(activation) != n_hidden:
        raise ConfigError(ngettext("activation lists {given} names, one per hidden layer, but the network has "
                                   "{n} hidden layer", "activation lists {given} names, one per hidden layer, "
                                   "but the network has {n} hidden layers", n_hidden).format(
            given=len(activation), n=n_hidden))
    return list(activation)


class Network:
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from input to output, e.g. ``[2, 2, 1]``.
    activation : str or sequence of str
        Hidden-layer activation: one name for every hidden layer, or one per hidden layer
        (``["relu", "tanh"]`` for ``sizes=[2, 8, 8, 1]``).
    output_activation : str, optional
        Output-layer activation; defaults to ``activation`` (where it is one name).
    loss : str, dict or Loss
        Loss name from :data:`deltaprop.losses.LOSSES`, or its config with parameters,
        e.g. ``{"name": "huber", "delta": 0.5}`` (see :func:`deltaprop.losses.get_loss`).
    dtype : float32 or float64
    bias, train_bias : bool
        Biases present / trained (one setting for every layer; use :meth:`from_layers` to mix).
    init : str
        Initialisation scheme (see :mod:`deltaprop.initializers`); ``"zeros"`` starts every
        weight and bias at zero (for weights set by hand with :meth:`set_weights`).
    seed : int or numpy.random.Generator, optional
        Seed of the initial weights; without it they come from a fresh Generator (different
        on every call).
    """

    def __init__(self, sizes: Sequence[int], activation="sigmoid", output_activation=None,
                 loss="half_sse", *, dtype="float64", bias=True, train_bias=True,
                 init="glorot_uniform", seed=None):
        try:
            given = list(sizes)
        except TypeError:
            raise ConfigError(_("layer sizes must be a sequence of positive integers, got {value!r}").format(
                value=sizes)) from None
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in given):
            raise ConfigError(_("layer sizes must be positive integers, got {value!r}").format(value=given))
        sizes = [int(s) for s in given]
        if len(sizes) < 2:
            raise ConfigError(_("a network needs at least an input and an output size, got {value}").format(value=sizes))
        if any(s <= 0 for s in sizes):
            raise ConfigError(_("layer sizes must be positive, got {value}").format(value=sizes))
        hidden_acts = hidden_activations(activation, len(sizes) - 2)
        if output_activation is None and not isinstance(activation, str):
            raise ConfigError(_("output_activation must be given where activation is a list, one per hidden layer"))
        out_act = activation if output_activation is None else output_activation
        dt = _as_dtype(dtype)
        n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        # The layers' own arrays, the flat vector and its gradient: refuse before allocating.
        require_memory(3 * n_params * dt.itemsize,
                       ngettext("a network of {n} parameters ({sizes}, {dtype})",
                                "a network of {n} parameters ({sizes}, {dtype})", n_params).format(
                           n=f"{n_params:,}", sizes="-".join(map(str, sizes)), dtype=dt.name))
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            act = out_act if i == len(sizes) - 2 else hidden_acts[i]
            layers.append(Dense(n_in, n_out, act, bias=bias, train_bias=train_bias, dtype=dt))
        self._build(layers, loss, dt)
        self.init = init
        # Random weights by default (a fresh Generator without a seed): all-zero weights keep
        # every hidden unit of a layer identical, so XOR and the like never break symmetry.
        if init != "zeros":
            self.reset_parameters(seed, init)

    @classmethod
    def from_layers(cls, layers: Sequence[Dense], loss="half_sse", dtype="float64") -> "Network":
        net = cls.__new__(cls)
        for prev, nxt in zip(layers[:-1], layers[1:]):
            if prev.n_out != nxt.n_in:
                raise ConfigError(_("layer widths do not chain: {first!r} then {second!r}").format(first=prev, second=nxt))
        net._build(list(layers), loss, _as_dtype(dtype))
        net.init = "glorot_uniform"
        return net

    def _build(self, layers: list[Dense], loss, dtype: np.dtype) -> None:
        self.layers = layers
        self.loss: Loss = get_loss(loss)
        self.dtype = dtype
        for layer in layers[:-1]:
            if not layer.activation.elementwise:
                raise ConfigError(_("{name!r} is only allowed on the output layer").format(name=layer.activation.name))
        self.loss.check_output_activation(self.output_activation)
        # Lay out the flat vector: trainable parameters first, frozen biases last.
        slots = []  # (layer, attribute, shape)
        for layer in layers:
            slots.append((layer, "W", (layer.n_in, layer.n_out)))
            if layer.train_bias:
                slots.append((layer, "b", (layer.n_out,)))
        self.n_trainable = sum(int(np.prod(s)) for _, _, s in slots)
        for layer in layers:
            if layer.bias and not layer.train_bias:
                slots.append((layer, "b", (layer.n_out,)))
        total = sum(int(np.prod(s)) for _, _, s in slots)
        old = [(layer.W.copy(), layer.b.copy()) for layer in layers]
        self.flat = np.zeros(total, dtype)
        self.flat_grad = np.zeros(total, dtype)
        self._slots = []
        pos = 0
        for layer, attr, shape in slots:
            size = int(np.prod(shape))
            setattr(layer, attr, self.flat[pos:pos + size].reshape(shape))
            setattr(layer, "d" + attr, self.flat_grad[pos:pos + size].reshape(shape))
            self._slots.append((layer, attr, pos, size))
            pos += size
        for layer in layers:
            if not layer.bias:
                layer.b = np.zeros(layer.n_out, dtype)
                layer.db = np.zeros(layer.n_out, dtype)
        for layer, (W, b) in zip(layers, old):
            layer.W[...] = W
            if layer.bias:
                layer.b[...] = b

    # ----------------------------------------------------------------- structure
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def output_activation(self):
        return self.layers[-1].activation

    @property
    def params(self) -> np.ndarray:
        """Trainable parameters as one flat view (what optimizers update in place)."""
        return self.flat[: self.n_trainable]

    @property
    def grads(self) -> np.ndarray:
        """Gradient of the trainable parameters, flat, aligned with :attr:`params`."""
        return self.flat_grad[: self.n_trainable]

    @property
    def n_params(self) -> int:
        return self.flat.size

    def weight_mask(self) -> np.ndarray:
        """1 for each weight and 0 for each bias of :attr:`params`, in the network's dtype: the
        mask weight decay uses, so that biases are not decayed."""
        mask = np.zeros(self.n_trainable, self.dtype)
        for _, attr, pos, size in self._slots:
            if attr == "W":
                mask[pos:pos + size] = 1
        return mask

    def param_names(self) -> list[str]:
        """Names of the flat vector's entries: ``W1[i,j]`` (layer 1, input i to unit j), ``b1[j]``."""
        names = []
        for layer, attr, _, _ in self._slots:
            li = self.layers.index(layer) + 1
            if attr == "W":
                names += [f"W{li}[{i},{j}]" for i in range(layer.n_in) for j in range(layer.n_out)]
            else:
                names += [f"b{li}[{j}]" for j in range(layer.n_out)]
        return names

    # ----------------------------------------------------------------- weights
    def reset_parameters(self, rng=None, init=None) -> None:
        """Draw fresh weights from ``init`` with ``rng``: a Generator or an int seed, or a legacy
        ``numpy.random.RandomState``, which the estimators pass to draw scikit-learn's very
        initial weights (``init="sklearn"``)."""
        rng = rng if isinstance(rng, np.random.RandomState) else as_generator(rng)
        init = self.init if init is None else init
        self.init = init
        hidden = [layer.activation.name for layer in self.layers[:-1]]
        for i, layer in enumerate(self.layers):
            # the hidden units a layer belongs to: its own, the output layer's the last hidden layer's
            initialize_layer(layer, rng, init, hidden[min(i, len(hidden) - 1)] if hidden else None)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of ``(W, b)`` per layer."""
        return [(layer.W.copy(), layer.b.copy()) for layer in self.layers]

    def set_weights(self, weights) -> None:
        """Set explicit ``(W, b)`` per layer (shapes ``(n_in, n_out)`` and ``(n_out,)``)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ConfigError(ngettext("expected weights for {n} layers, got {got}",
                                       "expected weights for {n} layers, got {got}", len(self.layers)).format(
                n=len(self.layers), got=len(weights)))
        for i, (layer, (W, b)) in enumerate(zip(self.layers, weights), start=1):
            W = np.asarray(W, dtype=self.dtype)
            b = np.asarray(b, dtype=self.dtype)
            if b.ndim == 0:
                b = np.full(layer.n_out, b, dtype=self.dtype)
            if W.shape != layer.W.shape or b.shape != (layer.n_out,):
                raise ConfigError(_("layer {i}: weights of shape {shape} and biases {bias_shape} given, "
                                    "expected {want_shape} and {want_bias}").format(
                    i=i, shape=W.shape, bias_shape=b.shape, want_shape=layer.W.shape, want_bias=(layer.n_out,)))
            layer.W[...] = W
            if layer.bias:
                layer.b[...] = b

    def astype(self, dtype) -> "Network":
        """A copy of the network in another float dtype."""
        net = Network.from_config(self.to_config() | {"dtype": _as_dtype(dtype).name})
        net.flat[...] = self.flat
        net.init = self.init
        return net

    # Pickling (joblib, multiprocessing, copy.deepcopy) must rebuild the views of every layer's
    # W and b into the flat vector, which pickle would silently turn into separate copies.
    def __getstate__(self) -> dict:
        return {"config": self.to_config(), "flat": self.flat.copy(), "init": self.init}

    def __setstate__(self, state: dict) -> None:
        net = Network.from_config(state["config"])
        self.__dict__.update(net.__dict__)
        self.flat[...] = state["flat"]
        self.init = state["init"]

    def copy(self) -> "Network":
        return self.astype(self.dtype)

    # ----------------------------------------------------------------- passes
    def check_input(self, X, what="X") -> np.ndarray:
        """``X`` as a 2-D C-contiguous array of the network's dtype; a scipy.sparse matrix stays
        sparse (CSR), since every product with it, ``X @ W`` and ``X.T @ delta``, runs in scipy."""
        if _is_sparse(X):
            if X.ndim != 2 or X.shape[1] != self.n_inputs:
                raise DataError(_("{what} has shape {shape} but the network takes {n} inputs").format(
                    what=what, shape=X.shape, n=self.n_inputs))
            return X.tocsr().astype(self.dtype, copy=False)
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2:
            raise DataError(_("{what} must be 2-D (n_samples, n_features), got shape {shape}").format(
                what=what, shape=X.shape))
        if X.shape[1] != self.n_inputs:
            raise DataError(ngettext("{what} has {columns} columns but the network takes {n} inputs (shape {shape})",
                                     "{what} has {columns} columns but the network takes {n} inputs (shape {shape})",
                                     self.n_inputs).format(what=what, columns=X.shape[1], n=self.n_inputs,
                                                           shape=X.shape))
        return np.ascontiguousarray(X, dtype=self.dtype)

    def forward(self, X: np.ndarray, keep: bool = True) -> np.ndarray:
        """Output of the network for ``X`` of shape ``(n, n_inputs)``; shape ``(n, n_outputs)``."""
        a = X
        for layer in self.layers:
            a = layer.forward(a, keep)
        return a

    def predict(self, X, chunk_size: int = 8192) -> np.ndarray:
        """Outputs for ``X`` without keeping intermediate values, in chunks."""
        X = self.check_input(X)
        require_finite(X, _("inputs"))
        n = X.shape[0]
        if n <= chunk_size:
            return self.forward(X, keep=False)
        return np.concatenate([self.forward(X[i:i + chunk_size], keep=False)
                               for i in range(0, n, chunk_size)])

    def sample_losses(self, X, T) -> np.ndarray:
        """Per-sample losses after a forward pass, shape ``(n,)``."""
        out = self.layers[-1]
        a = self.forward(X, keep=True)
        return self.loss.value(a, T, z=out.z, activation=out.activation)

    def evaluate(self, X, T, chunk_size: int = 8192, sample_weight=None) -> tuple[float, np.ndarray]:
        r"""Mean per-sample loss over ``X`` and the outputs, one forward pass in chunks; with
        ``sample_weight`` :math:`w` (shape ``(n,)``) the weighted mean
        :math:`\sum_i w_i E_i / \sum_i w_i`."""
        n = X.shape[0]
        total, outs = 0.0, []
        for i in range(0, n, chunk_size):
            losses = self.sample_losses(X[i:i + chunk_size], T[i:i + chunk_size])
            total += float(losses.sum() if sample_weight is None
                           else losses @ np.asarray(sample_weight[i:i + chunk_size], losses.dtype))
            outs.append(self.layers[-1].a)
        denom = n if sample_weight is None else float(np.sum(sample_weight))
        return (total / denom if denom > 0 else 0.0), (outs[0] if len(outs) == 1 else np.concatenate(outs))

    def backward(self, T: np.ndarray, scale: float = 1.0, accumulate: bool = False) -> None:
        r"""Back-propagate from the last forward pass with targets ``T``.

        Fills ``flat_grad`` with ``scale`` times the *sum* over the batch of per-sample
        gradients (``scale = 1/n`` gives the batch mean); with ``accumulate`` adds to it.
        ``scale`` may be an array of shape ``(n, 1)``: one factor per sample (sample weights).
        """
        out = self.layers[-1]
        delta = self.loss.delta(out.z, out.a, T, out.activation)
        if not (np.isscalar(scale) and scale == 1.0):
            delta = delta * scale
        da = out.backward(delta=delta, accumulate=accumulate, input_grad=len(self.layers) > 1)
        for i in range(len(self.layers) - 2, -1, -1):
            da = self.layers[i].backward(da, accumulate=accumulate, input_grad=i > 0)

    def loss_and_gradient(self, X, T, chunk_size: int = 4096, sample_weight=None) -> tuple[float, np.ndarray]:
        r"""Mean loss and its gradient (flat, trainable part) over the batch ``X``, ``T``.

        The batch is processed in chunks of ``chunk_size`` rows whose gradient sums are
        added up, so memory does not grow with the batch. Returns the sum of per-sample
        losses divided by n and a view of :attr:`grads`.

        With ``sample_weight`` :math:`w \ge 0` (shape ``(n,)``) the loss is the weighted mean
        :math:`E = \sum_i w_i E_i / \sum_i w_i` and the gradient
        :math:`\sum_i w_i \nabla E_i / \sum_i w_i` (each sample's output delta scaled by its
        factor), so integer weights equal repeating rows; all-zero weights give
        :math:`E = 0` and a zero gradient.
        """
        n = X.shape[0]
        if sample_weight is None:
            total_w, w = float(n), None
        else:
            total_w = float(np.sum(sample_weight))
            if total_w <= 0:
                self.grads[...] = 0
                return 0.0, self.grads
            sample_weight = np.asarray(sample_weight, np.float64)
            w = (sample_weight / total_w).astype(self.dtype).reshape(-1, 1)
        scale = 1.0 / total_w
        total = 0.0
        for i in range(0, n, chunk_size):
            losses = self.sample_losses(X[i:i + chunk_size], T[i:i + chunk_size])
            if w is None:
                total += float(losses.sum())
                self.backward(T[i:i + chunk_size], scale, accumulate=i > 0)
            else:
                total += float(losses @ sample_weight[i:i + chunk_size])
                self.backward(T[i:i + chunk_size], w[i:i + chunk_size], accumulate=i > 0)
        return total * scale, self.grads

    # ----------------------------------------------------------------- config
    def to_config(self) -> dict:
        return {
            "layers": [layer.to_config() for layer in self.layers],
            "loss": self.loss.to_config(),
            "dtype": _DTYPE_NAMES[self.dtype],
        }

    @classmethod
    def from_config(cls, config: dict) -> "Network":
        try:
            dtype = _as_dtype(config["dtype"])
            layers = [Dense(c["n_in"], c["n_out"], get_activation(c["activation"]), bias=c["bias"],
                            train_bias=c["train_bias"], dtype=dtype) for c in config["layers"]]
            return cls.from_layers(layers, get_loss(config["loss"]), dtype)
        except (KeyError, TypeError) as exc:
            raise ConfigError(_("network config is missing or has a bad entry: {reason}").format(reason=exc)) from None


    def __repr__(self) -> str:
        acts = "/".join(dict.fromkeys(layer.activation.name for layer in self.layers))
        return (f"Network({'-'.join(map(str, self.sizes))}, {acts}, loss={self.loss.name}, "
                f"{self.dtype.name}, {self.n_trainable} trainable of {self.n_params} parameters)")
