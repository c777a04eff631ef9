r"""The one table of training settings: :class:`TrainConfig`.

Each field of :class:`TrainConfig` is one setting of a training run, and its metadata (a
:class:`Setting`) says everything else about it: type, allowed range or choices, help text,
command-line group, and whether a resumed run may change it. Everything that names a setting
derives from this table:

* ``deltaprop train``'s flags and their ``--help`` (defaults shown), see ``cli_train``;
* TOML config files, read by :func:`read_toml` and written by :meth:`TrainConfig.to_toml`;
* checkpoints and model files, which store :meth:`TrainConfig.to_dict`;
* the defaults of :class:`~deltaprop.training.Trainer`, :func:`~deltaprop.training.train`,
  :func:`~deltaprop.model.build_training` and the scikit-learn estimators (:data:`DEFAULTS`);
* the resume rules (:func:`resume_config`).

**Where do I add a setting?** Add one field below (default + ``_setting(...)``), then use it
where the run is built (:mod:`deltaprop.runs`). The flag, the TOML key, the ``--help`` line,
the range check and the checkpoint entry follow from the field.

Every value is checked when a :class:`TrainConfig` is made, whoever makes it, so the CLI, a
TOML file and Python code get the same message, with the valid range in it; only the label
differs (``--lr``, ``run.toml: key 'lr'``, ``lr``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ConfigError
from .i18n import gettext as _, ngettext

__all__ = ["Setting", "TrainConfig", "DEFAULTS", "TASK_DEFAULTS", "SETTINGS", "read_toml", "resolve", "resume_config", "PATH_SETTINGS",
           "key_values", "parse_widths"]


@dataclass(frozen=True)
class Setting:
    """What the table knows about one setting besides its name and default.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``str``, ``choice``, ``choices`` (one of
    the choices, or several comma separated: a str for one, a tuple for several), ``widths`` (layer
    widths, ``"16,8"``), ``names`` (comma-separated names) and ``pairs`` (``KEY=VALUE``
    strings). ``lo``/``hi`` bound numbers (``lo_open``/``hi_open``: the bound itself is
    excluded); ``optional``: ``None`` is allowed (it means what ``help`` says). ``resumable``:
    ``--resume`` may give it again with another value. ``flag``: ``"negate"`` makes a
    ``--no-NAME`` switch for a setting that defaults to true, ``"switch"`` a ``--NAME`` switch.
    """

    help: str
    kind: str = "str"
    choices: Callable[[], tuple] | tuple | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False
    group: str = "training"
    resumable: bool = False
    flag: str | None = None
    const: Any = None
    metavar: str | None = None
    file_only: bool = False

    def valid_choices(self) -> tuple:
        c = self.choices() if callable(self.choices) else self.choices
        return tuple(c or ())

    def range_text(self) -> str:
        """The allowed values in words, for messages and ``--help``."""
        if self.kind == "choice":
            return _("one of {choices}").format(choices=", ".join(self.valid_choices()))
        if self.kind == "choices":
            return _("one of {choices}, or several separated by commas").format(
                choices=", ".join(self.valid_choices()))
        if self.kind in ("int", "float"):
            what = _("an integer") if self.kind == "int" else _("a number")
            if self.lo is not None and self.hi is not None:
                return _("{what} in {interval}").format(
                    what=what, interval=f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}"
                                        f"{')' if self.hi_open else ']'}")
            if self.lo is not None:
                return f"{what} {'>' if self.lo_open else '>='} {_num(self.lo)}"
            return what
        return {"bool": _("true or false"), "widths": _("positive integers separated by commas, e.g. 16,8"),
                "names": _("names separated by commas"), "pairs": _("KEY=VALUE items"),
                "str": _("a string")}[self.kind]


def must_be(name: str, allowed: str, value) -> str:
    """The one message for a value outside a setting's range: ``NAME must be ALLOWED, got VALUE``."""
    return _("{name} must be {allowed}, got {value}").format(name=name, allowed=allowed, value=repr(value))


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _setting(default, help: str, **kw):
    return field(default=default, metadata={"setting": Setting(help, **kw)})


