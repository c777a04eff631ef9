r"""Export a trained model as an ONNX graph that any ONNX runtime can run.

The graph computes what :meth:`deltaprop.model.Model.predict_outputs` computes, from the same
raw feature columns that ``deltaprop predict`` takes:

.. code-block:: text

    input (N, d) --Sub mean--Div scale-->            the saved Standardizer, when there is one
        --MatMul W1--Add b1--f1--> ... --MatMul WL--Add bL--fL-->
        --Mul target_scale--Add target_mean-->       the target scaling, when there is one
        output (N, k)
    output --ArgMax / (> 0.5)--> class_index (N,)    classification models only

``W[i, j]`` connects input *i* to unit *j*, as in :mod:`deltaprop.layers`, so each layer is one
``MatMul`` with the stored matrix, without a transpose. Layers without biases have no ``Add``;
frozen biases are ordinary constants (freezing only matters in training).

Activations map to ONNX operators (opset :data:`OPSET`):

==============  ===============================================================
deltaprop       ONNX
==============  ===============================================================
sigmoid         ``Sigmoid``
tanh            ``Tanh``
relu            ``Relu``
leaky_relu      ``LeakyRelu(alpha)`` in float32; ``Where(z > 0, z, alpha * z)`` in
                float64, because the operator's ``alpha`` attribute is a float32 and
                would round the slope
softplus        ``Relu(z) + Log(1 + Exp(-Abs(z)))``: the operator ``Softplus`` is
                specified as ``log(exp(z) + 1)``, which overflows for large ``z`` in a
                runtime that follows the formula, and onnxruntime has no float64 kernel
gelu            ``0.5 z (1 + Tanh(c (z + 0.044715 z^3)))`` with ``Mul``/``Add``/``Tanh``,
                :math:`c = \sqrt{2/\pi}`: the tanh form of activations.GELU (the
                operator ``Gelu`` arrives in opset 20)
identity         nothing (the pre-activation is the output)
softmax         ``Softmax(axis=-1)`` over each sample's outputs
==============  ===============================================================

The graph's float type is float32 by default, the type every ONNX runtime supports; float64
keeps a float64 model's precision where the runtime supports it (onnxruntime does for every
operator used here). Class labels, feature and target names, the task and the
standardisation travel in the model's ``metadata_props`` (values are JSON text).

``onnx`` is an optional extra (``pip install deltaprop[onnx]``), imported only here.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .errors import ConfigError, ModelFileError
from .i18n import gettext as _
from .io import write_bytes_atomic
from .model import model_parts

__all__ = ["OPSET", "IR_VERSION", "to_onnx", "export_onnx", "float32_input_loss"]

#: ONNX operator set the graph is written for. 17 (ONNX 1.12, 2022) has every operator used
#: here with today's semantics (Softmax over one axis since opset 13) and is read by every
#: maintained runtime.
OPSET = 17
#: The file-format (IR) version that goes with opset 17. Left to itself, onnx.helper stamps its
#: own newest IR version, which older runtimes refuse to load.
IR_VERSION = 8


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ConfigError(_("exporting to ONNX needs the onnx package: pip install deltaprop[onnx]")) from None
    return onnx, helper, numpy_helper


class _GraphBuilder:
    """Collects nodes and constants; names every value after what it holds (``z1``, ``a1``, ...)."""

    def __init__(self, helper, numpy_helper, dtype: np.dtype):
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes, self.initializers = [], []

    def const(self, name: str, value, dtype=None) -> str:
        """A constant in the graph's float type (or ``dtype``); returns its name."""
        value = np.asarray(value, self.dtype if dtype is None else dtype)
        self.initializers.append(self.numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=f"{op}_{output}", **attrs))
        return output


