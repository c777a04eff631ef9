r"""Data sets cut into partitions: a folder or a glob of NPY or CSV files with the same columns.

``--data parts/`` (every ``.npy``, ``.csv`` or ``.csv.gz`` file in the folder) or
``--data 'parts/*.csv'`` (a glob, quoted so the shell leaves it alone) names the partitions, in
sorted file-name order; their rows follow one another in that order. Without a cluster they are
read here, one after the other, into one :class:`~deltaprop.data.Dataset`; with ``--dask`` each
worker reads its own (:mod:`deltaprop.distributed.data`) with the same functions, so both see
the same rows, the same task and the same classes.

Classes are the union of every partition's labels (a partition may lack one), sorted as
:func:`~deltaprop.data.dataset.encode_labels` sorts them; task ``auto`` gives classification
only where every partition reads as one and the union still does (integer labels: at most
:data:`~deltaprop.data.dataset.MAX_AUTO_CLASSES` values).

Standardisation statistics come from per-partition moments combined in partition order by the
pairwise formula of Chan, Golub and LeVeque (1979): for parts :math:`a, b` with counts
:math:`n_a, n_b`, means :math:`\bar x_a, \bar x_b` and sums of squared deviations
:math:`M_{2,a}, M_{2,b}`, with :math:`\delta = \bar x_b - \bar x_a` and :math:`n = n_a + n_b`,

.. math:: \bar x = \bar x_a + \delta\,n_b/n, \qquad M_2 = M_{2,a} + M_{2,b} + \delta^2 n_a n_b / n,

and :math:`\sigma = \sqrt{M_2/n}` (the population deviation :class:`Standardizer` uses). No
large sums of squares are subtracted, so the result equals one pass over all rows to rounding.
"""

from __future__ import annotations

import glob
import hashlib
import os

import numpy as np

from ..errors import ConfigError, DataError
from ..i18n import gettext as _
from .dataset import MAX_AUTO_CLASSES, Dataset, Standardizer, decode_labels, encode_labels

__all__ = ["is_partitioned", "partition_files", "read_partition", "partition_meta", "unify", "reencode",
           "load_partitions", "moments", "combine_moments", "standardizer_from_moments", "partitioned_fingerprint"]

_GLOB_CHARS = "*?["
_SUFFIXES = {".npy": "npy", ".csv": "csv", ".csv.gz": "csv"}


def is_partitioned(source) -> bool:
    """Whether ``--data`` names partitions: a folder or a glob pattern."""
    source = os.fspath(source)
    # a file whose name holds a glob character is that file
    return os.path.isdir(source) or (not os.path.exists(source) and any(c in source for c in _GLOB_CHARS))


def _kind(path: str) -> str | None:
    name = path.lower()
    return next((k for s, k in _SUFFIXES.items() if name.endswith(s)), None)


def partition_files(source) -> list[str]:
    """The partition files of a folder (its ``.npy``, ``.csv``, ``.csv.gz`` files) or a glob,
    sorted by name. DataError when there are none, or when NPY and CSV files are mixed."""
    source = os.fspath(source)
    if os.path.isdir(source):
        files = sorted(os.path.join(source, f) for f in os.listdir(source)
                       if _kind(f) and os.path.isfile(os.path.join(source, f)))
        if not files:
            raise DataError(_("{file}: the folder holds no .npy, .csv or .csv.gz partitions").format(file=source))
    else:
        files = sorted(f for f in glob.glob(source) if os.path.isfile(f))
        if not files:
            raise DataError(_("{file}: no files match this pattern").format(file=source))
        odd = [f for f in files if not _kind(f)]
        if odd:
            raise DataError(_("{file}: a partition must be a .npy, .csv or .csv.gz file").format(file=odd[0]))
    kinds = {_kind(f) for f in files}
    if len(kinds) > 1:
        first = {k: next(f for f in files if _kind(f) == k) for k in kinds}
        raise DataError(_("{file}: the partitions mix formats ({npy} is NPY, {csv} is CSV); use one format").format(
            file=source, npy=first["npy"], csv=first["csv"]))
    return files


def read_partition(path: str, target, task: str = "auto") -> Dataset:
    """One partition as a :class:`Dataset`, read by the file's own reader (CSV through
    :func:`deltaprop.data.load_data`), its classes those of this file only (see :func:`reencode`)."""
    from . import load_data

    try:
        ds = load_data(path, target, task=task)
    except DataError as exc:
        one = getattr(exc, "classes", None)
        if one is None or len(one) != 1:
            raise
        # A partition may hold one class of several; a placeholder second class lets the
        # reader encode it, and reencode() maps it into the whole set's classes.
        ds = load_data(path, target, task="classification", classes=[*one, _NO_CLASS])
    ds.name = path
    return ds


#: The placeholder second class of a partition that holds one class (never a label).
_NO_CLASS = "\x00deltaprop: no class"


