"""CSV reading with errors that name the file, line and column.

The first row is the header. The delimiter is detected from the header line among
``, ; TAB |`` (or given). Feature cells must be numbers, except in the columns declared
categorical, which are one-hot encoded; the target column may hold numbers or class names.
Files ending in ``.gz`` are decompressed.

Two readers give the same :class:`Dataset`. The fast one parses the file with a C parser,
pyarrow's CSV reader when ``deltaprop[csv]`` is installed, else NumPy's ``np.loadtxt``, into
arrays that grow in place, so that a large file takes about the array's memory (the exact
reader holds every cell as a Python string). Whenever the fast reader cannot vouch for a file
(a bad cell, a ragged row, a line number wanted for a message, an unusual header) the exact
reader, Python's :mod:`csv` module, reads it again: every message about a line and column
comes from it, so messages are the same whichever parser is installed.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..i18n import N_, gettext as _
from .dataset import Dataset, encode_labels, require_file

__all__ = ["read_csv", "load_csv"]

_DELIMITERS = [",", ";", "\t", "|"]


def _read_text(path) -> str:
    path = require_file(path, N_("a CSV file"))
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
                return f.read()
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except PermissionError:
        raise DataError(_("{file}: permission denied").format(file=path)) from None
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise DataError(_("{file}: cannot be read as UTF-8 text ({reason})").format(
            file=path, reason=f"{exc.__class__.__name__}: {exc}")) from None


def _detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def read_csv(path, delimiter: str | None = None) -> tuple[list[str], list[list[str]], list[int]]:
    """Return (header, rows, line numbers) of a CSV file; rows must all have the header's width.

    The exact reader (Python's csv module): slow on large files, but it knows every line."""
    text = _read_text(path)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError(_("{file}: the file is empty").format(file=path))
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
        raise DataError(_("{file}: line {line}: malformed CSV ({reason})").format(
            file=path, line=reader.line_num, reason=exc)) from None
    if header is None:
        raise DataError(_("{file}: the file has no header row (only empty cells)").format(file=path))
    _check_header(path, header)
    for row, ln in zip(rows, line_nos):
        if len(row) != len(header):
            raise DataError(_("{file}: line {line} has {n} cells but the header has {width} (ragged row)").format(
                file=path, line=ln, n=len(row), width=len(header)))
    return header, rows, line_nos


def _check_header(path, header) -> None:
    for i, name in enumerate(header):
        if not name:
            raise DataError(_("{file}: header column {i} has no name").format(file=path, i=i + 1))
    dup = {h for h in header if header.count(h) > 1}
    if dup:
        raise DataError(_("{file}: header names repeated: {names}").format(file=path, names=", ".join(sorted(dup))))


def _parse_float(cell: str, path, ln: int, col: str, fixed: bool = False) -> float:
    """The number in ``cell``; ``fixed``: the columns are a saved model's (predict, evaluate),
    where declaring a column categorical is no longer the user's choice."""
    s = cell.strip()
    try:
        v = float(s)
    except ValueError:
        what = (_("an empty cell") if not s else
                _("{value!r} is not a number (the model reads {column!r} as a number)").format(value=s, column=col)
                if fixed else
                _("{value!r} is not a number (declare {column!r} categorical to one-hot encode it)").format(
                    value=s, column=col))
        raise DataError(_("{file}: line {line}, column {column!r}: {what}").format(
            file=path, line=ln, column=col, what=what)) from None
    if not math.isfinite(v):
        raise DataError(_("{file}: line {line}, column {column!r}: {value!r} is not a finite number (NaN/inf)").format(
            file=path, line=ln, column=col, value=s))
    return v


def _categorical_columns(path, header, target, categorical, categories) -> list[str]:
    """The columns to one-hot encode: ``categorical`` plus the keys of ``categories``."""
    if isinstance(categorical, str):  # a lone name would otherwise be read letter by letter
        categorical = [categorical]
    cols = list(dict.fromkeys([*(categorical or []), *(categories or {})]))
    for col in cols:
        if col not in header:
            raise DataError(_("{file}: no categorical column {column!r}; columns are: {columns}").format(
                file=path, column=col, columns=", ".join(header[:20])))
        if col == target:
            raise DataError(_("{file}: column {column!r} is the target; it cannot also be a categorical input").format(
                file=path, column=col))
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
            raise DataError(_("{file}: lacks the model's feature columns: {missing}; columns are: {columns}").format(
                file=path, missing=", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""),
                columns=", ".join(header[:20])))
        cols.append(owner)
    return [header.index(c) for c in dict.fromkeys(cols)]


def _one_hot(path, col: str, cells, line_nos, known) -> tuple[np.ndarray, list[str]]:
    """Indicator columns of one categorical column, shape ``(n, n_categories)``.

    ``known`` is the list of categories saved from training; ``None`` learns them here (the
    distinct values, sorted). A value outside ``known`` is a DataError naming line and value.
    """
    values = [c.strip() for c in cells]
    empty = next((r for r, v in enumerate(values) if not v), None)
    if empty is not None:
        raise DataError(_("{file}: line {line}, column {column!r}: {what}").format(
            file=path, line=line_nos[empty], column=col, what=_("an empty cell")))
    cats = sorted(set(values)) if known is None else [str(c) for c in known]
    index = {c: j for j, c in enumerate(cats)}
    try:
        codes = np.array([index[v] for v in values], dtype=int)
    except KeyError:
        r = next(r for r, v in enumerate(values) if v not in index)
        raise DataError(_("{file}: line {line}, column {column!r}: category {value!r} was not seen in training; "
                          "known categories: {known}").format(
            file=path, line=line_nos[r], column=col, value=values[r],
            known=", ".join(map(repr, cats[:20])) + (" ..." if len(cats) > 20 else ""))) from None
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
    args = (target, delimiter, task, classes, name, features, categorical, categories, require_target)
    if READER != "exact":
        try:
            return _load_fast(path, *args)
        except _NotFast:
            pass
    return _load_exact(path, *args)


#: The fast reader's C parser: ``"auto"`` (pyarrow where ``deltaprop[csv]`` is installed, else
#: NumPy), ``"pyarrow"``, ``"numpy"``, or ``"exact"`` (the csv module only; tests compare them).
READER = "auto"


class _NotFast(Exception):
    """The fast reader cannot vouch for this file: the exact reader reads it again."""


class _NoLines:
    """The fast reader's line numbers: it has none, so a message that needs one hands the file
    to the exact reader, which says which line."""

    def __getitem__(self, r):
        raise _NotFast


@dataclass
class _Plan:
    """Which columns are what, decided from the header alone."""

    targets: list  # none (inputs only), one, or several (regression) target names
    feat_idx: list  # the feature columns' positions, in the order of X's raw columns
    cat_cols: list  # the names of the one-hot encoded columns


def _plan(path, header, target, task, features, categorical, categories, require_target) -> _Plan:
    targets = _target_names(header, target)
    missing = [t for t in targets if t not in header]
    if missing:
        if require_target:
            raise DataError(_("{file}: no target column {column!r}; columns are: {columns}").format(
                file=path, column=missing[0], columns=", ".join(header)))
        targets = []
    if len(targets) > 1:
        if task == "classification":
            raise DataError(_("{file}: several target columns ({columns}) are regression targets; classification "
                              "takes one label column").format(file=path, columns=", ".join(targets)))
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise DataError(_("{file}: target column {column!r} is named twice").format(file=path, column=dup[0]))
        cat_cols = _categorical_columns(path, header, None, categorical, categories)
        for t in targets:
            if t in cat_cols:
                raise DataError(_("{file}: column {column!r} is a target; it cannot also be a categorical input").format(
                    file=path, column=t))
    else:
        cat_cols = _categorical_columns(path, header, targets[0] if targets else None, categorical, categories)
    t_idx = [header.index(t) for t in targets]
    if features is not None:
        feat_idx = _raw_feature_columns(path, header, features, cat_cols)
    else:
        feat_idx = [i for i in range(len(header)) if i not in t_idx]
    if not feat_idx:
        if len(targets) > 1:
            raise DataError(_("{file}: no feature columns besides the targets {columns}").format(
                file=path, columns=", ".join(targets)))
        raise DataError(_("{file}: no feature columns besides the target {column!r}").format(
            file=path, column=(targets or [None])[0]))
    return _Plan(targets, feat_idx, cat_cols)


def _load_exact(path, target, delimiter, task, classes, name, features, categorical, categories,
                require_target) -> Dataset:
    """The csv module's reading: every cell a Python string, every message with its line."""
    header, rows, line_nos = read_csv(path, delimiter)
    if not rows:
        raise DataError(_("{file}: no data rows after the header").format(file=path))
    plan = _plan(path, header, target, task, features, categorical, categories, require_target)
    numeric = [i for i in plan.feat_idx if header[i] not in plan.cat_cols]
    Xnum = np.empty((len(rows), len(numeric)))
    for r, (row, ln) in enumerate(zip(rows, line_nos)):
        for j, i in enumerate(numeric):
            Xnum[r, j] = _parse_float(row[i], path, ln, header[i], features is not None)
    X, names, learned = _inputs(path, header, plan, Xnum, lambda i: [row[i] for row in rows], line_nos,
                                categories)
    if len(plan.targets) > 1:
        T = np.empty((len(rows), len(plan.targets)))
        for r, (row, ln) in enumerate(zip(rows, line_nos)):
            for j, t in enumerate(plan.targets):
                T[r, j] = _parse_target(row[header.index(t)], path, ln, t)
        return _dataset(path, name, X, T, "regression", names, plan.targets, None, learned)
    if not plan.targets:
        return _dataset(path, name, X, np.zeros((len(rows), 0)), "unknown", names, [], classes, learned)
    t = header.index(plan.targets[0])
    T, task_out, cls = _single_target(path, [row[t] for row in rows], line_nos, plan.targets[0], task, classes)
    return _dataset(path, name, X, T, task_out, names, plan.targets, cls, learned)


def _load_fast(path, target, delimiter, task, classes, name, features, categorical, categories,
               require_target) -> Dataset:
    """A C parser's reading: numbers straight into float arrays. Raises :class:`_NotFast` for
    anything the exact reader has to look at (then it names the line and column)."""
    path = require_file(path, N_("a CSV file"))
    try:
        f = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    except OSError:
        raise _NotFast from None
    with f:
        delim, header = _fast_header(path, f, delimiter)
        plan = _plan(path, header, target, task, features, categorical, categories, require_target)
        numeric = [i for i in plan.feat_idx if header[i] not in plan.cat_cols]
        t_idx = [header.index(t) for t in plan.targets]
        text_cols = [i for i in plan.feat_idx if header[i] in plan.cat_cols]
        text_cols += t_idx if len(t_idx) == 1 else []
        floats, texts, n = _parse_fast(f, delim, len(header), [numeric, t_idx if len(t_idx) > 1 else []],
                                       text_cols)
    if n == 0 or not all(np.isfinite(a).all() for a in floats):
        raise _NotFast  # no rows, or NaN/inf somewhere: the exact reader's message says where
    lines = _NoLines()
    X, names, learned = _inputs(path, header, plan, floats[0], lambda i: _pylist(texts[i]), lines, categories)
    if len(plan.targets) > 1:
        return _dataset(path, name, X, floats[1], "regression", names, plan.targets, None, learned)
    if not plan.targets:
        return _dataset(path, name, X, np.zeros((n, 0)), "unknown", names, [], classes, learned)
    T, task_out, cls = _single_target(path, texts[t_idx[0]], lines, plan.targets[0], task, classes)
    return _dataset(path, name, X, T, task_out, names, plan.targets, cls, learned)


def _pylist(cells) -> list:
    return cells if isinstance(cells, list) else cells.to_pylist()


def _dataset(path, name, X, T, task, names, targets, classes, learned) -> Dataset:
    return Dataset(X, T, task, name or os.path.basename(os.fspath(path)), names, list(targets), classes,
                   categories=learned or None)


def _fast_header(path, f, delimiter) -> tuple[str, list[str]]:
    """The delimiter and header of binary stream ``f``, left just after the header line. Only
    a plain one-line header is taken; anything else (a quoted line break, a header of empty
    cells, bytes that are not UTF-8) is the exact reader's."""
    first = True
    while True:
        try:
            raw = f.readline(1 << 20)
        except (OSError, EOFError, zlib.error):
            raise _NotFast from None
        if first:
            raw, first = raw.removeprefix(b"\xef\xbb\xbf"), False
        if not raw or not raw.endswith(b"\n"):
            raise _NotFast  # empty, one line only, or a very long line
        try:
            line = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError:
            raise _NotFast from None
        if not line.strip():
            continue
        if line.splitlines() != [line] or line.count('"') % 2:
            raise _NotFast
        delim = delimiter or _detect_delimiter(line)
        if len(delim) != 1:
            raise _NotFast
        header = [c.strip() for c in next(csv.reader([line], delimiter=delim))]
        if not any(header):
            raise _NotFast
        _check_header(path, header)
        return delim, header


def _parse_fast(f, delim, width, groups, text_cols) -> tuple[list[np.ndarray], dict, int]:
    """The rows after the header of ``f``: one float array ``(n, len(g))`` per group ``g`` of
    column positions, the raw cells of ``text_cols``, and ``n``. Every row must have ``width``
    cells; every cell of a group must be a number."""
    reader = READER
    if reader == "auto":
        try:
            import pyarrow.csv  # noqa: F401 - optional extra deltaprop[csv]
            reader = "pyarrow"
        except ImportError:
            reader = "numpy"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. loadtxt's "input contained no data"
            if reader == "pyarrow":
                return _arrow_columns(f, delim, width, groups, text_cols)
            return _loadtxt_columns(f, delim, width, groups, text_cols)
    except MemoryError:
        raise
    except Exception:
        # Whatever the C parser rejects (a bad cell, a ragged row, bytes that are not UTF-8, a
        # broken gzip stream), the exact reader reads again and names the line and column.
        raise _NotFast from None


class _Growing:
    """Rows appended block by block to one float64 array that grows in place (``realloc``: on
    Linux large blocks are remapped, not copied), so the peak stays near the final size."""

    def __init__(self, width: int):
        self.a, self.n = np.empty((1 << 14, width)), 0

    def add(self, columns, m: int) -> None:
        if self.n + m > len(self.a):
            self.a.resize((max(self.n + m, len(self.a) * 3 // 2), self.a.shape[1]), refcheck=False)
        for j, c in enumerate(columns):
            self.a[self.n:self.n + m, j] = c
        self.n += m

    def done(self) -> np.ndarray:
        self.a.resize((self.n, self.a.shape[1]), refcheck=False)
        return self.a


def _arrow_columns(f, delim, width, groups, text_cols):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(width)]
    types = {names[i]: pa.float64() for g in groups for i in g} | {names[i]: pa.string() for i in text_cols}
    reader = pacsv.open_csv(
        f, read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
        # Nothing is read as missing or as a truth value: an empty cell or "true" is an error
        # here as in the exact reader, and rows must all have the header's width.
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types), null_values=[],
                                             true_values=[], false_values=[], strings_can_be_null=False,
                                             quoted_strings_can_be_null=False))
    out, texts, n = [_Growing(len(g)) for g in groups], {i: [] for i in text_cols}, 0
    for batch in reader:
        cols = dict(zip(batch.schema.names, batch.columns))
        for g, arr in zip(groups, out):
            arr.add([cols[names[i]].to_numpy() for i in g], batch.num_rows)
        for i in text_cols:
            texts[i].append(cols[names[i]])
        n += batch.num_rows
    # Text stays in Arrow's compact form: a target of numbers written as text needs no Python
    # string per cell (see _arrow_numbers); other text becomes Python strings where it is used.
    return [a.done() for a in out], {i: pa.chunked_array(c, pa.string()) for i, c in texts.items()}, n


def _loadtxt_columns(f, delim, width, groups, text_cols):
    texts = {i: [] for i in text_cols}
    wanted = {i for g in groups for i in g}
    # Every column is read, so that loadtxt checks each row's width; cells of text columns are
    # kept by their converter, those of ignored columns dropped.
    conv = {i: (lambda s, keep=texts[i].append: keep(s) or 0.0) for i in text_cols}
    conv |= {i: (lambda s: 0.0) for i in range(width) if i not in wanted and i not in conv}
    stream = io.TextIOWrapper(f, encoding="utf-8", newline="")
    try:
        A = np.loadtxt(stream, delimiter=delim, comments=None, quotechar='"', ndmin=2, dtype=np.float64,
                       converters=conv or None)
    finally:
        stream.detach()  # f is closed by its owner
    if A.shape[1] != width:
        raise ValueError("rows are not as wide as the header")
    rest = [A[:, g] for g in groups[1:]]  # small (target columns): copies
    return [_take_columns(A, groups[0]), *rest], texts, len(A)


def _take_columns(A: np.ndarray, cols) -> np.ndarray:
    """``A[:, cols]`` made in ``A``'s own buffer, which then shrinks (block by block the kept
    cells move towards the front; a block's target ends before the next block starts), so
    that no second array of ``A``'s size is needed. ``A`` is used up."""
    n, w = A.shape
    k = len(cols)
    if list(cols) == list(range(w)):
        return A
    flat = A.reshape(-1)
    step = max(1, (1 << 16) // max(w, 1))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        flat[r0 * k:r1 * k] = A[r0:r1][:, cols].ravel()  # the right side is a copy: overlap is safe
    del flat
    A.resize((n, k), refcheck=False)
    return A


def _inputs(path, header, plan: _Plan, Xnum, cells, line_nos, categories):
    """``(X, names, learned categories)``: the numeric block ``Xnum`` (the non-categorical
    feature columns, in order) with each categorical column's indicator columns in its place;
    ``cells(i)`` gives column ``i``'s raw cells."""
    if not any(header[i] in plan.cat_cols for i in plan.feat_idx):
        return Xnum, [header[i] for i in plan.feat_idx], {}
    blocks, names, learned, j = [], [], {}, 0
    for i in plan.feat_idx:
        col = header[i]
        if col in plan.cat_cols:
            block, cats = _one_hot(path, col, cells(i), line_nos, (categories or {}).get(col))
            learned[col] = cats
            blocks.append(block)
            names += [f"{col}={c}" for c in cats]
        else:
            blocks.append(Xnum[:, j:j + 1])
            names.append(col)
            j += 1
    return np.concatenate(blocks, axis=1), names, learned


def _single_target(path, cells, line_nos, target, task, classes):
    """``(T, task, classes)`` of one target column's raw cells (see :func:`encode_labels`)."""
    y = _arrow_numbers(cells) if not isinstance(cells, list) else None
    if y is None:
        raw = [c.strip() for c in _pylist(cells)]
        empty = next((r for r, v in enumerate(raw) if not v), None)
        if empty is not None:
            raise DataError(_("{file}: line {line}, column {column!r}: {what}").format(
                file=path, line=line_nos[empty], column=target, what=_("the target cell is empty")))
        y = _numeric_or_strings(raw, path, line_nos, target)
    if task == "auto" and y.dtype.kind == "f" and classes is None:
        task = "regression"  # written with decimals somewhere ("3.5", "3.0"): a quantity
    T, task_out, cls = encode_labels(y, task, classes)
    if task_out == "regression" and not np.all(np.isfinite(T)):
        r = int(np.argwhere(~np.isfinite(T))[0][0])
        raise DataError(_("{file}: line {line}, column {column!r}: {what}").format(
            file=path, line=line_nos[r], column=target, what=_("target is not a finite number")))
    return T, task_out, cls


def _arrow_numbers(cells):
    """An Arrow text column as :func:`_numeric_or_strings` reads it, where every cell is a
    number: int64 where every cell is written as an integer of at most 2**53 (exact as a
    double), else float64; None otherwise (the cells are then read one by one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(cells)
    try:
        values = pc.cast(trimmed, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pc.all(pc.match_substring_regex(trimmed, r"^[+-]?[0-9]+$")).as_py():
        return values.astype(np.int64) if np.all(np.abs(values) < 2.0 ** 53) else None
    return values


def _parse_target(cell: str, path, ln: int, col: str) -> float:
    """One cell of one of several target columns."""
    s = cell.strip()
    try:
        v = float(s)
    except ValueError:
        what = _("the target cell is empty") if not s else _(
            "{value!r} is not a number (several targets are regression targets)").format(value=s)
        raise DataError(_("{file}: line {line}, column {column!r}: {what}").format(
            file=path, line=ln, column=col, what=what)) from None
    if not math.isfinite(v):
        raise DataError(_("{file}: line {line}, column {column!r}: {what}").format(
            file=path, line=ln, column=col, what=_("target is not a finite number")))
    return v


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
