"""Tables (text, Markdown, CSV, JSON) and plots of a comparison."""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

from ..i18n import N_, gettext as _
from ..io import all_or_nothing, write_bytes_atomic, write_text_atomic

__all__ = ["table_rows", "text_table", "markdown_table", "csv_text", "write_report", "plot_curves",
           "plot_success"]

#: (key, header); the headers are shown in the language in force (the CSV and JSON keep the keys).
COLUMNS = [("problem", N_("problem")), ("mode", N_("mode")), ("technique", N_("technique")), ("runs", N_("runs")),
           ("success_rate", N_("success")), ("median_epochs", N_("med. epochs")),
           ("median_samples", N_("med. samples")), ("median_seconds", N_("med. seconds")),
           ("final_loss_mean", N_("final loss mean")), ("final_loss_sd", N_("sd")), ("rises", N_("loss rises")),
           ("test_accuracy", N_("test acc."))]


def _fmt(key, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key == "success_rate" or key == "test_accuracy":
        return f"{100 * v:.0f}%"
    if key == "rises":
        return f"{100 * v:.1f}%"
    if key in ("median_epochs", "median_samples"):
        return f"{v:,.0f}"
    if key == "median_seconds":
        return f"{v:.3g}"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def table_rows(rows: list[dict], timing: bool = True) -> tuple[list[str], list[list[str]]]:
    cols = [(k, h) for k, h in COLUMNS if timing or k != "median_seconds"]
    if all(r.get("test_accuracy") is None for r in rows):
        cols = [(k, h) for k, h in cols if k != "test_accuracy"]
    return [_(h) for _key, h in cols], [[_fmt(k, r.get(k)) for k, _head in cols] for r in rows]


def text_table(rows: list[dict], timing: bool = True) -> str:
    head, body = table_rows(rows, timing)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def markdown_table(rows: list[dict], timing: bool = True) -> str:
    head, body = table_rows(rows, timing)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(out)


def csv_text(rows: list[dict], timing: bool = True) -> str:
    buf = io.StringIO()
    keys = [k for k, _ in COLUMNS if timing or k != "median_seconds"] + ["diverged"]
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def write_report(out_dir: str, settings: dict, rows: list[dict], runs: list[dict], timing: bool = True,
                 plots: bool = True, curves: dict | None = None) -> list[str]:
    """Write compare.md, compare.csv, compare.json (settings, summary rows, every run) and the
    plots into ``out_dir``; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    with all_or_nothing():  # every file or none (a full disk at the third leaves none of them)
        return _write_report(out_dir, settings, rows, runs, timing, plots)


def _write_report(out_dir, settings, rows, runs, timing, plots) -> list[str]:
    written = []
    header = "\n".join(f"- {k}: {v}" for k, v in settings.items())
    md = (f"# deltaprop compare\n\n{_('Settings (repeat with the command below):')}\n\n{header}\n\n"
          f"{markdown_table(rows, timing)}\n")
    for name, text in (("compare.md", md), ("compare.csv", csv_text(rows, timing)),
                       ("compare.json", json.dumps(_clean({"settings": settings, "summary": rows, "runs": runs}),
                                                   sort_keys=True))):
        path = os.path.join(out_dir, name)
        write_text_atomic(path, text)
        written.append(path)
    if plots:
        for problem in dict.fromkeys(r["problem"] for r in rows):
            written.append(plot_curves(runs, problem, os.path.join(out_dir, f"curves-{problem}.png")))
            written.append(plot_success(rows, problem, os.path.join(out_dir, f"success-{problem}.png")))
    return written


def _save_figure(fig, path: str) -> None:
    """PNG through the atomic writer, so that a comparison's plots and tables are written
    together or not at all (:func:`deltaprop.io.all_or_nothing`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    write_bytes_atomic(path, buf.getvalue(), overwrite=True)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(runs: list[dict], problem: str, path: str) -> str:
    """Training loss per epoch: the median over seeds with the interquartile band, one panel per
    mode, one line per technique. A run that reached the target stops; its curve is carried
    forward at its last value."""
    plt = _pyplot()
    mine = [r for r in runs if r["problem"] == problem and r["curve"]]
    modes = list(dict.fromkeys(r["mode"] for r in mine))
    fig, axes = plt.subplots(1, max(1, len(modes)), figsize=(5 * max(1, len(modes)), 3.8), sharey=True,
                             squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for tech in dict.fromkeys(r["technique"] for r in mine if r["mode"] == mode):
            cell = [r for r in mine if r["mode"] == mode and r["technique"] == tech]
            arr = np.array([r["curve"] for r in cell], float)  # one epoch grid per cell
            q1, med, q3 = np.nanpercentile(arr, [25, 50, 75], axis=0)
            x = cell[0]["curve_epochs"]
            ax.plot(x, med, label=tech, lw=1.2)
            ax.fill_between(x, q1, q3, alpha=0.2)
        ax.set_title(_("{problem}: {mode}  (a run stops at the target; its loss is carried on)").format(
            problem=problem, mode=mode), fontsize=8)
        ax.set_xlabel(_("epoch"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(_("training loss (median, IQR band)"))
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path


def plot_success(rows: list[dict], problem: str, path: str) -> str:
    """Success rate per technique (bars), grouped by mode."""
    plt = _pyplot()
    mine = [r for r in rows if r["problem"] == problem]
    modes = list(dict.fromkeys(r["mode"] for r in mine))
    techs = list(dict.fromkeys(r["technique"] for r in mine))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(techs) * len(modes) / 2), 3.8))
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        vals = [next((100 * r["success_rate"] for r in mine if r["mode"] == mode and r["technique"] == t), np.nan)
                for t in techs]
        ax.bar(np.arange(len(techs)) + i * width, vals, width, label=mode)
    ax.set_xticks(np.arange(len(techs)) + width * (len(modes) - 1) / 2)
    ax.set_xticklabels(techs, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(_("success rate (%)"))
    ax.set_ylim(0, 105)
    ax.set_title(_("{problem}: success rate per technique and mode").format(problem=problem))

    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path
