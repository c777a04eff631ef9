"""Render the JSON lines of ``bench/run.py --json`` as Markdown: the command, the machine, the
tables, the notes, and every target of the performance issues marked met or not with its
measured ratio.

    python bench/run.py --threads 1,2 --json > results.jsonl
    python bench/report.py results.jsonl                                # print it
    python bench/report.py results.jsonl --write docs/performance.md    # replace the results there

``--write`` replaces what stands between the lines ``<!-- bench-report:begin -->`` and
``<!-- bench-report:end -->`` of the page, nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import OURS, PEERS, _fmt, make_cells, table  # noqa: E402

#: Cells whose evaluation-off rate is held to the products-alone ceiling.
CEILING_CELLS = ("W1a-256", "W1b-256", "W1a-full", "W1b-full")
#: The lines of a page between which ``--write`` puts the report.
BEGIN, END = "<!-- bench-report:begin -->", "<!-- bench-report:end -->"


def load(path):
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return rows


def _index(rows):
    """``(results by (threads, cell, system), summaries by threads)``."""
    by = {(r["threads"], r["cell"], r["system"]): r for r in rows if "samples_per_s" in r}
    summaries = {r["threads"]: r for r in rows if "gemm_gflops" in r}
    # a thread pass stopped before its end has results and no summary (no GEMM rate, no ceiling)
    for th in {t for t, _, _ in by} - set(summaries):
        summaries[th] = {"threads": th, "unfinished": True, "gemm_gflops": float("nan"), "gemm_size": 0,
                         "gemm_limit_samples_per_s": float("nan"), "blas": None, "products_samples_per_s": None}
    return by, summaries


def _threads(th) -> str:
    return f"{th} thread{'s' if th > 1 else ''}"


def machine(rows) -> list[str]:
    """The command and the machine facts of a run, as Markdown lines."""
    first = next((r for r in rows if "machine" in r), {})
    facts = first.get("machine", {})
    end = next((r["loadavg_end"] for r in rows if "loadavg_end" in r), None)
    _, summaries = _index(rows)
    out = []
    if first.get("command"):
        env = facts.get("env") or {}
        unset = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if env.get(k) is None]
        out += ["Command:", "", "```bash",
                (f"env {' '.join('-u ' + k for k in unset)} " if len(unset) == 2 else "") + first["command"],
                "```", ""]
    load = facts.get("loadavg")
    out.append(f"Machine: {facts.get('cpu', '?')}, {facts.get('logical_cpus', '?')} logical CPUs; "
               f"Python {facts.get('python', '?')}, NumPy {facts.get('numpy', '?')}; {facts.get('platform', '')}.")
    out.append("Load average (1, 5, 15 min) at the start: " + (", ".join(map(str, load)) if load else "?")
               + "; at the end: " + (", ".join(map(str, end)) if end else "?") + ".")
    env = {k: v for k, v in (facts.get("env") or {}).items() if v is not None}
    out.append("Environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) if env else
                                  "no OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE or thread variables set") + ".")
    for th, summ in sorted(summaries.items()):
        out.append(f"BLAS of the deltaprop worker at {_threads(th)} (threadpoolctl): "
                   + "; ".join(summ.get("blas") or ["?"]) + ".")
    peers = {k: v for k, v in facts.items() if k in ("numba", "torch", "jax", "sklearn", "threadpoolctl", "fann")}
    out.append("Versions: " + ", ".join(f"{k} {v if v else 'not installed'}" for k, v in peers.items()) + ".")
    return out + [""]


def render(rows) -> str:
    cells = make_cells(quick=False)
    by, summaries = _index(rows)
    peers = [p for p in PEERS if any(s == p for _, _, s in by)]
    out = machine(rows)
    for th, summ in sorted(summaries.items()):
        limit = summ["gemm_limit_samples_per_s"]
        out += [f"### {_threads(th)}", ""]
        if summ.get("unfinished"):
            out += ["(This thread pass did not finish: no GEMM rate or products-alone ceiling.)", ""]
        else:
            out += [
                f"BLAS: {', '.join(summ['blas'] or [])}; {summ['gemm_size']}x{summ['gemm_size']} float32 "
                f"GEMM: {summ['gemm_gflops']:.0f} GFLOP/s, so the GEMM limit of 784-128-10 "
                f"(409,088 FLOP per sample) is {limit / 1e3:.0f}k samples/s."
                + (f" The products of a full-batch epoch alone (the five `np.matmul` calls per chunk of"
                   f" 512 rows, data streamed from memory, nothing else) run at"
                   f" {summ['products_samples_per_s'] / 1e3:.0f}k samples/s,"
                   f" {summ['products_samples_per_s'] / limit:.0%} of the limit: the ceiling for an"
                   f" epoch whose products run in this BLAS." if summ.get("products_samples_per_s") else ""), ""]
        out += [table({(c, s): r for (t, c, s), r in by.items() if t == th}, cells, peers, limit), ""]

        def epochs_only(cell, system):
            r = by.get((th, cell, system))
            e = r and r.get("info", {}).get("epochs_only_samples_per_s")
            return (r, e) if e else (None, None)

        ep = [c for c in cells if epochs_only(c.id, "deltaprop")[1]]
        if ep:
            out += ["deltaprop with the epochs alone (the library's `history.seconds`: the epochs, their "
                    "evaluation included, without the data check that each `fit` call makes first); "
                    "defaults: the `<cell> defaults` rows:", "",
                    "| cell | deltaprop fit | deltaprop epochs only | defaults fit | defaults epochs only "
                    "| of GEMM limit (epochs only) |", "|---|---|---|---|---|---|"]
            for c in ep:
                (r, e), (rd, ed) = epochs_only(c.id, "deltaprop"), epochs_only(c.id, "deltaprop_defaults")
                out.append(f"| {c.id} | {_fmt(r['samples_per_s'])} | {_fmt(e)} | "
                           f"{_fmt(rd['samples_per_s']) if rd else '-'} | {_fmt(ed) if ed else '-'} | "
                           f"{f'{e / limit:.0%}' if c.is_784 else '-'} |")
            out.append("")
        checks = [r["info"]["check_data_s"] for (t, c, s), r in by.items()
                  if t == th and s == "deltaprop" and c.startswith("W1") and c.endswith("-256")
                  and "check_data_s" in r.get("info", {})]
        if checks:
            out += [f"(deltaprop's data check at the start of each `fit`, training.py's `check_data` on "
                    f"60,000 x 784: {1000 * max(checks):.0f} ms, inside the timed runs above.)", ""]
    notes = sorted({(r["system"], r.get("skipped") or r.get("error")) for r in rows
                    if ("skipped" in r or "error" in r) and "system" in r})
    if notes:
        out += ["Missing cells: " + "; ".join(f"{s}: {why}" for s, why in notes), ""]
    for r in rows:
        if "memory" in r:
            m = r["memory"]
            if "error" in m:
                out.append(f"- memory ({r['requested_engine']}): {m['error']}")
            else:
                out.append(f"- memory, one full-batch epoch on {r['n']:,} x 784 float32, engine {m['engine']}: "
                           f"data {m['data_mb']:.0f} MB, peak RSS {m['extra_mb']:.0f} MB above the RSS "
                           f"before the epoch")
        if "import" in r:
            i = r["import"]
            first = (f"; with the first use of `Network` and `Trainer`, which loads NumPy: "
                     f"{i['first_use_ms_median']:.0f} ms" if "first_use_ms_median" in i else "")
            out.append(f"- `import deltaprop`: {i['import_ms_median']:.0f} ms (median{first}; `import numpy` "
                       f"alone: {i['numpy_ms_median']:.0f} ms)")
        if "startup" in r and "error" not in r["startup"]:
            st = r["startup"]
            out.append(f"- start-up, the whole command `{st['command']}` in fresh processes: defaults "
                       f"{st['defaults_s_median']:.2f} s, `--engine numpy` {st['numpy_s_median']:.2f} s "
                       f"(medians of {st['repeats']}, alternating)")
    out += ["", targets(rows)]
    return "\n".join(out)


def targets(rows) -> str:
    """The targets table: every target of the performance issues, measured or "not measured",
    met or not. Ratios are deltaprop / peer from the same run, ``deltaprop`` with the evaluation
    off, ``<cell> defaults`` what a user gets (bench/systems.py's DeltapropDefaults)."""
    by, summaries = _index(rows)
    ran = {(th, c) for th, c, s in by if s in OURS}

    def rate(th, cell, system):
        r = by.get((th, cell, system))
        return r["samples_per_s"] if r else None

    lines = ["| target | measured | met |", "|---|---|---|"]

    def line(label, measured, met):
        lines.append(f"| {label} | {measured} | {'-' if met is None else 'met' if met else 'not met'} |")

    def ratio_line(label, th, cell, system, need, ours="deltaprop"):
        d, p = rate(th, cell, ours), rate(th, cell, system)
        if d is None or p is None:
            line(label, f"{ours if d is None else system} not measured", None)
        else:
            line(label, f"{d / p:.2f}x ({_fmt(d)} vs {_fmt(p)})", d / p >= need)

    # --- the first performance issue's targets (1 thread, evaluation off)
    for cell in ("W1a-1", "W1b-1"):
        ratio_line(f"{cell} stochastic >= 1.2x JAX scan", 1, cell, "jax", 1.2)
        ratio_line(f"{cell} stochastic >= 35x PyTorch", 1, cell, "torch", 35)
    ratio_line("W1a-1 stochastic >= 8x FANN", 1, "W1a-1", "fann", 8)
    for cell in ("W1a-1", "W1b-1"):
        d = rate(1, cell, "deltaprop")
        if d:
            line(f"{cell} about 50k samples/s", _fmt(d), d >= 50e3)
    ratio_line("W2 XOR >= 1.2x JAX scan", 1, "W2-xor", "jax", 1.2)
    ratio_line("W2 XOR >= 2x FANN", 1, "W2-xor", "fann", 2)
    d = rate(1, "W2-xor", "deltaprop")
    if d:
        line("W2 XOR >= 14M updates/s", _fmt(d), d >= 14e6)
    for cell in ("W1a-32", "W1b-32"):
        ratio_line(f"{cell} >= 1.2x JAX scan", 1, cell, "jax", 1.2)
        ratio_line(f"{cell} >= 3x PyTorch", 1, cell, "torch", 3)

    # --- issue 14: every thread count of the run
    cells = make_cells(quick=False)
    for th in sorted(summaries):
        summ = summaries[th]
        for c in cells:
            if (th, c.id) not in ran:
                continue
            peers = {p: rate(th, c.id, p) for p in PEERS if rate(th, c.id, p)}
            for ours, name in zip(OURS, (c.id, f"{c.id} defaults")):
                d = rate(th, c.id, ours)
                if d is None:
                    continue
                label = f"{name} >= 1.1x the best peer, {_threads(th)}"
                if not peers:
                    line(label, "no peer measured", None)
                    continue
                best = max(peers, key=peers.get)
                line(label, f"{d / peers[best]:.2f}x ({best})", d / peers[best] >= 1.1)
        for ours, name in zip(OURS, ("W4-adam-256", "W4-adam-256 defaults")):
            ratio_line(f"{name} >= 1.2x PyTorch, {_threads(th)}", th, "W4-adam-256", "torch", 1.2, ours=ours)
        bound, limit = summ.get("products_samples_per_s"), summ["gemm_limit_samples_per_s"]
        for cell in CEILING_CELLS:
            d = rate(th, cell, "deltaprop")
            if d and bound:
                line(f"{cell} evaluation off >= 92% of the products-alone ceiling, {_threads(th)}",
                     f"{d / bound:.0%} ({_fmt(d)} vs {_fmt(bound)}; {d / limit:.0%} of the GEMM limit)",
                     d / bound >= 0.92)
        for c in cells:
            d, e = rate(th, c.id, "deltaprop_defaults"), rate(th, c.id, "deltaprop")
            if d and e:
                # within 10%: a sample costs the defaults at most 10% more time than evaluation off
                line(f"{c.id} defaults within 10% of evaluation off, {_threads(th)}",
                     f"{e / d - 1:+.0%} time per sample ({_fmt(d)} vs {_fmt(e)})", e / d <= 1.1)
    behind = [(th, c, s, p) for (th, c, p), r in by.items() if p not in OURS for s in OURS
              if (th, c, s) in by and by[(th, c, s)]["samples_per_s"] < r["samples_per_s"]]
    named = [f"{c}{' defaults' if s != 'deltaprop' else ''} ({th}t) vs {p}" for th, c, s, p in behind]
    # the rows above give every cell's ratio; this one names the first few behind
    line("ahead of every peer in every cell (defaults included)", f"behind a peer {len(behind)} times"
         + (": " + ", ".join(named[:8]) + (f" and {len(named) - 8} more" if len(named) > 8 else "")
            if named else ""), not behind)
    for r in rows:
        if "memory" in r and "extra_mb" in r["memory"]:
            m = r["memory"]
            line(f"full-batch epoch memory <= data + 100 MB ({m['engine']})", f"+{m['extra_mb']:.0f} MB",
                 m["extra_mb"] <= 100)
        if "startup" in r:
            st = r["startup"]
            if "error" in st:
                line("`deltaprop train` with defaults no slower than `--engine numpy`", st["error"], None)
            else:
                line("`deltaprop train` with defaults no slower than `--engine numpy`",
                     f"{st['defaults_s_median']:.2f} s vs {st['numpy_s_median']:.2f} s (medians of {st['repeats']})",
                     st["defaults_s_median"] <= st["numpy_s_median"])
        if "import" in r:
            ms = r["import"]["import_ms_median"]
            line("import deltaprop <= 100 ms", f"{ms:.0f} ms", ms <= 100)
    return "\n".join(lines)


def write(page: Path, text: str) -> None:
    """Replace what stands between :data:`BEGIN` and :data:`END` in ``page`` by ``text``."""
    doc = page.read_text(encoding="utf-8")
    if doc.count(BEGIN) != 1 or doc.count(END) != 1 or doc.index(BEGIN) > doc.index(END):
        raise SystemExit(f"{page}: needs one line {BEGIN} and, after it, one line {END}")
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(f"{head}{BEGIN}\n{text.strip()}\n{END}{tail}", encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="the JSON lines of bench/run.py --json")
    p.add_argument("--write", metavar="PAGE", help="put the report between the markers of this page")
    args = p.parse_args(argv)
    text = render(load(args.results))
    if args.write:
        write(Path(args.write), text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
