"""Rendering of a trace (:func:`~deltaprop.explain.trace.explain`'s plain data): a text table,
Markdown with LaTeX formulas, or JSON. Values show with at least 9 significant digits; a
formula shows its symbols, then the same with the numbers in their place.
"""

from __future__ import annotations

import json
import math
import re

from ..errors import ConfigError
from ..i18n import gettext as _, ngettext

FORMATS = ("text", "markdown", "json")
_ARG = re.compile(r"\$(\d+)")
#: Sums with more terms than this are shortened on screen (the JSON keeps every term).
_MAX_TERMS = 8


def _fmt(v) -> str:
    """A value with at least 9 significant digits, fixed-point where that stays readable."""
    if v is None:
        return "nan"
    if isinstance(v, int):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-6 <= a < 1e9:
        return f"{v:.{max(0, 8 - math.floor(math.log10(a)))}f}"
    return f"{v:.8e}"


def _short(v) -> str:
    """An operand inside a formula: 9 significant digits, no trailing zeros."""
    return "nan" if v is None else f"{v:.9g}"


def _tex_num(v) -> str:
    s = _short(v)
    if "e" in s:
        mant, exp = s.split("e")
        s = rf"{mant} \times 10^{{{int(exp)}}}"
    return s


def _fill(template, values, paren_negative=True):
    """Put ``values`` in place of $0, $1, ...; a negative number gets parentheses unless it
    already stands alone inside a pair, as in tanh($0)."""
    def sub(m):
        v = values[int(m.group(1))]
        alone = template[m.start() - 1:m.start()] == "(" and template[m.end():m.end() + 1] == ")"
        return f"({v})" if paren_negative and v.startswith("-") and not alone else v
    return _ARG.sub(sub, template)


def _elide(expr: str, is_sum: bool, dots: str) -> str:
    terms = expr.split(" + ")
    if not is_sum or len(terms) <= _MAX_TERMS:
        return expr
    more = ngettext("{dots} ({n} more term)", "{dots} ({n} more terms)", len(terms) - 5)
    return " + ".join(terms[:3] + [more.format(dots=dots, n=len(terms) - 5)] + terms[-2:])


def _formula_text(row) -> str:
    if not row["formula"]:
        return ""
    names = [a["name"] for a in row["args"]]
    nums = [_short(a["value"]) for a in row["args"]]
    sym = _elide(_fill(row["formula"], names, False), row.get("sum"), "...")
    if not row["args"]:
        return sym
    return f"{sym} = {_elide(_fill(row['formula'], nums), row.get('sum'), '...')}"


def _formula_tex(row) -> str:
    if not row["formula_tex"]:
        return ""
    names = [a["tex"] for a in row["args"]]
    nums = [_tex_num(a["value"]) for a in row["args"]]
    sym = _elide(_fill(row["formula_tex"], names, False), row.get("sum"), r"\dots")
    if not row["args"]:
        return sym
    return sym + " = " + _elide(_fill(row["formula_tex"], nums), row.get("sum"), r"\dots")


def _settings_lines(trace) -> list[str]:
    net, st = trace["network"], trace["settings"]
    inp = ", ".join(f"{n} = {_short(v)}" for n, v in zip(trace["input"]["names"], trace["input"]["values"]))
    tgt = ", ".join(f"{n} = {_short(v)}" for n, v in zip(trace["target"]["names"], trace["target"]["values"]))
    n_shared, n_units = len(net["sizes"]) - 1, sum(net["sizes"][1:])
    biases = {"none": _("biases held fixed"),
              "shared": ngettext("{n} shared bias", "{n} shared biases", n_shared).format(n=n_shared),
              "per-neuron": ngettext("{n} bias, one per neuron", "{n} biases, one per neuron",
                                     n_units).format(n=n_units)}.get(st["train_biases"], "")
    weights = ngettext("{n} weight", "{n} weights", net["weights"]).format(n=net["weights"])
    updates = ngettext("{n} update", "{n} updates", st["steps"]).format(n=st["steps"])
    lines = [_("network {sizes} ({activations}), loss {loss}, {weights}, {biases}").format(
                 sizes="-".join(map(str, net["sizes"])), activations=", ".join(net["activations"]),
                 loss=net["loss"], weights=weights, biases=biases),
             _("learning rate eta = {lr}, {updates}, update order {order}").format(
                 lr=_short(st["learning_rate"]), updates=updates, order=st["update_order"]),
             _("input {values}").format(values=inp)
             + (" (" + _("raw {values}").format(values=", ".join(_short(v) for v in trace["input"]["raw"])) + ")"
                if trace["input"].get("standardized") else ""),
             _("target {values}").format(values=tgt)
             + (" (" + _("raw {values}").format(values=", ".join(_short(v) for v in trace["target"]["raw"])) + ")"
                if trace["target"].get("standardized") else "")]
    return lines


