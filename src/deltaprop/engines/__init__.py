"""Engines run the updates of one epoch. The NumPy engine runs everything; compiled engines
(optional extras) run the set-ups they support faster and must give the same weights.

An engine has ``name``, ``unsupported(trainer) -> reason or None`` and
``run_epoch(trainer, X, T, order, k) -> (running loss sum, diverged update or None)``.
"""

from __future__ import annotations

from ..errors import ConfigError, unknown_name
from .numba_engine import NumbaEngine
from .numpy_engine import NumpyEngine

__all__ = ["ENGINES", "select_engine"]

#: name -> factory, in order of preference for ``engine="auto"``: the compiled engine first
#: (it reports itself unsupported where numba is missing or the set-up has no kernel).
ENGINES = {"numba": NumbaEngine, "numpy": NumpyEngine}


def select_engine(spec, trainer):
    """Return the engine for ``trainer``: ``"auto"`` picks the first in ``ENGINES`` that
    supports the set-up; a name forces that engine (ConfigError if it cannot run it)."""
    if not isinstance(spec, str):
        return spec
    if spec == "auto":
        for factory in ENGINES.values():
            engine = factory()
            if engine.unsupported(trainer) is None:
                return engine
    if spec not in ENGINES:
        raise unknown_name("engine", spec, list(ENGINES) + ["auto"])
    engine = ENGINES[spec]()
    reason = engine.unsupported(trainer)
    if reason:
        raise ConfigError(f"engine {spec!r} cannot run this set-up: {reason}")
    return engine
