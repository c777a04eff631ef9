"""Data: loaders (CSV, NPY/NPZ, IDX) and the data sets shipped with the package."""

from __future__ import annotations

import os
import re

from ..errors import ConfigError
from ..i18n import gettext as _
from .arrays import load_arrays, read_arrays
from .builtin import BUILTIN, builtin_defaults, builtin_info, load_builtin
from .csvfile import load_csv, read_csv
from .dataset import Dataset, Standardizer, decode_labels, encode_labels, split
from .idx import load_idx, read_idx, write_idx

__all__ = ["BUILTIN", "builtin_defaults", "Dataset", "Standardizer", "builtin_info", "decode_labels",
           "encode_labels", "load_builtin", "load_csv", "read_csv", "load_arrays", "read_arrays",
           "load_idx", "read_idx", "write_idx", "split", "load_data", "data_format"]

# MNIST's own names end in "-idx3-ubyte" / "-idx1-ubyte"; copies often use ".idx3-ubyte" or ".idx".
_IDX_NAME = re.compile(r"(\.idx|[.-]idx\d+-ubyte)$")


def data_format(source) -> str:
    """``"builtin"``, ``"csv"``, ``"arrays"`` or ``"idx"``, from the name (a trailing ``.gz``
    aside). Names with another extension are read as CSV, as they always were."""
    source = os.fspath(source)
    if source in BUILTIN:
        return "builtin"
    name = source.lower()
    name = name[:-3] if name.endswith(".gz") else name
    if name.endswith((".npy", ".npz")):
        return "arrays"
    if _IDX_NAME.search(name):
        return "idx"
    return "csv"


def load_data(source, target=None, *, labels=None, categorical=None, categories=None,
              require_target: bool = True, **kwargs) -> Dataset:
    """Load a built-in set by name or a data file, choosing the reader by the file's name.

    ==========================================  ======================  =======================
    source                                      reader                  ``target`` means
    ==========================================  ======================  =======================
    a name in :data:`BUILTIN`                   :func:`load_builtin`    (ignored)
    ``*.npy``, ``*.npz``                        :func:`load_arrays`     column number / array name
    ``*.idx``, ``*-idx3-ubyte`` (``.gz`` too)   :func:`load_idx`        (labels come from ``labels``)
    anything else (``*.csv``, ``*.csv.gz``)     :func:`load_csv`        column name
    ==========================================  ======================  =======================

    ``categorical`` / ``categories`` (one-hot encoded columns) apply to CSV files only.
    ``require_target=False`` turns a target the file lacks into "inputs only" (for
    prediction on data that may or may not carry its labels). Other keyword arguments
    (``task``, ``classes``, ``name``, ``features``, ``delimiter``) go to the reader.
    """
    fmt = data_format(source)
    if fmt == "builtin":
        return load_builtin(source)
    if fmt != "csv" and (categorical or categories):
        raise ConfigError(_("{file}: categorical columns apply to CSV files only").format(file=source))
    if fmt != "idx" and labels is not None:
        raise ConfigError(_("{file}: a separate labels file goes with IDX images only").format(file=source))
    if fmt == "arrays":
        kwargs.pop("delimiter", None)
        return load_arrays(source, target, require_target=require_target, **kwargs)
    if fmt == "idx":
        # An IDX file has no column names: the model's feature names are x0, x1, ...
        kwargs.pop("features", None)
        kwargs.pop("delimiter", None)
        return load_idx(source, labels, **kwargs)
    return load_csv(source, target, categorical=categorical, categories=categories,
                    require_target=require_target, **kwargs)
