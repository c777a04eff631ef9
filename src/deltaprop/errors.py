"""deltaprop's own exception types.

Everything the library raises on purpose derives from :class:`DeltapropError`, so a caller
(the CLI included) can catch one type and show its message as one line.
"""

from __future__ import annotations

__all__ = [
    "DeltapropError",
    "ConfigError",
    "DataError",
    "ModelFileError",
]


class DeltapropError(Exception):
    """Base class of every error deltaprop raises deliberately."""


class ConfigError(DeltapropError, ValueError):
    """A setting is invalid: an unknown name, a value out of range, an impossible pairing."""


class DataError(DeltapropError, ValueError):
    """Input data is unusable: unreadable file, bad cell, NaN/inf, wrong width, empty set."""


class ModelFileError(DeltapropError, ValueError):
    """A model or checkpoint file is missing, corrupt, from a newer format, or would be overwritten."""


def unknown_name(kind: str, name: str, valid) -> ConfigError:
    """Build the error for a name missing from a registry, listing the valid names."""
    return ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
