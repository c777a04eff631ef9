"""Names of the traced quantities, in two schemes, and the display templates of their formulas.

:class:`Names` is deltaprop's scheme (``W1[0,1]``, ``net2[0]``), :class:`MazurNames` the
article's (``w5``, ``net_o1``); every name is a pair ``(text, tex)``. The templates say how a
value is derived (``$0 * $1``); the values themselves come from the library, in :mod:`.trace`.
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- names
class Names:
    """Plain-text and LaTeX names of a network's quantities, deltaprop's scheme.

    Layers count from 1 (``W1`` is the first layer's weights, as in
    :meth:`Network.param_names`); units and inputs from 0. Every method returns
    ``(text, tex)``.
    """

    scheme = "deltaprop"
    total = ("E_total", "E_{total}")
    lr = ("eta", r"\eta")

    def _of_unit(self, symbol, l, j):
        """Unit j of layer l's ``symbol`` (text, tex). Net, out, delta and bias differ only in
        the symbol, so a scheme names its units here, once."""
        return f"{symbol[0]}{l}[{j}]", f"{symbol[1]}^{{({l})}}_{{{j}}}"

    def input(self, i):
        return f"x[{i}]", f"x_{{{i}}}"

    def net(self, l, j):
        return self._of_unit(("net", "net"), l, j)

    def out(self, l, j):
        """Output of unit j of layer l; layer 0 is the input."""
        return self.input(j) if l == 0 else self._of_unit(("out", "out"), l, j)

    def delta(self, l, j):
        return self._of_unit(("delta", r"\delta"), l, j)

    def weight(self, l, i, j):
        return f"W{l}[{i},{j}]", f"W^{{({l})}}_{{{i},{j}}}"

    def bias(self, l, j):
        return self._of_unit(("b", "b"), l, j)

    def shared_bias(self, l):
        return f"b{l}", f"b^{{({l})}}"

    def target(self, k):
        return f"t[{k}]", f"t_{{{k}}}"

    def error(self, k):
        return f"E[{k}]", f"E_{{{k}}}"


class MazurNames(Names):
    """The article's names for the 2-2-2 network: inputs i1 i2, hidden h1 h2, outputs o1 o2,
    weights w1..w8 numbered unit by unit (w1 w2 into h1, ..., w7 w8 into o2), biases b1 b2."""

    scheme = "mazur"

    def _of_unit(self, symbol, l, j):
        unit = f"{'ho'[l - 1]}{j + 1}"
        return f"{symbol[0]}_{unit}", f"{symbol[1]}_{{{unit}}}"

    def input(self, i):
        return f"i{i + 1}", f"i_{{{i + 1}}}"

    def weight(self, l, i, j):
        n = 4 * (l - 1) + 2 * j + i + 1
        return f"w{n}", f"w_{{{n}}}"

    def shared_bias(self, l):
        return f"b{l}", f"b_{{{l}}}"

    def target(self, k):
        return f"target_o{k + 1}", f"target_{{o{k + 1}}}"

    def error(self, k):
        return f"E_o{k + 1}", f"E_{{o{k + 1}}}"


def _d(a, b):
    """Name of the partial derivative of a with respect to b."""
    return f"d{a[0]}/d{b[0]}", rf"\frac{{\partial {a[1]}}}{{\partial {b[1]}}}"


def _plus(name):
    """Name of a parameter after the update."""
    return name[0] + "+", name[1] + "^{+}"


def _bias_names(layer, l: int, names: Names, bias_mode: str) -> list:
    """Names of a layer's biases: one per layer (b1, b2) when shared, or held fixed at one
    value as in the article; else one per unit."""
    b = layer.b
    one = bias_mode == "shared" or (not layer.train_bias and np.all(b == b[0]))
    return [names.shared_bias(l) if one else names.bias(l, j) for j in range(layer.n_out)]


# --------------------------------------------------------------------------- display formulas
# Templates use $0, $1, ... for their arguments; text templates are valid Python once ^ is read
# as ** (and ln/exp/tanh as math's), which is how the tests check that every formula shown
# evaluates to the value next to it. They are display only: values come from the library.

def _activation_display(act, net_name, out_name):
    """``(forward, derivative)`` display of an elementwise activation, each
    ``(text, tex, arg_names, arg_kinds)``; arg kinds are "net", "out" or a constant's value."""
    name = act.name
    if name == "sigmoid":
        fwd = ("1/(1 + exp(-$0))", r"\frac{1}{1 + e^{-$0}}", [net_name], ["net"])
        if getattr(act, "flat_spot", 0.0):
            der = ("$0*(1 - $0) + $1", r"$0 (1 - $0) + $1", [out_name, ("flat_spot", r"c_{flat}")],
                   ["out", act.flat_spot])
        else:
            der = ("$0*(1 - $0)", r"$0 (1 - $0)", [out_name], ["out"])
    elif name == "tanh":
        fwd = ("tanh($0)", r"\tanh $0", [net_name], ["net"])
        der = ("1 - $0^2", r"1 - $0^2", [out_name], ["out"])
    elif name == "relu":
        fwd = ("max(0, $0)", r"\max(0, $0)", [net_name], ["net"])
        der = ("1 if $0 > 0 else 0", r"[$0 > 0]", [net_name], ["net"])
    elif name == "leaky_relu":
        alpha = ("alpha", r"\alpha")
        fwd = ("$0 if $0 > 0 else $1*$0", r"$0 \text{ if } $0 > 0 \text{ else } $1 $0",
               [net_name, alpha], ["net", act.alpha])
        der = ("1 if $0 > 0 else $1", r"1 \text{ if } $0 > 0 \text{ else } $1",
               [net_name, alpha], ["net", act.alpha])
    elif name == "softplus":
        fwd = ("ln(1 + exp($0))", r"\ln(1 + e^{$0})", [net_name], ["net"])
        der = ("1/(1 + exp(-$0))", r"\frac{1}{1 + e^{-$0}}", [net_name], ["net"])
    elif name == "gelu":  # activations.GELU, the tanh form: u = c (z + a z^3)
        u = "0.7978845608028654*($0 + 0.044715*$0^3)"
        fwd = (f"0.5*$0*(1 + tanh({u}))",
               r"\tfrac12 $0 \left(1 + \tanh\left(\sqrt{2/\pi}\,($0 + 0.044715\,$0^3)\right)\right)",
               [net_name], ["net"])
        der = (f"0.5*(1 + tanh({u})) + 0.5*$0*(1 - tanh({u})^2)*0.7978845608028654*(1 + 0.134145*$0^2)",
               r"\tfrac12 (1 + \tanh u) + \tfrac12 $0 (1 - \tanh^2 u) \sqrt{2/\pi}\,(1 + 0.134145\,$0^2),"
               r"\ u = \sqrt{2/\pi}\,($0 + 0.044715\,$0^3)", [net_name], ["net"])
    elif name == "identity":
        fwd = ("$0", "$0", [net_name], ["net"])
        der = ("1", "1", [], [])
    else:  # an activation added to the registry later: named, not spelt out
        fwd = (f"{name}($0)", rf"\mathrm{{{name}}}($0)", [net_name], ["net"])
        der = (f"{name}'($0)", rf"\mathrm{{{name}}}'($0)", [net_name], ["net"])
    return fwd, der