def render_text(trace: dict) -> str:
    """A plain-text table per section: quantity, value, formula = the numbers in it."""
    lines = [f"deltaprop explain: {trace['title']}"]
    lines += [f"  {s}" for s in _settings_lines(trace)]
    lines += ["  " + _("note: {text}").format(text=n) for n in trace["notes"]]
    for sec in trace["sections"]:
        lines += ["", sec["title"]]
        rows = sec["rows"]
        wn = max(len(r["name"]) for r in rows)
        vals = [_fmt(r["value"]) for r in rows]
        wv = max(len(v) for v in vals)
        for r, v in zip(rows, vals):
            formula = _formula_text(r)
            note = r.get("note")
            tail = formula + (f"   [{note}]" if note and formula else note or "")
            lines.append(f"  {r['name']:<{wn}}  {v:>{wv}}  {tail}".rstrip())
    sm = trace["summary"]
    if sm["steps"] > 1:
        last = next(s for s in trace["sections"] if s["id"] == "after")["rows"]
        after = _("{name} after 1 update").format(name="")
        head = [_("update"), "E_total"] + [r["name"].replace(after, "").strip() for r in last[1:]]
        table = [[str(p["update"]), _fmt(p["E_total"])] + [_fmt(v) for v in p["outputs"]]
                 for p in trace["progress"]]
        widths = [max(len(h), *(len(row[c]) for row in table)) for c, h in enumerate(head)]
        lines += ["", _training_title(sm["steps"])]
        lines.append("  " + "  ".join(h.rjust(w) for h, w in zip(head, widths)))
        lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table]
        lines += ["", ngettext("E_total: {before} before, {first} after 1 update, {final} after {n} update",
                               "E_total: {before} before, {first} after 1 update, {final} after {n} updates",
                               sm["steps"]).format(before=_fmt(sm["E_total_before"]),
                                                   first=_fmt(sm["E_total_after_first_update"]),
                                                   final=_fmt(sm["E_total_final"]), n=sm["steps"])]
    return "\n".join(lines) + "\n"


def _md_cell(s: str) -> str:
    return s.replace("|", r"\|")


def render_markdown(trace: dict) -> str:
    """Markdown: a table per section, the formulas in LaTeX (``$...$``)."""
    lines = [f"# deltaprop explain: {trace['title']}", ""]
    lines += [f"* {s}" for s in _settings_lines(trace)]
    lines += [f"* {n}" for n in trace["notes"]]
    for sec in trace["sections"]:
        lines += ["", f"## {sec['title']}", "",
                  "| " + " | ".join((_("quantity"), _("formula"), _("value"))) + " |", "| --- | --- | ---: |"]
        for r in sec["rows"]:
            f = _formula_tex(r)
            cell = (f"${f}$" if f else "") + (f" ({r['note']})" if r.get("note") else "")
            lines.append(f"| ${r['tex']}$ | {_md_cell(cell)} | {_fmt(r['value'])} |")
    sm = trace["summary"]
    if sm["steps"] > 1:
        last = next(s for s in trace["sections"] if s["id"] == "after")["rows"]
        heads = [_("update"), "$E_{total}$"] + [f"${r['tex'].replace('^{(1)}', '')}$" for r in last[1:]]
        lines += ["", f"## {_training_title(sm['steps'])}", "",
                  "| " + " | ".join(heads) + " |", "|" + " ---: |" * len(heads)]
        lines += ["| " + " | ".join([str(p["update"]), _fmt(p["E_total"])] + [_fmt(v) for v in p["outputs"]])
                  + " |" for p in trace["progress"]]
    return "\n".join(lines) + "\n"


def _training_title(steps: int) -> str:
    return ngettext("Training on this sample ({n} update)", "Training on this sample ({n} updates)",
                    steps).format(n=steps)


def render_json(trace: dict) -> str:
    """The trace itself, as strict JSON (non-finite values are null)."""
    return json.dumps(trace, indent=2, allow_nan=False) + "\n"


def render(trace: dict, fmt: str = "text") -> str:
    """Render a trace as ``"text"``, ``"markdown"`` or ``"json"``."""
    renderers = {"text": render_text, "markdown": render_markdown, "json": render_json}
    if fmt not in renderers:
        raise ConfigError(_("unknown format {value!r}; valid: {valid}").format(value=fmt, valid=", ".join(FORMATS)))
    return renderers[fmt](trace)
