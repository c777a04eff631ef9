"""The ``deltaprop`` command: a thin shell over the library.

``main(argv) -> int`` is callable from tests. Exit codes: 0 success, 1 training diverged,
2 bad input or settings (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import sys

from . import __version__
from .activations import ACTIVATIONS
from .data import BUILTIN, builtin_defaults, builtin_info, load_data, split
from .errors import ConfigError, DeltapropError
from .initializers import parse_init
from .losses import LOSSES
from .model import Model, fit_dataset
from .optimizers import get_optimizer
from .training import MODES, Callback


def _command_modules() -> list[str]:
    """Further commands live in their own modules ``deltaprop/cli_<name>.py``, each with a
    ``register(subparsers)`` that adds a sub-parser with ``set_defaults(func=...)``; the
    function takes the parsed args and returns the exit code. Adding a command = adding a file."""
    import deltaprop

    return sorted(m.name for m in pkgutil.iter_modules(deltaprop.__path__) if m.name.startswith("cli_"))


#: Settings used where neither the user nor the built-in data set says otherwise.
TRAIN_DEFAULTS = {
    "data": "digits", "hidden": "16", "activation": "tanh", "output_activation": None, "loss": None,
    "mode": "minibatch", "batch_size": 32, "epochs": 50, "lr": 0.1, "seed": 0, "val_split": 0.2,
    "init": "glorot_uniform", "dtype": "float64", "standardize": True, "task": "auto",
    "early_stopping": None, "eval_every": 1, "print_every": 0, "shuffle": True,
}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    return v


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through our exit code 2 without a traceback."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"deltaprop: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deltaprop", description="Train multilayer networks by backpropagation.")
    p.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train a network on a CSV file or a built-in data set",
                       description="Train a network. Flags left out take the built-in data set's "
                                   "recommended value, else the general default shown.")
    t.add_argument("--data", help=f"CSV file with a header row, or a built-in set: {', '.join(BUILTIN)} "
                                  f"(default {TRAIN_DEFAULTS['data']})")
    t.add_argument("--target", help="target column of the CSV file (string labels become classes)")
    t.add_argument("--task", choices=["auto", "classification", "regression"],
                   help="auto: classification for text labels or at most 20 integer labels")
    t.add_argument("--hidden", help="hidden layer widths, comma separated, e.g. 16,8 ('' for none)")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), help="hidden-layer activation")
    t.add_argument("--output-activation", choices=sorted(ACTIVATIONS),
                   help="output activation (default: suits the task and loss)")
    t.add_argument("--loss", choices=sorted(LOSSES), help="loss (default: cross-entropy for classes, mse otherwise)")
    t.add_argument("--mode", choices=MODES, help="stochastic: update per sample; batch: once per epoch; "
                                                 "minibatch: every --batch-size samples")
    t.add_argument("--batch-size", type=_positive_int, help="k for --mode minibatch")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--lr", type=_float, help="learning rate")
    t.add_argument("--seed", type=_positive_int, help="seed of the run's one random generator")
    t.add_argument("--val-split", type=_float, help="fraction held out for validation (0: none)")
    t.add_argument("--init", help="glorot_uniform, glorot_normal, he_uniform, he_normal or uniform:R")
    t.add_argument("--dtype", choices=["float32", "float64"])
    t.add_argument("--no-standardize", dest="standardize", action="store_const", const=False,
                   help="do not standardise the inputs (default: standardise, fitted on the training split)")
    t.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                   help="keep the data order in every epoch")
    t.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                   help="stop when the validation loss has not improved for PATIENCE epochs; keep the best weights")
    t.add_argument("--eval-every", type=_positive_int,
                   help="re-evaluate the training loss every N epochs (0: never; the final metrics are always computed)")
    t.add_argument("--print-every", type=_positive_int, help="print every N epochs (default: every epoch "
                                                             "up to 100 epochs, else about 50 lines)")
    t.add_argument("--out", help="save the trained model to this file (.npz)")
    t.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    t.add_argument("--json", action="store_true", help="print one JSON object per epoch instead of text")
    t.set_defaults(func=cmd_train)

    for name, helptext in (("predict", "predict with a saved model"),
                           ("evaluate", "loss and accuracy of a saved model on labelled data")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("model", help="model file written by 'deltaprop train --out'")
        c.add_argument("--data", required=True, help="CSV file (or built-in set name)")
        c.add_argument("--target", help="target column (default: the one the model was trained on)")
        if name == "predict":
            c.add_argument("--proba", action="store_true", help="also print the output of every unit")
            c.add_argument("--out", help="write the predictions as CSV to this file instead of stdout")
            c.add_argument("--force", action="store_true", help="overwrite --out if it exists")
        c.set_defaults(func=cmd_predict if name == "predict" else cmd_evaluate)

    d = sub.add_parser("datasets", help="list the built-in data sets")
    d.set_defaults(func=cmd_datasets)
    for name in _command_modules():
        importlib.import_module(f"deltaprop.{name}").register(sub)
    return p


# --------------------------------------------------------------------------- train
def _resolve(args) -> dict:
    data = args.data or TRAIN_DEFAULTS["data"]
    cfg = dict(TRAIN_DEFAULTS) | builtin_defaults(data)
    for k, v in vars(args).items():
        if v is not None and k in cfg:
            cfg[k] = v
    cfg["data"] = data
    return cfg


def _hidden(text) -> list[int]:
    text = str(text).strip()
    if not text:
        return []
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError(f"--hidden must be comma-separated integers like 16,8, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise ConfigError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def _fmt(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4g}"


class _EpochPrinter(Callback):
    def __init__(self, total: int, every: int, as_json: bool, out):
        self.total, self.as_json, self.out = total, as_json, out
        self.every = every or (1 if total <= 100 else max(1, total // 50))

    def on_epoch_end(self, trainer, logs):
        e = logs["epoch"]
        if not (e % self.every == 0 or e == self.total or e == 1 or trainer.stop_training):
            return
        if self.as_json:
            print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                              for k, v in logs.items()}), file=self.out, flush=True)
            return
        width = len(str(self.total))
        parts = [f"epoch {e:>{width}}/{self.total}"]
        for key, label in (("loss", "loss"), ("loss_running", "running"), ("accuracy", "acc"),
                           ("val_loss", "val_loss"), ("val_accuracy", "val_acc")):
            v = logs.get(key)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                parts.append(f"{label} {_fmt(v)}" if "acc" not in key else f"{label} {v:.3f}")
        print("  ".join(parts), file=self.out, flush=True)


def cmd_train(args) -> int:
    cfg = _resolve(args)
    # Settings are checked before any data is read, so a typo fails fast.
    if cfg["epochs"] < 1:
        raise ConfigError(f"--epochs must be at least 1, got {cfg['epochs']}")
    hidden = _hidden(cfg["hidden"])
    get_optimizer("sgd", lr=cfg["lr"])
    parse_init(cfg["init"])
    if cfg["batch_size"] < 1:
        raise ConfigError(f"batch size must be a positive integer, got {cfg['batch_size']}")
    ds = load_data(cfg["data"], args.target, task=cfg["task"]) if cfg["data"] not in BUILTIN \
        else load_data(cfg["data"])
    if cfg["data"] not in BUILTIN and args.target is None:
        raise ConfigError("--target is required with a CSV file (the name of the target column)")
    if args.out and os.path.exists(args.out) and not args.force:
        raise ConfigError(f"{args.out} already exists; use --force to overwrite it")
    import numpy as np

    rng = np.random.default_rng(cfg["seed"])
    train_ds, val_ds = split(ds, cfg["val_split"], rng)
    if cfg["mode"] == "minibatch" and cfg["batch_size"] > len(train_ds):
        print(f"deltaprop: warning: batch size {cfg['batch_size']} is larger than the {len(train_ds)} "
              f"training samples; using {len(train_ds)}", file=sys.stderr)
        cfg["batch_size"] = len(train_ds)
    out = sys.stdout
    if not args.json:
        print(f"data: {ds.name} ({len(train_ds)} training, {len(val_ds) if val_ds else 0} held-out samples, "
              f"{ds.n_features} features, {ds.task}"
              + (f", {len(ds.classes)} classes" if ds.classes else "") + ")", file=out)
    printer = _EpochPrinter(cfg["epochs"], cfg["print_every"], args.json, out)
    model, trainer = fit_dataset(
        train_ds, hidden=hidden, activation=cfg["activation"], output_activation=cfg["output_activation"],
        loss=cfg["loss"], mode=cfg["mode"], batch_size=cfg["batch_size"], epochs=cfg["epochs"], lr=cfg["lr"],
        seed=rng, init=cfg["init"], dtype=cfg["dtype"], standardize=cfg["standardize"], validation=val_ds,
        early_stopping=cfg["early_stopping"], eval_every=cfg["eval_every"], shuffle=cfg["shuffle"],
        callbacks=[printer],
    )
    hist = trainer.history
    for ev in hist.events:
        if ev["event"] != "divergence":
            print(f"note: epoch {ev['epoch']}: {ev['detail']}", file=out)
    final = model.evaluate(model.align(train_ds))
    summary = {"train_loss": final["loss"], "train_accuracy": final.get("accuracy"),
               "updates": trainer.optimizer.t, "epochs": trainer.epoch}
    if val_ds is not None:
        v = model.evaluate(val_ds)
        summary |= {"heldout_loss": v["loss"], "heldout_accuracy": v.get("accuracy")}
    if args.out:
        model.save(args.out, overwrite=args.force,
                   extra={"training": {k: v for k, v in cfg.items()} | {"epochs_run": trainer.epoch}})
        with open(args.out + ".history.json", "w") as f:
            json.dump(hist.to_dict(), f)
        summary["model"] = args.out
    if args.json:
        print(json.dumps({"final": summary}), file=out)
    else:
        line = [f"final: train loss {_fmt(summary['train_loss'])}"]
        if summary["train_accuracy"] is not None:
            line.append(f"train accuracy {summary['train_accuracy']:.2%}")
        if "heldout_loss" in summary:
            line.append(f"held-out loss {_fmt(summary['heldout_loss'])}")
            if summary["heldout_accuracy"] is not None:
                line.append(f"held-out accuracy {summary['heldout_accuracy']:.2%}")
        line.append(f"{summary['updates']} updates in {summary['epochs']} epochs")
        print(", ".join(line), file=out)
        print(f"model saved to {args.out}" if args.out else "model not saved (use --out FILE to keep it)",
              file=out)
    if trainer.diverged:
        ev = next(e for e in hist.events if e["event"] == "divergence")
        print(f"deltaprop: training diverged: {ev['detail']}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- predict / evaluate
def _load_for_model(model: Model, source: str, target):
    target = target if target is not None else (model.target_names[0] if model.target_names else None)
    if source in BUILTIN:
        ds = load_data(source)
    else:
        from .data.csvfile import read_csv

        header, _, _ = read_csv(source)
        ds = load_data(source, target if target in header else None,
                       task=model.task if model.task != "unknown" else "auto", classes=model.classes,
                       features=model.feature_names or None)
    return model.align(ds)


def cmd_predict(args) -> int:
    model = Model.load(args.model)
    ds = _load_for_model(model, args.data, args.target)
    out = model.predict_outputs(ds.X)
    labels = model.predict(ds.X)
    lines = []
    if model.task == "classification":
        head = ["prediction"] + ([f"p_{c}" for c in model.classes] if args.proba and out.shape[1] > 1
                                 else (["p_" + str(model.classes[1])] if args.proba else []))
        lines.append(",".join(head))
        for lab, row in zip(labels, out):
            cells = [str(lab)] + ([f"{v:.6g}" for v in row] if args.proba else [])
            lines.append(",".join(cells))
    else:
        names = model.target_names or [f"y{i}" for i in range(out.shape[1])]
        lines.append(",".join(names))
        lines += [",".join(f"{v:.8g}" for v in row) for row in out]
    text = "\n".join(lines) + "\n"
    if args.out:
        if os.path.exists(args.out) and not args.force:
            raise ConfigError(f"{args.out} already exists; use --force to overwrite it")
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluate(args) -> int:
    model = Model.load(args.model)
    ds = _load_for_model(model, args.data, args.target)
    if ds.T.shape[1] == 0:
        raise ConfigError(f"{args.data}: no target column found to evaluate against; give --target")
    res = model.evaluate(ds)
    line = f"{res['samples']} samples: loss {res['loss']:.6f} ({model.network.loss.name})"
    if "accuracy" in res:
        line += f", accuracy {res['accuracy']:.2%}"
    print(line)
    return 0


def cmd_datasets(args) -> int:
    print(f"{'name':<9} {'samples':>7} {'features':>8}  source")
    for name, n, d, src in builtin_info():
        print(f"{name:<9} {n:>7} {d:>8}  {src}")
    return 0


# --------------------------------------------------------------------------- entry point
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DeltapropError as exc:
        print(f"deltaprop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deltaprop: interrupted", file=sys.stderr)
        return 130
