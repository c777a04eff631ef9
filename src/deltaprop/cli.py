"""The ``deltaprop`` command: a thin shell over the library.

``main(argv) -> int`` is callable from tests. Exit codes: 0 success, 1 training diverged,
2 bad input or settings (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings

import numpy as np

from . import __version__, i18n
from .data import builtin_info, data_format, load_data
from .data.partitions import is_partitioned
from .errors import ConfigError, DeltapropError
from .i18n import gettext as _
from .io import check_writable, write_text_atomic
from .model import Model


def _command_modules() -> list[str]:
    """Further commands live in their own modules ``deltaprop/cli_<name>.py``, each with a
    ``register(subparsers)`` that adds a sub-parser with ``set_defaults(func=...)``; the
    function takes the parsed args and returns the exit code. Adding a command = adding a file."""
    import deltaprop

    return sorted(m.name for m in pkgutil.iter_modules(deltaprop.__path__)
                  if m.name.startswith("cli_") and m.name != "cli_train")  # train is registered first


def one_line(text) -> str:
    """A message as one line: line breaks from file names or arguments shown escaped."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def int_arg(text: str) -> int:
    """argparse type: an integer (range checks are the command's, with its own message)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("{value!r} is not an integer").format(value=text)) from None


def float_arg(text: str) -> float:
    """argparse type: a number."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("{value!r} is not a number").format(value=text)) from None


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through our exit code 2 without a traceback."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, error_line(message) + "\n")


def error_line(message) -> str:
    """``deltaprop: error: MESSAGE`` (in the language in force), one line."""
    return _("deltaprop: error: {message}").format(message=one_line(message))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deltaprop", description=_("Train multilayer networks by backpropagation."))
    p.add_argument("--version", action="version", version=f"deltaprop {__version__}",
                   help=_("show program's version number and exit"))
    p.add_argument("--lang", choices=i18n.LANGUAGES, help=_LANG_HELP())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    importlib.import_module("deltaprop.cli_train").register(sub)


    for name, helptext in (("predict", _("predict with a saved model")),
                           ("evaluate", _("loss and accuracy of a saved model on labelled data"))):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("model", help=_("model file written by 'deltaprop train --out'"))
        c.add_argument("--data", required=True, help=_("CSV file (or built-in set name)"))
        c.add_argument("--target", help=_("target column (default: the one the model was trained on)"))
        c.add_argument("--labels", metavar="FILE", help=_("labels file for IDX images"))
        if name == "predict":
            c.add_argument("--proba", action="store_true", help=_("also print the output of every unit"))
            c.add_argument("--out", help=_("write the predictions as CSV to this file instead of stdout"))
            c.add_argument("--force", action="store_true", help=_("overwrite --out if it exists"))
        c.set_defaults(func=cmd_predict if name == "predict" else cmd_evaluate)

    d = sub.add_parser("datasets", help=_("list the built-in data sets"))
    d.set_defaults(func=cmd_datasets)
    for name in _command_modules():
        importlib.import_module(f"deltaprop.{name}").register(sub)
    _add_lang(sub)
    return p


def _add_lang(sub) -> None:
    """Every command (and sub-command, as ``plot history``) takes --lang after its name too."""
    for command in sub.choices.values():
        command.add_argument("--lang", choices=i18n.LANGUAGES, default=argparse.SUPPRESS, help=_LANG_HELP())
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_lang(action)


def _LANG_HELP() -> str:
    return _("language of the output, help and messages (default: DELTAPROP_LANG, else the locale: "
             "LANGUAGE, LC_ALL, LC_MESSAGES, LANG; else en)")


def _lang_flag(argv: list[str]) -> str | None:
    """The value of ``--lang`` in ``argv`` (the last one; options end at ``--``), read before the
    parser is built, since the parser's help is written in that language."""
    value = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--lang="):
            value = arg.split("=", 1)[1]
    return value


# --------------------------------------------------------------------------- predict / evaluate
def _load_for_model(model: Model, source: str, target, labels=None):
    """Load ``source`` with the model's columns, classes and categories; the target is optional."""
    # Several target columns (a multi-output regression) are read back by their joined names.
    target = target if target is not None else (",".join(model.target_names) if model.target_names else None)
    if data_format(source) == "builtin":
        return model.align(load_data(source))
    if is_partitioned(source):  # a folder or glob of partitions, each read as one file would be
        import dataclasses

        from .data.partitions import partition_files

        parts = [_load_for_model(model, f, target, labels) for f in partition_files(source)]
        with_t = all(p.T.shape[1] for p in parts)  # the target where every partition holds it
        return dataclasses.replace(
            parts[0], name=source, X=np.concatenate([p.X for p in parts]),
            T=np.concatenate([p.T for p in parts]) if with_t else np.zeros((sum(len(p.X) for p in parts), 0)))
    ds = load_data(source, target, labels=labels, require_target=False,
                   task=model.task if model.task != "unknown" else "auto", classes=model.classes,
                   features=model.feature_names or None, categories=model.categories)
    return model.align(ds)


