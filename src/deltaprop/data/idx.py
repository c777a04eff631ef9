"""IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.

Layout (all numbers big-endian):

=========  =====================================================================
bytes      content
=========  =====================================================================
0-1        magic: two zero bytes
2          data type code: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32,
           ``0x0D`` float32, ``0x0E`` float64
3          number of dimensions ``D`` (at least 1)
4 .. 4D+3  ``D`` sizes, unsigned 32-bit each; the first counts the items (samples)
then       the items, C order, ``prod(sizes) * itemsize`` bytes, nothing after them
=========  =====================================================================

An images file of sizes ``(n, h, w)`` becomes inputs of shape ``(n, h * w)`` (each image
flattened row by row); a labels file must have one dimension ``(n,)``. A gzip file is
recognised by its first bytes, whatever its name.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ..errors import DataError
from ..i18n import N_, gettext as _, ngettext
from .dataset import Dataset, encode_labels, require_file

__all__ = ["IDX_TYPES", "read_idx", "write_idx", "load_idx"]

#: type code -> big-endian numpy dtype
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str) -> bytes:
    path = require_file(path, N_("an IDX file"))
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == _GZIP_MAGIC:
            return gzip.decompress(data)
        return data
    except PermissionError:
        raise DataError(_("{path}: permission denied").format(path=path)) from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(_("{path}: damaged or truncated gzip data ({reason})").format(path=path, reason=exc)) from None


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (native byte order), shape = the file's sizes.

    Raises DataError naming the file for: fewer than 4 header bytes, a bad magic number, an
    unknown type code, zero dimensions, a header cut short, a data part shorter or longer than
    the sizes say, and NaN/inf in float data.
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(ngettext("{path}: truncated IDX file: {n} bytes, the header alone needs 4",
                                 "{path}: truncated IDX file: {n} bytes, the header alone needs 4", len(data)).format(
            path=path, n=len(data)))
    if data[0] != 0 or data[1] != 0:
        raise DataError(_("{path}: not an IDX file: bad magic number 0x{magic} (an IDX file starts "
                          "with two zero bytes, a type code and the number of dimensions)").format(
            path=path, magic=data[:4].hex()))
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        valid = ", ".join(f"0x{c:02X} ({t.name})" for c, t in IDX_TYPES.items())
        raise DataError(_("{path}: unknown IDX data type code 0x{code}; valid: {valid}").format(
            path=path, code=f"{code:02X}", valid=valid))
    if ndim == 0:
        raise DataError(_("{path}: the IDX header declares 0 dimensions; at least 1 is needed").format(path=path))
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DataError(ngettext("{path}: truncated IDX header: {ndim} dimensions need {head} bytes, the file has {n}",
                                 "{path}: truncated IDX header: {ndim} dimensions need {head} bytes, the file has {n}",
                                 ndim).format(path=path, ndim=ndim, head=head, n=len(data)))
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize  # object: no int64 overflow
    found = len(data) - head
    if found < expected:
        raise DataError(ngettext("{path}: truncated IDX file: sizes {shape} of {dtype} need {expected} data "
                                 "bytes, the file has {found}",
                                 "{path}: truncated IDX file: sizes {shape} of {dtype} need {expected} data "
                                 "bytes, the file has {found}", expected).format(
            path=path, shape=shape, dtype=dtype.name, expected=expected, found=found))
    if found > expected:
        raise DataError(ngettext("{path}: {n} unexpected bytes after the data of sizes {shape} "
                                 "(wrong sizes in the header?)",
                                 "{path}: {n} unexpected bytes after the data of sizes {shape} "
                                 "(wrong sizes in the header?)", found - expected).format(
            path=path, n=found - expected, shape=shape))
    arr = np.frombuffer(data, dtype, offset=head).reshape(shape)
    arr = arr.astype(dtype.newbyteorder("="))
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        i = np.unravel_index(int(np.argmin(np.isfinite(arr))), shape)
        raise DataError(_("{path}: NaN or inf at index {index}").format(path=path, index=tuple(int(k) for k in i)))
    return arr


def write_idx(path, array) -> None:
    """Write ``array`` (a dtype of :data:`IDX_TYPES`, at least 1-D) as an IDX file; gzip it when
    ``path`` ends in ``.gz``."""
    arr = np.asarray(array)
    codes = {t.newbyteorder("="): c for c, t in IDX_TYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None or arr.ndim == 0 or arr.ndim > 255:
        raise DataError(ngettext("cannot write dtype {dtype} with {n} dimensions as IDX",
                                 "cannot write dtype {dtype} with {n} dimensions as IDX", arr.ndim).format(
            dtype=arr.dtype, n=arr.ndim))
    payload = (bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
               + np.ascontiguousarray(arr, IDX_TYPES[code]).tobytes())
    path = os.fspath(path)
    with (gzip.open(path, "wb") if path.endswith(".gz") else open(path, "wb")) as f:
        f.write(payload)


def load_idx(images_path, labels_path=None, *, task: str = "auto", classes=None,
             name: str | None = None) -> Dataset:
    """Images (or any items) and their labels from two IDX files, as a :class:`Dataset`.

    ``X`` has shape ``(n, prod(sizes[1:]))`` (an items file of one dimension gives one
    feature), in float64; labels (shape ``(n,)``) are encoded by
    :func:`~deltaprop.data.dataset.encode_labels` (MNIST's ten digits become ten classes).
    Without ``labels_path`` the data set has inputs only, for prediction.
    """
    images_path = os.fspath(images_path)
    images = read_idx(images_path)
    n = images.shape[0]
    if n == 0:
        raise DataError(_("{path}: the IDX file holds 0 items").format(path=images_path))
    X = images.reshape(n, -1).astype(float)
    if X.shape[1] == 0:
        raise DataError(_("{path}: the items have sizes {sizes}, i.e. no values").format(
            path=images_path, sizes=images.shape[1:]))
    base = name or os.path.basename(images_path)
    if labels_path is None:
        return Dataset(X, np.zeros((n, 0)), "unknown", base, classes=classes)
    labels_path = os.fspath(labels_path)
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(_("{path}: a labels file must have 1 dimension (one label per item), this "
                          "one has sizes {sizes}").format(path=labels_path, sizes=labels.shape))
    if len(labels) != n:
        raise DataError(_("{images} holds {items} but {labels} holds {count}").format(
            images=images_path, labels=labels_path, items=ngettext("{n} items", "{n} items", n).format(n=n),
            count=ngettext("{n} labels", "{n} labels", len(labels)).format(n=len(labels))))

    T, task_out, cls = encode_labels(labels, task, classes)
    return Dataset(X, T, task_out, base, target_names=["label"], classes=cls)
