"""Model files: arrays plus JSON metadata in one ``.npz`` (zip) file. Never pickle.

Layout of a file (format ``deltaprop-model``, version ``FORMAT_VERSION``):

* ``__meta__``: uint8 array holding UTF-8 JSON: format name and version, the network config
  (layers, activations, loss, dtype), and what the user attached (class labels, feature names,
  standardisation, training settings);
* ``params``: the network's flat parameter vector;
* any further named arrays passed by the caller (e.g. optimizer state in checkpoints).

Saving writes a temporary file in the same folder, fsyncs it and renames it over the target,
so a crash leaves the old file or the new one, never half of one. An existing file is only
replaced with ``overwrite=True``. Loading uses ``allow_pickle=False``: nothing in the file is
ever executed.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import DeltapropError, ModelFileError
from .i18n import gettext as _, ngettext
from .network import Network

__all__ = ["FORMAT", "FORMAT_VERSION", "save_model", "load_model", "write_npz_atomic", "write_bytes_atomic", "write_text_atomic", "read_npz",
           "all_or_nothing",
           "pack", "unpack"]

FORMAT = "deltaprop-model"
FORMAT_VERSION = 1


def pack(obj, arrays: dict, prefix: str = "a"):
    """Split a nested structure into JSON-able data and named arrays.

    Each ndarray is stored in ``arrays`` under a generated name and replaced by
    ``{"__array__": name}``; numpy scalars become Python numbers. Inverse: :func:`unpack`.
    """
    if isinstance(obj, np.ndarray):
        name = f"{prefix}{len(arrays)}"
        arrays[name] = obj
        return {"__array__": name}
    if isinstance(obj, dict):
        return {str(k): pack(v, arrays, prefix) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [pack(v, arrays, prefix) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def unpack(obj, arrays: dict, where: str = "file"):
    """Inverse of :func:`pack`; a reference to a missing array raises ModelFileError."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            name = obj["__array__"]
            if name not in arrays:
                raise ModelFileError(_("{file}: refers to array {name!r}, which is not in the file").format(
                    file=where, name=name))
            return arrays[name]
        return {k: unpack(v, arrays, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, arrays, where) for v in obj]
    return obj


def _ordinary_mode(fd: int) -> None:
    """mkstemp makes files readable by their owner only; give the final file the mode a plain
    open() would (0666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)


#: The writes of the innermost :func:`all_or_nothing` block: [(temporary file, final path)].
_STAGED: contextvars.ContextVar = contextvars.ContextVar("deltaprop_staged_writes", default=None)


@contextlib.contextmanager
def all_or_nothing():
    """Within this block the atomic writers (:func:`write_npz_atomic`, :func:`write_text_atomic`,
    :func:`write_bytes_atomic`) write and fsync their temporary files but rename none; at the
    block's end every one is renamed into place, and if anything in the block fails (a full
    disk at the third file), every temporary file is removed and no output of the block
    exists or is replaced. A command's several outputs (a model and its side files, a
    comparison's tables and plots) are thus all there or none. Renames take no space, so once
    the data are written the block's end does not fail for want of it; should a rename be
    refused anyway (a folder made read-only meanwhile), the files renamed before it stay and
    the other temporary files are removed."""
    outer = _STAGED.get()
    staged: list = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _path in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        _STAGED.reset(token)
    if outer is not None:  # a block within a block: the outer one decides
        outer.extend(staged)
        return
    done = 0
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
            done += 1
    except BaseException as exc:  # a rename refused (rare: EBUSY, a folder made read-only meanwhile)
        for tmp, _path in staged[done:]:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):  # the files renamed before it stay: a rename cannot be undone
            raise ModelFileError(_("{path}: cannot be written ({reason})").format(
                path=staged[done][1], reason=exc.strerror or exc)) from None
        raise
    for folder in dict.fromkeys(os.path.dirname(os.path.abspath(path)) for _tmp, path in staged):
        _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the renames in ``folder`` durable."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _write_atomic(path, write, *, overwrite: bool, binary: bool = True) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file in the same folder, fsync
    it, rename it over ``path`` and fsync the folder: a crash leaves the old file or the new
    one, never half of one. An existing ``path`` is only replaced with ``overwrite``. Inside
    :func:`all_or_nothing` the rename waits for the block's end."""
    path = os.fspath(path)
    check_writable(path, overwrite=overwrite)
    folder = os.path.dirname(os.path.abspath(path))
    staged = _STAGED.get()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".deltaprop-", suffix=".tmp", dir=folder)
        _ordinary_mode(fd)
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if staged is not None:
            staged.append((tmp, path))
            return
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # disk full, file size limit, a folder gone read-only
            raise ModelFileError(_("{path}: cannot be written ({reason})").format(
                path=path, reason=exc.strerror or exc)) from None
        raise
    _fsync_folder(folder)


