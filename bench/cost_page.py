"""The docs page on the cost of backprop against numerical differentiation: measures what
``deltaprop gradcheck --cost-table`` measures, prints its table and writes
docs/gradient-cost.md with the log-log plot docs/gradient-cost.png (needs matplotlib).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 python bench/cost_page.py --force
    python bench/cost_page.py --markdown /tmp/x.md --plot /tmp/x.png --table-sizes '2,2,2;4,12,3'

Every option besides ``--markdown``, ``--plot`` and ``--force`` is one of
``deltaprop gradcheck --cost-table`` (``--table-sizes``, ``--repeats``, ``--budget``, ...).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from deltaprop.cli import build_parser
from deltaprop.cli_gradcheck import cost_table_from_args
from deltaprop.errors import ConfigError, DeltapropError
from deltaprop.gradcheck_report import TEXT_COLUMNS, CostTable, cost_cells
from deltaprop.machine import THREAD_VARS

ROOT = Path(__file__).resolve().parents[1]
#: Benchmarks run with OpenBLAS's own choice of kernel for the CPU: these are unset for them.
BLAS_ENV_UNSET = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Other options are those of 'deltaprop gradcheck --cost-table'.")
    p.add_argument("--markdown", metavar="FILE.md", default=str(ROOT / "docs" / "gradient-cost.md"),
                   help="the page (default docs/gradient-cost.md)")
    p.add_argument("--plot", metavar="FILE.png", default=str(ROOT / "docs" / "gradient-cost.png"),
                   help="the plot (default docs/gradient-cost.png)")
    p.add_argument("--force", action="store_true", help="overwrite the page and the plot")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    opts, rest = _parser().parse_known_args(argv)
    args = build_parser().parse_args(["gradcheck", "--cost-table", *rest])
    try:
        # Everything that can fail is checked before the minute of measuring starts.
        for path in (opts.plot, opts.markdown):
            _check_writable(path, opts.force)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("the plot needs matplotlib: pip install 'deltaprop[plot]'") from None
        table = cost_table_from_args(args)
    except DeltapropError as exc:
        print(f"cost_page: error: {exc}", file=sys.stderr)
        return 2
    plot_cost(table.rows, opts.plot, title=_plot_title(table))
    network = (f"{args.activation} hidden layer, {args.output_activation} output, {args.loss} loss, "
               f"{args.init} weights")
    Path(opts.markdown).write_text(
        cost_markdown(table, command=shlex.join(["python", "bench/cost_page.py", *argv]), plot=opts.plot,
                      markdown=opts.markdown, budget=args.budget, network=network), encoding="utf-8")
    print(table.text())
    print(f"wrote {opts.plot}\nwrote {opts.markdown}")
    return 0


def _check_writable(path, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise ConfigError(f"{path} already exists; use --force to overwrite it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{path}: folder {folder} does not exist")


def _markdown_table(rows) -> str:
    table = cost_cells(rows, markdown=True)
    align = ["---" if i in TEXT_COLUMNS else "---:" for i in range(len(table[0]))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [table[0], align, *table[1:]])


def _blas_line(facts) -> str:
    if facts["blas"] is None:
        return "unknown (threadpoolctl is not installed: pip install 'deltaprop[bench]')"
    if not facts["blas"]:
        return "none found by threadpoolctl"
    return "; ".join(f"{b['internal_api']} {b['version']} ({b['prefix']}), kernel {b['architecture']}, "
                     f"{b['num_threads']} thread{'' if b['num_threads'] == 1 else 's'}" for b in facts["blas"])


def _plot_title(table: CostTable) -> str:
    facts = table.machine
    blas = facts["blas"][0]["architecture"] if facts["blas"] else "?"
    threads = facts["blas"][0]["num_threads"] if facts["blas"] else "?"
    return (f"{facts['cpu']} ({facts['logical_cpus']} CPUs), numpy {facts['numpy']}, BLAS kernel {blas} "
            f"with {threads} thread{'' if threads == 1 else 's'}; batch {table.rows[0].batch}, float64")


def cost_markdown(table: CostTable, *, command: str, plot=None, markdown=None, budget=3.0,
                  network="tanh hidden layer, softmax output, cross_entropy loss") -> str:
    """A Markdown page: the claim, the table, how it was measured, the machine, the command.

    ``command`` is the ``python bench/cost_page.py ...`` line that wrote it; the page gives it
    prefixed with :data:`BLAS_ENV_UNSET` and says what the environment of this run was.
    """
    rows, facts, repeats = table.rows, table.machine, table.repeats
    order, s = rows[0].order, rows[0].passes_per_param
    cs = [r.seconds_backprop / r.seconds_forward for r in rows]
    env = facts["env"]
    lines = [
        "# The cost of backpropagation against numerical differentiation",
        "",
        "<!-- written by `python bench/cost_page.py`: rerun the command under 'Regenerate' instead of editing -->",
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
    if table.slope is not None:
        lines += [f"A least-squares line through log(*t*<sub>fd</sub> / *t*<sub>bp</sub>) against log *P* "
                  f"has slope **{table.slope:.2f}** (1 would be exactly linear).", ""]
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
        f"From the repository root (this run measured for {table.seconds:.0f} s); timings differ from "
        "machine to machine and by some per cent from run to run; `deltaprop gradcheck --cost-table` "
        "prints the same table without writing the page:",
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

    The Agg canvas renders without a display and without touching pyplot's global state.
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


if __name__ == "__main__":
    sys.exit(main())
