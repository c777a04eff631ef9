r"""``deltaprop gradcheck``: backprop against finite differences, and what each costs.

Two uses:

* ``deltaprop gradcheck [--sizes 4,8,3 ... | --model FILE --data CSV]``: checks the
  backprop gradient of one network (random weights and data from ``--seed``, or a saved model
  on its data, standardised as in training) against central differences
  (:func:`deltaprop.gradcheck.gradcheck`). Exit code 0 when the maximum relative error is
  below ``--tol``, 1 when not, 2 for bad input.
* ``deltaprop gradcheck --cost-table``: times the backprop gradient against the numerical one
  for networks of about 10 to 100,000 parameters (:func:`deltaprop.gradcheck.gradient_cost`)
  and renders the rows as a text table, a Markdown page (``--markdown``) and a log-log plot
  (``--plot``, needs matplotlib).

The library measures; this module only renders.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time

import numpy as np

from .activations import ACTIVATIONS
from .cli import float_arg, int_arg
from .errors import ConfigError, DataError
from .gradcheck import (DEFAULT_COST_SIZES, CostRow, GradcheckResult, cost_slope, gradcheck, gradient_cost,
                        random_problem)
from .losses import LOSSES
from .network import Network

__all__ = ["register", "cmd", "run_check", "format_cost_table", "cost_markdown", "plot_cost", "machine_facts"]

#: The architecture checked when neither --sizes nor --model is given.
CHECK_DEFAULTS = {"sizes": "4,8,3", "activation": "tanh", "output_activation": "softmax",
                  "loss": "cross_entropy", "init": "glorot_uniform", "samples": 16}
#: The cost table's settings where the user gives none.
TABLE_DEFAULTS = {"batch": 32, "repeats": 7, "budget": 3.0}
#: Benchmarks run with OpenBLAS's own choice of kernel for the CPU: these are unset for them.
BLAS_ENV_UNSET = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
#: Thread settings a benchmark run may set; the regenerate command repeats those it found set.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def register(subparsers) -> None:
    g = subparsers.add_parser(
        "gradcheck", help="check backprop against finite differences; --cost-table times both",
        description="Compare the backprop gradient with central finite differences for a random network "
                    "(--sizes ...) or a saved model on its data (--model FILE --data CSV); exit code 0 when "
                    "the maximum relative error is below --tol, else 1. With --cost-table: time one "
                    "backprop gradient against the numerical gradient for networks of about 10 to 100,000 "
                    "parameters.")
    net = g.add_argument_group("the network (a random one unless --model is given)")
    net.add_argument("--sizes", help=f"layer widths from input to output (default {CHECK_DEFAULTS['sizes']})")
    acts, losses = ", ".join(sorted(ACTIVATIONS)), ", ".join(sorted(LOSSES))
    net.add_argument("--activation", help=f"hidden-layer activation: {acts} (default {CHECK_DEFAULTS['activation']})")
    net.add_argument("--output-activation",
                     help=f"output activation (default {CHECK_DEFAULTS['output_activation']})")
    net.add_argument("--loss", help=f"loss: {losses} (default {CHECK_DEFAULTS['loss']})")
    net.add_argument("--init", help=f"weight initialisation (default {CHECK_DEFAULTS['init']})")
    net.add_argument("--samples", type=int_arg, help="random samples (default 16); with --model: check on this many "
                                                  "rows drawn at random (default: all)")
    net.add_argument("--seed", type=int_arg, default=0, help="seed of the weights, data and sampling (default 0)")
    net.add_argument("--model", help="model file written by 'deltaprop train --out' (float32 models are "
                                     "checked in a float64 copy)")
    net.add_argument("--data", help="with --model: CSV file or built-in set name with targets")
    net.add_argument("--target", help="with --model: target column (default: the one the model was trained on)")
    chk = g.add_argument_group("the check")
    chk.add_argument("--max-params", type=int_arg, metavar="N",
                     help="check N parameters drawn at random instead of all (when a full sweep takes too long)")
    chk.add_argument("--tol", type=float_arg, default=1e-6, help="pass when max relative error < TOL (default 1e-6)")
    chk.add_argument("--order", type=int_arg, help="central differences of order 2 or 4 "
                                                "(default 4 for the check, 2 for --cost-table)")
    chk.add_argument("--step", type=float_arg, default=2e-4, help="finite-difference step h (default 2e-4)")
    cost = g.add_argument_group("the cost table")
    cost.add_argument("--cost-table", action="store_true",
                      help="time backprop against numerical differentiation for networks of ~10 to ~100,000 parameters")
    cost.add_argument("--table-sizes", metavar="SIZES;SIZES;...",
                      help="architectures of the table, e.g. '2,2,2;4,12,3' (default: "
                           + ";".join(",".join(map(str, s)) for s in DEFAULT_COST_SIZES) + ")")
    cost.add_argument("--batch", type=int_arg, help="samples in the timed batch (default 32)")
    cost.add_argument("--repeats", type=int_arg, help="repeats whose median is reported (default 7)")
    cost.add_argument("--budget", type=float_arg, metavar="SECONDS",
                      help="time the numerical gradient on a random sample of parameters when the full sweep "
                           "would take longer than this, per network (default 3)")
    cost.add_argument("--plot", metavar="FILE.png", help="write a log-log plot (needs matplotlib)")
    cost.add_argument("--markdown", metavar="FILE.md", help="write the table as a Markdown page")
    g.add_argument("--force", action="store_true", help="overwrite --plot / --markdown files")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.set_defaults(func=cmd)


# --------------------------------------------------------------------------- formatting helpers
def _seconds(t: float) -> str:
    """A duration with three significant digits in a readable unit."""
    if t < 1e-3:
        return f"{t * 1e6:.3g} µs"
    if t < 1.0:
        return f"{t * 1e3:.3g} ms"
    if t < 100.0:
        return f"{t:.3g} s"
    if t < 3 * 3600:
        return f"{t:,.0f} s ({t / 60:.0f} min)"
    return f"{t:,.0f} s ({t / 3600:.1f} h)"


def _parse_sizes(text: str, what: str = "--sizes") -> list[int]:
    try:
        sizes = [int(s) for s in str(text).split(",")]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers like 4,8,3, got {text!r}") from None
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ConfigError(f"{what} needs at least two positive widths (input and output), got {text!r}")
    return sizes


def _name(sizes) -> str:
    return "-".join(map(str, sizes))


# --------------------------------------------------------------------------- entry point
def cmd(args) -> int:
    if args.order is not None and args.order not in (2, 4):
        raise ConfigError(f"--order must be 2 or 4, got {args.order}")
    if not args.step > 0:
        raise ConfigError(f"--step must be positive, got {args.step}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.cost_table:
        return _cmd_cost_table(args)
    for flag, value in (("--plot", args.plot), ("--markdown", args.markdown), ("--table-sizes", args.table_sizes),
                        ("--batch", args.batch), ("--repeats", args.repeats), ("--budget", args.budget)):
        if value is not None:
            raise ConfigError(f"{flag} goes with --cost-table")
    if not args.tol > 0:
        raise ConfigError(f"--tol must be positive, got {args.tol}")
    if args.max_params is not None and args.max_params < 1:
        raise ConfigError(f"--max-params must be at least 1, got {args.max_params}")
    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {args.samples}")
    net, X, T, lines = _model_problem(args) if args.model else _random_problem(args)
    return run_check(net, X, T, describe=lines, max_params=args.max_params, seed=args.seed, tol=args.tol,
                     order=args.order or 4, h=args.step, as_json=args.json)


def _random_problem(args):
    if args.data is not None or args.target is not None:
        raise ConfigError("--data and --target go with --model")
    cfg = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in CHECK_DEFAULTS.items()}
    sizes = _parse_sizes(cfg["sizes"])
    net, X, T = random_problem(sizes, cfg["activation"], cfg["output_activation"], cfg["loss"],
                               samples=cfg["samples"], seed=args.seed, init=cfg["init"])
    return net, X, T, [f"network: {_describe(net)}",
                       f"data: {len(X)} random samples, weights {cfg['init']} (seed {args.seed})"]


def _describe(net: Network) -> str:
    acts = " -> ".join(dict.fromkeys(layer.activation.name for layer in net.layers))
    return (f"{_name(net.sizes)}, {acts}, loss {net.loss.name}, {net.dtype.name}, "
            f"{net.n_params:,} parameters ({net.n_trainable:,} trainable)")


def _model_problem(args):
    given = [f for f, v in (("--sizes", args.sizes), ("--activation", args.activation),
                            ("--output-activation", args.output_activation), ("--loss", args.loss),
                            ("--init", args.init)) if v is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} {'describes' if len(given) == 1 else 'describe'} a random "
                          "network; a --model brings its own")
    if args.data is None:
        raise ConfigError("--model needs --data: a CSV file or built-in set name with the targets to check on")
    from .cli import _load_for_model  # the same column alignment as 'deltaprop evaluate'
    from .model import Model

    model = Model.load(args.model)
    ds = _load_for_model(model, args.data, args.target)
    net = model.network
    if ds.T.shape != (len(ds), net.n_outputs):
        raise DataError(f"{args.data}: targets of shape {ds.T.shape} found, the model has {net.n_outputs} "
                        f"outputs; give --target")
    X, T = model.prepare(ds.X), ds.T
    lines = []
    if net.dtype != np.float64:
        # float32 differences would be dominated by round-off (about 1e-7 / h relative).
        net = net.astype("float64")
        lines.append("note: the float32 model is checked in a float64 copy")
    what = f"all {len(X):,}"
    if args.samples is not None and args.samples < len(X):
        rows = np.sort(np.random.default_rng(args.seed).choice(len(X), args.samples, replace=False))
        X, T = X[rows], T[rows]
        what = f"{len(X):,} of {len(ds):,} (drawn at random, seed {args.seed})"
    std = "standardised with the model's training statistics" if model.standardizer else "not standardised"
    return net, X, T, [f"network: {_describe(net)} from {args.model}",
                       f"data: {args.data}, {what} samples, {std}", *lines]


def run_check(net: Network, X, T, *, describe=(), max_params=None, seed=0, tol=1e-6, order=4, h=2e-4,
              as_json=False, out=None, err=None) -> int:
    """Check ``net`` on ``(X, T)`` and print the report; 0 when max relative error < ``tol``, else 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    res = gradcheck(net, X, T, max_params=max_params, seed=seed, h=h, order=order)
    ok = res.passed(tol)
    if as_json:
        print(json.dumps(_result_dict(res, tol, ok)), file=out)
    else:
        for line in describe:
            print(line, file=out)
        for line in _report(res, max_params, seed):
            print(line, file=out)
        if ok:
            print(f"OK: max relative error {res.max_rel_error:.3g} < --tol {tol:g}", file=out)
    if not ok:
        print(f"deltaprop: gradcheck failed: max relative error {res.max_rel_error:.3g} is not below --tol {tol:g}; "
              f"worst {res.worst}"
              + (f" ({res.near_kink} pre-activations lie within a step of a ReLU kink, where finite differences "
                 "are unreliable)" if res.near_kink else ""), file=err)
        return 1
    return 0