def write_npz_atomic(path, arrays: dict, meta: dict, *, overwrite: bool = False) -> None:
    """Write ``arrays`` and JSON ``meta`` to ``path`` atomically (temp file, fsync, rename)."""
    payload = dict(arrays)
    payload["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _write_atomic(path, lambda f: np.savez(f, **payload), overwrite=overwrite)


def write_bytes_atomic(path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; an existing file only with ``overwrite``."""
    _write_atomic(path, lambda f: f.write(data), overwrite=overwrite)


def write_text_atomic(path, text: str, *, overwrite: bool = True) -> None:
    """Write a text file atomically (histories, configs, reports); an existing file is
    replaced unless ``overwrite`` is false."""
    _write_atomic(path, lambda f: f.write(text), overwrite=overwrite, binary=False)


def check_writable(path, *, overwrite: bool = False) -> None:
    """Raise ModelFileError unless ``path`` could be written now: its folder exists and is
    writable, the path is not a folder, and an existing file may be replaced (``overwrite``).
    Run before the work whose result goes there, so that nothing is computed only to be lost."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ModelFileError(_("{path}: is a directory; give a file name").format(path=path))
    if os.path.lexists(path) and not overwrite:  # lexists: a dangling link is the user's too
        raise ModelFileError(_EXISTS().format(path=path))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ModelFileError(_("{path}: folder {folder} does not exist").format(path=path, folder=folder))
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    name = len(os.fsencode(os.path.basename(path)))
    if name > longest:
        raise ModelFileError(ngettext("{path}: file name too long ({name} bytes; at most {longest} here)",
                                      "{path}: file name too long ({name} bytes; at most {longest} here)",
                                      name).format(path=path, name=name, longest=longest))
    try:  # the one sure test (permissions, read-only mounts, /proc): make a file there
        fd, probe = tempfile.mkstemp(prefix=".deltaprop-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ModelFileError(_("{path}: folder {folder} is not writable ({reason})").format(
            path=path, folder=folder, reason=exc.strerror or exc)) from None


def _EXISTS() -> str:
    return _("{path} already exists; use --force to overwrite it (overwrite=True in Python)")


def check_writable_folder(folder, names=(), *, overwrite: bool = False) -> None:
    """Raise ModelFileError unless the files ``names`` could be written into ``folder`` now
    (it is made if missing, so its nearest existing parent must be writable)."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ModelFileError(_("{folder}: is a file, not a folder").format(folder=folder))
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        check_writable(os.path.join(probe, ".deltaprop-check"), overwrite=True)
    except ModelFileError:
        raise ModelFileError(_("{folder}: folder {probe} is not writable").format(folder=folder, probe=probe)) from None
    for name in names:
        path = os.path.join(folder, name)
        if os.path.lexists(path) and not overwrite:
            raise ModelFileError(_EXISTS().format(path=path))


def read_npz(path, expected_format: str = FORMAT, max_version: int = FORMAT_VERSION) -> tuple[dict, dict]:
    """Read a file written by :func:`write_npz_atomic`; return (meta, arrays). Raises ModelFileError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(_("{path}: no such file").format(path=path))
    if os.path.getsize(path) == 0:
        raise ModelFileError(_("{path}: the file is empty").format(path=path))
    with open(path, "rb") as f:
        magic = f.read(6)
    if len(magic) > 1 and magic[0] == 0x80 and 2 <= magic[1] <= 5:  # a pickle's protocol header
        raise ModelFileError(_PICKLED().format(path=path))
    if not (magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x93NUMPY")):
        raise ModelFileError(_("{path}: not a deltaprop model file (not an .npz archive)").format(path=path))
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ModelFileError(_("{path}: a bare .npy array, not a deltaprop model file").format(path=path))
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile) as exc:
        if "pickle" in str(exc).lower():
            raise ModelFileError(_PICKLED().format(path=path)) from None
        raise ModelFileError(_("{path}: not a readable deltaprop file (truncated or corrupt: {reason})").format(
            path=path, reason=exc)) from None
    except ModelFileError:
        raise
    except Exception as exc:  # zlib.error and friends from a damaged archive
        raise ModelFileError(_("{path}: corrupt file ({kind}: {reason})").format(
            path=path, kind=exc.__class__.__name__, reason=exc)) from None
    if "__meta__" not in arrays:
        raise ModelFileError(_("{path}: no deltaprop metadata in the file").format(path=path))
    raw = arrays.pop("__meta__")
    bad = [k for k, v in arrays.items() if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiub"]
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or bad:
        raise ModelFileError(_("{path}: unexpected entries in the file ({names})").format(
            path=path, names=", ".join(bad) or "__meta__"))
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(_("{path}: metadata is not valid JSON ({reason})").format(path=path, reason=exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        raise ModelFileError(_("{path}: not a {expected} file (format {found!r})").format(
            path=path, expected=expected_format, found=meta.get("format") if isinstance(meta, dict) else None))
    version = meta.get("version")
    if not isinstance(version, int):
        raise ModelFileError(_("{path}: missing or bad format version {version!r}").format(path=path, version=version))
    if version > max_version:
        raise ModelFileError(_("{path}: written by a newer deltaprop (format version {version}; this one "
                               "reads up to {max_version}); upgrade deltaprop to load it").format(
            path=path, version=version, max_version=max_version))
    return meta, arrays


def _PICKLED() -> str:
    return _("{path}: contains pickled objects, which deltaprop never loads")


def save_model(path, network: Network, *, info: dict | None = None, arrays: dict | None = None,
               overwrite: bool = False) -> None:
    """Save ``network`` (and JSON-serialisable ``info``) to ``path``.

    ``network`` may also be a :class:`~deltaprop.model.Model` (its preprocessing, classes and
    names are saved with it, as :meth:`Model.save` does) or a fitted estimator of
    :mod:`deltaprop.sklearn` (its ``to_model()``): the file then works with ``deltaprop predict``."""
    if not isinstance(network, Network) and callable(getattr(network, "to_model", None)):
        network = network.to_model()  # a fitted estimator (an unfitted one raises NotFittedError)
    if not isinstance(network, Network) and isinstance(getattr(network, "network", None), Network) \
            and callable(getattr(network, "info", None)):
        info = network.info() | (info or {})  # a Model: the network with what predicting needs
        network = network.network
    if not isinstance(network, Network):
        raise TypeError(_("save_model saves a Network, a Model or a fitted deltaprop estimator, "
                          "not {kind}").format(kind=type(network).__name__))
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "network": network.to_config(),
            "info": info or {}}
    write_npz_atomic(path, {"params": network.flat, **(arrays or {})}, meta, overwrite=overwrite)


def load_model(path) -> tuple[Network, dict]:
    """Load a model file; returns ``(network, info)``."""
    meta, arrays = read_npz(path)
    try:
        net = Network.from_config(meta["network"])
    except DeltapropError as exc:
        raise ModelFileError(_("{path}: bad network description: {reason}").format(path=path, reason=exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(_("{path}: bad network description ({kind}: {reason})").format(
            path=path, kind=exc.__class__.__name__, reason=exc)) from None
    params = arrays.get("params")
    if params is None:
        raise ModelFileError(_("{path}: no parameter array in the file").format(path=path))
    if params.shape != net.flat.shape or params.dtype != net.dtype:
        raise ModelFileError(_("{path}: parameters have shape {shape} and dtype {dtype}, "
                               "but the network needs {net_shape} {net_dtype}").format(
            path=path, shape=params.shape, dtype=params.dtype, net_shape=net.flat.shape, net_dtype=net.dtype))
    if not np.all(np.isfinite(params)):
        raise ModelFileError(_("{path}: parameters contain NaN or inf").format(path=path))
    net.flat[...] = params
    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise ModelFileError(_("{path}: bad info section").format(path=path))

    return net, info
