"""NumPy array files: ``.npy`` (one array) and ``.npz`` (named arrays).

Files are always opened with ``allow_pickle=False``: an array of Python objects is refused
with a DataError, never unpickled, so loading a data file cannot run code.

* ``.npz``: the inputs are the array named ``inputs`` (default ``"X"``), the targets the array
  named ``target`` (for example ``"y"``).
* ``.npy``: one 2-D array of samples x columns; ``target`` is the number of the target column
  (negative numbers count from the end) and every other column is an input.

Inputs of shape ``(n, d)`` are used as they are; inputs of more dimensions, such as images
``(n, height, width)``, are flattened per sample to ``(n, height * width)``. Targets are either
one value per sample, shape ``(n,)`` or ``(n, 1)`` (class labels or a regression value,
encoded by :func:`~deltaprop.data.dataset.encode_labels`), or ``(n, k)`` regression targets.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from ..errors import DataError
from ..i18n import N_, gettext as _, ngettext
from ..validation import require_finite
from .dataset import Dataset, encode_labels, require_file

__all__ = ["load_arrays", "read_arrays"]


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip


def _read(path: str) -> tuple[bool, dict[str, np.ndarray]]:
    """``(is_npz, arrays)``; a ``.npy`` file's one array is under the key ``"array"``."""
    path = require_file(path, N_("an array file"))
    try:
        with open(path, "rb") as f:
            head = f.read(6)
            # np.load takes anything that is neither .npy nor zip for a pickle; say what it is.
            if not (head.startswith(_NPY_MAGIC) or head[:4] in _ZIP_MAGICS):
                raise DataError(_("{path}: not a NumPy .npy or .npz file ({reason})").format(
                    path=path, reason=_("it is empty") if not head else
                    _("it starts with {head!r}").format(head=head)))
            f.seek(0)
            if head.startswith(_NPY_MAGIC):
                return False, {"array": _member(path, "array", lambda: np.load(f, allow_pickle=False))}
            with np.load(f, allow_pickle=False) as z:
                return True, {key: _member(path, key, lambda: z[key]) for key in z.files}
    except DataError:  # a ValueError too: keep it as it is
        raise
    except PermissionError:
        raise DataError(_("{path}: permission denied").format(path=path)) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        # NotImplementedError: zipfile meets an unknown compression method or zip version
        raise DataError(_("{path}: not a readable .npz file (truncated or corrupt: {reason})").format(
            path=path, reason=exc)) from None


