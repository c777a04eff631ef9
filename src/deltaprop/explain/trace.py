r"""The step-by-step trace of one backpropagation update: every number, named and derived.

For one sample :math:`x` with target :math:`t`, a network of layers :math:`l = 1 \dots L`
(:math:`out^{(0)} = x`) and a per-sample loss :math:`E_{total}`, the trace records

.. math::
    net^{(l)}_j = \sum_i W^{(l)}_{ij}\, out^{(l-1)}_i + b^{(l)}_j, \qquad
    out^{(l)}_j = f_l(net^{(l)}_j),

    \delta^{(L)}_j = \frac{\partial E_{total}}{\partial out^{(L)}_j}
                     \cdot \frac{\partial out^{(L)}_j}{\partial net^{(L)}_j}, \qquad
    \frac{\partial E_{total}}{\partial out^{(l)}_j} = \sum_k \delta^{(l+1)}_k W^{(l+1)}_{jk}, \qquad
    \delta^{(l)}_j = \frac{\partial E_{total}}{\partial out^{(l)}_j} f_l'(net^{(l)}_j),

    \frac{\partial E_{total}}{\partial W^{(l)}_{ij}}
      = \frac{\partial E_{total}}{\partial out^{(l)}_j}
        \cdot \frac{\partial out^{(l)}_j}{\partial net^{(l)}_j}
        \cdot \frac{\partial net^{(l)}_j}{\partial W^{(l)}_{ij}}, \qquad
    \frac{\partial net^{(l)}_j}{\partial W^{(l)}_{ij}} = out^{(l-1)}_i,

    W^{+} = W - \eta \frac{\partial E_{total}}{\partial W}.

A fused output (softmax + cross-entropy, sigmoid + binary cross-entropy) has no separate
factors in deltaprop: its delta is :math:`\delta_j = out_j - t_j` directly, and the trace says so.

**The trace only records.** The forward values, deltas and gradients come from the very
:class:`~deltaprop.layers.Dense` ``forward``/``backward`` and :class:`~deltaprop.losses.Loss`
objects that training runs (``Network.forward`` and ``Network.backward`` themselves in the
default order). The chain-rule *factors* shown next to them (:math:`\partial E/\partial out`,
:math:`\partial out/\partial net`, the sums into a hidden unit) are computed for display from
the loss's ``grad`` and the activation's ``derivative``; a test checks that every displayed
formula evaluates to the value next to it and that the gradients equal ``Network.backward``'s.

**Update order.** ``"simultaneous"`` (the default, and plain gradient descent) computes every
gradient from the weights before the update, as Mazur's weight-by-weight arithmetic does.
``"output-first"`` updates each layer as soon as its gradient is known and back-propagates into
the layer below through the *updated* weights; it is not gradient descent, but it is what the
summary figures of Mazur's article (0.291027924 after one update; outputs 0.015912196 and
0.984065734 after 10,000) follow from. See ``docs/worked-example.md``.

**Biases.** ``"none"`` holds them fixed (the article), ``"per-neuron"`` trains deltaprop's own
one bias per unit, ``"shared"`` trains one bias per layer as the article draws it (:math:`b_1`,
:math:`b_2`): its gradient is the sum of the per-unit ones,
:math:`\partial E/\partial b^{(l)} = \sum_j \delta^{(l)}_j`, and every unit keeps the same value.

The trace is plain data (dicts, lists, floats, strings: ``json.dumps`` takes it as is);
:func:`~deltaprop.explain.rendering.render` turns it into a text table, Markdown with LaTeX,
or JSON. Nothing here prints.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..i18n import gettext as _, ngettext
from ..losses import MeanSquaredError
from ..network import Network
from .naming import MazurNames, Names, _activation_display, _bias_names, _d, _joined, _loss_display, _plus

#: Largest network (weights and biases together) that explain agrees to trace: every
#: parameter gets rows of its own, and a trace nobody can read explains nothing.
MAX_PARAMS = 500
#: Most updates ``steps`` may ask for (a 500-parameter net takes about a minute for these).
MAX_STEPS = 1_000_000
UPDATE_ORDERS = ("simultaneous", "output-first")
BIAS_MODES = ("none", "shared", "per-neuron")
TRACE_FORMAT = "deltaprop-explain"
TRACE_VERSION = 1

#: The starting point of Matt Mazur's "A Step by Step Backpropagation Example" (2015):
#: inputs, targets, weights w1..w8 in deltaprop's layout (``W[i, j]`` joins input i to unit j,
#: so the hidden W is [[w1, w3], [w2, w4]]), the biases b1, b2 and the learning rate.
MAZUR = {
    "inputs": (0.05, 0.10),
    "targets": (0.01, 0.99),
    "W1": ((0.15, 0.25), (0.20, 0.30)),
    "b1": 0.35,
    "W2": ((0.40, 0.50), (0.45, 0.55)),
    "b2": 0.60,
    "lr": 0.5,
    "url": "https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/",
}


# --------------------------------------------------------------------------- trace rows
def _per_output_errors(loss, a, t, z, act):
    """Each output's share of the per-sample loss, through the loss's own ``value`` on one
    column (MSE averages over the m outputs, so its column value is divided by m)."""
    m = a.shape[1]
    fused_z = act.elementwise  # softmax mixes the columns: a column alone has no logit form
    vals = [float(loss.value(a[:, k:k + 1], t[:, k:k + 1], z[:, k:k + 1] if fused_z else None,
                             act if fused_z else None)[0]) for k in range(m)]
    if isinstance(loss, MeanSquaredError):
        vals = [v / m for v in vals]
    return vals


def _row(name, value, formula="", tex="", args=(), *, kind="value", note=None, param=None,
         is_sum=False) -> dict:
    """One traced quantity: its name, value, and the formula (with $i placeholders) whose
    arguments ``args`` = [(name, value), ...] give it."""
    # + 0.0 turns -0.0 (e.g. -t*ln(o) with t = 0) into 0.0, which shows without a sign.
    row = {"name": name[0], "tex": name[1], "kind": kind, "value": float(value) + 0.0,
           "formula": formula, "formula_tex": tex,
           "args": [{"name": n[0], "tex": n[1], "value": float(v) + 0.0} for n, v in args]}
    if note:
        row["note"] = note
    if param:
        row["param"] = param
    if is_sum:
        row["sum"] = True
    return row


# --------------------------------------------------------------------------- the update step
def _descend(param: np.ndarray, grad, lr: float) -> None:
    r"""Plain gradient descent :math:`\theta \leftarrow \theta - \eta g`, in place: the rule of
    :class:`deltaprop.optimizers.SGD` (a test compares a traced run with ``deltaprop.train``)."""
    param -= lr * grad


def _update_layer(layer, lr: float, bias_mode: str) -> None:
    _descend(layer.W, layer.dW, lr)
    if layer.train_bias:
        # A shared bias moves by the sum of its units' gradients; every unit keeps its value.
        _descend(layer.b, layer.db.sum() if bias_mode == "shared" else layer.db, lr)


def _step(net: Network, X, T, lr: float, order: str, bias_mode: str) -> None:
    """One update on the sample (X, T), in place; leaves each layer's X, z, a, delta, dW, db."""
    net.forward(X)
    if order == "simultaneous":
        net.backward(T)
        for layer in net.layers:
            _update_layer(layer, lr, bias_mode)
        return
    # output-first: each layer is updated as soon as its gradient is known, and the layer
    # below back-propagates through the updated weights (the variant behind Mazur's summary).
    out = net.layers[-1]
    da = None
    for i in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[i]
        if i == len(net.layers) - 1:
            layer.backward(delta=net.loss.delta(out.z, out.a, T, out.activation), input_grad=False)
        else:
            layer.backward(da, input_grad=False)
        _update_layer(layer, lr, bias_mode)
        if i > 0:
            # The layer's own backward, given the delta it already holds, returns delta @ W.T
            # with the weights just updated (dW and db come out unchanged: X and delta are).
            da = layer.backward(delta=layer.delta, input_grad=True)


