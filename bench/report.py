"""Render the JSON lines of ``bench/run.py --json`` as Markdown: the tables, the notes, and
every target of the performance issue marked met or not with its measured ratio.

    python bench/run.py --threads 1,2 --json > results.jsonl
    python bench/report.py results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import PEERS, _fmt, make_cells  # noqa: E402


def load(path):
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return rows


def render(rows) -> str:
    cells = make_cells(quick=False)
    facts = next((r["machine"] for r in rows if "machine" in r), {})
    results = [r for r in rows if "samples_per_s" in r]
    summaries = {r["threads"]: r for r in rows if "gemm_gflops" in r}
    systems = ["deltaprop"] + [p for p in PEERS if any(r["system"] == p for r in results)]
    peers = systems[1:]
    out = ["machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()), ""]
    by = {(r["threads"], r["cell"], r["system"]): r for r in results}
    for th, summ in sorted(summaries.items()):
        limit = summ["gemm_limit_samples_per_s"]
        out += [f"### {th} thread{'s' if th > 1 else ''}",
                "",
                f"BLAS: {', '.join(summ['blas'] or [])}; {summ['gemm_size']}x{summ['gemm_size']} float32 "
                f"GEMM: {summ['gemm_gflops']:.0f} GFLOP/s, so the GEMM limit of 784-128-10 "
                f"(409,088 FLOP per sample) is {limit / 1e3:.0f}k samples/s."
                + (f" The products of a full-batch epoch alone (the five `np.matmul` calls per chunk of"
                   f" 512 rows, data streamed from memory, nothing else) run at"
                   f" {summ['products_samples_per_s'] / 1e3:.0f}k samples/s,"
                   f" {summ['products_samples_per_s'] / limit:.0%} of the limit: the ceiling for an"
                   f" epoch whose products run in this BLAS." if summ.get("products_samples_per_s") else ""), ""]
        head = ["cell", "deltaprop"] + peers + [f"x {p}" for p in peers] + ["of GEMM limit"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in cells:
            d = by.get((th, c.id, "deltaprop"))
            if d is None:
                continue
            row = [c.id, _fmt(d["samples_per_s"])]
            row += [_fmt(by[(th, c.id, p)]["samples_per_s"]) if (th, c.id, p) in by else "-" for p in peers]
            row += [f"{d['samples_per_s'] / by[(th, c.id, p)]['samples_per_s']:.2f}"
                    if (th, c.id, p) in by else "-" for p in peers]
            row.append(f"{d['samples_per_s'] / limit:.0%}" if c.workload == "W1" else "-")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        ep = [(c.id, by[(th, c.id, "deltaprop")]) for c in cells if c.workload == "W1"
              and (th, c.id, "deltaprop") in by
              and by[(th, c.id, "deltaprop")].get("info", {}).get("epochs_only_samples_per_s")]
        if ep:
            out += ["deltaprop with the epochs alone (the library's `history.seconds`, without the data "
                    "check that each `fit` call makes first):", "",
                    "| cell | deltaprop fit | deltaprop epochs only | of GEMM limit |", "|---|---|---|---|"]
            for cid, r in ep:
                e = r["info"]["epochs_only_samples_per_s"]
                out.append(f"| {cid} | {_fmt(r['samples_per_s'])} | {_fmt(e)} | {e / limit:.0%} |")
            out.append("")
        checks = [r["info"]["check_data_s"] for r in results
                  if r["threads"] == th and r["system"] == "deltaprop" and r["cell"].endswith("-256")
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
            out.append(f"- `import deltaprop`: {i['import_ms_median']:.0f} ms (median; `import numpy` "
                       f"alone: {i['numpy_ms_median']:.0f} ms)")
    out += ["", targets(by, summaries, rows)]
    return "\n".join(out)


def targets(by, summaries, rows) -> str:
    def rate(th, cell, system):
        r = by.get((th, cell, system))
        return r["samples_per_s"] if r else None

    lines = ["| target | measured | met |", "|---|---|---|"]

    def ratio_line(label, th, cell, system, need):
        d, p = rate(th, cell, "deltaprop"), rate(th, cell, system)
        if d is None or p is None:
            lines.append(f"| {label} | {system} not measured | - |")
            return
        lines.append(f"| {label} | {d / p:.2f}x ({_fmt(d)} vs {_fmt(p)}) | {'met' if d / p >= need else 'not met'} |")

    for cell in ("W1a-1", "W1b-1"):
        ratio_line(f"{cell} stochastic >= 1.2x JAX scan", 1, cell, "jax", 1.2)
        ratio_line(f"{cell} stochastic >= 35x PyTorch", 1, cell, "torch", 35)
    ratio_line("W1a-1 stochastic >= 8x FANN", 1, "W1a-1", "fann", 8)
    for cell in ("W1a-1", "W1b-1"):
        d = rate(1, cell, "deltaprop")
        if d:
            lines.append(f"| {cell} about 50k samples/s | {_fmt(d)} | {'met' if d >= 50e3 else 'not met'} |")
    ratio_line("W2 XOR >= 1.2x JAX scan", 1, "W2-xor", "jax", 1.2)
    ratio_line("W2 XOR >= 2x FANN", 1, "W2-xor", "fann", 2)
    d = rate(1, "W2-xor", "deltaprop")
    if d:
        lines.append(f"| W2 XOR >= 14M updates/s | {_fmt(d)} | {'met' if d >= 14e6 else 'not met'} |")
    for cell in ("W1a-32", "W1b-32"):
        ratio_line(f"{cell} >= 1.2x JAX scan", 1, cell, "jax", 1.2)
        ratio_line(f"{cell} >= 3x PyTorch", 1, cell, "torch", 3)
    for cell in ("W1a-256", "W1b-256", "W1a-full", "W1b-full"):
        if 1 in summaries and rate(1, cell, "deltaprop"):
            f = rate(1, cell, "deltaprop") / summaries[1]["gemm_limit_samples_per_s"]
            bound = summaries[1].get("products_samples_per_s")
            of_bound = (f" (the products alone: {bound / summaries[1]['gemm_limit_samples_per_s']:.0%};"
                        f" deltaprop is {rate(1, cell, 'deltaprop') / bound:.0%} of that)") if bound else ""
            lines.append(f"| {cell} >= 85% of the GEMM limit, 1 thread | {f:.0%}{of_bound} | {'met' if f >= 0.85 else 'not met'} |")
        for th in sorted(summaries):
            # every peer measured: PyTorch eager and torch.compile, JAX, NumPy, sklearn
            peers = {p: rate(th, cell, p) for p in PEERS if rate(th, cell, p)}
            if not peers or not rate(th, cell, "deltaprop"):
                continue
            best = max(peers, key=peers.get)
            r = rate(th, cell, "deltaprop") / peers[best]
            lines.append(f"| {cell} >= 1.1x the best peer, {th} thread{'s' if th > 1 else ''} | "
                         f"{r:.2f}x ({best}) | {'met' if r >= 1.1 else 'not met'} |")
    # ahead of every peer in every cell
    behind = [(th, c, p) for (th, c, p), r in by.items() if p != "deltaprop" and (th, c, "deltaprop") in by
              and by[(th, c, "deltaprop")]["samples_per_s"] < r["samples_per_s"]]
    lines.append(f"| ahead of every peer in every cell | behind in {len(behind)} cells"
                 + (": " + ", ".join(f"{c} ({th}t) vs {p}" for th, c, p in behind) if behind else "")
                 + f" | {'met' if not behind else 'not met'} |")
    for r in rows:
        if "memory" in r and "extra_mb" in r["memory"]:
            m = r["memory"]
            lines.append(f"| full-batch epoch memory <= data + 100 MB ({m['engine']}) | +{m['extra_mb']:.0f} MB | "
                         f"{'met' if m['extra_mb'] <= 100 else 'not met'} |")
        if "import" in r:
            ms = r["import"]["import_ms_median"]
            lines.append(f"| import deltaprop <= 150 ms | {ms:.0f} ms | {'met' if ms <= 150 else 'not met'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(load(sys.argv[1])))