def _report(res: GradcheckResult, max_params, seed) -> list[str]:
    k = len(res.indices)
    per = res.forward_passes // k if k else 0
    which = (f"{k:,} of {res.n_params:,} parameters, drawn at random (seed {seed}) because of --max-params {max_params}"
             if res.sampled else f"all {res.n_params:,} parameters")
    lines = [
        f"checked: {which}; central differences of order {res.order}, h = {res.h:g} "
        f"({per} forward passes per parameter)",
        f"max relative error:    {res.max_rel_error:.3g} at {res.worst}",
        f"median relative error: {res.median_rel_error:.3g}",
        f"max absolute error:    {res.max_abs_error:.3g}",
        f"backprop:              {_seconds(res.seconds_backprop)} for all {res.n_params:,} partial derivatives "
        "(one forward + one backward pass, median of 5 warm runs)",
        f"finite differences:    {_seconds(res.seconds_numeric)} for {k:,} partial derivatives "
        f"({res.forward_passes:,} forward passes)"
        + (f"; all {res.n_params:,} would take about {_seconds(res.seconds_numeric_full)} (estimated)"
           if res.sampled else "")
        + (f"; {res.seconds_numeric_full / res.seconds_backprop:,.0f}x the backprop time"
           if res.seconds_backprop > 0 else ""),
    ]
    if res.near_kink:
        lines.append(f"note: {res.near_kink} pre-activations lie within a step of a ReLU kink, where "
                     "finite differences are unreliable")
    return lines


