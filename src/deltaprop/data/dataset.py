"""The in-memory data set, target encoding, splits and standardisation."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DataError
from ..i18n import gettext as _

__all__ = ["Dataset", "Standardizer", "encode_labels", "require_file", "split", "split_rows"]

#: Numeric targets with at most this many distinct integer values count as class labels
#: when the task is "auto".
MAX_AUTO_CLASSES = 20
#: ... and task "auto" warns when they are more than this share of the rows: with nearly one
#: class per row, nothing is left to learn a class from (a quantity, more likely). Only from 10
#: distinct values on: a toy file of 3 labels in 4 rows is a classification as meant.
NEARLY_ONE_PER_ROW = 0.5


def require_file(path, kind: str) -> str:
    """``path`` as a string; DataError when it is missing or a directory (``kind`` names what
    was expected, e.g. "a CSV file"). The readers map a PermissionError the same way."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(_("{file}: no such file").format(file=path))
    if os.path.isdir(path):
        raise DataError(_("{file}: is a directory, not {kind}").format(file=path, kind=_(kind)))
    return path


@dataclass
class Dataset:
    """Inputs ``X`` (n, d) and encoded targets ``T`` (n, n_outputs).

    ``task`` is ``"classification"`` (then ``classes`` lists the labels, ``T`` is one-hot for
    more than two classes and a single 0/1 column for two) or ``"regression"``.

    ``categories`` maps each one-hot encoded input column to its categories, in the order of
    its indicator columns in ``X`` (named ``column=category`` in ``feature_names``); ``None``
    when no column was encoded. A model keeps it so that prediction encodes the same way.
    """

    X: np.ndarray
    T: np.ndarray
    task: str
    name: str = ""
    feature_names: list = field(default_factory=list)
    target_names: list = field(default_factory=list)
    classes: list | None = None
    description: str = ""
    categories: dict | None = None

    def __post_init__(self):
        if len(self.X) != len(self.T):
            raise DataError(_("{name}: {inputs} input rows but {targets} target rows").format(
                name=self.name or _("data"), inputs=len(self.X), targets=len(self.T)))
        if not self.feature_names:
            self.feature_names = [f"x{i}" for i in range(self.X.shape[1])]

    def __len__(self) -> int:
        return len(self.X)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.T.shape[1]

    def subset(self, idx) -> "Dataset":
        return Dataset(self.X[idx], self.T[idx], self.task, self.name, self.feature_names,
                       self.target_names, self.classes, self.description, self.categories)

    def labels(self, T=None) -> np.ndarray:
        """Decode (one-hot / 0-1) targets or network outputs back to class labels."""
        return decode_labels(self.T if T is None else T, self.classes)


def encode_labels(y, task: str = "auto", classes=None):
    """Turn a raw target column into ``(T, task, classes)``.

    Classification: sorted distinct labels; two classes give one column of 0/1 (the second
    class is 1), more give one-hot columns. ``task="auto"`` picks classification for
    non-numeric labels or integer labels with at most ``MAX_AUTO_CLASSES`` values (and warns
    when they are more than ``NEARLY_ONE_PER_ROW`` of the rows).
    """
    y = np.asarray(y)
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(_("unknown task {task!r}; valid: auto, classification, regression").format(task=task))
    numeric = y.dtype.kind in "fiub"
    if task == "auto":
        # Whole numbers with few distinct values are class labels. (A CSV reader that sees
        # them written with decimals, "3.0", asks for regression itself: a quantity.)
        if not numeric:
            task = "classification"
        else:
            yf = y.astype(float)
            n_values = len(np.unique(yf))
            task = ("classification" if np.all(np.isfinite(yf)) and np.all(yf == np.round(yf))
                    and n_values <= MAX_AUTO_CLASSES else "regression")
            if task == "classification" and n_values >= 10 and n_values > NEARLY_ONE_PER_ROW * len(y):
                warnings.warn(_("the target's {n} distinct integer values in {rows} rows are read as {n} classes; if "
                                "it is a quantity, use task='regression' (--task regression)").format(
                    n=n_values, rows=len(y)), UserWarning, stacklevel=2)
    if task == "regression":
        if not numeric:
            raise DataError(_("a regression target must be numeric"))
        return y.astype(float).reshape(len(y), -1), task, None
    if (y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y))
            and np.abs(y).max() < 2.0 ** 53):
        # whole numbers stored as floats (an .npy of float columns) are labels 7, not 7.0
        y = y.astype(np.int64)
    if classes is None:
        # Mixed label types (e.g. 1 and "a") cannot be compared: order them by type, then value.
        classes = sorted(set(y.tolist()), key=lambda v: (type(v).__name__, v))
    if len(classes) < 2:
        err = DataError(_("classification needs at least 2 classes, the target has {n}: {classes}").format(
            n=len(classes), classes=classes))
        err.classes = classes  # a partition of a larger set may hold one class: its reader reads on
        raise err
    index = {c: i for i, c in enumerate(classes)}
    try:
        codes = np.array([index[v] for v in y.tolist()], dtype=int)
    except KeyError as exc:
        raise DataError(_("label {label!r} was not seen in training; known classes: {classes}").format(
            label=exc.args[0], classes=classes)) from None
    if len(classes) == 2:
        return codes.astype(float).reshape(-1, 1), task, classes
    return np.eye(len(classes))[codes], task, classes


