"""``deltaprop train``: settings (flags > --config file > the built-in set's > defaults), the
training run with its epoch lines, checkpoints, resume and signal handling."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys

import numpy as np

from .activations import ACTIVATIONS
from .checkpoint import Checkpointer, load_checkpoint
from .cli import float_arg, int_arg
from .data import BUILTIN, builtin_defaults, data_format, load_data, split
from .engines import ENGINES
from .errors import ConfigError
from .initializers import parse_init
from .io import write_text_atomic
from .losses import LOSSES
from .model import build_training
from .optimizers import OPTIMIZERS, get_optimizer
from .schedules import SCHEDULES, get_schedule
from .techniques import STALL_REMEDIES, StallDetector, use_flat_spot
from .training import MODES, Callback

#: Settings used where neither the user nor the built-in data set says otherwise.
TRAIN_DEFAULTS = {
    "data": "digits", "hidden": "16", "activation": "tanh", "output_activation": None, "loss": None,
    "mode": "minibatch", "batch_size": 32, "epochs": 50, "lr": 0.1, "seed": 0, "val_split": 0.2,
    "init": "glorot_uniform", "dtype": "float64", "standardize": True, "task": "auto",
    "early_stopping": None, "eval_every": 1, "print_every": 0, "shuffle": True, "target": None,
    "out": None, "force": False, "json": False, "checkpoint": None, "checkpoint_every": None,
    "on_divergence": "stop", "engine": "auto", "quiet": False, "progress": "auto", "labels": None,
    "categorical": None, "optimizer": "sgd", "momentum": None, "nesterov": None, "weight_decay": None,
    "grad_noise": None, "opt_param": None, "schedule": None, "schedule_param": None, "flat_spot": None,
    "stall": None, "stall_remedy": "restart", "stall_min_improvement": 0.01,
}


def register(sub) -> None:
    t = sub.add_parser("train", help="train a network on a CSV file or a built-in data set",
                       description="Train a network. Flags left out take the built-in data set's "
                                   "recommended value, else the general default shown.")
    t.add_argument("--data", help=f"CSV file with a header row, or a built-in set: {', '.join(BUILTIN)} "
                                  f"(default {TRAIN_DEFAULTS['data']})")
    t.add_argument("--target", help="target: a CSV column name (text labels become classes), an .npz array "
                                    "name or an .npy column number")
    t.add_argument("--labels", metavar="FILE", help="the labels file that goes with IDX (MNIST format) images")
    t.add_argument("--categorical", metavar="COLS", help="CSV columns to one-hot encode, comma separated "
                                                         "(their categories are saved with the model)")
    t.add_argument("--task", choices=["auto", "classification", "regression"],
                   help="auto: classification for text labels or at most 20 integer labels")
    t.add_argument("--hidden", help="hidden layer widths, comma separated, e.g. 16,8 ('' for none)")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), help="hidden-layer activation")
    t.add_argument("--output-activation", choices=sorted(ACTIVATIONS),
                   help="output activation (default: suits the task and loss)")
    t.add_argument("--loss", choices=sorted(LOSSES), help="loss (default: cross-entropy for classes, mse otherwise)")
    t.add_argument("--mode", choices=MODES, help="stochastic: update per sample; batch: once per epoch; "
                                                 "minibatch: every --batch-size samples")
    t.add_argument("--batch-size", type=int_arg, help="k for --mode minibatch")
    t.add_argument("--epochs", type=int_arg)
    t.add_argument("--lr", type=float_arg, help="learning rate (for RPROP: the initial step size)")
    o = t.add_argument_group("optimizer and techniques (see docs/techniques.md)")
    o.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                   help="update rule (default sgd); rprop-, rprop+, irprop-, irprop+, quickprop and sarprop "
                        "need --mode batch")
    o.add_argument("--momentum", type=float_arg, help="momentum for sgd, e.g. 0.9")
    o.add_argument("--nesterov", action="store_const", const=True, help="Nesterov momentum (sgd)")
    o.add_argument("--weight-decay", type=float_arg, help="L2 weight decay (biases are not decayed)")
    o.add_argument("--grad-noise", type=float_arg, help="annealed gradient noise variance nu/(1+t)^0.55")
    o.add_argument("--opt-param", action="append", metavar="KEY=VALUE",
                   help="any other optimizer parameter, e.g. beta1=0.8 (repeatable)")
    o.add_argument("--schedule", choices=sorted(SCHEDULES),
                   help="learning-rate schedule; bold_driver undoes a worse epoch and shrinks the rate")
    o.add_argument("--schedule-param", action="append", metavar="KEY=VALUE",
                   help="schedule parameter, e.g. gamma=0.5 or step_size=10 (repeatable)")
    o.add_argument("--flat-spot", type=float_arg, nargs="?", const=0.1, metavar="F",
                   help="add F (default 0.1) to the sigmoid derivative (Fahlman 1988)")
    o.add_argument("--stall", type=int_arg, metavar="PATIENCE",
                   help="stall detection: when the loss has not improved by --stall-min-improvement within "
                        "PATIENCE epochs, apply --stall-remedy (recorded in the history)")
    o.add_argument("--stall-remedy", choices=list(STALL_REMEDIES), help="restart (default), jitter or reset_lr")
    o.add_argument("--stall-min-improvement", type=float_arg, help="relative improvement that counts (default 0.01)")
    t.add_argument("--seed", type=int_arg, help="seed of the run's one random generator")
    t.add_argument("--val-split", type=float_arg, help="fraction held out for validation (0: none)")
    t.add_argument("--init", help="glorot_uniform, glorot_normal, he_uniform, he_normal or uniform:R")
    t.add_argument("--dtype", choices=["float32", "float64"])
    t.add_argument("--no-standardize", dest="standardize", action="store_const", const=False,
                   help="do not standardise the inputs (default: standardise, fitted on the training split)")
    t.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                   help="keep the data order in every epoch")
    t.add_argument("--early-stopping", type=int_arg, metavar="PATIENCE",
                   help="stop when the validation loss has not improved for PATIENCE epochs; keep the best weights")
    t.add_argument("--eval-every", type=int_arg,
                   help="re-evaluate the training loss every N epochs (0: never; the final metrics are always computed)")
    t.add_argument("--print-every", type=int_arg, help="print every N epochs (default: every epoch "
                                                             "up to 100 epochs, else about 50 lines)")
    t.add_argument("--out", help="save the trained model to this file (.npz)")
    t.add_argument("--force", action="store_true", default=None, help="overwrite --out if it exists")
    t.add_argument("--json", action="store_true", default=None,
                   help="print one JSON object per epoch instead of text")
    t.add_argument("--quiet", action="store_true", default=None, help="no per-epoch output, only the result")
    t.add_argument("--progress", choices=["auto", "always", "never"],
                   help="progress bar (needs tqdm: pip install 'deltaprop[progress]'); auto: when the output "
                        "is a terminal")
    t.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file whose keys are these "
                                                         "flags' long names; flags given override it")
    t.add_argument("--checkpoint-every", type=int_arg, metavar="N",
                   help="write a checkpoint every N epochs (atomically; Ctrl-C/SIGTERM always write one)")
    t.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default: OUT.ckpt, else "
                                                        "deltaprop-checkpoint.npz)")
    t.add_argument("--resume", metavar="CKPT", help="continue a checkpointed run to the same result as an "
                                                    "uninterrupted one (--epochs may raise the total)")
    t.add_argument("--engine", choices=["auto", *ENGINES],
                   help="what runs the updates: auto picks the fastest installed engine that supports the "
                        "set-up (all give the same weights)")
    t.add_argument("--on-divergence", choices=["stop", "halve-lr"],
                   help="when the loss turns NaN/inf: roll back and stop (default), or roll back, halve "
                        "the learning rate and go on (at most 10 times)")
    t.set_defaults(func=cmd_train)


def _resolve(args) -> dict:
    """Settings by precedence: flags given > --config file > the built-in set's > general defaults."""
    from_file = _read_config(args.config) if args.config else {}
    data = args.data or from_file.get("data") or TRAIN_DEFAULTS["data"]
    cfg = dict(TRAIN_DEFAULTS) | builtin_defaults(data) | from_file
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
    """One line per (thinned) epoch as text or JSON; with ``bar`` a tqdm progress bar too."""

    def __init__(self, total: int, every: int, as_json: bool, out, quiet: bool = False, bar: bool = False):
        self.total, self.as_json, self.out, self.quiet = total, as_json, out, quiet
        self.every = every or (1 if total <= 100 else max(1, total // 50))
        self.want_bar, self.bar = bar, None

    def on_train_begin(self, trainer):
        if self.want_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=trainer.epoch, unit="epoch", file=self.out,
                            dynamic_ncols=True, leave=False)
            self._t = trainer.optimizer.t

    def on_epoch_end(self, trainer, logs):
        e = logs["epoch"]
        if self.bar is not None:
            rate = (trainer.optimizer.t - self._t) / max(logs.get("seconds", 0.0), 1e-9)
            self._t = trainer.optimizer.t
            loss = logs.get("loss", float("nan"))
            if isinstance(loss, float) and math.isnan(loss):
                loss = logs["loss_running"]
            self.bar.set_postfix_str(f"loss {_fmt(loss)}, {rate:,.0f} updates/s", refresh=False)
            self.bar.update(1)
        if self.quiet or not (e % self.every == 0 or e == self.total or e == 1 or trainer.stop_training):
            return
        if self.as_json:
            line = json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in logs.items()})
        else:
            width = len(str(self.total))
            parts = [f"epoch {e:>{width}}/{self.total}"]
            for key, label in (("loss", "loss"), ("loss_running", "running"), ("accuracy", "acc"),
                               ("val_loss", "val_loss"), ("val_accuracy", "val_acc")):
                v = logs.get(key)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    parts.append(f"{label} {_fmt(v)}" if "acc" not in key else f"{label} {v:.3f}")
            line = "  ".join(parts)
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _want_bar(cfg, out) -> bool:
    if cfg["quiet"] or cfg["json"] or cfg["progress"] == "never":
        return False
    try:
        import tqdm  # noqa: F401 - optional extra
    except ImportError:
        if cfg["progress"] == "always":
            raise ConfigError("--progress always needs tqdm: pip install 'deltaprop[progress]'") from None
        return False
    return cfg["progress"] == "always" or (hasattr(out, "isatty") and out.isatty())


