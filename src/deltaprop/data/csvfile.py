"""CSV reading with errors that name the file, line and column.

The first row is the header. The delimiter is detected from the header line among
``, ; TAB |`` (or given). Feature cells must be numbers; the target column may hold numbers
or class names. Files ending in ``.gz`` are decompressed.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os

import numpy as np

from ..errors import DataError
from .dataset import Dataset, encode_labels

__all__ = ["read_csv", "load_csv"]

_DELIMITERS = [",", ";", "\t", "|"]


def _read_text(path) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a CSV file")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
                return f.read()
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:
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
        what = "an empty cell" if not s else f"{s!r} is not a number"
        raise DataError(f"{path}: line {ln}, column {col!r}: {what}") from None
    if not math.isfinite(v):
        raise DataError(f"{path}: line {ln}, column {col!r}: {s!r} is not a finite number (NaN/inf)")
    return v


def load_csv(path, target: str | None, *, delimiter: str | None = None, task: str = "auto",
             classes=None, name: str | None = None, features: list[str] | None = None) -> Dataset:
    """Load a CSV file with a header row into a :class:`Dataset`.

    ``target`` names the target column (``None``: inputs only, for prediction). ``features``
    names the feature columns, in order (default: every other column); columns that are
    neither are ignored.
    """
    header, rows, line_nos = read_csv(path, delimiter)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    if target is not None and target not in header:
        raise DataError(f"{path}: no target column {target!r}; columns are: {', '.join(header)}")
    t_idx = header.index(target) if target is not None else None
    if features is not None:
        missing = [f for f in features if f not in header]
        if missing:
            raise DataError(f"{path}: lacks the model's feature columns: {', '.join(missing[:10])}"
                            f"{' ...' if len(missing) > 10 else ''}; columns are: {', '.join(header[:20])}")
        feat_idx = [header.index(f) for f in features]
    else:
        feat_idx = [i for i in range(len(header)) if i != t_idx]
    if not feat_idx:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    X = np.empty((len(rows), len(feat_idx)))
    for r, (row, ln) in enumerate(zip(rows, line_nos)):
        for j, i in enumerate(feat_idx):
            X[r, j] = _parse_float(row[i], path, ln, header[i])
    if t_idx is None:
        T, task_out, cls = np.zeros((len(rows), 0)), "unknown", classes
    else:
        raw = [row[t_idx].strip() for row in rows]
        for value, ln in zip(raw, line_nos):
            if not value:
                raise DataError(f"{path}: line {ln}, column {target!r}: the target cell is empty")
        y = _numeric_or_strings(raw, path, line_nos, target)
        T, task_out, cls = encode_labels(y, task, classes)
        if task_out == "regression" and not np.all(np.isfinite(T)):
            r = int(np.argwhere(~np.isfinite(T))[0][0])
            raise DataError(f"{path}: line {line_nos[r]}, column {target!r}: target is not a finite number")
    return Dataset(X, T, task_out, name or os.path.basename(os.fspath(path)),
                   [header[i] for i in feat_idx], [target] if target else [], cls)


def _numeric_or_strings(raw, path, line_nos, col):
    try:
        vals = np.array([float(v) for v in raw])
    except ValueError:
        return np.array(raw, dtype=object)
    vals_int = vals.astype(np.int64) if np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)) else None
    return vals_int if vals_int is not None else vals