def partition_meta(ds: Dataset) -> dict:
    """What the driver needs of a partition to check and unify them: columns, task, labels."""
    labels = None
    if ds.task == "classification":
        labels = [c for c in ds.classes if c != _NO_CLASS]
    return {"name": ds.name, "rows": len(ds), "features": list(ds.feature_names), "targets": list(ds.target_names),
            "n_features": ds.n_features, "n_outputs": ds.n_outputs, "task": ds.task, "classes": labels}


def unify(metas: list[dict], task: str = "auto") -> tuple[str, list | None]:
    """``(task, classes)`` for all partitions, after checking that they have the same columns
    (DataError naming the first file that differs from the first partition)."""
    first = metas[0]
    for m in metas[1:]:
        for key in ("features", "targets"):
            if m[key] != first[key]:
                a, b = first[key], m[key]
                diff = [c for c in b if c not in a] or [c for c in a if c not in b]
                detail = _("; it has {names}").format(names=", ".join(map(str, b[:8]))) if not diff else \
                    (_(" (extra: {name})") if diff[0] in b else _(" (missing: {name})")).format(name=diff[0])
                text = (_("{file}: its feature columns differ from those of {first}{detail}") if key == "features"
                        else _("{file}: its target columns differ from those of {first}{detail}"))
                raise DataError(text.format(file=m["name"], first=first["name"], detail=detail))
    tasks = {m["task"] for m in metas}
    if tasks == {"regression"} or (len(tasks) > 1 and task != "classification"):
        if any(m["classes"] and not all(_is_number(c) for c in m["classes"]) for m in metas):
            bad = next(m for m in metas if m["classes"] and not all(_is_number(c) for c in m["classes"]))
            raise DataError(_("{file}: class names in a target that other partitions hold as numbers").format(
                file=bad["name"]))
        return "regression", None
    classes = sorted({c for m in metas for c in m["classes"]}, key=lambda v: (type(v).__name__, v))
    numeric = all(_is_number(c) for c in classes)
    if task == "auto" and numeric and len(classes) > MAX_AUTO_CLASSES:
        return "regression", None
    return "classification", classes


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def reencode(ds: Dataset, task: str, classes) -> Dataset:
    """``ds`` with its targets encoded for the whole set's ``task`` and ``classes``."""
    if ds.task == task and ds.classes == classes:
        return ds
    if ds.task == "classification":
        labels = decode_labels(ds.T, ds.classes)
        if task == "regression":
            labels = labels.astype(float)
        T, _, _ = encode_labels(labels, task, classes)
    else:
        T = ds.T
    return Dataset(ds.X, T, task, ds.name, ds.feature_names, ds.target_names, classes, ds.description)


def load_partitions(source, target, task: str = "auto") -> Dataset:
    """All partitions read here, checked, unified and put one after the other. The returned
    set's ``partition_rows`` lists each file's row count."""
    files = partition_files(source)
    parts = [read_partition(f, target, task) for f in files]
    task_all, classes = unify([partition_meta(p) for p in parts], task)
    parts = [reencode(p, task_all, classes) for p in parts]
    first = parts[0]
    ds = Dataset(np.concatenate([p.X for p in parts]), np.concatenate([p.T for p in parts]), task_all,
                 os.fspath(source), first.feature_names, first.target_names, classes)
    ds.partition_rows = [len(p) for p in parts]
    return ds


def moments(A) -> tuple[int, np.ndarray, np.ndarray]:
    r"""``(n, mean, M2)`` per column of ``A`` (float64), :math:`M_2 = \sum (x - \bar x)^2`."""
    A = np.asarray(A, dtype=np.float64)
    n = len(A)
    if n == 0:
        return 0, np.zeros(A.shape[1]), np.zeros(A.shape[1])
    mean = A.mean(axis=0)
    return n, mean, ((A - mean) ** 2).sum(axis=0)


def combine_moments(parts) -> tuple[int, np.ndarray, np.ndarray]:
    """Chan et al.'s pairwise combination of :func:`moments` results, in the order given."""
    n, mean, m2 = parts[0]
    mean, m2 = np.array(mean, dtype=np.float64), np.array(m2, dtype=np.float64)
    for nb, mb, m2b in parts[1:]:
        if nb == 0:
            continue
        if n == 0:
            n, mean, m2 = nb, np.array(mb, dtype=np.float64), np.array(m2b, dtype=np.float64)
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta ** 2 * (n * nb / total)
        n = total
    return n, mean, m2


def standardizer_from_moments(n: int, mean, m2) -> Standardizer:
    """The :class:`Standardizer` of data with these moments (constant columns only centred)."""
    if n == 0:
        raise ConfigError(_("no rows to compute standardisation statistics from"))
    sd = np.sqrt(np.maximum(np.asarray(m2, float), 0.0) / n)
    return Standardizer(np.asarray(mean, float), np.where(sd > 0, sd, 1.0))


def partitioned_fingerprint(parts) -> str:
    """The fingerprint of partitioned training data: SHA-256 over the partitions' own
    fingerprints (:func:`deltaprop.runs.data_fingerprint` of each one's training rows), the
    same whether the partitions were read here or by a cluster's workers."""
    return hashlib.sha256("".join(parts).encode()).hexdigest()