def _activation(g: _GraphBuilder, act, z: str, out: str) -> str:
    """Append the nodes of activation ``act`` applied to value ``z``; the result is named ``out``."""
    name = act.name
    if name == "sigmoid":  # flat_spot only changes the derivative, never the output
        return g.node("Sigmoid", [z], out)
    if name == "tanh":
        return g.node("Tanh", [z], out)
    if name == "relu":
        return g.node("Relu", [z], out)
    if name == "leaky_relu":
        if g.dtype == np.float32:
            return g.node("LeakyRelu", [z], out, alpha=float(act.alpha))
        slope = g.node("Mul", [z, g.const(f"{out}_alpha", act.alpha)], f"{out}_alpha_z")
        positive = g.node("Greater", [z, g.const(f"{out}_zero", 0.0)], f"{out}_positive")
        return g.node("Where", [positive, z, slope], out)
    if name == "softplus":
        # max(z, 0) + log(1 + exp(-|z|)): the same overflow-free form as activations.Softplus.
        # ONNX has no log1p; 1 + exp(-|z|) rounding to 1 loses at most exp(-|z|) < eps absolute.
        e = g.node("Exp", [g.node("Neg", [g.node("Abs", [z], f"{out}_abs")], f"{out}_neg")], f"{out}_exp")
        log = g.node("Log", [g.node("Add", [e, g.const(f"{out}_one", 1.0)], f"{out}_1pexp")], f"{out}_log")
        return g.node("Add", [g.node("Relu", [z], f"{out}_relu"), log], out)
    if name == "gelu":
        # activations.GELU, the tanh form 0.5 z (1 + tanh(c (z + a z^3))), in its own
        # operators (the operator Gelu needs opset 20; its approximate="tanh" is this formula)
        from .activations import GELU_A, GELU_C

        cube = g.node("Mul", [g.node("Mul", [z, z], f"{out}_z2"), z], f"{out}_z3")
        inner = g.node("Add", [z, g.node("Mul", [cube, g.const(f"{out}_a", GELU_A)], f"{out}_az3")], f"{out}_sum")
        t = g.node("Tanh", [g.node("Mul", [inner, g.const(f"{out}_c", GELU_C)], f"{out}_u")], f"{out}_tanh")
        half_z = g.node("Mul", [z, g.const(f"{out}_half", 0.5)], f"{out}_half_z")
        return g.node("Mul", [half_z, g.node("Add", [t, g.const(f"{out}_one", 1.0)], f"{out}_1pt")], out)
    if name == "identity":
        return g.node("Identity", [z], out)
    if name == "softmax":
        return g.node("Softmax", [z], out, axis=-1)
    raise ConfigError(_("activation {name!r} has no ONNX translation yet").format(name=name))


def float32_input_loss(model, limit: float = 100.0) -> list[tuple[str, float]]:
    r"""Features whose float32 rounding is amplified by the standardisation: ``(name, |mean| / sd)``.

    A float32 input keeps :math:`x` to a relative :math:`2^{-24} \approx 6\cdot 10^{-8}`, so the
    standardised :math:`(x - \mu)/\sigma` is off by up to :math:`6\cdot 10^{-8}\,|x|/\sigma
    \approx 6\cdot 10^{-8}\,|\mu|/\sigma`. Above ``limit`` (100: an error of 6e-6 before
    the first layer) a float32 graph can no longer match deltaprop, which standardises in
    float64, to 1e-5; a float64 graph (``dtype="float64"``) can. Empty without a standardisation.
    """
    net, std, info = model_parts(model)
    if std is None:
        return []
    names = list(info.get("feature_names") or [])
    if len(names) != net.n_inputs:
        names = [f"x{i + 1}" for i in range(net.n_inputs)]
    ratio = np.abs(std.mean) / std.scale
    return [(names[i], float(ratio[i])) for i in np.flatnonzero(ratio > limit)]


