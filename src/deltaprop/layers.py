r"""The fully connected layer: one contract, used by training, explain, gradcheck and engines.

For a batch :math:`X` of shape ``(n, n_in)``:

.. math::
    z = X W + b,\qquad a = f(z)

with :math:`W` of shape ``(n_in, n_out)`` (``W[i, j]`` connects input *i* to unit *j*) and
:math:`b` of shape ``(n_out,)``. Backward, given :math:`\delta = \partial E/\partial z`
(shape ``(n, n_out)``):

.. math::
    \frac{\partial E}{\partial W} = X^\top \delta,\qquad
    \frac{\partial E}{\partial b} = \textstyle\sum_s \delta_s,\qquad
    \frac{\partial E}{\partial X} = \delta W^\top .

The batch loss is a mean, so the caller scales :math:`\delta` by ``1/n`` (the network does);
the layer itself only sums.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation, get_activation
from .errors import ConfigError
from .i18n import gettext as _

__all__ = ["Dense"]


class Dense:
    """A fully connected layer ``a = f(X @ W + b)``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    activation : str, dict or Activation
        Name from :data:`deltaprop.activations.ACTIVATIONS`, a config dict, or an instance.
    bias : bool
        Whether the layer has biases at all.
    train_bias : bool
        Whether the biases are updated in training (``False`` holds them fixed, as in the
        worked example).

    Attributes
    ----------
    W, b : ndarray
        Parameters, shapes ``(n_in, n_out)`` and ``(n_out,)``; views into the owning
        network's flat parameter vector once the layer belongs to a :class:`Network`.
    dW, db : ndarray
        Gradients of the same shapes, filled by :meth:`backward`.
    X, z, a, delta : ndarray
        What the last forward / backward pass kept: input, pre-activation, output, and
        :math:`\\partial E/\\partial z` (kept for the explain trace).
    """

    def __init__(self, n_in: int, n_out: int, activation="sigmoid", *, bias: bool = True,
                 train_bias: bool = True, dtype=np.float64):
        if int(n_in) <= 0 or int(n_out) <= 0:
            raise ConfigError(_("layer widths must be positive, got {n_in} -> {n_out}").format(n_in=n_in, n_out=n_out))

        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation: Activation = get_activation(activation)
        self.bias = bool(bias)
        self.train_bias = bool(train_bias) and self.bias
        dtype = np.dtype(dtype)
        self.W = np.zeros((self.n_in, self.n_out), dtype)
        self.b = np.zeros(self.n_out, dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.X = self.z = self.a = self.delta = None

    @property
    def n_weights(self) -> int:
        return self.n_in * self.n_out

    def forward(self, X: np.ndarray, keep: bool = True) -> np.ndarray:
        """Return ``a = f(X @ W + b)``, shape ``(n, n_out)``; keep X, z, a for backward."""
        z = X @ self.W
        if self.bias:
            z += self.b
        a = self.activation.forward(z)
        if keep:
            self.X, self.z, self.a = X, z, a
        return a

    def backward(self, da: np.ndarray | None = None, *, delta: np.ndarray | None = None,
                 accumulate: bool = False, input_grad: bool = True) -> np.ndarray | None:
        r"""Back-propagate through the layer.

        Give either ``da`` = :math:`\partial E/\partial a` (the activation's derivative is
        applied here) or ``delta`` = :math:`\partial E/\partial z` directly (fused output
        losses). Fills ``dW``/``db`` (adding to them when ``accumulate``) and returns
        :math:`\partial E/\partial X = \delta W^\top` of shape ``(n, n_in)``, or ``None`` when
        ``input_grad`` is false (the first layer needs none).
        """
        if delta is None:
            delta = self.activation.backward(self.z, self.a, da)
        self.delta = delta
        if not isinstance(self.X, np.ndarray):  # a scipy.sparse input: the product is scipy's
            dW = np.asarray(self.X.T @ delta)
            if accumulate:
                self.dW += dW
            else:
                self.dW[...] = dW
            if self.bias:
                if accumulate:
                    self.db += delta.sum(axis=0)
                else:
                    np.sum(delta, axis=0, out=self.db)
        elif accumulate:
            self.dW += self.X.T @ delta
            if self.bias:
                self.db += delta.sum(axis=0)
        else:
            np.matmul(self.X.T, delta, out=self.dW)
            if self.bias:
                np.sum(delta, axis=0, out=self.db)
        return delta @ self.W.T if input_grad else None

    def to_config(self) -> dict:
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "activation": self.activation.to_config(),
            "bias": self.bias,
            "train_bias": self.train_bias,
        }

    def __repr__(self) -> str:
        return (f"Dense({self.n_in} -> {self.n_out}, {self.activation.name}"
                f"{'' if self.bias else ', no bias'}{', frozen bias' if self.bias and not self.train_bias else ''})")