def _checkpoints(steps: int) -> list[int]:
    """Updates after which the error is reported: 0, 1, the powers of ten and ten even steps."""
    points = {0, 1, steps}
    points |= {10 ** p for p in range(1, 8) if 10 ** p < steps}
    points |= {round(steps * k / 10) for k in range(1, 10)}
    return sorted(p for p in points if 0 <= p <= steps)


# --------------------------------------------------------------------------- the trace
def _working_copy(net: Network, bias_mode: str | None) -> tuple[Network, str]:
    """A float64 copy of ``net`` whose biases are trained as ``bias_mode`` says (None: as in
    ``net``, layer by layer); returns it and the mode's name."""
    layers = net.layers
    cfg = net.to_config()
    cfg["dtype"] = "float64"
    if bias_mode is None:
        bias_mode = "per-neuron" if any(layer.train_bias for layer in layers) else "none"
    else:
        if bias_mode not in BIAS_MODES:
            raise ConfigError(_BIAS_MODE().format(name=bias_mode, valid=", ".join(BIAS_MODES)))
        if bias_mode != "none" and not all(layer.bias for layer in layers):
            raise ConfigError(_("biases cannot be trained ({mode}): the network's layers {layers} have none").format(
                mode=bias_mode, layers=[i + 1 for i, layer in enumerate(layers) if not layer.bias]))
        if bias_mode == "shared":
            for i, layer in enumerate(layers, start=1):
                if not np.all(layer.b == layer.b[0]):
                    raise ConfigError(_("shared biases need one value per layer, but layer {i}'s "
                                        "biases differ: {values}").format(i=i, values=layer.b.tolist()))
        for layer_cfg, layer in zip(cfg["layers"], layers):
            layer_cfg["train_bias"] = layer.bias and bias_mode != "none"
    work = Network.from_config(cfg)
    work.set_weights(net.get_weights())
    return work, bias_mode


