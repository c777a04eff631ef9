"""Rendering of a trace (:func:`~deltaprop.explain.trace.explain`'s plain data): a text table,
Markdown with LaTeX formulas, or JSON. Values show with at least 9 significant digits; a
formula shows its symbols, then the same with the numbers in their place.
"""

from __future__ import annotations

import json
import math
import re

from ..errors import ConfigError

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
    return " + ".join(terms[:3] + [f"{dots} ({len(terms) - 5} more terms)"] + terms[-2:])


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
    biases = {"none": "biases held fixed", "shared": f"{len(net['sizes']) - 1} shared biases",
              "per-neuron": f"{sum(net['sizes'][1:])} biases, one per neuron"}.get(st["train_biases"], "")
    lines = [f"network {'-'.join(map(str, net['sizes']))} ({', '.join(net['activations'])}), "
             f"loss {net['loss']}, {net['weights']} weights, {biases}",
             f"learning rate eta = {_short(st['learning_rate'])}, {st['steps']} update"
             f"{'s' if st['steps'] != 1 else ''}, update order {st['update_order']}",
             f"input {inp}" + (f" (raw {', '.join(_short(v) for v in trace['input']['raw'])})"
                                if trace["input"].get("standardized") else ""),
             f"target {tgt}"]
    return lines


def render_text(trace: dict) -> str:
    """A plain-text table per section: quantity, value, formula = the numbers in it."""
    lines = [f"deltaprop explain: {trace['title']}"]
    lines += [f"  {s}" for s in _settings_lines(trace)]
    lines += [f"  note: {n}" for n in trace["notes"]]
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
        head = ["update", "E_total"] + [r["name"].replace(" after 1 update", "") for r in last[1:]]
        table = [[str(p["update"]), _fmt(p["E_total"])] + [_fmt(v) for v in p["outputs"]]
                 for p in trace["progress"]]
        widths = [max(len(h), *(len(row[c]) for row in table)) for c, h in enumerate(head)]
        lines += ["", f"Training on this sample ({sm['steps']} updates)"]
        lines.append("  " + "  ".join(h.rjust(w) for h, w in zip(head, widths)))
        lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table]
        lines += ["", f"E_total: {_fmt(sm['E_total_before'])} before, "
                      f"{_fmt(sm['E_total_after_first_update'])} after 1 update, "
                      f"{_fmt(sm['E_total_final'])} after {sm['steps']} updates"]
    return "\n".join(lines) + "\n"


def _md_cell(s: str) -> str:
    return s.replace("|", r"\|")


def render_markdown(trace: dict) -> str:
    """Markdown: a table per section, the formulas in LaTeX (``$...$``)."""
    lines = [f"# deltaprop explain: {trace['title']}", ""]
    lines += [f"* {s}" for s in _settings_lines(trace)]
    lines += [f"* {n}" for n in trace["notes"]]
    for sec in trace["sections"]:
        lines += ["", f"## {sec['title']}", "", "| quantity | formula | value |", "| --- | --- | ---: |"]
        for r in sec["rows"]:
            f = _formula_tex(r)
            cell = (f"${f}$" if f else "") + (f" ({r['note']})" if r.get("note") else "")
            lines.append(f"| ${r['tex']}$ | {_md_cell(cell)} | {_fmt(r['value'])} |")
    sm = trace["summary"]
    if sm["steps"] > 1:
        last = next(s for s in trace["sections"] if s["id"] == "after")["rows"]
        heads = ["update", "$E_{total}$"] + [f"${r['tex'].replace('^{(1)}', '')}$" for r in last[1:]]
        lines += ["", f"## Training on this sample ({sm['steps']} updates)", "",
                  "| " + " | ".join(heads) + " |", "|" + " ---: |" * len(heads)]
        lines += ["| " + " | ".join([str(p["update"]), _fmt(p["E_total"])] + [_fmt(v) for v in p["outputs"]])
                  + " |" for p in trace["progress"]]
    return "\n".join(lines) + "\n"


def render_json(trace: dict) -> str:
    """The trace itself, as strict JSON (non-finite values are null)."""
    return json.dumps(trace, indent=2, allow_nan=False) + "\n"


def render(trace: dict, fmt: str = "text") -> str:
    """Render a trace as ``"text"``, ``"markdown"`` or ``"json"``."""
    renderers = {"text": render_text, "markdown": render_markdown, "json": render_json}
    if fmt not in renderers:
        raise ConfigError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    return renderers[fmt](trace)
