"""deltaprop's own exception types.

Everything the library raises on purpose derives from :class:`DeltapropError`, so a caller
(the CLI included) can catch one type and show its message as one line.
"""

from __future__ import annotations

from .i18n import N_, gettext as _

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


#: One whole sentence per kind of registry, so that a translation can make its words agree.
_UNKNOWN = {
    "engine": N_("unknown engine {name!r}; valid: {valid}"),
    "init": N_("unknown init {name!r}; valid: {valid}"),
    "activation": N_("unknown activation {name!r}; valid: {valid}"),
    "problem": N_("unknown problem {name!r}; valid: {valid}"),
    "technique": N_("unknown technique {name!r}; valid: {valid}"),
    "built-in data set": N_("unknown built-in data set {name!r}; valid: {valid}"),
    "optimizer": N_("unknown optimizer {name!r}; valid: {valid}"),
    "schedule": N_("unknown schedule {name!r}; valid: {valid}"),
    "loss": N_("unknown loss {name!r}; valid: {valid}"),
}


def unknown_name(kind: str, name: str, valid) -> ConfigError:
    """Build the error for a name missing from a registry, listing the valid names."""
    valid = ", ".join(sorted(valid))
    if kind in _UNKNOWN:
        return ConfigError(_(_UNKNOWN[kind]).format(name=name, valid=valid))
    return ConfigError(f"unknown {kind} {name!r}; valid: {valid}")


def keyword_names(cls) -> list[str] | None:
    """The keyword parameters ``cls(...)`` accepts: its ``__init__``'s, and those of the
    classes above it where an ``__init__`` passes ``**kwargs`` on. None where that cannot be
    told: an ``__init__`` takes ``**kwargs`` and no class above it names them."""
    import inspect

    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters.values()
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                  and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def unknown_keywords(kind: str, name: str, cls, given, skip=()) -> ConfigError | None:
    """The error for keywords in ``given`` that ``cls`` does not take (None where all are known,
    or where its keywords cannot be told), listing those it does, less ``skip`` (parameters set
    through their own flags)."""
    known = keyword_names(cls)
    bad = [] if known is None else [k for k in given if k not in known]
    if not bad:
        return None
    valid = ", ".join(k for k in known if k not in skip) or _("none")
    return ConfigError(_(_UNKNOWN_KEYWORD[kind]).format(name=name, bad=", ".join(repr(k) for k in bad), valid=valid))


_UNKNOWN_KEYWORD = {
    "optimizer": N_("optimizer {name!r} takes no parameter {bad}; its parameters: {valid}"),
    "schedule": N_("schedule {name!r} takes no parameter {bad}; its parameters: {valid}"),
}