def _loss_display(loss, m):
    """``(term, grad)`` templates of a loss summed over outputs: the error of output k with
    args (target_k, out_k), and dE_total/dout_k with args (out_k, target_k); None if unknown."""
    table = {
        "half_sse": (("1/2*($0 - $1)^2", r"\tfrac12 ($0 - $1)^2"), ("$0 - $1", "$0 - $1")),
        "mse": ((f"($0 - $1)^2/{m}", rf"\tfrac1{{{m}}} ($0 - $1)^2"),
                (f"2/{m}*($0 - $1)", rf"\tfrac2{{{m}}} ($0 - $1)")),
        "binary_cross_entropy": (("-($0*ln($1) + (1 - $0)*ln(1 - $1))",
                                  r"-\left($0 \ln $1 + (1 - $0) \ln(1 - $1)\right)"),
                                 ("($0 - $1)/($0*(1 - $0))", r"\frac{$0 - $1}{$0 (1 - $0)}")),
        "cross_entropy": (("-$0*ln($1)", r"-$0 \ln $1"), ("-$1/$0", r"-\frac{$1}{$0}")),
    }
    return table.get(loss.name)


def _joined(n_terms, per_term, text_op, tex_op, start=0):
    """Templates 'A + B + ...' whose terms each take ``per_term`` args, numbered from ``start``."""
    text, tex = [], []
    for k in range(n_terms):
        idx = [f"${start + k * per_term + p}" for p in range(per_term)]
        text.append(text_op.join(idx))
        tex.append(tex_op.join(idx))
    return " + ".join(text), " + ".join(tex)