def _result_dict(res: GradcheckResult, tol: float, ok: bool) -> dict:
    return {"n_params": res.n_params, "checked": len(res.indices), "sampled": res.sampled, "order": res.order,
            "h": res.h, "max_rel_error": res.max_rel_error, "median_rel_error": res.median_rel_error,
            "max_abs_error": res.max_abs_error, "worst": res.worst, "near_kink": res.near_kink,
            "seconds_backprop": res.seconds_backprop, "seconds_numeric": res.seconds_numeric,
            "seconds_numeric_full": res.seconds_numeric_full, "tol": tol, "passed": ok}


# --------------------------------------------------------------------------- cost table
def _cmd_cost_table(args) -> int:
    if args.model or args.data:
        raise ConfigError("--cost-table times random networks; it takes no --model or --data")
    if args.max_params is not None or args.samples is not None or args.sizes is not None:
        raise ConfigError("--cost-table takes --table-sizes and --batch, not --sizes, --samples or --max-params")
    for k, v in TABLE_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for flag, value in (("--batch", args.batch), ("--repeats", args.repeats)):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if not args.budget >= 0:
        raise ConfigError(f"--budget must be a non-negative number of seconds, got {args.budget}")
    if args.table_sizes:
        sizes_list = [_parse_sizes(s, "--table-sizes") for s in args.table_sizes.split(";") if s.strip()]
    else:
        sizes_list = [list(s) for s in DEFAULT_COST_SIZES]
    if not sizes_list:
        raise ConfigError("--table-sizes names no architecture")
    # Everything that can fail is checked before the minute of measuring starts.
    for path in (args.plot, args.markdown):
        _check_writable(path, args.force)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("--plot needs matplotlib: pip install 'deltaprop[plot]'") from None
    cfg = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in CHECK_DEFAULTS.items()}
    for s in sizes_list:  # unknown activations or impossible pairings, before timing anything
        Network(s, cfg["activation"], cfg["output_activation"], cfg["loss"])
    order = args.order or 2
    started = time.perf_counter()
    rows = gradient_cost(sizes_list, batch=args.batch, order=order, h=args.step, repeats=args.repeats,
                         numeric_budget=args.budget, seed=args.seed, activation=cfg["activation"],
                         output_activation=cfg["output_activation"], loss=cfg["loss"])
    elapsed = time.perf_counter() - started
    facts = machine_facts()
    slope = cost_slope(rows) if len(rows) > 1 else None
    if args.plot:
        plot_cost(rows, args.plot, title=_plot_title(facts, rows))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(cost_markdown(rows, facts, command=_command(args), plot=args.plot, markdown=args.markdown,
                                  repeats=args.repeats, budget=args.budget, elapsed=elapsed,
                                  network=f"{cfg['activation']} hidden layer, {cfg['output_activation']} output, "
                                          f"{cfg['loss']} loss, {cfg['init']} weights"))
    if args.json:
        print(json.dumps({"rows": [r.to_dict() for r in rows], "slope": slope, "seconds": elapsed,
                          "machine": facts}))
        return 0
    print(format_cost_table(rows))
    print(f"backprop: one forward + one backward pass over {rows[0].batch} samples (float64), median of "
          f"{args.repeats}; numerical: central differences of order {order} = {rows[0].passes_per_param} "
          f"forward passes per parameter")
    if slope is not None:
        print(f"the ratio grows as P^{slope:.2f} (least-squares slope on log-log axes; 1 = linear)")
    print(f"measured in {elapsed:.3g} s")
    for path in (args.plot, args.markdown):
        if path:
            print(f"wrote {path}")
    return 0


