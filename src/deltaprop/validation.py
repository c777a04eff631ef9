"""Turning user arrays into float arrays, with deltaprop's own errors for everything else."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError
from .i18n import gettext as _, ngettext

__all__ = ["as_float_array", "require_finite", "as_generator"]


def as_generator(seed, what: str = "seed") -> np.random.Generator:
    """``seed`` (None, a non-negative integer, a sequence of them, or a Generator itself) as a
    ``numpy.random.Generator``; ConfigError for anything else."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool):
        raise ConfigError(_SEED().format(what=what, value=seed))
    try:
        return np.random.default_rng(seed)
    except (ValueError, TypeError):
        raise ConfigError(_SEED().format(what=what, value=seed)) from None


def _SEED() -> str:
    return _("{what} must be a non-negative integer or a numpy Generator, got {value!r}")


def as_float_array(A, what: str, dtype=np.float64) -> np.ndarray:
    """``A`` as a C-contiguous float array of ``dtype``; DataError for text, objects, complex
    numbers, ragged nesting or values that overflow the dtype (e.g. 1e300 in float32)."""
    try:
        arr = np.asarray(A)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise DataError(_("{what} cannot be read as an array ({reason})").format(what=what, reason=exc)) from None
    if arr.dtype.kind == "c":
        raise DataError(_("{what} hold complex numbers; only real values can be used").format(what=what))
    if arr.dtype.kind not in "fiub":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError):
            raise DataError(_("{what} are not numeric (dtype {dtype})").format(what=what, dtype=arr.dtype)) from None
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    # Only a narrowing cast (float64 -> float32) can overflow; skip the two passes otherwise.
    if (arr.dtype.kind == "f" and arr.dtype.itemsize > out.dtype.itemsize
            and not np.isfinite(out).all() and np.isfinite(arr).all()):
        raise DataError(_("{what} hold values too large for {dtype} (largest magnitude {largest})").format(
            what=what, dtype=np.dtype(dtype).name, largest=f"{np.abs(arr).max():.3g}"))
    return out


#: Elements per piece of the finiteness check: a reused mask this size stays in cache, where
#: one mask of the whole array (47 MB for 60,000 x 784) would be allocated and faulted in.
_FINITE_PIECE = 1 << 16


def _all_finite(A: np.ndarray) -> bool:
    flat = A.reshape(-1) if A.flags.c_contiguous else np.ravel(A)
    mask = np.empty(min(flat.size, _FINITE_PIECE), bool)
    for start in range(0, flat.size, _FINITE_PIECE):
        piece = flat[start:start + _FINITE_PIECE]
        if not np.isfinite(piece, out=mask[:piece.size]).all():
            return False
    return True


def require_finite(A: np.ndarray, what: str) -> None:
    """DataError naming the first NaN/inf cell of the 2-D array ``A`` (one fast pass when clean);
    of a scipy.sparse matrix, its stored values are checked."""
    if hasattr(A, "tocsr") and hasattr(A, "nnz"):
        if _all_finite(A.tocsr().data):
            return
        A = A.toarray()
    if _all_finite(A):
        return
    bad = ~np.isfinite(A)
    r, c = np.argwhere(bad)[0]
    n = int(bad.sum())
    raise DataError(ngettext("{what} contain NaN or inf ({n} cells; first at row {row}, column {column})",
                             "{what} contain NaN or inf ({n} cells; first at row {row}, column {column})", n).format(
        what=what, n=n, row=r, column=c))

