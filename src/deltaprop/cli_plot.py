"""``deltaprop plot KIND MODEL``: pictures of a saved model (needs matplotlib).

* ``history``: the loss (and accuracy) per epoch, from ``MODEL.history.json``;
* ``network``: the network with its weights as edges (colour = sign, width = magnitude);
* ``regions``: the decision regions of a model with two inputs, ``--data`` points on top.

The picture goes to ``--out`` (PNG, SVG or PDF by the extension; default ``MODEL-KIND.png``
beside the model) and never replaces an existing file without ``--force``. The library draws
(:mod:`deltaprop.plot`); this module parses, loads, calls and reports.
"""

from __future__ import annotations

import argparse
import os

from .cli import int_arg
from .errors import ConfigError
from .i18n import N_, gettext as _, ngettext

__all__ = ["register", "cmd", "default_out"]

KINDS = {
    "history": N_("loss, running loss, validation loss and accuracy per epoch (from MODEL.history.json)"),
    "network": N_("the network drawn with its weights: edge colour = sign, width = magnitude; biases shown"),
    "regions": N_("decision regions of a model with 2 inputs; the --data points on top"),
}


def _range(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(_("{value!r} is not four numbers XMIN,XMAX,YMIN,YMAX").format(value=text))
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help=_("draw a saved model: its training history, its network, its decision regions"),
        description=_("Draw a model saved by 'deltaprop train --out MODEL' (needs matplotlib: "
                    "pip install deltaprop[plot]). The picture is written to --out, by default MODEL-KIND.png "
                    "beside the model, and an existing file is only replaced with --force."))
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    for kind, text in KINDS.items():
        text = _(text)
        k = kinds.add_parser(kind, help=text, description=text[0].upper() + text[1:] + ".")
        k.add_argument("model", help=_("model file written by 'deltaprop train --out'"))
        k.add_argument("--out", metavar="FILE", help=_("picture to write: .png, .svg or .pdf (default: MODEL-{kind}.png, "
                                                       "MODEL without its .npz)").format(kind=kind))
        k.add_argument("--force", action="store_true", help=_("overwrite --out if it exists"))
        k.add_argument("--dpi", type=int_arg, default=110, help=_("resolution of a PNG (default 110)"))
        k.add_argument("--title", help=_("title of the picture (default: the model file and its network)"))
        if kind == "network":
            from .plot import MAX_EDGES

            k.add_argument("--max-edges", type=int_arg, default=MAX_EDGES, metavar="N",
                           help=_("per layer, draw only the N largest weights in magnitude (default {value})").format(value=MAX_EDGES))
        if kind == "regions":
            k.add_argument("--data", help=_("points to overlay: a CSV file or built-in set (e.g. xor, spirals)"))
            k.add_argument("--target", help=_("target column of the CSV file (default: the model's)"))
            k.add_argument("--range", type=_range, metavar="XMIN,XMAX,YMIN,YMAX",
                           help=_("the part of the plane to draw (default: the data's range, else the training "
                                "data's mean ± 3 sd, else the range of the built-in set it was trained on; write "
                                "--range=-1,1,-1,1 when the first number is negative)"))
            k.add_argument("--resolution", type=int_arg, default=250, help=_("grid points per axis (default 250)"))
    p.set_defaults(func=cmd)


def default_out(model_path: str, kind: str) -> str:
    """``dir/name.npz`` -> ``dir/name-KIND.png``."""
    base = model_path[:-4] if model_path.lower().endswith(".npz") else model_path
    return f"{base}-{kind}.png"


def _describe(path: str, model, info: dict) -> str:
    """Title line: file, architecture, loss, and how it was trained when the file says so."""
    net = model.network
    acts = "/".join(dict.fromkeys(layer.activation.name for layer in net.layers))
    text = _("{file}: {sizes} {activations}, loss {loss}").format(
        file=os.path.basename(path), sizes="-".join(map(str, net.sizes)), activations=acts, loss=net.loss.name)
    training = info.get("training")
    if isinstance(training, dict):
        parts = [str(training.get("data", ""))]
        mode = training.get("mode")
        if mode:
            parts.append(f"{mode}" + (" (" + _("batch {k}").format(k=training.get("batch_size")) + ")"
                                      if mode == "minibatch" else ""))
        if training.get("optimizer"):
            parts.append(str(training["optimizer"]))
        if training.get("lr") is not None:
            parts.append(f"lr {training['lr']:g}")
        if training.get("epochs_run") is not None:
            epochs = training["epochs_run"]
            parts.append(ngettext("{n} epochs", "{n} epochs", epochs).format(n=epochs) if isinstance(epochs, int)

                         else f"{epochs} epochs")
        text += "\n" + ", ".join(p for p in parts if p)
    return text


def cmd(args) -> int:
    from .data import BUILTIN, load_data
    from .io import check_writable, load_model
    from .model import Model
    from .plot import (history_path, load_history, plot_history, plot_network, plot_regions, regions_bounds,
                       save_figure, thinning_notes)

    out = args.out or default_out(args.model, args.kind)
    check_writable(out, overwrite=args.force)  # before any work: the cheap check first
    model = Model.load(args.model)
    _net, info = load_model(args.model)
    title = args.title or _describe(args.model, model, info)
    notes = []
    if args.kind == "history":
        fig = plot_history(load_history(history_path(args.model)), title=title)
    elif args.kind == "network":
        fig = plot_network(model, max_edges=args.max_edges, title=title)
        notes = thinning_notes(model.network, args.max_edges)
    else:
        data = None
        if args.data is not None:
            from .cli import _load_for_model  # the same reading of CSV columns as predict/evaluate

            data = _load_for_model(model, args.data, args.target)
        bounds = args.range
        if bounds is None and data is None and model.standardizer is None:
            # No data and no standardisation to say where the inputs lie: the built-in training set does.
            trained_on = (info.get("training") or {}).get("data")
            if trained_on not in BUILTIN:
                raise ConfigError(_("cannot tell where this model's inputs lie: give --data (points to draw) "
                                    "or --range XMIN,XMAX,YMIN,YMAX"))
            bounds = regions_bounds(model, load_data(trained_on))
            notes.append(_("drawn over the range of the {name} training data; --data {name} shows its points").format(
                name=trained_on))
        fig = plot_regions(model, data, bounds=bounds, resolution=args.resolution, title=title)
    save_figure(fig, out, overwrite=args.force, dpi=args.dpi)
    print(_("wrote {file}").format(file=out))
    for note in notes:
        print(_("note: {what}").format(what=note))

    return 0
