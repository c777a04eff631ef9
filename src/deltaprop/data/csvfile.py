"""CSV reading with errors that name the file, line and column.

The first row is the header. The delimiter is detected from the header line among
``, ; TAB |`` (or given). Feature cells must be numbers, except in the columns declared
categorical, which are one-hot encoded; the target column may hold numbers or class names.
Files ending in ``.gz`` are decompressed.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import zlib

import numpy as np

from ..errors import DataError
from .dataset import Dataset, encode_labels, require_file

__all__ = ["read_csv", "load_csv"]

_DELIMITERS = [",", ";", "\t", "|"]


def _read_text(path) -> str:
    path = require_file(path, "a CSV file")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
                return f.read()
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot be read as UTF-8 text ({exc.__class__.__name__}: {exc})") from None


def _detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def read_csv(path, delimiter: str | None = None) -> tuple[list[str], list[list[str]], list[int]]:
    """Return (header, rows, line numbers) of a CSV file; rows must all have the header's width."""
    text = _read_text(path)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError(f"{path}: the file is empty")
    delim = delimiter or _detect_delimiter(lines[first])
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    header, rows, line_nos = None, [], []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                continue
            rows.append(row)
            line_nos.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:
        raise DataError(f"{path}: the file has no header row (only empty cells)")
    for i, name in enumerate(header):
        if not name:
            raise DataError(f"{path}: header column {i + 1} has no name")
    dup = {h for h in header if header.count(h) > 1}
    if dup:
        raise DataError(f"{path}: header names repeated: {', '.join(sorted(dup))}")
    for row, ln in zip(rows, line_nos):
        if len(row) != len(header):
            raise DataError(f"{path}: line {ln} has {len(row)} cells but the header has {len(header)} "
                            f"(ragged row)")
    return header, rows, line_nos


def _parse_float(cell: str, path, ln: int, col: str) -> float:
    s = cell.strip()
    try:
        v = float(s)
    except ValueError:
        what = ("an empty cell" if not s else
                f"{s!r} is not a number (declare {col!r} categorical to one-hot encode it)")
        raise DataError(f"{path}: line {ln}, column {col!r}: {what}") from None
    if not math.isfinite(v):
        raise DataError(f"{path}: line {ln}, column {col!r}: {s!r} is not a finite number (NaN/inf)")
    return v


def _categorical_columns(path, header, target, categorical, categories) -> list[str]:
    """The columns to one-hot encode: ``categorical`` plus the keys of ``categories``."""
    if isinstance(categorical, str):  # a lone name would otherwise be read letter by letter
        categorical = [categorical]
    cols = list(dict.fromkeys([*(categorical or []), *(categories or {})]))
    for col in cols:
        if col not in header:
            raise DataError(f"{path}: no categorical column {col!r}; columns are: {', '.join(header[:20])}")
        if col == target:
            raise DataError(f"{path}: column {col!r} is the target; it cannot also be a categorical input")
    return cols


def _raw_feature_columns(path, header, features, cat_cols) -> list[int]:
    """Map feature names to header positions. A model's feature names of an encoded column read
    ``column=category``; they all map back to that one raw column."""
    cols = []
    for f in features:
        if f in header:
            cols.append(f)
            continue
        owner = next((c for c in cat_cols if f.startswith(c + "=")), None)
        if owner is None:
            missing = [g for g in features if g not in header
                       and not any(g.startswith(c + "=") for c in cat_cols)]
            raise DataError(f"{path}: lacks the model's feature columns: {', '.join(missing[:10])}"
                            f"{' ...' if len(missing) > 10 else ''}; columns are: {', '.join(header[:20])}")
        cols.append(owner)
    return [header.index(c) for c in dict.fromkeys(cols)]


def _one_hot(path, col: str, cells, line_nos, known) -> tuple[np.ndarray, list[str]]:
    """Indicator columns of one categorical column, shape ``(n, n_categories)``.

    ``known`` is the list of categories saved from training; ``None`` learns them here (the
    distinct values, sorted). A value outside ``known`` is a DataError naming line and value.
    """
    values = [c.strip() for c in cells]
    for v, ln in zip(values, line_nos):
        if not v:
            raise DataError(f"{path}: line {ln}, column {col!r}: an empty cell")
    cats = sorted(set(values)) if known is None else [str(c) for c in known]
    index = {c: j for j, c in enumerate(cats)}
    codes = np.empty(len(values), dtype=int)
    for r, (v, ln) in enumerate(zip(values, line_nos)):
        if v not in index:
            raise DataError(f"{path}: line {ln}, column {col!r}: category {v!r} was not seen in training; "
                            f"known categories: {', '.join(map(repr, cats[:20]))}"
                            f"{' ...' if len(cats) > 20 else ''}")
        codes[r] = index[v]
    return np.eye(len(cats))[codes], cats