def to_onnx(model, *, dtype="float32", name: str = "deltaprop"):
    """Build the ONNX graph of a :class:`~deltaprop.model.Model` (or a bare ``Network``).

    Parameters
    ----------
    model : Model or Network
        A Model's standardisation becomes ``Sub``/``Div`` nodes at the input, so the graph takes
        the raw feature columns (after any one-hot encoding of categorical CSV columns, which
        stays outside the graph: see the ``categories`` metadata). A bare Network takes its
        inputs as they are.
    dtype : "float32" or "float64"
        Float type of the graph's input, constants and output.
    name : str
        Graph name.

    Returns
    -------
    onnx.ModelProto
        Input ``input`` of shape ``(N, n_inputs)``; output ``output`` of shape
        ``(N, n_outputs)`` (probabilities for classifiers), and for classification models
        ``class_index`` (int64, shape ``(N,)``): the index into the ``classes`` metadata that
        ``deltaprop predict`` reports (argmax, or output > 0.5 for one output). Checked with
        ``onnx.checker`` before it is returned.
    """
    onnx, helper, numpy_helper = _onnx()
    from . import __version__

    net, std, info = model_parts(model)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ConfigError(_("ONNX export dtype must be float32 or float64, got {value}").format(value=dtype))
    elem = helper.np_dtype_to_tensor_dtype(dt)
    g = _GraphBuilder(helper, numpy_helper, dt)

    a = "input"
    if std is not None:
        # The same arithmetic as Standardizer.transform: (x - mean) / scale, in the graph's type.
        a = g.node("Div", [g.node("Sub", [a, g.const("mean", std.mean)], "centred"), g.const("scale", std.scale)],
                   "standardized")
    last = len(net.layers)
    tsc = getattr(model, "target_scaler", None)
    for i, layer in enumerate(net.layers, start=1):
        z = g.node("MatMul", [a, g.const(f"W{i}", layer.W)], f"z{i}" if not layer.bias else f"xW{i}")
        if layer.bias:
            z = g.node("Add", [z, g.const(f"b{i}", layer.b)], f"z{i}")
        final = "output" if tsc is None else "scaled_output"
        a = _activation(g, layer.activation, z, final if i == last else f"a{i}")
    if tsc is not None:
        # A regression model trained on standardised targets: the same un-scaling as
        # Model.unscale (o * scale + mean), so that the graph gives predict's values.
        g.node("Add", [g.node("Mul", [a, g.const("target_scale", tsc.scale)], "unscaled"),
                       g.const("target_mean", tsc.mean)], "output")

    outputs = [helper.make_tensor_value_info("output", elem, ["N", net.n_outputs])]
    classes = info.get("classes")
    if info.get("task") == "classification" and classes:
        # Mirrors deltaprop.data.decode_labels: one output means P(second class) > 0.5.
        if net.n_outputs == 1:
            above = g.node("Greater", ["output", g.const("half", 0.5)], "above_half")
            flat = g.node("Cast", [above], "above_half_int", to=onnx.TensorProto.INT64)
            g.node("Squeeze", [flat, g.const("axis1", [1], np.int64)], "class_index")
        else:
            g.node("ArgMax", ["output"], "class_index", axis=1, keepdims=0)
        outputs.append(helper.make_tensor_value_info("class_index", onnx.TensorProto.INT64, ["N"]))

    graph = helper.make_graph(
        g.nodes, name, [helper.make_tensor_value_info("input", elem, ["N", net.n_inputs])], outputs,
        initializer=g.initializers,
        doc_string=f"{net!r}; input: raw features"
                   + (" (standardised inside the graph)" if std is not None else "")
                   + "; output: " + ("class probabilities" if info.get("task") == "classification" else "values"))
    proto = helper.make_model(graph, producer_name="deltaprop", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              doc_string="Exported by deltaprop from a network trained by backpropagation.")
    meta = {
        "task": info.get("task", "unknown"),
        "classes": json.dumps(classes),
        "feature_names": json.dumps(info.get("feature_names") or []),
        "target_names": json.dumps(info.get("target_names") or []),
        "standardization": json.dumps(None if std is None else
                                      {"folded_into_graph": True, "mean": std.mean.tolist(),
                                       "scale": std.scale.tolist()}),
        "categories": json.dumps(info.get("categories")),
        "target_scaling": json.dumps(None if tsc is None else
                                     {"folded_into_graph": True, "mean": tsc.mean.tolist(),
                                      "scale": tsc.scale.tolist()}),
        "network": json.dumps(net.to_config()),
        "deltaprop_version": __version__,
    }
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, *, dtype="float32", overwrite: bool = False):
    """Write :func:`to_onnx` of ``model`` to ``path`` atomically; return the ``ModelProto``.

    An existing file is replaced only with ``overwrite=True`` (otherwise ModelFileError).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:  # fail before the work, not after
        raise ModelFileError(_("{file}: already exists; refusing to overwrite it (use --force)").format(file=path))
    proto = to_onnx(model, dtype=dtype)
    write_bytes_atomic(path, proto.SerializeToString(), overwrite=overwrite)
    return proto