def _BIAS_MODE() -> str:
    return _("unknown bias mode {name!r}; valid: {valid}")


def _as_row_vector(values, n, what) -> np.ndarray:
    """``what`` is "input" or "target"."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size != n:
        # "the input has 3 values, but the network has 2 inputs": the network's count decides
        # the second noun's form, the row's count the first's
        has = (ngettext("the input has {n} value", "the input has {n} values", v.size) if what == "input" else
               ngettext("the target has {n} value", "the target has {n} values", v.size)).format(n=v.size)
        wants = (ngettext("the network has {n} inputs", "the network has {n} inputs", n) if what == "input" else
                 ngettext("the network has {n} targets", "the network has {n} targets", n)).format(n=n)
        raise DataError(_("{has}, but {wants}").format(has=has, wants=wants))
    if not np.all(np.isfinite(v)):
        raise DataError((_("the input contains NaN or inf: {values}") if what == "input" else
                         _("the target contains NaN or inf: {values}")).format(values=v.tolist()))
    return v.reshape(1, -1)


def check_size(net: Network, max_params: int = MAX_PARAMS, source: str = "") -> None:
    """Raise ConfigError when ``net`` has more than ``max_params`` weights and biases."""
    if net.n_params > max_params:
        raise ConfigError(ngettext("{source}: {n} parameters (weights and biases); explain traces at most {max}, "
                                   "since every one gets rows of its own",
                                   "{source}: {n} parameters (weights and biases); explain traces at most {max}, "
                                   "since every one gets rows of its own", net.n_params).format(
            source=source or _("the network"), n=net.n_params, max=max_params))


def explain(net: Network, x, target, *, lr: float = 0.5, steps: int = 1,
            update_order: str = "simultaneous", train_biases: str | None = None,
            names: Names | None = None, title: str | None = None, notes: Sequence[str] = (),
            prelude: Sequence[dict] = (), max_params: int = MAX_PARAMS) -> dict:
    r"""Trace ``steps`` gradient-descent updates of ``net`` on one sample; the first in full.

    Parameters
    ----------
    net : Network
        Left untouched: the trace runs on a float64 copy.
    x, target : sequence of float
        One sample: ``n_inputs`` inputs (as the network sees them) and ``n_outputs`` targets.
    lr : float
        :math:`\eta` in :math:`W^{+} = W - \eta\, \partial E_{total}/\partial W`.
    steps : int
        Updates to run on the sample (1 to :data:`MAX_STEPS`); the error is reported at
        :func:`_checkpoints`.
    update_order : ``"simultaneous"`` or ``"output-first"``
    train_biases : None, ``"none"``, ``"shared"`` or ``"per-neuron"``
        None keeps the network's own setting.
    names : Names
        Naming scheme (default deltaprop's ``W1[0,1]``; :class:`MazurNames` for the article).
    prelude : list of sections
        Sections shown before the trace (e.g. the input standardisation).

    Returns
    -------
    dict
        ``{"format", "version", "title", "network", "settings", "input", "target", "notes",
        "sections": [{"id", "title", "rows": [...]}, ...], "progress": [...], "summary"}``;
        each row is ``{"name", "tex", "kind", "value", "formula", "formula_tex", "args"}``
        (+ ``"param"``, the flat-vector name, on gradients and updates; + ``"note"``).
    """
    check_size(net, max_params)
    if update_order not in UPDATE_ORDERS:
        raise ConfigError(_("unknown update order {name!r}; valid: {valid}").format(
            name=update_order, valid=", ".join(UPDATE_ORDERS)))
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(_("the learning rate must be a positive number, got {value}").format(value=lr))
    if int(steps) != steps or not (1 <= steps <= MAX_STEPS):
        raise ConfigError(_("steps must be an integer from 1 to {max}, got {value}").format(max=MAX_STEPS, value=steps))
    steps = int(steps)
    names = names or Names()
    work, bias_mode = _working_copy(net, train_biases)
    X = _as_row_vector(x, work.n_inputs, "input")
    T = _as_row_vector(target, work.n_outputs, "target")
    L = len(work.layers)

    before = work.get_weights()
    e_before = float(work.sample_losses(X, T)[0])
    _step(work, X, T, lr, update_order, bias_mode)
    # Copies: the layers' arrays are views that the next step overwrites.
    seen = [{"X": layer.X.copy(), "z": layer.z.copy(), "a": layer.a.copy(),
             "delta": layer.delta.copy(), "dW": layer.dW.copy(), "db": layer.db.copy()}
            for layer in work.layers]
    after = work.get_weights()
    # Weights the deltas flowed back through: the old ones, or (output-first) the updated ones.
    used = before if update_order == "simultaneous" else after
    updated_first = update_order == "output-first"

    sections = list(prelude)
    sections.append(_parameters_section(work, before, names, bias_mode))
    sections.append(_forward_section(work, seen, before, names, bias_mode))
    sections.append(_error_section(work, seen, T, names, e_before))
    for l in range(L, 0, -1):
        sections.append(_backward_section(work, seen, T, used, names, l, bias_mode, updated_first))
    sections.append(_update_section(work, before, after, seen, lr, names, bias_mode))

    progress = [{"update": 0, "E_total": e_before, "outputs": seen[-1]["a"][0].tolist()}]
    points = set(_checkpoints(steps))
    for k in range(1, steps + 1):
        if k > 1:
            _step(work, X, T, lr, update_order, bias_mode)
        if k in points:
            e = float(work.sample_losses(X, T)[0])
            progress.append({"update": k, "E_total": e, "outputs": work.layers[-1].a[0].tolist()})
    sections.append(_after_section(work, progress, names))

    acts = [layer.activation.name for layer in work.layers]
    return _jsonable({
        "format": TRACE_FORMAT, "version": TRACE_VERSION,
        "title": title or _("one backpropagation update of a {sizes} network").format(sizes="-".join(map(str, work.sizes))),
        "network": {"sizes": work.sizes, "activations": acts, "loss": work.loss.name,
                    "weights": sum(layer.n_weights for layer in work.layers),
                    "parameters": work.n_params, "trainable": work.n_trainable,
                    "fused_output": work.loss.is_fused_with(work.output_activation)},
        "settings": {"learning_rate": lr, "steps": steps, "update_order": update_order,
                     "train_biases": bias_mode, "names": names.scheme, "dtype": "float64"},
        "input": {"names": [names.input(i)[0] for i in range(work.n_inputs)], "values": X[0].tolist()},
        "target": {"names": [names.target(k)[0] for k in range(work.n_outputs)], "values": T[0].tolist()},
        "notes": list(notes),
        "sections": sections,
        "progress": progress,
        "summary": {"E_total_before": e_before, "E_total_after_first_update": progress[1]["E_total"],
                    "steps": steps, "E_total_final": progress[-1]["E_total"],
                    "outputs_final": progress[-1]["outputs"]},
    })


def _parameters_section(net, before, names, bias_mode):
    rows = []
    for l, layer in enumerate(net.layers, start=1):
        W, b = before[l - 1]
        for j in range(layer.n_out):
            for i in range(layer.n_in):
                note = None if names.scheme == "deltaprop" else _("{param} in deltaprop").format(param=f"W{l}[{i},{j}]")
                rows.append(_row(names.weight(l, i, j), W[i, j], kind="parameter", note=note,
                                 param=f"W{l}[{i},{j}]"))
        if not layer.bias:
            continue
        note = (_("held fixed") if not layer.train_bias else
                _("one bias shared by the layer's units") if bias_mode == "shared" else None)
        bnames = _bias_names(layer, l, names, bias_mode)
        for j in range(layer.n_out):
            if j and bnames[j] == bnames[0]:
                continue  # one shared value: listed once
            shared = bnames[j] == names.shared_bias(l)
            rows.append(_row(bnames[j], b[j], kind="parameter", note=note,
                             param=None if shared else f"b{l}[{j}]"))
    return {"id": "parameters", "title": _("Starting parameters"), "rows": rows}


def _forward_section(net, seen, before, names, bias_mode):
    rows = []
    for l, layer in enumerate(net.layers, start=1):
        s, (W, b) = seen[l - 1], before[l - 1]
        bnames = _bias_names(layer, l, names, bias_mode)
        for j in range(layer.n_out):
            args = []
            for i in range(layer.n_in):
                args += [(names.weight(l, i, j), W[i, j]), (names.out(l - 1, i), s["X"][0, i])]
            text, tex = _joined(layer.n_in, 2, " * ", r" \cdot ")
            if layer.bias:
                k = len(args)
                args.append((bnames[j], b[j]))
                text, tex = text + f" + ${k} * 1", tex + rf" + ${k} \cdot 1"
            rows.append(_row(names.net(l, j), s["z"][0, j], text, tex, args, kind="net", is_sum=True))
            if layer.activation.elementwise:
                (ft, ftex, fnames, kinds), _unused = _activation_display(layer.activation, names.net(l, j),
                                                                   names.out(l, j))
                rows.append(_row(names.out(l, j), s["a"][0, j], ft, ftex,
                                 list(zip(fnames, _arg_values(kinds, s, j))), kind="out",
                                 note=layer.activation.name))
        if not layer.activation.elementwise:  # softmax: every output depends on every net
            n = layer.n_out
            for j in range(n):
                den_t = " + ".join(f"exp(${k})" for k in range(n))
                den_x = " + ".join(f"e^{{${k}}}" for k in range(n))
                rows.append(_row(names.out(l, j), s["a"][0, j], f"exp(${j})/({den_t})",
                                 rf"\frac{{e^{{${j}}}}}{{{den_x}}}",
                                 [(names.net(l, k), s["z"][0, k]) for k in range(n)], kind="out",
                                 note=layer.activation.name))
    return {"id": "forward", "title": _("Forward pass"), "rows": rows}


def _arg_values(kinds, seen_layer, j):
    """Values of an activation display's arguments: unit j's net or out, or a constant."""
    return [seen_layer["z"][0, j] if k == "net" else seen_layer["a"][0, j] if k == "out" else k
            for k in kinds]


def _error_section(net, seen, T, names, e_total):
    out, s = net.layers[-1], seen[-1]
    m = out.n_out
    display = _loss_display(net.loss, m)
    rows = []
    if display:
        (tt, ttex), _unused = display
        errs = _per_output_errors(net.loss, s["a"], T, s["z"], out.activation)
        for k in range(m):
            rows.append(_row(names.error(k), errs[k], tt, ttex,
                             [(names.target(k), T[0, k]), (names.out(len(net.layers), k), s["a"][0, k])],
                             kind="error"))
        text, tex = _joined(m, 1, "", "")
        rows.append(_row(names.total, e_total, text, tex, [(names.error(k), errs[k]) for k in range(m)],
                         kind="error", note=_("loss {name}").format(name=net.loss.name), is_sum=True))
    else:
        rows.append(_row(names.total, e_total, kind="error", note=_("loss {name}").format(name=net.loss.name)))
    return {"id": "error", "title": _("Error"), "rows": rows}


def _backward_section(net, seen, T, used, names, l, bias_mode, updated_first):
    L = len(net.layers)
    layer, s = net.layers[l - 1], seen[l - 1]
    act, loss = layer.activation, net.loss
    rows = []
    fused = l == L and loss.is_fused_with(act)
    if l == L:
        display = _loss_display(loss, layer.n_out)
        g = loss.grad(s["a"], T)[0]
        gt, gtex = display[1] if display else ("dE/d$0", r"\partial E / \partial $0")

        def grad_row(j):
            out_n = names.out(l, j)
            return _row(_d(names.total, out_n), g[j], gt, gtex, [(out_n, s["a"][0, j]), (names.target(j), T[0, j])],
                        kind="factor", note=None if display else _("from loss {name}").format(name=loss.name))
        if not fused and not act.elementwise:  # every delta needs every dE/dout: list them first
            rows += [grad_row(j) for j in range(layer.n_out)]
    for j in range(layer.n_out):
        out_n, net_n, delta_n = names.out(l, j), names.net(l, j), names.delta(l, j)
        dE_dout, dout_dnet = _d(names.total, out_n), _d(out_n, net_n)
        factors = None  # (dE/dout, dout/dnet) values when the delta is their product
        if fused:
            tsum = float(T[0].sum())
            note = _("{loss} fused with {activation}: deltaprop computes dE_total/d{net} as this difference "
                     "directly; the factors dE/dout and dout/dnet are never formed").format(
                loss=loss.name, activation=act.name, net=net_n[0])
            if tsum == 1.0 or act.elementwise:
                rows.append(_row(delta_n, s["delta"][0, j], "$0 - $1", "$0 - $1",
                                 [(out_n, s["a"][0, j]), (names.target(j), T[0, j])],
                                 kind="delta", note=note))
            else:  # softmax with targets not summing to one: a_j * sum(t) - t_j
                rows.append(_row(delta_n, s["delta"][0, j], "$0*$2 - $1", r"$0 \cdot $2 - $1",
                                 [(out_n, s["a"][0, j]), (names.target(j), T[0, j]),
                                  (("sum_t", r"\sum_k t_k"), tsum)], kind="delta", note=note))
        else:
            if l == L:
                if act.elementwise:
                    rows.append(grad_row(j))
                dE = g[j]
            else:
                up, Wu = seen[l], used[l][0]
                n_up = up["delta"].shape[1]
                args = []
                for k in range(n_up):
                    wname = names.weight(l + 1, j, k)
                    args += [(names.delta(l + 1, k), up["delta"][0, k]),
                             (_plus(wname) if updated_first else wname, Wu[j, k])]
                text, tex = _joined(n_up, 2, " * ", r" \cdot ")
                dE = float(np.dot(up["delta"][0], Wu[j]))
                rows.append(_row(dE_dout, dE, text, tex, args, kind="factor", is_sum=True,
                                 note=_("through the updated weights (output-first)") if updated_first else None))
            if act.elementwise:
                _unused, (dt, dtex, dnames, kinds) = _activation_display(act, net_n, out_n)
                deriv = float(act.derivative(s["z"], s["a"])[0, j])
                rows.append(_row(dout_dnet, deriv, dt, dtex, list(zip(dnames, _arg_values(kinds, s, j))),
                                 kind="factor"))
                rows.append(_row(delta_n, s["delta"][0, j], "$0 * $1", r"$0 \cdot $1",
                                 [(dE_dout, dE), (dout_dnet, deriv)], kind="delta",
                                 note=f"= dE_total/d{net_n[0]}"))
                factors = (dE, deriv)
            else:  # softmax without a fused loss: dE/dnet_j = out_j (g_j - sum_k g_k out_k)
                n = layer.n_out
                args = [(out_n, s["a"][0, j]), (_d(names.total, names.out(l, j)), g[j])]
                for k in range(n):
                    args += [(_d(names.total, names.out(l, k)), g[k]), (names.out(l, k), s["a"][0, k])]
                inner_t, inner_x = _joined(n, 2, "*", r" \cdot ", start=2)
                rows.append(_row(delta_n, s["delta"][0, j], f"$0*($1 - ({inner_t}))",
                                 rf"$0 \left($1 - ({inner_x})\right)", args, kind="delta",
                                 note=_("{activation} Jacobian: sum over all outputs").format(activation=act.name)))
        def gradient_row(param_name, value, dnet_dparam, param, note=None):
            """dE_total/dparam as the product of its chain-rule factors."""
            if factors:
                args, text, tex = ([(dE_dout, factors[0]), (dout_dnet, factors[1]), dnet_dparam],
                                   "$0 * $1 * $2", r"$0 \cdot $1 \cdot $2")
            else:  # the delta has no two-factor form (fused loss, softmax): use it whole
                args, text, tex = ([(_d(names.total, net_n), s["delta"][0, j]), dnet_dparam],
                                   "$0 * $1", r"$0 \cdot $1")
            return _row(_d(names.total, param_name), value, text, tex, args, kind="gradient",
                        param=param, note=note)

        for i in range(layer.n_in):
            w = names.weight(l, i, j)
            rows.append(gradient_row(w, s["dW"][i, j], (_d(net_n, w), s["X"][0, i]), f"W{l}[{i},{j}]",
                                     note=f"d{net_n[0]}/d{w[0]} = {names.out(l - 1, i)[0]}"))
        if layer.train_bias and bias_mode != "shared":
            b = names.bias(l, j)
            rows.append(gradient_row(b, s["db"][j], (_d(net_n, b), 1.0), f"b{l}[{j}]"))
    if layer.train_bias and bias_mode == "shared":
        bname = names.shared_bias(l)
        args = []
        for j in range(layer.n_out):
            args += [(names.delta(l, j), s["delta"][0, j]), (_d(names.net(l, j), bname), 1.0)]
        text, tex = _joined(layer.n_out, 2, " * ", r" \cdot ")
        rows.append(_row(_d(names.total, bname), float(s["db"].sum()), text, tex, args, kind="gradient",
                         note=_("one bias shared by the layer: the sum of its units' gradients"), is_sum=True))
    title = (_("Backward pass: output layer") if l == L else
             _("Backward pass: hidden layer {number}").format(number=l) if L > 2 else _("Backward pass: hidden layer"))
    return {"id": f"backward-{l}", "title": title, "rows": rows}


def _update_section(net, before, after, seen, lr, names, bias_mode):
    rows = []
    tmpl = ("$0 - $1 * $2", r"$0 - $1 \cdot $2")
    for l in range(len(net.layers), 0, -1):
        layer, s = net.layers[l - 1], seen[l - 1]
        (W0, b0), (W1, b1) = before[l - 1], after[l - 1]
        for j in range(layer.n_out):
            for i in range(layer.n_in):
                w = names.weight(l, i, j)
                rows.append(_row(_plus(w), W1[i, j], *tmpl,
                                 [(w, W0[i, j]), (names.lr, lr), (_d(names.total, w), s["dW"][i, j])],
                                 kind="update", param=f"W{l}[{i},{j}]"))
        if not layer.train_bias:
            continue
        if bias_mode == "shared":
            bn = names.shared_bias(l)
            rows.append(_row(_plus(bn), b1[0], *tmpl, [(bn, b0[0]), (names.lr, lr),
                                                      (_d(names.total, bn), float(s["db"].sum()))],
                             kind="update"))
        else:
            for j in range(layer.n_out):
                bn = names.bias(l, j)
                rows.append(_row(_plus(bn), b1[j], *tmpl, [(bn, b0[j]), (names.lr, lr),
                                                          (_d(names.total, bn), s["db"][j])],
                                 kind="update", param=f"b{l}[{j}]"))
    return {"id": "update", "title": _("Updated parameters"), "rows": rows}


def _after_section(net, progress, names):
    first = progress[1]
    L = len(net.layers)
    after = _("{name} after 1 update")
    rows = [_row((after.format(name=names.total[0]), rf"{names.total[1]}^{{(1)}}"), first["E_total"],
                 kind="error", note=_("a forward pass with the updated parameters"))]
    rows += [_row((after.format(name=names.out(L, k)[0]), rf"{names.out(L, k)[1]}^{{(1)}}"), v, kind="out")
             for k, v in enumerate(first["outputs"])]
    if first["E_total"] > progress[0]["E_total"]:
        rows[0]["note"] += _("; the error rose: the learning rate is too large for this sample")
    return {"id": "after", "title": _("After the update"), "rows": rows}


def _jsonable(obj):
    """Replace non-finite floats with None so that the trace is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- entry points
def worked_example_network(train_biases: str = "none") -> Network:
    """Mazur's 2-2-2 sigmoid network with half squared error, weights w1..w8 and biases b1, b2."""
    net = Network([2, 2, 2], "sigmoid", loss="half_sse", train_bias=train_biases != "none")
    net.set_weights([(MAZUR["W1"], MAZUR["b1"]), (MAZUR["W2"], MAZUR["b2"])])
    return net


def explain_worked_example(*, lr: float = MAZUR["lr"], steps: int = 1, update_order: str = "simultaneous",
                           train_biases: str = "none", inputs=None, targets=None) -> dict:
    """The trace of Mazur's worked example (the article's starting point unless overridden)."""
    if train_biases not in BIAS_MODES:
        raise ConfigError(_BIAS_MODE().format(name=train_biases, valid=", ".join(BIAS_MODES)))
    notes = [f'Matt Mazur, "A Step by Step Backpropagation Example" (2015), {MAZUR["url"]}',
             _("names as in the article: w1 w2 feed h1, w3 w4 feed h2, w5 w6 feed o1, w7 w8 feed o2; "
               "in deltaprop the hidden W1 = [[w1, w3], [w2, w4]] (W[i, j] joins input i to unit j)"),
             _("E_total = sum over outputs of 1/2 (target - out)^2 (loss half_sse)")]
    notes.append({"none": _("the biases b1 and b2 are held fixed, as in the article"),
                  "shared": _("the biases are trained, one shared by each layer as the article draws them"),
                  "per-neuron": _("the biases are trained, one per neuron (deltaprop's Dense)")}[train_biases])
    notes.append(_("update order simultaneous: every gradient uses the weights before the update "
                   "(the article's arithmetic)") if update_order == "simultaneous" else
                 _("update order output-first: w5..w8 are updated before the hidden deltas are "
                   "computed, which then use the new w5..w8 (what the article's summary figures follow from)"))
    return explain(worked_example_network(train_biases),
                   MAZUR["inputs"] if inputs is None else inputs,
                   MAZUR["targets"] if targets is None else targets,
                   lr=lr, steps=steps, update_order=update_order, train_biases=train_biases,
                   names=MazurNames(), title=_('Mazur\'s "A Step by Step Backpropagation Example"'),
                   notes=notes)


def parse_values(text: str, what: str) -> list[float]:
    """Comma-separated numbers, e.g. ``"0.1,0.2"``; ConfigError naming ``what`` otherwise."""
    try:
        vals = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise ConfigError(_("{what} must be comma-separated numbers like 0.1,0.2, got {value!r}").format(
            what=what, value=text)) from None
    if not all(math.isfinite(v) for v in vals):
        raise ConfigError(_("{what} must be finite numbers, got {value!r}").format(what=what, value=text))
    return vals


def model_target(model, text: str) -> list[float]:
    """The target row for ``model``: comma-separated numbers (one per output), or for a
    classifier one class label, encoded as in training (0/1 for two classes, else one-hot)."""
    n = model.network.n_outputs
    parts = str(text).split(",")
    labels = [str(c) for c in model.classes or ()]
    if len(parts) == 1 and parts[0].strip() in labels and not (n == 1 and _is_number(parts[0])):
        # A class label; with one 0/1 output a number is read as the output's value instead.
        k = labels.index(parts[0].strip())
        return np.eye(n)[k].tolist() if n > 1 else [float(k)]
    if len(parts) != n or not all(_is_number(p) for p in parts):
        numbers = ngettext("the target must be {n} comma-separated number", "the target must be {n} comma-separated "
                           "numbers", n).format(n=n)
        known = " " + _("or one class label ({labels})").format(labels=", ".join(map(str, model.classes))) \
            if model.classes else ""
        raise DataError(_("{wanted}, got {value!r}").format(wanted=numbers + known, value=text))
    return parse_values(text, _("the target"))


def _is_number(s) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def explain_model(model, x, target, *, lr: float = 0.5, steps: int = 1, update_order: str = "simultaneous",
                  train_biases: str | None = None, max_params: int = MAX_PARAMS, source: str = "") -> dict:
    r"""Trace one sample through a saved :class:`~deltaprop.model.Model`.

    ``x`` is raw (as in the data file). A model trained with standardisation sees
    :math:`x'_i = (x_i - \mu_i)/\sigma_i` with the training split's :math:`\mu, \sigma`: the
    trace explains the network on :math:`x'` and shows that step first.
    """
    net = model.network
    check_size(net, max_params, source)
    raw = np.asarray(x, dtype=np.float64).reshape(-1)
    if raw.size != net.n_inputs:
        feats = f" ({', '.join(model.feature_names)})" if model.feature_names else ""
        has = ngettext("the input has {n} value", "the input has {n} values", raw.size).format(n=raw.size)
        raise DataError(_("{has}, but the model takes {n}{features}").format(has=has, n=net.n_inputs, features=feats))

    prepared = model.prepare(raw.reshape(1, -1))[0]
    names = Names()
    notes = [_("model {file}").format(file=source) if source else _("a saved model"),
             _("weights named by layer and index: W1[i,j] joins input i to unit j of layer 1 "
               "(network {sizes}, loss {loss})").format(sizes="-".join(map(str, net.sizes)), loss=net.loss.name)]
    if model.feature_names:
        notes.append(_("inputs: ") + ", ".join(f"{names.input(i)[0]} = {f}" for i, f in enumerate(model.feature_names)))
    if net.dtype != np.float64:
        notes.append(_("the model is stored in {dtype}; the trace computes in float64").format(dtype=net.dtype.name))
    prelude = []
    if model.standardizer is not None:
        std = model.standardizer
        notes.append(_("the network sees standardised inputs x' = (x - mean) / scale, with the mean and "
                       "scale of the model's training split; the trace explains the network on x'"))
        rows = [_row(names.input(i), prepared[i], "($0 - $1)/$2", r"\frac{$0 - $1}{$2}",
                     [((f"raw x[{i}]", f"x^{{raw}}_{{{i}}}"), raw[i]), ((f"mean[{i}]", rf"\mu_{{{i}}}"), std.mean[i]),
                      ((f"scale[{i}]", rf"\sigma_{{{i}}}"), std.scale[i])], kind="input")
                for i in range(net.n_inputs)]
        prelude.append({"id": "input", "title": _("Standardised input"), "rows": rows})
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    if target.size != net.n_outputs:
        raise DataError(ngettext("the target must be {n} comma-separated number",
                                 "the target must be {n} comma-separated numbers", net.n_outputs).format(
            n=net.n_outputs) + _(", got {value!r}").format(value=target.tolist()))
    tsc = getattr(model, "target_scaler", None)
    if tsc is not None:  # trained on standardised targets: the loss compares the output with t'
        raw_t = target
        target = (raw_t - tsc.mean) / tsc.scale
        notes.append(_("the network was trained on standardised targets t' = (t - mean) / scale, with the "
                       "mean and scale of the model's training split; its output is in those units, so the "
                       "trace compares it with t' (predictions are output * scale + mean)"))
        rows = [_row((f"t'[{k}]", f"t'_{{{k}}}"), target[k], "($0 - $1)/$2", r"\frac{$0 - $1}{$2}",
                     [((f"raw t[{k}]", f"t^{{raw}}_{{{k}}}"), raw_t[k]), ((f"mean_t[{k}]", rf"\mu^t_{{{k}}}"), tsc.mean[k]),
                      ((f"scale_t[{k}]", rf"\sigma^t_{{{k}}}"), tsc.scale[k])], kind="input")
                for k in range(net.n_outputs)]
        prelude.append({"id": "target", "title": _("Standardised target"), "rows": rows})
    trace = explain(net, prepared, target.tolist(), lr=lr, steps=steps, update_order=update_order,
                    train_biases=train_biases, names=names, notes=notes, prelude=prelude,
                    max_params=max_params,
                    title=_("one sample through {file}").format(file=source) if source else _("one sample through a saved model"))
    trace["input"]["raw"] = raw.tolist()
    trace["input"]["standardized"] = model.standardizer is not None
    if tsc is not None:
        trace["target"]["raw"] = raw_t.tolist()
        trace["target"]["standardized"] = True
    return trace