def cmd_predict(args) -> int:
    if args.out:
        check_writable(args.out, overwrite=args.force)
    model = Model.load(args.model)
    ds = _load_for_model(model, args.data, args.target, args.labels)
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
        if len(names) != out.shape[1]:  # one 2-D target array of an .npz: its columns numbered
            names = [f"{names[0]}[{i}]" for i in range(out.shape[1])]
        lines.append(",".join(names))
        lines += [",".join(f"{v:.8g}" for v in row) for row in out]
    text = "\n".join(lines) + "\n"
    if args.out:
        write_text_atomic(args.out, text, overwrite=args.force)
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluate(args) -> int:
    model = Model.load(args.model)
    ds = _load_for_model(model, args.data, args.target, args.labels)
    if ds.T.shape[1] == 0:
        if args.target is not None and not str(args.data).lower().endswith((".npy", ".npy.gz")) \
                and not is_partitioned(args.data):  # a name the file lacks: the reader says which it has
            load_data(args.data, args.target, labels=args.labels, require_target=True,
                      task=model.task if model.task != "unknown" else "auto", classes=model.classes,
                      categories=model.categories)
        if args.target is not None:  # named, yet every column is one of the model's inputs
            raise ConfigError(i18n.ngettext(
                "{file}: its {n} column is the model's input; none is left for the target {target!r}",
                "{file}: its {n} columns are the model's inputs; none is left for the target {target!r}",
                ds.X.shape[1]).format(file=args.data, n=ds.X.shape[1], target=args.target))
        raise ConfigError(_("{file}: no target column found to evaluate against; give --target").format(
            file=args.data))
    res = model.evaluate(ds)
    line = _("{samples}: loss {loss} ({name})").format(
        samples=i18n.ngettext("{n} sample", "{n} samples", res["samples"]).format(n=res["samples"]),
        loss=f"{res['loss']:.6f}", name=model.network.loss.name)
    if "accuracy" in res:
        line += ", " + _("accuracy {accuracy}").format(accuracy=f"{res['accuracy']:.2%}")
    if model.task == "regression":
        from .runs import r_squared

        if model.target_scaler is not None:  # train's lines show the loss in the standardised units
            scaled = model.evaluate(ds, standardised_targets=True)["loss"]
            line = _("{samples}: loss {loss} ({name} in the targets' units; {scaled} of the standardised "
                     "targets, as train shows it)").format(
                samples=i18n.ngettext("{n} sample", "{n} samples", res["samples"]).format(n=res["samples"]),
                loss=f"{res['loss']:.6f}", name=model.network.loss.name, scaled=f"{scaled:.4f}")
        line += ", " + _("R² {r2}").format(r2=f"{r_squared(ds.T, model.predict(ds.X)):.3f}")
    print(line)
    return 0


def cmd_datasets(args) -> int:
    name, samples, features, source = _("name"), _("samples"), _("features"), _("source")
    print(f"{name:<9} {samples:>7} {features:>8}  {source}")
    for name, n, d, src in builtin_info():
        print(f"{name:<9} {n:>7} {d:>8}  {_(src)}")
    return 0


# --------------------------------------------------------------------------- entry point
def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(_("deltaprop: warning: {message}").format(message=message), file=sys.stderr)


def _tolerant_output() -> None:
    """A path from the file system may hold bytes the terminal's encoding cannot show (a
    non-UTF-8 name arrives as surrogates); print those escaped rather than fail."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def _check_single_positionals(parser, args) -> None:
    """Python 3.11's argparse can hand a one-value positional an empty list (``export m.npz --
    --``); say so as a usage error rather than fail later on a list where a path goes."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[args.command]._actions:
        if not action.option_strings and action.nargs is None and isinstance(getattr(args, action.dest, None), list):
            sub.choices[args.command].error(_("argument {name}: expected one argument").format(
                name=action.metavar or action.dest))


def main(argv=None) -> int:
    _tolerant_output()
    argv = sys.argv[1:] if argv is None else list(argv)
    with i18n.language(i18n.choose(_lang_flag(argv))), i18n.translate_argparse():
        return _main(argv)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_single_positionals(parser, args)
    try:
        with warnings.catch_warnings():
            # The library warns through `warnings` (e.g. a batch size clipped to N); the
            # command shows each as one line, like its errors.
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            return args.func(args)
    except DeltapropError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `deltaprop predict ... | head`: the reader left, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file that cannot be written or read after all the checks: one line
        where = exc.filename if exc.filename is not None else _("a file")

        print(error_line(f"{one_line(where)}: {one_line(exc.strerror or exc)}"), file=sys.stderr)
        return 2
    except MemoryError:
        print(error_line(_("out of memory; use a smaller network, --batch-size or data set")), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_("deltaprop: interrupted"), file=sys.stderr)
        return 130