# ----------------------------------------------------------------------------- config files
def _read_config(path) -> dict:
    """Read a TOML file whose keys are the long flags of ``train`` (dashes or underscores)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, as a package
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("--config needs a TOML reader on Python 3.10: pip install tomli") from None
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    cfg = {}
    valid = set(TRAIN_DEFAULTS) - {"resume", "config"}
    for key, value in raw.items():
        k = key.replace("-", "_")
        if k not in valid:
            raise ConfigError(f"{path}: unknown key {key!r}; valid keys: {', '.join(sorted(valid))}")
        if k == "hidden" and isinstance(value, list):
            value = ",".join(str(v) for v in value)
        expected = _CONFIG_TYPES.get(k)
        if expected and not isinstance(value, expected) or isinstance(value, bool) and bool not in (expected or ()):
            raise ConfigError(f"{path}: key {key!r} must be {_type_names(expected)}, got {value!r}")
        cfg[k] = value
    return cfg


_CONFIG_TYPES = {
    "epochs": (int,), "batch_size": (int,), "seed": (int,), "lr": (int, float), "val_split": (int, float),
    "early_stopping": (int,), "eval_every": (int,), "print_every": (int,), "checkpoint_every": (int,),
    "standardize": (bool,), "shuffle": (bool,), "force": (bool,), "json": (bool,), "quiet": (bool,),
    "hidden": (str, int), "data": (str,), "target": (str,), "out": (str,), "checkpoint": (str,),
    "activation": (str,), "output_activation": (str,), "loss": (str,), "mode": (str,), "init": (str,),
    "dtype": (str,), "task": (str,), "on_divergence": (str,), "engine": (str,), "progress": (str,),
    "optimizer": (str,), "momentum": (int, float), "nesterov": (bool,), "weight_decay": (int, float),
    "grad_noise": (int, float), "opt_param": (list,), "schedule": (str,), "schedule_param": (list,),
    "flat_spot": (int, float), "stall": (int,), "stall_remedy": (str,), "stall_min_improvement": (int, float),
    "labels": (str,), "categorical": (str,),
}


def _type_names(types) -> str:
    return " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true/false"}[t]
                       for t in types)


def _toml_value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def config_toml(cfg: dict) -> str:
    """The effective settings as TOML that ``deltaprop train --config`` reads back."""
    lines = ["# deltaprop train settings; repeat the run with: deltaprop train --config THIS_FILE"]
    for k in sorted(cfg):
        if cfg[k] is not None and k not in ("resume", "config", "force"):
            lines.append(f"{k.replace('_', '-')} = {_toml_value(cfg[k])}")
    return "\n".join(lines) + "\n"


def _key_values(items, what: str) -> dict:
    """``["beta1=0.8", "amsgrad=true"]`` -> ``{"beta1": 0.8, "amsgrad": True}`` (JSON values, else text)."""
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _make_optimizer(cfg: dict):
    params = _key_values(cfg["opt_param"], "--opt-param")
    for key in ("momentum", "nesterov", "weight_decay", "grad_noise"):
        if cfg[key] is not None:
            params[key] = cfg[key]
    return get_optimizer(cfg["optimizer"], lr=cfg["lr"], **params)


def _make_technique_callbacks(cfg: dict) -> list:
    made = []
    if cfg["schedule"]:
        made.append(get_schedule(cfg["schedule"], **_key_values(cfg["schedule_param"], "--schedule-param")))
    elif cfg["schedule_param"]:
        raise ConfigError("--schedule-param needs --schedule")
    if cfg["stall"]:
        made.append(StallDetector(patience=cfg["stall"], min_improvement=cfg["stall_min_improvement"],
                                  remedy=cfg["stall_remedy"]))
    return made


def _check_settings(cfg: dict) -> tuple[list[int], object, list]:
    """Check the settings before any data is read, so that a typo fails fast; returns the
    hidden widths, the optimizer and the technique callbacks built from them."""
    if cfg["epochs"] < 1:
        raise ConfigError(f"--epochs must be at least 1, got {cfg['epochs']}")
    hidden = _hidden(cfg["hidden"])
    optimizer = _make_optimizer(cfg)
    techniques = _make_technique_callbacks(cfg)
    parse_init(cfg["init"])
    if cfg["batch_size"] < 1:
        raise ConfigError(f"batch size must be a positive integer, got {cfg['batch_size']}")
    if cfg["checkpoint_every"] is not None and cfg["checkpoint_every"] < 1:
        raise ConfigError(f"--checkpoint-every must be at least 1, got {cfg['checkpoint_every']}")
    fmt = data_format(cfg["data"])
    if fmt in ("csv", "arrays") and cfg["target"] in (None, ""):
        raise ConfigError("--target is required with a CSV file (the name of the target column)" if fmt == "csv"
                          else "--target is required with an array file (.npz: the array's name, .npy: the column)")
    if fmt == "idx" and not cfg["labels"]:
        raise ConfigError("--labels FILE is required with IDX images (the labels file that goes with them)")
    return hidden, optimizer, techniques


def _fingerprint(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


#: Flags that may be given again with --resume (everything else comes from the checkpoint).
RESUME_FLAGS = {"epochs", "out", "force", "json", "print_every", "checkpoint", "checkpoint_every", "engine",
                "quiet", "progress"}


def _resume_config(args) -> tuple[dict, object, dict]:
    net, state, info = load_checkpoint(args.resume)
    if not info.get("config"):
        raise ConfigError(f"{args.resume}: the checkpoint holds no training settings")
    cfg = dict(TRAIN_DEFAULTS) | info["config"]
    clash = [k for k, v in vars(args).items()
             if v is not None and v is not False and k in cfg and k not in RESUME_FLAGS and v != cfg[k]]
    if clash:
        raise ConfigError("--resume continues the checkpointed run; these settings cannot change: "
                          + ", ".join(f"--{k.replace('_', '-')}" for k in clash))
    for k in RESUME_FLAGS & set(cfg):
        v = getattr(args, k, None)
        if v is not None and v is not False:
            cfg[k] = v
    cfg["checkpoint"] = args.checkpoint or args.resume
    return cfg, (net, state), info


def cmd_train(args) -> int:
    resumed = None
    if args.resume:
        cfg, resumed, ck_info = _resume_config(args)
    else:
        cfg = _resolve(args)
    hidden, optimizer, techniques = _check_settings(cfg)
    ckpt_path = cfg["checkpoint"] or ((cfg["out"] + ".ckpt") if cfg["out"] else "deltaprop-checkpoint.npz")
    cfg["checkpoint"] = ckpt_path
    if cfg["out"] and os.path.exists(cfg["out"]) and not cfg["force"]:
        raise ConfigError(f"{cfg['out']} already exists; use --force to overwrite it")
    if not resumed and os.path.exists(ckpt_path) and not cfg["force"]:
        raise ConfigError(f"checkpoint file {ckpt_path} already exists; resume from it with --resume {ckpt_path}, "
                          f"or use --force to start afresh and replace it")
    ds = load_data(cfg["data"]) if cfg["data"] in BUILTIN else load_data(
        cfg["data"], cfg["target"], task=cfg["task"], labels=cfg["labels"],
        categorical=[c.strip() for c in cfg["categorical"].split(",") if c.strip()] if cfg["categorical"] else None)
    rng = np.random.default_rng(cfg["seed"])
    train_ds, val_ds = split(ds, cfg["val_split"], rng)
    fingerprint = _fingerprint(train_ds.X, train_ds.T)
    if resumed and ck_info.get("data_fingerprint") != fingerprint:
        raise ConfigError(f"the data of {cfg['data']} differ from those the checkpointed run trained on")
    out = sys.stdout
    if not cfg["json"] and not cfg["quiet"]:
        print(f"data: {ds.name} ({len(train_ds)} training, {len(val_ds) if val_ds else 0} held-out samples, "
              f"{ds.n_features} features, {ds.task}"
              + (f", {len(ds.classes)} classes" if ds.classes else "") + ")", file=out)
    printer = _EpochPrinter(cfg["epochs"], cfg["print_every"], cfg["json"], out, cfg["quiet"], _want_bar(cfg, out))
    checkpointer = Checkpointer(ckpt_path, cfg["checkpoint_every"] or 0,
                                {"config": cfg, "data_fingerprint": fingerprint})
    model, trainer, (X, T), val = build_training(
        train_ds, hidden=hidden, activation=cfg["activation"], output_activation=cfg["output_activation"],
        loss=cfg["loss"], mode=cfg["mode"], batch_size=cfg["batch_size"], optimizer=optimizer,
        seed=rng, init=cfg["init"], dtype=cfg["dtype"], standardize=cfg["standardize"], validation=val_ds,
        early_stopping=cfg["early_stopping"], eval_every=cfg["eval_every"], shuffle=cfg["shuffle"],
        callbacks=[*techniques, printer, checkpointer], on_divergence=cfg["on_divergence"],
        engine=cfg["engine"],
    )
    if cfg["flat_spot"]:
        use_flat_spot(model.network, cfg["flat_spot"])
    if resumed:
        net, state = resumed
        if net.to_config() != model.network.to_config():
            raise ConfigError(f"{args.resume}: the checkpoint's network does not match its settings")
        trainer.load_state_dict(state)
        if not cfg["json"]:
            print(f"resumed from {args.resume} after epoch {trainer.epoch}", file=out)
    remaining = cfg["epochs"] - trainer.epoch
    with _StopOnSignal(trainer) as stop:
        if remaining > 0 and not trainer.diverged:
            trainer.fit(X, T, remaining, val)
    if stop.signum is not None:
        if checkpointer.saved_epoch != trainer.epoch:
            checkpointer.save(trainer)
        name = signal.Signals(stop.signum).name
        print(f"deltaprop: interrupted by {name} after epoch {trainer.epoch} of {cfg['epochs']}; checkpoint "
              f"saved to {ckpt_path}. Resume with: deltaprop train --resume {ckpt_path}", file=sys.stderr)
        return 128 + stop.signum
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
    if cfg["out"]:
        model.save(cfg["out"], overwrite=cfg["force"] or bool(resumed),
                   extra={"training": dict(cfg) | {"epochs_run": trainer.epoch}})
        write_text_atomic(cfg["out"] + ".history.json", json.dumps(hist.to_dict()))
        write_text_atomic(cfg["out"] + ".config.toml", config_toml(cfg))
        summary["model"] = cfg["out"]
    if cfg["json"]:
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
        print(f"model saved to {cfg['out']}" if cfg["out"] else "model not saved (use --out FILE to keep it)",
              file=out)
    if trainer.diverged:
        ev = next(e for e in hist.events if e["event"] == "divergence")
        print(f"deltaprop: training diverged: {ev['detail']}", file=sys.stderr)
        return 1
    return 0


class _StopOnSignal:
    """While training, SIGINT/SIGTERM ask the trainer to stop after the current epoch (a
    checkpoint is then written); a second signal aborts at once."""

    def __init__(self, trainer):
        self.trainer, self.signum, self.old = trainer, None, {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.trainer.stop_training = True

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a worker): no handler
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)
        return False

