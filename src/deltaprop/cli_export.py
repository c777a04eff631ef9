"""``deltaprop export MODEL model.onnx``: the trained model as an ONNX graph.

The library builds and writes the graph (:mod:`deltaprop.export`); this module parses, calls
and reports. ``--check`` runs the written file with onnxruntime (when installed) on random
inputs and compares it with deltaprop's own predictions.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from .errors import ConfigError
from .cli import error_line
from .i18n import gettext as _, ngettext

__all__ = ["register", "cmd"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help=_("export a saved model as an ONNX graph (needs: pip install deltaprop[onnx])"),
        description=_("Write a model saved by 'deltaprop train --out' as an ONNX file that any ONNX runtime "
                    "can run. The graph takes the same raw feature columns as 'deltaprop predict' (the "
                    "saved standardisation is part of the graph) and gives the same outputs; classifiers "
                    "also output class_index. Class labels and feature names are in the file's metadata."))
    p.add_argument("model", help=_("model file written by 'deltaprop train --out'"))
    p.add_argument("out", metavar="OUT.onnx", help=_("the ONNX file to write"))
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help=_("float type of the graph (default float32, which every runtime supports; "
                        "float64 keeps a float64 model's precision)"))
    p.add_argument("--check", action="store_true",
                   help=_("run the written file with onnxruntime on random inputs and report the largest "
                        "difference from deltaprop's predictions"))
    p.add_argument("--force", action="store_true", help=_("overwrite OUT.onnx if it exists"))
    p.set_defaults(func=cmd)


#: Largest difference --check accepts, relative to max(1, largest |output|): float32 keeps about
#: 7 digits, and a few layers of sums of rounded products lose one or two of them.
CHECK_TOL = {"float32": 1e-5, "float64": 1e-10}


def _check(model, path: str, dtype: str) -> tuple[float, float]:
    """Largest |difference| between onnxruntime on ``path`` and ``model.predict_outputs``, and
    the largest |output| (the scale the difference is judged against)."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(_("--check runs the file with onnxruntime: pip install deltaprop[onnx]")) from None
    # Inputs where the model sees them: around the training data when the standardisation says
    # where that was, else standard normal.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, model.network.n_inputs))
    if model.standardizer is not None:
        X = X * model.standardizer.scale + model.standardizer.mean
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = session.run(["output"], {"input": X.astype(dtype)})[0]
    ref = model.predict_outputs(X)
    return float(np.max(np.abs(out - ref))), float(np.max(np.abs(ref)))


def cmd(args) -> int:
    from .io import check_writable
    from .export import export_onnx, float32_input_loss
    from .model import Model

    check_writable(args.out, overwrite=args.force)  # before loading anything: the cheap check first
    model = Model.load(args.model)
    proto = export_onnx(model, args.out, dtype=args.dtype, overwrite=args.force)
    net = model.network
    features = ", ".join(model.feature_names[:6]) + (", ..." if len(model.feature_names) > 6 else "")
    acts = "/".join(dict.fromkeys(layer.activation.name for layer in net.layers))
    # The network as its repr() writes it, in the language in force
    network = ngettext("Network({sizes}, {activations}, loss={loss}, {dtype}, {trainable} trainable of {n} parameters)",
                       "Network({sizes}, {activations}, loss={loss}, {dtype}, {trainable} trainable of {n} parameters)",
                       net.n_params).format(sizes="-".join(map(str, net.sizes)), activations=acts, loss=net.loss.name,
                                            dtype=net.dtype.name, trainable=net.n_trainable, n=net.n_params)
    print(_("wrote {file}: ONNX opset {opset}, a {dtype} graph of {network}").format(
        file=args.out, opset=proto.opset_import[0].version, dtype=args.dtype, network=network))
    print(_("  input  'input'  (N, {n}): raw features {features}").format(
              n=net.n_inputs, features=features or _("(unnamed)"))
          + ("; " + _("standardised inside the graph") if model.standardizer is not None else ""))
    if model.task == "classification" and model.classes:
        target = f"{model.target_names[0]} = " if len(model.target_names) == 1 else ""
        what = (f"P({target}{model.classes[1]})" if net.n_outputs == 1
                else _("probabilities of {classes}").format(classes=", ".join(map(str, model.classes[:6]))
                                                            + (", ..." if len(model.classes) > 6 else "")))
        print(_("  output 'output' (N, {n}): {what}").format(n=net.n_outputs, what=what))
        print(_("  output 'class_index' (N,): index into the classes {classes} (also in the file's metadata)").format(
            classes=json.dumps(model.classes[:10]) + (" ..." if len(model.classes) > 10 else "")))
    else:
        print(_("  output 'output' (N, {n}): {what}").format(n=net.n_outputs,
                                                             what=", ".join(model.target_names) or _("values")))
    if model.categories:
        print(_("  note: the categorical columns {columns} enter one-hot encoded, as the feature names show; the "
                "encoding is in the metadata, not in the graph").format(columns=", ".join(model.categories)),
              file=sys.stderr)
    poor = float32_input_loss(model) if args.dtype == "float32" else []
    if poor:
        name, ratio = max(poor, key=lambda p: p[1])
        print(_("  note: {n} feature(s) lie far from zero compared with their spread (worst: {name}, "
                "|mean| / sd = {ratio}); float32 inputs keep only about {digits} digits of their variation, so "
                "outputs may differ from deltaprop's by about {difference}; --dtype float64 avoids this").format(


                  n=len(poor), name=name, ratio=f"{ratio:.3g}", digits=f"{max(0.0, 7.2 - np.log10(ratio)):.0f}",
                  difference=f"{6e-8 * ratio:.1g}"), file=sys.stderr)
    if args.check:
        diff, scale = _check(model, args.out, args.dtype)
        # A float32 model cannot be matched more closely than float32 allows, whatever the graph.
        tol_dtype = "float32" if "float32" in (args.dtype, net.dtype.name) else "float64"
        tol = CHECK_TOL[tol_dtype] * max(1.0, scale)
        print(_("checked with onnxruntime on 256 random inputs: largest |difference| from deltaprop "
                "{difference} (tolerance {tol})").format(difference=f"{diff:.2g}", tol=f"{tol:.2g}"))
        if not diff <= tol:
            hint = " (" + _("the float32 inputs: see the note above; --dtype float64 avoids this") + ")" if poor else ""
            print(error_line(_("the ONNX file's outputs differ from deltaprop's by {difference}").format(
                difference=f"{diff:.3g}") + hint), file=sys.stderr)

            return 1
    return 0