def _check_writable(path, force: bool) -> None:
    if path is None:
        return
    if os.path.exists(path) and not force:
        raise ConfigError(f"{path} already exists; use --force to overwrite it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{path}: folder {folder} does not exist")


def _command(args) -> str:
    """The command line that reproduces this table (options at their defaults left out)."""
    parts = ["deltaprop gradcheck --cost-table"]
    if args.table_sizes:
        parts.append(f"--table-sizes '{args.table_sizes}'")
    for flag, value, default in (("--batch", args.batch, TABLE_DEFAULTS["batch"]),
                                 ("--repeats", args.repeats, TABLE_DEFAULTS["repeats"]),
                                 ("--budget", args.budget, TABLE_DEFAULTS["budget"]), ("--order", args.order, None),
                                 ("--step", args.step, 2e-4), ("--seed", args.seed, 0),
                                 ("--activation", args.activation, None),
                                 ("--output-activation", args.output_activation, None),
                                 ("--loss", args.loss, None), ("--init", args.init, None)):
        if value is not None and value != default:
            parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    for flag, value in (("--plot", args.plot), ("--markdown", args.markdown)):
        if value:
            parts.append(f"{flag} {value}")
    if args.force:
        parts.append("--force")
    return " ".join(parts)


def _how(row: CostRow) -> str:
    if row.estimated:
        return (f"estimated: {row.numeric_timed:,} of {row.n_params:,} parameters timed, "
                f"scaled by {row.n_params / row.numeric_timed:.3g}")
    return f"measured: all {row.n_params:,}"