def decode_labels(out, classes):
    out = np.asarray(out)
    if classes is None:
        return out
    if out.shape[1] == 1:
        idx = (out[:, 0] > 0.5).astype(int)
    else:
        idx = out.argmax(axis=1)
    return np.asarray(classes, dtype=object)[idx]


def split(ds: Dataset, val_fraction: float, rng) -> tuple[Dataset, Dataset | None]:
    """Seeded random split into (train, held-out); ``val_fraction`` in [0, 1)."""
    rows = split_rows(len(ds), val_fraction, rng)
    if rows is None:
        return ds, None
    return ds.subset(rows[0]), ds.subset(rows[1])


def split_rows(n: int, val_fraction: float, rng) -> tuple[np.ndarray, np.ndarray] | None:
    """The row numbers ``(train, held-out)``, each sorted, of :func:`split` (None: no split);
    for data that are not in one array (partitions on a cluster)."""
    if not (0.0 <= val_fraction < 1.0):
        raise ConfigError(_("validation split must be in [0, 1), got {value}").format(value=val_fraction))
    if val_fraction == 0.0:
        return None
    n_val = int(round(n * val_fraction))
    if n_val == 0 or n_val == n:
        raise DataError(_("a validation split of {split} leaves {train} training and {val} validation samples out "
                          "of {n}; use more data or another split").format(split=val_fraction, train=n - n_val,
                                                                           val=n_val, n=n))
    order = rng.permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class Standardizer:
    r"""Per-feature :math:`x' = (x - \mu) / \sigma`, fitted on the training split only.

    Constant features (:math:`\sigma = 0`) are only centred.
    """

    def __init__(self, mean=None, scale=None):
        self.mean = None if mean is None else np.asarray(mean, float)
        self.scale = None if scale is None else np.asarray(scale, float)

    def fit(self, X) -> "Standardizer":
        X = np.asarray(X, float)
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean = X.mean(axis=0)
            sd = X.std(axis=0)
        bad = ~(np.isfinite(self.mean) & np.isfinite(sd))
        if bad.any():
            # Sums of values near the float64 limit (1e308) overflow although the mean and the
            # spread do not; computed on columns divided by their largest magnitude, they fit.
            # Only those columns: every other column keeps the plain formula, bit for bit.
            cols = X[:, bad]
            big = np.abs(cols).max(axis=0)
            big = np.where(big > 0, big, 1.0)
            self.mean[bad] = (cols / big).mean(axis=0) * big
            sd[bad] = (cols / big).std(axis=0) * big
        self.scale = np.where(sd > 0, sd, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.shape[1] != len(self.mean):
            raise DataError(_("data has {n} columns but the standardisation was fitted on {fitted}").format(
                n=X.shape[1], fitted=len(self.mean)))
        with np.errstate(over="ignore", invalid="ignore"):
            out = (X - self.mean) / self.scale
        bad = ~np.isfinite(out) & np.isfinite(X)
        if bad.any():  # x - mean overflowed near the float64 limit; dividing first cannot
            cols = bad.any(axis=0)
            out[:, cols] = X[:, cols] / self.scale[cols] - self.mean[cols] / self.scale[cols]
        return out.astype(X.dtype if X.dtype.kind == "f" else float)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d) -> "Standardizer":
        return cls(d["mean"], d["scale"])
