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
from .i18n import gettext as _

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
        raise ConfigError("--check runs the file with onnxruntime: pip install deltaprop[onnx]") from None
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
    print(f"wrote {args.out}: ONNX opset {proto.opset_import[0].version}, a {args.dtype} graph of {net!r}")
    print(f"  input  'input'  (N, {net.n_inputs}): raw features {features or '(unnamed)'}"
          + ("; standardised inside the graph" if model.standardizer is not None else ""))
    if model.task == "classification" and model.classes:
        target = f"{model.target_names[0]} = " if len(model.target_names) == 1 else ""
        what = (f"P({target}{model.classes[1]})" if net.n_outputs == 1
                else "probabilities of " + ", ".join(map(str, model.classes[:6]))
                + (", ..." if len(model.classes) > 6 else ""))
        print(f"  output 'output' (N, {net.n_outputs}): {what}")
        print(f"  output 'class_index' (N,): index into the classes {json.dumps(model.classes[:10])}"
              f"{' ...' if len(model.classes) > 10 else ''} (also in the file's metadata)")
    else:
        print(f"  output 'output' (N, {net.n_outputs}): {', '.join(model.target_names) or 'values'}")
    if model.categories:
        print(f"  note: the categorical columns {', '.join(model.categories)} enter one-hot encoded, as the "
              f"feature names show; the encoding is in the metadata, not in the graph", file=sys.stderr)
    poor = float32_input_loss(model) if args.dtype == "float32" else []
    if poor:
        name, ratio = max(poor, key=lambda p: p[1])
        print(f"  note: {len(poor)} feature(s) lie far from zero compared with their spread (worst: {name}, "
              f"|mean| / sd = {ratio:.3g}); float32 inputs keep only about {max(0.0, 7.2 - np.log10(ratio)):.0f} "
              f"digits of their variation, so outputs may differ from deltaprop's by about "
              f"{6e-8 * ratio:.1g}; --dtype float64 avoids this", file=sys.stderr)
    if args.check:
        diff, scale = _check(model, args.out, args.dtype)
        # A float32 model cannot be matched more closely than float32 allows, whatever the graph.
        tol_dtype = "float32" if "float32" in (args.dtype, net.dtype.name) else "float64"
        tol = CHECK_TOL[tol_dtype] * max(1.0, scale)
        print(f"checked with onnxruntime on 256 random inputs: largest |difference| from deltaprop "
              f"{diff:.2g} (tolerance {tol:.2g})")
        if not diff <= tol:
            hint = " (the float32 inputs: see the note above; --dtype float64 avoids this)" if poor else ""
            print(f"deltaprop: error: the ONNX file's outputs differ from deltaprop's by {diff:.3g}{hint}",
                  file=sys.stderr)
            return 1
    return 0