def load_csv(path, target: str | None, *, delimiter: str | None = None, task: str = "auto",
             classes=None, name: str | None = None, features: list[str] | None = None,
             categorical: list[str] | None = None, categories: dict | None = None,
             require_target: bool = True) -> Dataset:
    """Load a CSV file with a header row into a :class:`Dataset`.

    ``target`` names the target column (``None``: inputs only, for prediction; with
    ``require_target=False`` a target column absent from the file is not an error either).
    ``features`` names the feature columns, in order (default: every other column); columns
    that are neither are ignored.

    Categorical inputs: each column named in ``categorical`` becomes ``m`` indicator columns
    (one-hot), one per category, named ``column=category``, in place of the column, so ``X``
    has shape ``(n, d - c + sum of m)`` for ``c`` such columns. Categories are the distinct
    cell texts (stripped), sorted, learned from this file; ``dataset.categories`` records them.
    To encode new data the same way, pass that record back as ``categories`` (the columns it
    names are then categorical too, with exactly those categories): a value outside them is a
    DataError naming the line, column and value. ``features`` may then hold the encoded names.
    """
    header, rows, line_nos = read_csv(path, delimiter)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    targets = _target_names(header, target)
    missing = [t for t in targets if t not in header]
    if missing:
        if require_target:
            raise DataError(f"{path}: no target column {missing[0]!r}; columns are: {', '.join(header)}")
        targets = []
    if len(targets) > 1:
        return _load_multi_target(path, header, rows, line_nos, targets, task, name, features,
                                  categorical, categories)
    target = targets[0] if targets else None
    t_idx = header.index(target) if target is not None else None
    cat_cols = _categorical_columns(path, header, target, categorical, categories)
    if features is not None:
        feat_idx = _raw_feature_columns(path, header, features, cat_cols)
    else:
        feat_idx = [i for i in range(len(header)) if i != t_idx]
    if not feat_idx:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    X, names, learned = _features(path, header, rows, line_nos, feat_idx, cat_cols, categories)
    if t_idx is None:
        T, task_out, cls = np.zeros((len(rows), 0)), "unknown", classes
    else:
        raw = [row[t_idx].strip() for row in rows]
        for value, ln in zip(raw, line_nos):
            if not value:
                raise DataError(f"{path}: line {ln}, column {target!r}: the target cell is empty")
        y = _numeric_or_strings(raw, path, line_nos, target)
        if task == "auto" and y.dtype.kind == "f" and classes is None:
            task = "regression"  # written with decimals somewhere ("3.5", "3.0"): a quantity
        T, task_out, cls = encode_labels(y, task, classes)
        if task_out == "regression" and not np.all(np.isfinite(T)):
            r = int(np.argwhere(~np.isfinite(T))[0][0])
            raise DataError(f"{path}: line {line_nos[r]}, column {target!r}: target is not a finite number")
    return Dataset(X, T, task_out, name or os.path.basename(os.fspath(path)), names,
                   [target] if target else [], cls, categories=learned or None)


def _target_names(header, target) -> list[str]:
    """The target columns: ``target`` itself when the header has a column of that name, else
    its comma-separated names (``"a,b,c"``: several regression targets); a list is taken as is."""
    if target is None:
        return []
    if isinstance(target, (list, tuple)):
        return [str(t) for t in target]
    if target in header or "," not in target:
        return [target]
    return [t.strip() for t in target.split(",") if t.strip()]


def _features(path, header, rows, line_nos, feat_idx, cat_cols, categories):
    """``(X, names, learned categories)`` of the feature columns ``feat_idx``."""
    blocks, names, learned = [], [], {}
    numeric = [i for i in feat_idx if header[i] not in cat_cols]
    Xnum = np.empty((len(rows), len(numeric)))
    for r, (row, ln) in enumerate(zip(rows, line_nos)):
        for j, i in enumerate(numeric):
            Xnum[r, j] = _parse_float(row[i], path, ln, header[i])
    for i in feat_idx:
        col = header[i]
        if col in cat_cols:
            known = (categories or {}).get(col)
            block, cats = _one_hot(path, col, [row[i] for row in rows], line_nos, known)
            learned[col] = cats
            blocks.append(block)
            names += [f"{col}={c}" for c in cats]
        else:
            blocks.append(Xnum[:, [numeric.index(i)]])
            names.append(col)
    return np.concatenate(blocks, axis=1), names, learned


def _load_multi_target(path, header, rows, line_nos, targets, task, name, features, categorical,
                       categories) -> Dataset:
    """Several target columns: regression with one output per column, in the order given."""
    if task == "classification":
        raise DataError(f"{path}: several target columns ({', '.join(targets)}) are regression targets; "
                        f"classification takes one label column")
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise DataError(f"{path}: target column {dup[0]!r} is named twice")
    t_idx = [header.index(t) for t in targets]
    cat_cols = _categorical_columns(path, header, None, categorical, categories)
    for t in targets:
        if t in cat_cols:
            raise DataError(f"{path}: column {t!r} is a target; it cannot also be a categorical input")
    if features is not None:
        feat_idx = _raw_feature_columns(path, header, features, cat_cols)
    else:
        feat_idx = [i for i in range(len(header)) if i not in t_idx]
    if not feat_idx:
        raise DataError(f"{path}: no feature columns besides the targets {', '.join(targets)}")
    X, names, learned = _features(path, header, rows, line_nos, feat_idx, cat_cols, categories)
    T = np.empty((len(rows), len(targets)))
    for r, (row, ln) in enumerate(zip(rows, line_nos)):
        for j, i in enumerate(t_idx):
            s = row[i].strip()
            try:
                T[r, j] = float(s)
            except ValueError:
                what = "the target cell is empty" if not s else f"{s!r} is not a number (several targets are regression targets)"
                raise DataError(f"{path}: line {ln}, column {header[i]!r}: {what}") from None
            if not math.isfinite(T[r, j]):
                raise DataError(f"{path}: line {ln}, column {header[i]!r}: target is not a finite number")
    return Dataset(X, T, "regression", name or os.path.basename(os.fspath(path)), names, list(targets), None,
                   categories=learned or None)


def _numeric_or_strings(raw, path, line_nos, col):
    try:
        vals = np.array([float(v) for v in raw])
    except ValueError:
        return np.array(raw, dtype=object)
    # Integers only where every cell is written as one ("3", not "3.0" or "3e0"): a column
    # written with decimals holds a quantity, which task "auto" reads as regression.
    try:
        return np.array([int(v) for v in raw], dtype=np.int64)
    except (ValueError, OverflowError):
        return vals
