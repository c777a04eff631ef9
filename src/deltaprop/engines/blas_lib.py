"""The BLAS that compiled kernels call directly: NumPy's own, else SciPy's.

A compiled epoch (:mod:`._numba_batch`) runs its matrix products inside the kernel, so that a
mini-batch costs no Python calls, and with BLAS's ``beta`` so that gradients accumulate and
plain SGD updates land in the weights without a separate pass. It calls the Fortran-style
``?gemm`` (every argument a pointer) through its address:

1. NumPy's bundled OpenBLAS (the PyPI wheels ship ``scipy_openblas64_``, 64-bit integers).
   It is the very library ``np.matmul`` uses, loaded once, so its thread pool is the one that
   ``threadpoolctl`` and ``OPENBLAS_NUM_THREADS`` already control, at the same speed.
2. ``scipy.linalg.cython_blas`` (32-bit integers), where NumPy's BLAS cannot be found (a
   NumPy built against a system BLAS).

Neither found: :func:`gemm_for` returns None and the engine keeps NumPy's ``matmul`` with
compiled elementwise steps (:mod:`.blas_path`). ``DELTAPROP_BLAS=numpy|scipy|none`` picks one
(for tests and measurements).
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["Gemm", "gemm_for"]


class Gemm:
    """One ``?gemm`` entry point: its address, integer width and where it comes from."""

    def __init__(self, address: int, int_dtype, source: str, lib=None):
        self.address = int(address)
        self.int_dtype = np.dtype(int_dtype)
        self.source = source
        self._lib = lib  # keeps a ctypes handle (and so the address) alive

    def __repr__(self) -> str:
        return f"Gemm({self.source}, int{8 * self.int_dtype.itemsize})"

    def _openblas_fn(self, verb: str, restype, argtypes):
        """OpenBLAS's ``openblas_<verb>_num_threads`` under the names the wheels give it
        (scipy-openblas prefixes ``scipy_`` and suffixes 64-bit builds ``64_``), or None."""
        found = self.__dict__.setdefault("_threads_fns", {})
        if verb not in found:
            found[verb] = None
            for name in (f"scipy_openblas_{verb}_num_threads64_", f"openblas_{verb}_num_threads64_",
                         f"scipy_openblas_{verb}_num_threads", f"openblas_{verb}_num_threads"):
                fn = None if self._lib is None else getattr(self._lib, name, None)
                if fn is not None:
                    fn.restype, fn.argtypes = restype, argtypes
                    found[verb] = fn
                    break
        return found[verb]

    def threads(self) -> int | None:
        """The library's current thread count (OpenBLAS's ``openblas_get_num_threads``, which
        threadpoolctl and ``OPENBLAS_NUM_THREADS`` set), or None where it cannot be asked."""
        fn = self._openblas_fn("get", ctypes.c_int, [])
        return None if fn is None else int(fn())

    def set_threads(self, count: int) -> bool:
        """Set the library's thread count (``openblas_set_num_threads``, process-wide, as
        threadpoolctl does); False where it cannot be set."""
        fn = self._openblas_fn("set", None, [ctypes.c_int])
        if fn is None:
            return False
        fn(int(count))
        return True


def _numpy_openblas_paths() -> list[Path]:
    # where the wheels' repair tools put the bundled library: auditwheel (Linux) next to the
    # package as numpy.libs, delocate (macOS) inside it as .dylibs, delvewheel (Windows)
    # as numpy.libs
    root = Path(np.__file__).resolve().parent
    found = []
    for folder in (root.parent / "numpy.libs", root / ".dylibs"):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if "openblas" in p.name.lower())
    return found


def _from_numpy(prefix: str):
    for path in _numpy_openblas_paths():
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        # scipy-openblas64 prefixes its symbols with scipy_ and suffixes 64-bit ones with 64_
        for name, int_dtype in ((f"scipy_{prefix}gemm_64_", np.int64), (f"{prefix}gemm_64_", np.int64),
                                (f"scipy_{prefix}gemm_", np.int32), (f"{prefix}gemm_", np.int32)):
            fn = getattr(lib, name, None)
            if fn is not None:
                return Gemm(ctypes.cast(fn, ctypes.c_void_p).value, int_dtype, f"numpy ({path.name})", lib)
    return None


def _from_scipy(prefix: str):
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
        from numba.extending import get_cython_function_address
    except ImportError:
        return None
    address = get_cython_function_address("scipy.linalg.cython_blas", f"{prefix}gemm")
    return Gemm(address, np.int32, "scipy.linalg.cython_blas")


@lru_cache(maxsize=None)
def gemm_for(dtype) -> Gemm | None:
    """The ``sgemm`` (float32) or ``dgemm`` (float64) entry point, or None."""
    prefix = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(np.dtype(dtype))
    if prefix is None:
        return None
    choice = os.environ.get("DELTAPROP_BLAS", "auto")
    if choice == "none":
        return None
    if choice in ("auto", "numpy"):
        found = _from_numpy(prefix)
        if found is not None or choice == "numpy":
            return found
    return _from_scipy(prefix)