def _member(path: str, key: str, read) -> np.ndarray:
    """Read one array, turning numpy's refusal of object arrays into a DataError."""
    try:
        value = read()
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(_("{path}: array {key!r} holds Python objects (dtype object); deltaprop loads "
                              "only numeric or text arrays and never unpickles (allow_pickle=False)").format(
                path=path, key=key)) from None
        raise DataError(_UNREADABLE().format(path=path, key=key, reason=exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise DataError(_UNREADABLE().format(path=path, key=key, reason=exc)) from None
    if not isinstance(value, np.ndarray):  # a zip member that is not a .npy file
        raise DataError(_("{path}: entry {key!r} is not a NumPy array").format(path=path, key=key))
    return value


def _UNREADABLE() -> str:
    return _("{path}: array {key!r} cannot be read (truncated or corrupt: {reason})")


def read_arrays(path) -> dict[str, np.ndarray]:
    """All arrays of a ``.npz`` file by name (a ``.npy`` file's one array under ``"array"``).

    Never unpickles. Raises DataError for a missing, truncated or non-NumPy file and for
    object arrays.
    """
    return _read(os.fspath(path))[1]


def _inputs(path, key: str, X: np.ndarray) -> np.ndarray:
    """Validate the input array and return it as float64 of shape ``(n, d)``."""
    if X.dtype.kind not in "biuf":
        raise DataError(_("{path}: inputs {key!r} have dtype {dtype}; they must be numbers "
                          "(bool, integer or float)").format(path=path, key=key, dtype=X.dtype))
    if X.ndim < 2:
        raise DataError(_("{path}: inputs {key!r} have shape {shape}; give a 2-D array of samples x "
                          "features (reshape(-1, 1) for a single feature)").format(path=path, key=key, shape=X.shape))
    if X.size == 0:  # (reshape(0, -1) cannot tell the width of no rows)
        raise DataError(_("{path}: inputs {key!r} are empty (shape {shape})").format(path=path, key=key, shape=X.shape))
    X = X.reshape(len(X), -1).astype(float)
    require_finite(X, _("{path}: inputs {key!r}").format(path=path, key=key))
    return X


def _targets(path, key: str, y: np.ndarray, n: int, task: str, classes):
    """Encode the target array (one label or value per sample, or ``(n, k)`` values)."""
    if y.dtype.kind not in "biufUS":
        raise DataError(_("{path}: targets {key!r} have dtype {dtype}; they must be numbers or text labels").format(
            path=path, key=key, dtype=y.dtype))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise DataError(_("{path}: targets {key!r} have shape {shape}; give one value per sample (n,) "
                          "or n rows of regression targets (n, k)").format(path=path, key=key, shape=y.shape))
    if len(y) != n:
        raise DataError(ngettext("{path}: the inputs have {n} rows but the targets {key!r} have {m}",
                                 "{path}: the inputs have {n} rows but the targets {key!r} have {m}", n).format(
            path=path, n=n, key=key, m=len(y)))
    if y.dtype.kind in "US":
        y = y.astype(str).astype(object)
    if y.ndim == 2:
        if task == "classification":
            raise DataError(_("{path}: targets {key!r} have shape {shape}; class labels must be one column").format(
                path=path, key=key, shape=y.shape))
        if y.dtype.kind not in "biuf" or not np.all(np.isfinite(y.astype(float))):
            raise DataError(_("{path}: targets {key!r} contain NaN or inf").format(path=path, key=key))
        return y.astype(float), "regression", None
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        r = int(np.argwhere(~np.isfinite(y))[0][0])
        raise DataError(_("{path}: targets {key!r} contain NaN or inf (first at row {row})").format(
            path=path, key=key, row=r))
    return encode_labels(y, task, classes)


def load_arrays(path, target=None, *, inputs: str = "X", task: str = "auto", classes=None,
                name: str | None = None, features=None, require_target: bool = True) -> Dataset:
    """Load a ``.npy`` or ``.npz`` file into a :class:`Dataset` (see the module docstring).

    ``target``: in a ``.npz``, the name of the target array; in a ``.npy``, the number of the
    target column (an int or a string of one). ``None``: inputs only, for prediction.
    ``features``: the feature names a model expects; only their count is used, to tell
    whether a ``.npy`` file holds the target column too (``require_target=False``: a target
    that the file lacks is then not an error, the data set just has no targets).
    """
    path = os.fspath(path)
    is_npz, arrays = _read(path)
    base = name or os.path.basename(path)
    if not is_npz:
        A = arrays["array"]
        X, y, target_name = A, None, None
        # a file with exactly the model's inputs has no target column, whatever the target is
        # called (a model trained from an .npz names its target array, e.g. 'y')
        inputs_only = (target is not None and features is not None and not require_target and A.ndim == 2
                       and A.shape[1] == len(features))
        if target is not None and not inputs_only:
            try:
                col = int(target)
            except (TypeError, ValueError):
                if features is not None and not require_target and A.ndim == 2:  # no target column named
                    if A.shape[1] == len(features) + 1:
                        raise DataError(ngettext(
                            "{path}: {columns} columns for a model of {n} feature; if one of them is the "
                            "target, give its number with --target (e.g. --target -1)",
                            "{path}: {columns} columns for a model of {n} features; if one of them is the "
                            "target, give its number with --target (e.g. --target -1)",
                            len(features)).format(path=path, columns=A.shape[1], n=len(features))) from None
                    raise DataError(ngettext(
                        "{path}: the inputs have {columns} columns but the model takes {n} features",
                        "{path}: the inputs have {columns} columns but the model takes {n} features",
                        len(features)).format(path=path, columns=A.shape[1], n=len(features))) from None
                raise DataError(_("{path}: in a .npy file the target is a column number, got {value!r}").format(
                    path=path, value=target)) from None
            if A.ndim != 2:
                raise DataError(_("{path}: the array has shape {shape}; a .npy file with a target column "
                                  "must be 2-D (samples x columns)").format(path=path, shape=A.shape))
            width = A.shape[1]
            if not -width <= col < width:
                raise DataError(ngettext("{path}: no target column {col}; the array has {n} columns",
                                         "{path}: no target column {col}; the array has {n} columns", width).format(
                    path=path, col=col, n=width))
            col %= width
            X, y, target_name = np.delete(A, col, axis=1), A[:, col], str(target)
        key = "array"
    else:
        if inputs not in arrays:
            raise DataError(_("{path}: no input array {name!r}; arrays are: {names}").format(
                path=path, name=inputs, names=", ".join(sorted(arrays)) or _("none")))
        X, y, target_name, key = arrays[inputs], None, None, inputs
        if target is not None:
            if target in arrays:
                y, target_name = arrays[target], str(target)
            elif require_target:
                raise DataError(_("{path}: no target array {name!r}; arrays are: {names}").format(
                    path=path, name=target, names=", ".join(sorted(arrays))))
    X = _inputs(path, key, X)
    if features is not None and X.shape[1] != len(features):
        raise DataError(ngettext("{path}: the inputs have {columns} columns but the model takes {n} features",
                                 "{path}: the inputs have {columns} columns but the model takes {n} features",
                                 len(features)).format(path=path, columns=X.shape[1], n=len(features)))
    if y is None:
        return Dataset(X, np.zeros((len(X), 0)), "unknown", base, classes=classes)
    T, task_out, cls = _targets(path, target_name if key != "array" else _("column {name}").format(name=target_name), y,

                                len(X), task, classes)
    return Dataset(X, T, task_out, base, target_names=[target_name], classes=cls)
