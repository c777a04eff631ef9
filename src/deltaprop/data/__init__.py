"""Data: loaders (CSV; more formats to come) and the data sets shipped with the package."""

from .builtin import BUILTIN, builtin_defaults, builtin_info, load_builtin
from .csvfile import load_csv, read_csv
from .dataset import Dataset, Standardizer, decode_labels, encode_labels, split

__all__ = ["BUILTIN", "builtin_defaults", "Dataset", "Standardizer", "builtin_info", "decode_labels", "encode_labels",
           "load_builtin", "load_csv", "read_csv", "split", "load_data"]


def load_data(source: str, target: str | None = None, **kwargs) -> Dataset:
    """A built-in set by name, or a CSV file (``target`` names its target column)."""
    if source in BUILTIN:
        return load_builtin(source)
    return load_csv(source, target, **kwargs)