def _names(module: str, attr: str, extra=()):
    """Choices looked up when first needed: the registries import modules that import this one."""
    def get():
        import importlib

        return tuple(extra) + tuple(sorted(getattr(importlib.import_module(f"deltaprop.{module}"), attr)))
    return get


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, checked on construction (see the module docstring).

    ``hidden`` and ``categorical`` are tuples; ``opt_param`` and ``schedule_param`` tuples
    of ``"KEY=VALUE"`` strings. :meth:`to_dict` gives the plain form stored in files.
    """

    # --- data
    data: str = _setting("digits", "CSV/NPY/NPZ/IDX file, or a built-in set "
                                   "(deltaprop datasets)", group="data")
    target: str | None = _setting(None, "target: a CSV column name (text labels become classes), an .npz "
                                        "array name or an .npy column number", optional=True, group="data")
    labels: str | None = _setting(None, "the labels file that goes with IDX (MNIST format) images",
                                  optional=True, group="data", metavar="FILE")
    categorical: tuple = _setting((), "CSV columns to one-hot encode, comma separated (their categories "
                                      "are saved with the model)", kind="names", group="data", metavar="COLS")
    task: str = _setting("auto", "auto: classification for text labels or at most 20 integer labels",
                         kind="choice", choices=("auto", "classification", "regression"), group="data")
    val_split: float = _setting(0.2, "fraction held out for validation (0: none)", kind="float",
                                lo=0.0, hi=1.0, hi_open=True, group="data")
    standardize: bool = _setting(True, "standardise the inputs with the training split's statistics",
                                 kind="bool", flag="negate", group="data")
    standardize_target: bool = _setting(True, "train a regression on standardised targets (the training split's "
                                              "statistics, saved with the model; predictions are in the "
                                              "targets' units)", kind="bool", flag="negate", group="data")
    # --- network
    hidden: tuple = _setting((16,), "hidden layer widths, comma separated ('' for none)", kind="widths",
                             group="network")
    activation: str | tuple = _setting("tanh", "hidden-layer activation: one name for every hidden layer, or one "
                                               "per hidden layer, comma separated (relu,tanh)", kind="choices",
                                       choices=_names("activations", "ACTIVATIONS"), group="network")
    output_activation: str | None = _setting(None, "output activation (left out: suits the task and loss)",
                                             kind="choice", choices=_names("activations", "ACTIVATIONS"),
                                             optional=True, group="network")
    loss: str | None = _setting(None, "loss (left out: cross-entropy for classes, mse otherwise)",
                                kind="choice", choices=_names("losses", "LOSSES"), optional=True,
                                group="network")
    init: str = _setting("glorot_uniform",
                         "glorot_uniform, glorot_normal, he_uniform, he_normal, sklearn or uniform:R",
                         group="network")
    dtype: str = _setting("float32", "floating-point type of weights and arithmetic (float64: exact digits at "
                                     "about half the speed)", kind="choice",
                          choices=("float32", "float64"), group="network")
    # --- training
    mode: str = _setting("minibatch", "stochastic: update per sample; batch: once per epoch; minibatch: "
                                      "every --batch-size samples", kind="choice",
                         choices=("stochastic", "minibatch", "batch"))
    batch_size: int = _setting(32, "k for mode minibatch (a k above N is clipped to N)", kind="int", lo=1)
    epochs: int = _setting(50, "epochs to train (with --resume: the new total; regression from a file: 200, "
                               "with early stopping)", kind="int", lo=1, resumable=True)
    lr: float = _setting(0.1, "learning rate (for RPROP: the initial step size)", kind="float", lo=0.0,
                         lo_open=True)
    seed: int = _setting(0, "seed of the run's one random generator", kind="int", lo=0)
    shuffle: bool = _setting(True, "reshuffle the samples every epoch", kind="bool", flag="negate")
    early_stopping: int | None = _setting(None, "stop when the validation loss has not improved for PATIENCE "
                                                "epochs; keep the best weights (0: never; regression "
                                                "from a file: 10, see docs/defaults.md)", kind="int", lo=0,
                                          optional=True, metavar="PATIENCE")
    eval_every: int = _setting(1, "re-evaluate the training loss every N epochs (0: never; the final "
                                  "metrics are always computed)", kind="int", lo=0)
    eval_rows: int | None = _setting(None, "training rows the per-epoch re-evaluation uses (left out: all up to "
                                           "512, else N/16 but at least 512, at most 8192; the last of 10 or more epochs uses all)",
                                     kind="int", lo=1, optional=True, metavar="N")
    on_divergence: str = _setting("stop", "when the loss turns NaN/inf or explodes: roll back and stop, or "
                                          "roll back, halve the learning rate and go on (at most 10 times)",
                                  kind="choice", choices=("stop", "halve-lr"))
    engine: str = _setting("auto", "what runs the updates: auto picks the fastest installed engine that "
                                   "supports the set-up (all give the same weights)", kind="choice",
                           choices=_names("engines", "ENGINES", extra=("auto",)), resumable=True)
    dask: str | None = _setting(None, "train on a Dask cluster: local:N (N local worker processes) or "
                                      "tcp://HOST:PORT (a running scheduler); needs deltaprop[dask]",
                                optional=True, resumable=True, metavar="local:N|tcp://HOST:PORT")
    # --- optimizer and techniques
    optimizer: str = _setting("sgd", "update rule; rprop-, rprop+, irprop-, irprop+, quickprop, sarprop and "
                                     "lbfgs (L-BFGS-B through scipy: an epoch is one iteration) need mode batch",
                              kind="choice",
                              choices=_names("optimizers", "OPTIMIZERS"), group="optimizer")
    max_fun: int = _setting(15000, "lbfgs: most loss-and-gradient evaluations over the run (its line search "
                                   "makes one or more per epoch)", kind="int", lo=1, group="optimizer",
                            resumable=True)
    momentum: float | None = _setting(None, "momentum for sgd, e.g. 0.9 (left out: none)", kind="float",
                                      lo=0.0, hi=1.0, hi_open=True, optional=True, group="optimizer")
    nesterov: bool | None = _setting(None, "Nesterov momentum (sgd)", kind="bool", flag="switch",
                                     optional=True, group="optimizer")
    weight_decay: float | None = _setting(None, "L2 weight decay (biases are not decayed)", kind="float",
                                          lo=0.0, optional=True, group="optimizer")
    grad_noise: float | None = _setting(None, "annealed gradient noise variance nu/(1+t)^0.55", kind="float",
                                        lo=0.0, optional=True, group="optimizer")
    opt_param: tuple = _setting((), "any other optimizer parameter, e.g. beta1=0.8 (repeatable)",
                                kind="pairs", group="optimizer", metavar="KEY=VALUE")
    schedule: str | None = _setting(None, "learning-rate schedule; bold_driver undoes a worse epoch and "
                                          "shrinks the rate", kind="choice",
                                    choices=_names("schedules", "SCHEDULES"), optional=True, group="optimizer")
    schedule_param: tuple = _setting((), "schedule parameter, e.g. gamma=0.5 or step_size=10 (repeatable)",
                                     kind="pairs", group="optimizer", metavar="KEY=VALUE")
    flat_spot: float | None = _setting(None, "add F (0.1 when given without a value) to the sigmoid "
                                             "derivative (Fahlman 1988)", kind="float", lo=0.0, optional=True,
                                       group="optimizer", const=0.1, metavar="F")
    stall: int | None = _setting(None, "stall detection: when the loss has not improved by "
                                       "--stall-min-improvement within PATIENCE epochs, apply --stall-remedy",
                                 kind="int", lo=1, optional=True, group="optimizer", metavar="PATIENCE")
    stall_remedy: str = _setting("restart", "what a stall triggers", kind="choice",
                                 choices=_names("techniques", "STALL_REMEDIES"), group="optimizer")
    stall_min_improvement: float = _setting(0.01, "relative improvement that counts", kind="float", lo=0.0,
                                            hi=1.0, hi_open=True, group="optimizer")
    # --- output and checkpoints
    out: str | None = _setting(None, "save the trained model to this file (.npz), with OUT.config.toml and "
                                     "OUT.history.json beside it", optional=True, group="output",
                               resumable=True)
    force: bool = _setting(False, "replace --out, its side files and the checkpoint if they exist",
                           kind="bool", flag="switch", group="output", resumable=True)
    json: bool = _setting(False, "print one JSON object per epoch instead of text", kind="bool",
                          flag="switch", group="output", resumable=True)
    quiet: bool = _setting(False, "no per-epoch output, only the result", kind="bool", flag="switch",
                           group="output", resumable=True)
    print_every: int = _setting(0, "print every N epochs (0: every epoch up to 100 epochs, else about 50 "
                                   "lines)", kind="int", lo=0, group="output", resumable=True)
    progress: str = _setting("auto", "progress bar (needs tqdm: pip install 'deltaprop[progress]'); auto: "
                                     "when the output is a terminal", kind="choice",
                             choices=("auto", "always", "never"), group="output", resumable=True)
    checkpoint_every: int | None = _setting(None, "write a checkpoint every N epochs (atomically; "
                                                  "Ctrl-C/SIGTERM always write one)", kind="int", lo=1,
                                            optional=True, group="output", resumable=True, metavar="N")
    checkpoint: str | None = _setting(None, "checkpoint file, named: also written when the run ends (left "
                                            "out: OUT.ckpt, else deltaprop-checkpoint.npz, written only "
                                            "on --checkpoint-every and on Ctrl-C)", optional=True, group="output",
                                      resumable=True, metavar="FILE")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name)))
        if not isinstance(self.activation, str) and len(self.activation) != len(self.hidden):
            raise ConfigError(ngettext("activation lists {given} names, one per hidden layer, but hidden has {n} "
                                       "layer ({hidden})",
                                       "activation lists {given} names, one per hidden layer, but hidden has {n} "
                                       "layers ({hidden})", len(self.hidden)).format(
                given=len(self.activation), n=len(self.hidden), hidden=",".join(map(str, self.hidden)) or "''"))
        if self.schedule_param and not self.schedule:
            raise ConfigError(_("schedule_param needs schedule (--schedule-param needs --schedule)"))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, values: dict, where: str = "", label: Callable[[str], str] | None = None) -> "TrainConfig":
        """Build from a plain dict (a file's, a checkpoint's); unknown keys are errors.
        ``where`` prefixes messages (e.g. the file name); ``label(name)`` names a setting in
        them instead (e.g. as its flag)."""
        return cls(**check_values(values, label or ((lambda k: _("{file}: key {key!r}").format(file=where, key=k))
                                                    if where else str),
                                  (where + ": " if where else "") + _("unknown setting")))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- plain forms
    def to_dict(self) -> dict:
        """Plain values as files store them: widths and names as comma-separated text,
        pairs as lists (the forms the first release wrote, so old files compare equal)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            kind = SETTINGS[f.name].kind
            if kind in ("widths", "names") or (kind == "choices" and not isinstance(v, str)):
                v = ",".join(str(x) for x in v) if (v or kind != "names") else None
            elif kind == "pairs":
                v = list(v) if v else None
            out[f.name] = v
        return out

    def to_toml(self, folder: str | None = None) -> str:
        """The settings as TOML that ``deltaprop train --config`` reads back (``force`` left
        out, so that repeating the run never replaces files silently). ``folder``: where the
        file will be; relative file paths (:data:`PATH_SETTINGS`, relative to the working
        folder here) are written relative to it, as :func:`read_toml` reads them."""
        from .data.builtin import BUILTIN

        lines = ["# deltaprop train settings; repeat the run with: deltaprop train --config THIS_FILE",
                 "# (give another --out, or --force to replace the saved model)",
                 "# (file names are relative to this file's folder)"]
        for k, v in sorted(self.to_dict().items()):
            if (folder is not None and k in PATH_SETTINGS and isinstance(v, str) and v and not os.path.isabs(v)
                    and not (k == "data" and v in BUILTIN)):
                try:
                    v = os.path.relpath(os.path.abspath(v), os.path.abspath(folder or os.curdir))
                except ValueError:  # another drive (Windows): no relative path exists
                    v = os.path.abspath(v)
            if v is not None and k != "force":
                lines.append(f"{k.replace('_', '-')} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    # ----------------------------------------------------------------- derived objects
    def optimizer_params(self) -> dict:
        params = key_values(self.opt_param, "opt_param")
        if "lr" in params:
            raise ConfigError(_("opt_param may not set lr: give the learning rate as lr (--lr)"))
        if "transforms" in params:  # Python objects (gradient transforms), not a setting's text
            raise ConfigError(_("opt_param may not set transforms: gradient transforms are given in Python "
                                "(deltaprop.transforms)"))
        for key in ("momentum", "nesterov", "weight_decay", "grad_noise"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.optimizer == "lbfgs":
            params["max_fun"] = self.max_fun
        return params

    def make_optimizer(self):
        from .optimizers import get_optimizer

        return get_optimizer(self.optimizer, lr=self.lr, **self.optimizer_params())

    def callback_specs(self) -> list[tuple[str, dict]]:
        """The technique callbacks as ``(kind, params)``, for :func:`deltaprop.techniques.build_callbacks`."""
        specs = []
        if self.schedule:
            specs.append((self.schedule, key_values(self.schedule_param, "schedule_param")))
        if self.stall:
            specs.append(("stall", {"patience": self.stall, "min_improvement": self.stall_min_improvement,
                                    "remedy": self.stall_remedy}))
        return specs


#: The field -> :class:`Setting` table, in declaration order.
SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(TrainConfig)}


def _defaults_record():
    # Built without checks: choices are looked up lazily and need the registries, which may
    # still be importing when this module is first imported.
    obj = object.__new__(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        object.__setattr__(obj, f.name, f.default)
    return obj


#: The general defaults (what a run gets when nothing else says otherwise).
DEFAULTS: TrainConfig = _defaults_record()

#: Defaults for one task, above the general ones and below a built-in set's own settings
#: (flags > file > built-in set > TASK_DEFAULTS[task] > DEFAULTS); :func:`resolve` finds the
#: task from the data. Early stopping needs the validation split: with --val-split 0 it is
#: left out, and so is the epoch budget it makes safe.
#:
#: Regression (targets standardised, tanh 16, SGD lr 0.1, mini-batch 32): measured on
#: diabetes, linnerud and synthetic tables with columns spanning 1e-3..1e3, seeds 0-4, R^2 on
#: rows kept out of the file (bench/cli_regression_defaults.py; docs/defaults.md, "The CLI on
#: regression tables"). The general 50 epochs overfit the small diabetes table (R^2 median
#: 0.40, 0.24..0.58, least squares 0.51); lr 0.01 fits diabetes (0.51) but underfits
#: friedman1 (0.77 against 0.94). Up to 200 epochs that stop after 10 without a better
#: validation loss, keeping the best weights, gives 0.50 (0.39..0.61) on diabetes and keeps
#: 0.94-1.00 on the larger tables; no run saturated (under 2% of tanh outputs beyond 0.99)
#: or diverged.
TASK_DEFAULTS: dict[str, dict] = {
    "regression": {"epochs": 200, "early_stopping": 10},
}


# --------------------------------------------------------------------------- checking values
def check_value(name: str, value):
    """``value`` checked (and normalised) for setting ``name``; ConfigError names the setting and
    the valid range."""
    s = SETTINGS[name]
    if value is None:
        if s.optional:
            return None
        if s.kind in ("names", "pairs"):
            return ()
        raise ConfigError(must_be(name, s.range_text(), None))
    kind = s.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(must_be(name, _("true or false"), value))
        return value
    if kind in ("int", "float"):
        import numpy as np

        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConfigError(must_be(name, s.range_text(), value))
        if kind == "int":
            if isinstance(value, (float, np.floating)) and not float(value).is_integer():
                raise ConfigError(must_be(name, s.range_text(), value))
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(must_be(name, s.range_text(), value))
        too_low = s.lo is not None and (value <= s.lo if s.lo_open else value < s.lo)
        too_high = s.hi is not None and (value >= s.hi if s.hi_open else value > s.hi)
        if too_low or too_high:
            raise ConfigError(must_be(name, s.range_text(), value))
        return value
    if kind == "widths":
        return parse_widths(value, name)
    if kind == "choices":
        return _check_choices(name, s, value)
    if kind in ("names", "pairs"):
        items = value.split(",") if isinstance(value, str) and kind == "names" else value
        if isinstance(items, str) or not isinstance(items, (list, tuple)) \
                or not all(isinstance(x, str) for x in items):
            raise ConfigError(must_be(name, s.range_text(), value))
        items = tuple(x.strip() for x in items if x.strip()) if kind == "names" else tuple(items)
        if kind == "pairs":
            key_values(items, name)
        return items
    if not isinstance(value, str):
        raise ConfigError(must_be(name, s.range_text(), value))
    if kind == "choice" and value not in s.valid_choices():
        raise ConfigError(must_be(name, s.range_text(), value))
    if name == "init":
        from .initializers import parse_init

        parse_init(value)
    return value


def _check_choices(name: str, s: Setting, value):
    """One choice (``"relu"``) stays a str; several (``"relu,tanh"``, ``["relu", "tanh"]``)
    become a tuple."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(x, str) for x in items):
        raise ConfigError(must_be(name, s.range_text(), value))
    items = tuple(x.strip() for x in items)
    if any(x not in s.valid_choices() for x in items):
        raise ConfigError(must_be(name, s.range_text(), value))
    return items[0] if len(items) == 1 and isinstance(value, str) else items


def check_values(values: dict, label: Callable[[str], str], unknown: str) -> dict:
    """``values`` (keys with dashes or underscores) checked and normalised by :func:`check_value`;
    an unknown key is ``"UNKNOWN 'key'; valid keys: ..."``, a bad value names it as ``label(name)``."""
    out = {}
    for key, value in values.items():
        k = str(key).replace("-", "_")
        if k not in SETTINGS:
            raise ConfigError(_("{unknown} {key!r}; valid keys: {keys}").format(
                unknown=unknown, key=key, keys=", ".join(sorted(SETTINGS))))
        try:
            out[k] = check_value(k, value)
        except ConfigError as exc:
            raise relabel(exc, k, label(k)) from None
    return out


def relabel(exc: ConfigError, name: str, label: str) -> ConfigError:
    """``exc`` (which names setting ``name``) reworded to name it as ``label``."""
    msg = str(exc.args[0]) if exc.args else ""
    if msg.startswith(name) and msg[len(name):len(name) + 1] in (" ", ":"):  # "lr must ..." / "lr: ..."
        return ConfigError(label + msg[len(name):])
    return ConfigError(f"{label}: {msg}")


def parse_widths(value, name: str = "hidden") -> tuple:
    """``"16,8"``, ``16``, ``[16, 8]`` or ``""`` -> ``(16, 8)`` / ``()``."""
    if isinstance(value, bool):
        raise ConfigError(must_be(name, _("positive integers separated by commas, e.g. 16,8"), value))
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        text = value.strip()
        parts = [p.strip() for p in text.split(",")] if text else []
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(must_be(name, _("positive integers separated by commas, e.g. 16,8"), text)) from None
    try:
        import numpy as np

        sizes = list(value)
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
            raise TypeError
    except TypeError:
        raise ConfigError(must_be(name, _("positive integers separated by commas, e.g. 16,8"), value)) from None
    if any(s <= 0 for s in sizes):
        raise ConfigError(_("{name} widths must be positive, got {value!r}").format(
            name=name, value=",".join(str(s) for s in sizes)))
    return tuple(int(s) for s in sizes)


def key_values(items, what: str) -> dict:
    """``["beta1=0.8", "amsgrad=true"]`` -> ``{"beta1": 0.8, "amsgrad": True}`` (JSON values, else text)."""
    import json  # here, not at the top: `import deltaprop` need not load it

    out = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(_("{what} expects KEY=VALUE, got {value!r}").format(what=what, value=item))
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _toml_value(v) -> str:
    import json

    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


# --------------------------------------------------------------------------- files and precedence
def read_toml(path) -> dict:
    """The settings a TOML file gives (keys are the settings' names, dashes or underscores),
    checked; only the keys present."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, as a package
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(_("--config needs a TOML reader on Python 3.10: pip install tomli")) from None
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(_("{file}: no such config file").format(file=path)) from None
    except IsADirectoryError:
        raise ConfigError(_("{file}: is a directory, not a config file").format(file=path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_("{file}: cannot be read ({reason})").format(file=path, reason=exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("{file}: not valid TOML ({reason})").format(file=path, reason=exc)) from None
    values = check_values(raw, lambda k: _("{file}: key {key!r}").format(file=path, key=k),
                          _("{file}: unknown key").format(file=path))
    return _from_folder(values, os.path.dirname(os.fspath(path)))


#: The settings that name files. Relative paths in a config file are relative to the file's
#: folder, so that a config repeats its run from any working folder; :meth:`TrainConfig.to_toml`
#: writes them that way.
PATH_SETTINGS = ("data", "labels", "out", "checkpoint")


def _from_folder(values: dict, folder: str) -> dict:
    """``values`` with the relative paths of :data:`PATH_SETTINGS` joined to ``folder``.

    Config files written before 2026-12 recorded paths relative to the run's working folder;
    where only that reading makes sense it is kept: an input (``data``, ``labels``) found only
    there, an output (``out``, ``checkpoint``) whose folder exists only there."""
    from .data.builtin import BUILTIN

    out = dict(values)
    for key in PATH_SETTINGS:
        v = out.get(key)
        if not isinstance(v, str) or not v or os.path.isabs(v) or (key == "data" and v in BUILTIN):
            continue
        there = os.path.normpath(os.path.join(folder, v))
        found = _exists if key in ("data", "labels") else _folder_exists
        if not found(there) and found(v):
            continue
        out[key] = there
    return out


def _folder_exists(path: str) -> bool:
    """The folder a file would be written into exists."""
    return os.path.isdir(os.path.dirname(os.path.abspath(path)))


def _exists(path: str) -> bool:
    """A file, a folder, or a glob with a match."""
    import glob

    return os.path.exists(path) or (glob.has_magic(path) and bool(glob.glob(path)))


def resolve(given: dict, from_file: dict | None = None, label: Callable[[str], str] | None = None,
            task: str | None = None) -> TrainConfig:
    """Settings by precedence: ``given`` (values not None) > ``from_file`` > the built-in data
    set's recommended settings > :data:`TASK_DEFAULTS` of the data's task > :data:`DEFAULTS`.
    ``label`` names a setting in messages (``from_file`` is already checked, so a bad value is
    one of ``given``). ``task``: the data's task, found from the data when left out (the file
    is read once: the run takes the data read here)."""
    from .data import builtin_defaults

    from_file = from_file or {}
    given = {k: v for k, v in given.items() if v is not None}
    data = given.get("data") or from_file.get("data") or DEFAULTS.data
    above = builtin_defaults(data) | from_file | given | {"data": data}
    if task is None:
        task = _data_task(DEFAULTS.to_dict() | above, label)
    for_task = dict(TASK_DEFAULTS.get(task, {}))
    if (DEFAULTS.to_dict() | above)["val_split"] == 0:
        # Early stopping watches the validation split; without it, neither it nor the larger
        # epoch budget that it makes safe applies.
        for_task.pop("early_stopping", None)
        for_task.pop("epochs", None)
    return TrainConfig.from_dict(DEFAULTS.to_dict() | for_task | above, label=label)


def _data_task(values: dict, label) -> str | None:
    """The task of the data ``values`` names; None where the data cannot be read (the run then
    says why, where it always did)."""
    from .errors import DeltapropError
    from .runs import data_task

    try:
        return data_task(TrainConfig.from_dict(values, label=label))
    except DeltapropError:
        return None


def resume_config(saved: dict, given: dict, where: str = "checkpoint") -> TrainConfig:
    """The settings of a resumed run: those ``saved`` in the checkpoint, with the
    ``resumable`` ones replaced where ``given`` (values not None/False) says so. Giving
    another value for any other setting is an error: the run would not be the same run."""
    saved_cfg = TrainConfig.from_dict(DEFAULTS.to_dict() | dict(saved), where)
    given = {k: v for k, v in given.items() if v is not None and v is not False and k in SETTINGS}
    clash = []
    changes = {}
    for k, v in given.items():
        v = check_value(k, v)
        if SETTINGS[k].resumable:
            changes[k] = v
        elif v != getattr(saved_cfg, k):
            clash.append(k)
    if clash:
        raise ConfigError(_("--resume continues the checkpointed run; these settings cannot change: {flags}").format(
            flags=", ".join(f"--{k.replace('_', '-')}" for k in clash)))
    return saved_cfg.replace(**changes)
