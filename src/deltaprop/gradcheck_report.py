"""The gradient check and the cost table as text: what ``deltaprop gradcheck`` prints.

:mod:`deltaprop.gradcheck` measures; this module renders its results as lines (and JSON-ready
dicts), for the command and for the benchmark page that ``bench/cost_page.py`` writes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Sequence

from .gradcheck import DEFAULT_COST_SIZES, CostRow, GradcheckResult, cost_slope, gradcheck, gradient_cost
from .i18n import gettext as _, ngettext
from .machine import machine_facts
from .network import Network

__all__ = ["TEXT_COLUMNS", "CostTable", "cost_cells", "cost_table", "format_cost_table", "format_seconds", "run_check",
           "sizes_name"]


def format_seconds(t: float) -> str:
    """A duration with three significant digits in a readable unit."""
    if t < 1e-3:
        return _("{t} µs").format(t=f"{t * 1e6:.3g}")
    if t < 1.0:
        return _("{t} ms").format(t=f"{t * 1e3:.3g}")
    if t < 100.0:
        return _("{t} s").format(t=f"{t:.3g}")
    if t < 3 * 3600:
        return _("{t} s ({minutes} min)").format(t=f"{t:,.0f}", minutes=f"{t / 60:.0f}")
    return _("{t} s ({hours} h)").format(t=f"{t:,.0f}", hours=f"{t / 3600:.1f}")


def sizes_name(sizes) -> str:
    """``4-8-3`` for the widths (4, 8, 3)."""
    return "-".join(map(str, sizes))


# --------------------------------------------------------------------------- the check
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
            print(_("OK: max relative error {error} < --tol {tol}").format(
                error=f"{res.max_rel_error:.3g}", tol=f"{tol:g}"), file=out)
    if not ok:
        print(_("deltaprop: gradcheck failed: max relative error {error} is not below --tol {tol}; worst {worst}").format(
                  error=f"{res.max_rel_error:.3g}", tol=f"{tol:g}", worst=res.worst)
              + (" (" + _KINK(res.near_kink) + ")" if res.near_kink else ""), file=err)
        return 1
    return 0


def _report(res: GradcheckResult, max_params, seed) -> list[str]:
    k = len(res.indices)
    per = res.forward_passes // k if k else 0
    n = res.n_params
    which = (ngettext("{k} of {n} parameters, drawn at random (seed {seed}) because of --max-params {max_params}",
                      "{k} of {n} parameters, drawn at random (seed {seed}) because of --max-params {max_params}",
                      n).format(k=f"{k:,}", n=f"{n:,}", seed=seed, max_params=max_params)
             if res.sampled else ngettext("all {n} parameters", "all {n} parameters", n).format(n=f"{n:,}"))
    lines = [
        ngettext("checked: {which}; central differences of order {order}, h = {h} ({per} forward passes per parameter)",
                 "checked: {which}; central differences of order {order}, h = {h} ({per} forward passes per parameter)",
                 per).format(which=which, order=res.order, h=f"{res.h:g}", per=per),
        _("max relative error:    {error} at {worst}").format(error=f"{res.max_rel_error:.3g}", worst=res.worst),
        _("median relative error: {error}").format(error=f"{res.median_rel_error:.3g}"),
        _("max absolute error:    {error}").format(error=f"{res.max_abs_error:.3g}"),
        ngettext("backprop:              {time} for all {n} partial derivatives "
                 "(one forward + one backward pass, median of 5 warm runs)",
                 "backprop:              {time} for all {n} partial derivatives "
                 "(one forward + one backward pass, median of 5 warm runs)", n).format(
            time=format_seconds(res.seconds_backprop), n=f"{n:,}"),
        ngettext("finite differences:    {time} for {k} partial derivatives ({passes})",
                 "finite differences:    {time} for {k} partial derivatives ({passes})", k).format(
            time=format_seconds(res.seconds_numeric), k=f"{k:,}",
            passes=ngettext("{n} forward passes", "{n} forward passes", res.forward_passes).format(
                n=f"{res.forward_passes:,}"))
        + ("; " + _("all {n} would take about {time} (estimated)").format(
            n=f"{n:,}", time=format_seconds(res.seconds_numeric_full)) if res.sampled else "")
        + ("; " + _times(res.seconds_numeric_full / res.seconds_backprop) if res.seconds_backprop > 0 else ""),
    ]
    if res.near_kink:
        lines.append(_("note: {what}").format(what=_KINK(res.near_kink)))
    return lines


def _times(ratio: float) -> str:
    n = round(ratio)
    return ngettext("{ratio}x the backprop time", "{ratio}x the backprop time", n).format(ratio=f"{ratio:,.0f}")


def _KINK(n: int) -> str:

    return ngettext("{n} pre-activations lie within a step of a ReLU kink, where finite differences are unreliable",
                    "{n} pre-activations lie within a step of a ReLU kink, where finite differences are unreliable",
                    n).format(n=n)


def _result_dict(res: GradcheckResult, tol: float, ok: bool) -> dict:
    return {"n_params": res.n_params, "checked": len(res.indices), "sampled": res.sampled, "order": res.order,
            "h": res.h, "max_rel_error": res.max_rel_error, "median_rel_error": res.median_rel_error,
            "max_abs_error": res.max_abs_error, "worst": res.worst, "near_kink": res.near_kink,
            "seconds_backprop": res.seconds_backprop, "seconds_numeric": res.seconds_numeric,
            "seconds_numeric_full": res.seconds_numeric_full, "tol": tol, "passed": ok}


# --------------------------------------------------------------------------- the cost table
@dataclass(frozen=True)
class CostTable:
    """The rows of :func:`~deltaprop.gradcheck.gradient_cost`, how long measuring them took
    (``seconds``), on which machine (:func:`~deltaprop.machine.machine_facts`), with how many
    ``repeats``."""

    rows: list
    seconds: float
    machine: dict
    repeats: int

    @property
    def slope(self) -> float | None:
        """:func:`~deltaprop.gradcheck.cost_slope`, None for a single row."""
        return cost_slope(self.rows) if len(self.rows) > 1 else None

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows], "slope": self.slope, "seconds": self.seconds,
                "machine": self.machine}

    def text(self) -> str:
        """The table and what its columns were measured with."""
        first = self.rows[0]
        lines = [format_cost_table(self.rows),
                 ngettext("backprop: one forward + one backward pass over {n} samples (float64), median of {repeats}; "
                          "numerical: central differences of order {order} = {passes} per parameter",
                          "backprop: one forward + one backward pass over {n} samples (float64), median of {repeats}; "
                          "numerical: central differences of order {order} = {passes} per parameter",
                          first.batch).format(
                     n=first.batch, repeats=self.repeats, order=first.order,

                     passes=ngettext("{n} forward passes", "{n} forward passes", first.passes_per_param).format(
                         n=first.passes_per_param))]
        if self.slope is not None:
            lines.append(_("the ratio grows as P^{slope} (least-squares slope on log-log axes; 1 = linear)").format(
                slope=f"{self.slope:.2f}"))
        lines.append(_("measured in {time} s").format(time=f"{self.seconds:.3g}"))
        return "\n".join(lines)


def cost_table(sizes_list: Sequence[Sequence[int]] = DEFAULT_COST_SIZES, *, repeats: int = 7,
               **kwargs) -> CostTable:
    """:func:`~deltaprop.gradcheck.gradient_cost` (``kwargs`` are its own), timed as a whole
    and with the machine's facts taken once it is done (the load average then says how busy
    the machine was while measuring)."""
    started = time.perf_counter()
    rows = gradient_cost(sizes_list, repeats=repeats, **kwargs)
    return CostTable(rows, time.perf_counter() - started, machine_facts(), repeats)


def _how(row: CostRow) -> str:
    if row.estimated:
        return ngettext("estimated: {k} of {n} parameters timed, scaled by {scale}",
                        "estimated: {k} of {n} parameters timed, scaled by {scale}", row.n_params).format(
            k=f"{row.numeric_timed:,}", n=f"{row.n_params:,}", scale=f"{row.n_params / row.numeric_timed:.3g}")
    return _("measured: all {n}").format(n=f"{row.n_params:,}")


#: The columns of :func:`cost_cells` that hold text rather than numbers.
TEXT_COLUMNS = (0, 5)


def cost_cells(rows, markdown: bool = False) -> list[list[str]]:
    """The table as strings: a header row (in Markdown with ``markdown``), then one row per
    network."""
    if markdown:
        head = ["network", "parameters *P*", "forward pass *t*<sub>f</sub>", "backprop *t*<sub>bp</sub>",
                "numerical *t*<sub>fd</sub>", "how *t*<sub>fd</sub> was obtained",
                "*t*<sub>fd</sub> / *t*<sub>bp</sub>", "model *s·P·t*<sub>f</sub>", "max rel. error"]
    else:
        head = [_("network"), _("parameters P"), _("forward t_f"), _("backprop t_bp"), _("numerical t_fd"),
                _("how t_fd was obtained"), "t_fd/t_bp", "s*P*t_f", _("max rel err")]

    body = [[sizes_name(r.sizes), f"{r.n_params:,}", format_seconds(r.seconds_forward),
             format_seconds(r.seconds_backprop), format_seconds(r.seconds_numeric), _how(r), f"{r.ratio:,.0f}",
             format_seconds(r.forward_passes * r.seconds_forward), f"{r.max_rel_error:.1e}"] for r in rows]
    return [head] + body


def format_cost_table(rows) -> str:
    """The rows as an aligned text table."""
    table = cost_cells(rows)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) if i in TEXT_COLUMNS else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in table)
