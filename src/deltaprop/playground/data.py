"""The playground's data sets: the built-in ones, two drawn here (circles, two gaussians) and an
uploaded CSV reduced to the two columns chosen.

Drawn and uploaded sets are written as CSV files into the session's folder, so that the run is
an ordinary :class:`~deltaprop.config.TrainConfig` naming a file, which ``deltaprop train
--config`` repeats with the same file.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from ..data import BUILTIN, load_csv
from ..errors import DataError
from ..i18n import N_, gettext as _

__all__ = ["DATASETS", "DRAWN", "MAX_UPLOAD_BYTES", "MAX_ROWS", "write_drawn", "write_upload", "csv_columns"]

#: Drawn sets: name -> (what it is, the function drawing (X, labels) from a seeded generator).
#: 200 points each, the size TensorFlow Playground's sets have in its default ratio.
DRAWN_POINTS = 200


def _circles(rng):
    """A disc of radius 0.5 (class 1) inside a ring from 0.7 to 1.0 (class 0)."""
    n = DRAWN_POINTS // 2
    r = np.concatenate([0.5 * np.sqrt(rng.random(n)), 0.7 + 0.3 * rng.random(n)])
    a = 2 * np.pi * rng.random(2 * n)
    X = np.column_stack([r * np.cos(a), r * np.sin(a)])
    return X, np.repeat([1, 0], n)


def _gaussians(rng):
    """Two gaussian clouds of standard deviation 0.35 around (0.5, 0.5) and (-0.5, -0.5)."""
    n = DRAWN_POINTS // 2
    X = np.concatenate([rng.normal(0.5, 0.35, (n, 2)), rng.normal(-0.5, 0.35, (n, 2))])
    return X, np.repeat([1, 0], n)


DRAWN = {"circles": (N_("a disc inside a ring, 200 points"), _circles),
         "gaussians": (N_("two gaussian clouds, 200 points"), _gaussians)}

#: Every choice of the page's data menu (the built-in sets the library ships, the drawn ones,
#: and "csv" for an upload). iris and digits are left out: they have 4 and 64 inputs, and a
#: network for digits exceeds the sizes the playground allows.
DATASETS = {"xor": BUILTIN["xor"][3], "spirals": BUILTIN["spirals"][3],
            "circles": DRAWN["circles"][0], "gaussians": DRAWN["gaussians"][0],
            "parity": BUILTIN["parity"][3], "encoder": BUILTIN["encoder"][3],
            "csv": N_("your CSV file: two numeric columns and a target column")}

MAX_UPLOAD_BYTES = 1_000_000
MAX_ROWS = 5000


def write_drawn(name: str, folder: str, seed: int = 0) -> str:
    """Draw set ``name`` with a generator seeded by ``seed`` and write it to FOLDER/NAME.csv."""
    X, y = DRAWN[name][1](np.random.default_rng(seed))
    path = os.path.join(folder, f"{name}.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "label"])
        for (a, b), c in zip(X, y):
            w.writerow([repr(float(a)), repr(float(b)), int(c)])
    return path


def _rows(text: str):
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t ")
    except csv.Error:
        dialect = csv.excel
    return list(csv.reader(io.StringIO(text), dialect))


def csv_columns(text: str) -> list[str]:
    """The header of an uploaded CSV text (DataError when there is none)."""
    rows = _rows(text)
    if not rows or not any(c.strip() for c in rows[0]):
        raise DataError(_("the uploaded CSV has no header row"))
    return [c.strip() for c in rows[0]]


def write_upload(text: str, x: str, y: str, target: str, folder: str, filename: str = "upload.csv") -> str:
    """Write the columns ``x``, ``y`` and ``target`` of an uploaded CSV text to FOLDER/upload.csv
    and check it by reading it back with deltaprop's own CSV reader (its messages name the
    row and column). Returns the path."""
    if len(text.encode()) > MAX_UPLOAD_BYTES:
        raise DataError(_("{file}: {size} bytes; the playground takes CSV files up to {most} bytes").format(
            file=filename, size=f"{len(text.encode()):,}", most=f"{MAX_UPLOAD_BYTES:,}"))
    rows = _rows(text)
    header = csv_columns(text)
    for what, col in ((N_("x column"), x), (N_("y column"), y), (N_("target column"), target)):
        if col not in header:
            raise DataError(_("{file}: no column {column!r} for the {what}; columns: {columns}").format(
                file=filename, column=col, what=_(what), columns=", ".join(header)))
    if len({x, y, target}) < 3:
        raise DataError(_("{file}: the x, y and target columns must be three different columns").format(file=filename))
    if len(rows) - 1 > MAX_ROWS:
        raise DataError(_("{file}: {n} rows; the playground takes at most {most}").format(
            file=filename, n=f"{len(rows) - 1:,}", most=f"{MAX_ROWS:,}"))
    idx = [header.index(c) for c in (x, y, target)]
    path = os.path.join(folder, "upload.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([x, y, target])
        for line, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise DataError(_("{file}: line {line} has {n} fields, the header {header}").format(
                    file=filename, line=line, n=len(row), header=len(header)))
            w.writerow([row[i].strip() for i in idx])
    try:  # every cell checked; the messages name the line and column, and the user's file
        load_csv(path, target, name=filename)
    except DataError as exc:
        raise DataError(str(exc).replace(path, filename)) from None
    return path
