"""``deltaprop compare``: modes x techniques x seeds on the shipped problems."""

from __future__ import annotations

import contextlib
import os
import shlex

from .errors import ConfigError
from .experiments import (PROBLEMS, TECHNIQUES, applicable, result_dicts, run_grid, summarise, text_table,
                          write_report)
from .experiments.registry import PRESETS
from .experiments.runner import parse_success
from .io import check_writable_folder
from .training import MODES
from .i18n import gettext as _, ngettext


def _names(text: str, valid, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(_("--{what} needs at least one name").format(what=what))
    bad = [n for n in names if n not in valid]
    if bad:
        text = {"modes": _("unknown modes {names}; valid: {valid}"), "problems": _("unknown problems {names}; valid: {valid}"),
                "techniques": _("unknown techniques {names}; valid: {valid}")}[what]
        raise ConfigError(text.format(names=", ".join(map(repr, bad)), valid=", ".join(valid)))
    return names


def _rates(text: str) -> dict:
    pairs = [p.partition("=") for p in text.split(",")] if "=" in text else [(m, "=", text) for m in MODES]
    bad = [m.strip() for m, _, _ in pairs if m.strip() not in MODES]
    if bad:
        raise ConfigError(_("--lr: unknown mode {mode!r}; valid: {valid}").format(mode=bad[0], valid=", ".join(MODES)))
    try:
        rates = {m.strip(): float(v) for m, _, v in pairs}
    except ValueError:
        raise ConfigError(_("--lr {value!r}: expected a number or mode=number pairs").format(value=text)) from None
    if any(not v > 0 for v in rates.values()):
        raise ConfigError(_("--lr {value!r}: learning rates must be positive").format(value=text))
    return rates


def register(sub) -> None:
    c = sub.add_parser("compare", help=_("compare training modes and techniques over many seeds"),
                       description=_("Train every (problem, mode, technique) cell from the same seeded initial "
                                   "weights and report success rates and the cost to the target in epochs, "
                                   "samples processed and seconds."))
    # --data as well: the name `deltaprop train` gives the same choice (built-in sets only here)
    c.add_argument("--problems", "--data", dest="problems", default="xor",
                   help=_("comma separated: {names} (default xor)").format(names=", ".join(PROBLEMS)))
    c.add_argument("--modes", default=",".join(MODES), help=_("comma separated (default all three)"))
    c.add_argument("--techniques", default="gd,momentum,rprop-,irprop+",
                   help=_("comma separated: {names}; batch-only rules run in batch mode only").format(names=", ".join(TECHNIQUES)))
    c.add_argument("--seeds", type=int, default=50, help=_("seeds 0..N-1 (default 50)"))
    c.add_argument("--preset", choices=sorted(PRESETS),
                   help=_("a named set of grids (problems x techniques x seeds) instead of --problems/--techniques/"
                        "--seeds; 'docs' regenerates docs/experiments.md's tables"))
    c.add_argument("--epochs", type=int, help=_("epoch budget per run (default: the problem's)"))
    c.add_argument("--init-range", type=float, help=_("initial weights from U(-r, r) (default: the problem's)"))
    c.add_argument("--success", help=_("success criterion: correct (every output on the right side of 0.5), "
                                     "loss<=X or accuracy>=X (default: the problem's)"))
    c.add_argument("--lr", help=_("learning rate of the non-adaptive techniques: a number for every mode, or "
                                "per mode as stochastic=0.5,batch=2 (default: the problem's)"))
    c.add_argument("--jobs", type=int, default=0, help=_("worker processes (default: all cores)"))
    c.add_argument("--dask", metavar="SPEC", help=_("run on a Dask cluster: local:N (N local worker processes) or "
                                                    "tcp://HOST:PORT (a running scheduler); needs deltaprop[dask]"))
    c.add_argument("--out-dir", help=_("write compare.md/.csv/.json and PNG plots here"))
    c.add_argument("--no-plots", action="store_true", help=_("skip the PNG plots"))
    c.add_argument("--no-timing", action="store_true",
                   help=_("leave wall-clock times out, so that a rerun's files are byte-identical"))
    c.add_argument("--force", action="store_true", help=_("write into an --out-dir that already has results"))
    c.set_defaults(func=cmd_compare)


def _command(args) -> str:
    """The command that repeats this comparison (output options left out)."""
    parts = ["deltaprop", "compare"]
    parts += ["--preset", args.preset] if args.preset else ["--problems", args.problems, "--techniques",
                                                              args.techniques, "--seeds", str(args.seeds)]
    parts += ["--modes", args.modes]
    for flag, value in (("--epochs", args.epochs), ("--init-range", args.init_range),
                        ("--success", args.success), ("--lr", args.lr)):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


@contextlib.contextmanager
def _cluster(spec):
    """A Dask client for --dask (none without it); a local cluster is shut down at the end."""
    if not spec:
        yield None
        return
    from .distributed import connect

    with connect(spec) as client:
        yield client


def cmd_compare(args) -> int:
    modes = _names(args.modes, list(MODES), "modes")
    if args.seeds < 1:
        raise ConfigError(_("--seeds must be at least 1, got {value}").format(value=args.seeds))
    if args.preset:
        grids = [(list(p), list(t), n) for p, t, n in PRESETS[args.preset]]
    else:
        grids = [(_names(args.problems, list(PROBLEMS), "problems"),
                  _names(args.techniques, list(TECHNIQUES), "techniques"), args.seeds)]
    problems = [p for g in grids for p in g[0]]
    techniques = list(dict.fromkeys(t for g in grids for t in g[1]))
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(_("--epochs must be at least 1, got {value}").format(value=args.epochs))
    if args.init_range is not None and not args.init_range > 0:
        raise ConfigError(_("--init-range must be positive, got {value}").format(value=args.init_range))
    if args.success:
        parse_success(args.success)
    if args.jobs < 0:
        raise ConfigError(_("--jobs must be >= 0, got {value}").format(value=args.jobs))
    if args.out_dir:
        if os.path.exists(os.path.join(args.out_dir, "compare.json")) and not args.force:
            raise ConfigError(_("{folder} already holds a comparison; use --force to replace it").format(
                folder=args.out_dir))
        plots = [f"{kind}-{p}.png" for p in dict.fromkeys(problems) for kind in ("curves", "success")]
        check_writable_folder(args.out_dir, ("compare.md", "compare.csv", *plots), overwrite=args.force)
    skipped = [(p, m, t) for ps, ts, _ in grids for p in ps for m in modes for t in ts if not applicable(p, m, t)]
    rates = _rates(args.lr) if args.lr else None
    kw = {"epochs": args.epochs, "init_range": args.init_range, "success": args.success, "lr": rates}
    with _cluster(args.dask) as client:
        runs = [r for ps, ts, n in grids
                for r in run_grid(ps, modes, ts, range(n), jobs=args.jobs or None, client=client, **kw)]
    rows = summarise(runs)
    if args.no_timing:
        for row in rows:
            row.pop("median_seconds")
    settings = {
        "command": _command(args),
        "seeds": f"0..{args.seeds - 1}" if not args.preset else {p: f"0..{n - 1}" for ps, _, n in grids for p in ps},
        "epoch budget": args.epochs or {p: PROBLEMS[p].epochs for p in problems},
        "initial weights": f"U(-{args.init_range}, {args.init_range})" if args.init_range
        else {p: f"U(-{PROBLEMS[p].init_range}, {PROBLEMS[p].init_range})" for p in problems},
        "success": args.success or {p: PROBLEMS[p].success for p in problems},
        "learning rates (plain GD, per mode)": {p: PROBLEMS[p].lr | (rates or {}) for p in problems},
        "techniques": {t: TECHNIQUES[t].description for t in techniques},
    }
    labels = {"command": _("command"), "seeds": _("seeds"), "epoch budget": _("epoch budget"),
              "initial weights": _("initial weights"), "success": _("success"),
              "learning rates (plain GD, per mode)": _("learning rates (plain GD, per mode)"),
              "techniques": _("techniques")}
    shown = settings | {"techniques": {t: _(TECHNIQUES[t].description) for t in techniques}}
    print("\n".join(f"{labels.get(k, k)}: {v}" for k, v in shown.items()))
    print()
    print(text_table(rows, timing=not args.no_timing))
    if skipped:
        cells = ", ".join(sorted({_("{technique} in {mode}").format(technique=t, mode=m) for _p, m, t in skipped}))
        print("\n" + ngettext("not run ({n} cell): batch-only rules in stochastic/minibatch mode: {cells}",
                              "not run ({n} cells): batch-only rules in stochastic/minibatch mode: {cells}",
                              len(skipped)).format(n=len(skipped), cells=cells))
    if args.out_dir:
        paths = write_report(args.out_dir, settings, rows, result_dicts(runs, timing=not args.no_timing),
                             timing=not args.no_timing, plots=not args.no_plots)
        print("\n" + _("written: {files}").format(files=", ".join(paths)))
    return 0