def _table(rows, markdown: bool) -> list[list[str]]:
    if markdown:
        head = ["network", "parameters *P*", "forward pass *t*<sub>f</sub>", "backprop *t*<sub>bp</sub>",
                "numerical *t*<sub>fd</sub>", "how *t*<sub>fd</sub> was obtained",
                "*t*<sub>fd</sub> / *t*<sub>bp</sub>", "model *s·P·t*<sub>f</sub>", "max rel. error"]
    else:
        head = ["network", "parameters P", "forward t_f", "backprop t_bp", "numerical t_fd",
                "how t_fd was obtained", "t_fd/t_bp", "s*P*t_f", "max rel err"]
    body = [[_name(r.sizes), f"{r.n_params:,}", _seconds(r.seconds_forward), _seconds(r.seconds_backprop),
             _seconds(r.seconds_numeric), _how(r), f"{r.ratio:,.0f}", _seconds(r.forward_passes * r.seconds_forward),
             f"{r.max_rel_error:.1e}"] for r in rows]
    return [head] + body


def format_cost_table(rows) -> str:
    """The rows as an aligned text table."""
    table = _table(rows, markdown=False)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    left = {0, 5}
    return "\n".join("  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     .rstrip() for r in table)


def _markdown_table(rows) -> str:
    table = _table(rows, markdown=True)
    align = ["---" if i in (0, 5) else "---:" for i in range(len(table[0]))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [table[0], align, *table[1:]])


def machine_facts() -> dict:
    """CPU model, core count, Python, NumPy and BLAS (from threadpoolctl, when installed)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    facts = {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
             "numpy": np.__version__, "platform": platform.platform(),
             "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", *THREAD_VARS)},
             "loadavg": None, "blas": []}
    try:  # other work on the machine skews timings: record how busy it was
        facts["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        facts["blas"] = None
    else:
        facts["blas"] = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                                   "prefix", "threading_layer")}
                         for info in threadpool_info() if info.get("user_api") == "blas"]
    return facts


def _blas_line(facts) -> str:
    if facts["blas"] is None:
        return "unknown (threadpoolctl is not installed: pip install 'deltaprop[bench]')"
    if not facts["blas"]:
        return "none found by threadpoolctl"
    return "; ".join(f"{b['internal_api']} {b['version']} ({b['prefix']}), kernel {b['architecture']}, "
                     f"{b['num_threads']} thread{'' if b['num_threads'] == 1 else 's'}" for b in facts["blas"])


def _plot_title(facts, rows) -> str:
    blas = facts["blas"][0]["architecture"] if facts["blas"] else "?"
    threads = facts["blas"][0]["num_threads"] if facts["blas"] else "?"
    return (f"{facts['cpu']} ({facts['logical_cpus']} CPUs), numpy {facts['numpy']}, BLAS kernel {blas} "
            f"with {threads} thread{'' if threads == 1 else 's'}; batch {rows[0].batch}, float64")


def cost_markdown(rows, facts, *, command: str, plot=None, markdown=None, repeats=7, budget=3.0,
                  elapsed=None, network="tanh hidden layer, softmax output, cross_entropy loss") -> str:
    """A Markdown page: the claim, the table, how it was measured, the machine, the command.

    ``command`` is the ``deltaprop gradcheck --cost-table ...`` line that wrote it; the page
    gives it prefixed with :data:`BLAS_ENV_UNSET` and says what the environment of this run was.
    """
    order, s = rows[0].order, rows[0].passes_per_param
    slope = cost_slope(rows) if len(rows) > 1 else None
    cs = [r.seconds_backprop / r.seconds_forward for r in rows]
    env = facts["env"]
    lines = [
        "# The cost of backpropagation against numerical differentiation",
        "",
        "<!-- written by `deltaprop gradcheck --cost-table --markdown`: rerun the command under "
        "'Regenerate' instead of editing -->",
        "",
        "Backpropagation gets the derivative of the loss with respect to every weight from one forward "
        "and one backward pass. Numerical differentiation perturbs the weights one at a time: central "
        f"differences of order {order} need *s* = {s} full forward passes per parameter. With *P* "
        "parameters and *t*<sub>f</sub> the time of one forward pass,",
        "",
        "*t*<sub>bp</sub> = *c* · *t*<sub>f</sub>, where *c*, a gradient's cost in forward passes, does "
        f"not grow with *P* (here *t*<sub>bp</sub> / *t*<sub>f</sub> = {min(cs):.1f} to {max(cs):.1f}), "
        "and *t*<sub>fd</sub> ≈ *s* · *P* · *t*<sub>f</sub>, so their ratio "
        "*t*<sub>fd</sub> / *t*<sub>bp</sub> ≈ *sP* / *c* grows linearly with *P*.",
        "",
    ]
    if plot:
        rel = os.path.relpath(os.path.abspath(plot), os.path.dirname(os.path.abspath(markdown or "x")))
        lines += [f"![time of one gradient against the number of parameters, log-log]({rel})", ""]
    lines += [_markdown_table(rows), ""]
    if slope is not None:
        lines += [f"A least-squares line through log(*t*<sub>fd</sub> / *t*<sub>bp</sub>) against log *P* "
                  f"has slope **{slope:.2f}** (1 would be exactly linear).", ""]
    lines += [
        "## How it was measured",
        "",
        f"* Each network: {network}; a fixed batch of {rows[0].batch} random samples; float64 "
        "(`deltaprop.gradcheck.random_problem`, one seed for the whole table).",
        "* *t*<sub>f</sub>: one forward pass with the loss; *t*<sub>bp</sub>: one forward and one backward "
        "pass, what `deltaprop.gradcheck.gradcheck` times. Each is the median of "
        f"{repeats} repeats, a repeat calling it often enough to last at least 2 ms.",
        f"* *t*<sub>fd</sub>: `deltaprop.gradcheck.numerical_gradient` of order {order} (step *h* = "
        f"{rows[0].h:g}), the sweep timed in {repeats} chunks of parameters: *P* times the median time per "
        f"parameter. Where the full sweep would take more than {budget:g} s, only a random sample of *k* "
        "parameters is swept (column *how*): every parameter costs the same "
        f"{s} forward passes, whichever it is.",
        "* *model s·P·t*<sub>f</sub>: the numerical time predicted from the forward pass alone; compare it "
        "with *t*<sub>fd</sub>.",
        f"* *max rel. error*: backprop against the differences on the timed parameters. Order {order} "
        "differences carry a truncation error O(*h*²) and a round-off of about ε|*E*|/*h* ≈ 10⁻¹² "
        "absolute, which dominate the smallest entries; `deltaprop gradcheck` (order 4) is the accuracy "
        "check, this table is about time.",
        "* For the smallest networks the time is Python's overhead per layer rather than arithmetic, so "
        "*t*<sub>f</sub> barely changes with *P*; the ratio grows all the same, because the numerical "
        "gradient pays that overhead again for every parameter.",
        "",
        "## Regenerate",
        "",
        "From the repository root"
        + (f" (this run measured for {elapsed:.0f} s)" if elapsed is not None else "")
        + "; timings differ from machine to machine and by some per cent from run to run:",
        "",
        "```bash",
        " ".join([BLAS_ENV_UNSET, *(f"{k}={env[k]}" for k in THREAD_VARS if env.get(k) is not None), command]),
        "```",
        "",
        "`env -u` lets OpenBLAS pick its kernel for the CPU itself for this benchmark; the two variables "
        "are left alone everywhere else (tests included)."
        + (" One BLAS thread: on a small, shared machine a second thread mostly waits for a core, and "
           "made single matrix products swing by orders of magnitude from run to run."
           if env.get("OPENBLAS_NUM_THREADS") == "1" else ""),
        "",
        "## Machine",
        "",
        f"* CPU: {facts['cpu']} ({facts['logical_cpus']} logical CPUs), {facts['platform']}",
        f"* Python {facts['python']}, NumPy {facts['numpy']}",
        f"* BLAS (threadpoolctl): {_blas_line(facts)}",
        "* Environment of this run: " + ", ".join(f"{k}={v}" if v is not None else f"{k} unset"
                                                  for k, v in env.items()),
        f"* Load average (1, 5, 15 min) when the run ended: {', '.join(map(str, facts['loadavg']))}"
        if facts.get("loadavg") else "* Load average: unknown",
        f"* Date: {datetime.date.today().isoformat()}",
        "",
    ]
    return "\n".join(lines)


def plot_cost(rows, path, *, title: str | None = None) -> None:
    """Write a log-log PNG of the rows: times against *P* (left), the ratio against *P* (right).

    matplotlib is an optional extra, imported here; the Agg canvas renders without a display
    and without touching pyplot's global state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    P = np.array([r.n_params for r in rows], float)
    fig = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    est = np.array([r.estimated for r in rows])
    fd = np.array([r.seconds_numeric for r in rows])
    left.plot(P, fd, "-", color="C3", label=f"numerical gradient (order {rows[0].order})")
    if (~est).any():
        left.plot(P[~est], fd[~est], "o", color="C3", label="  measured: every parameter")
    if est.any():
        left.plot(P[est], fd[est], "o", mfc="white", color="C3", label="  estimated from a timed sample")
    left.plot(P, [r.seconds_backprop for r in rows], "s-", color="C0", label="backprop gradient (forward + backward)")
    left.plot(P, [r.seconds_forward for r in rows], ":", color="C0", label="one forward pass")
    left.set(xscale="log", yscale="log", xlabel="parameters P", ylabel="seconds per gradient",
             title="time of one gradient")
    left.legend(fontsize=8)
    ratio = np.array([r.ratio for r in rows])
    right.plot(P, ratio, "o-", color="C2", label="numerical / backprop")
    # A line of slope one through the geometric mean: what "linear in P" looks like.
    ref = np.exp(np.mean(np.log(ratio)) - np.mean(np.log(P))) * P
    right.plot(P, ref, "--", color="grey", label="∝ P (slope 1)")
    right.set(xscale="log", yscale="log", xlabel="parameters P", ylabel=r"$t_{fd}\,/\,t_{bp}$", title="numerical / backprop")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
