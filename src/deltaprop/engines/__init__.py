"""Engines run the updates of one epoch. The NumPy engine runs everything; compiled engines
(optional extras) run the set-ups they support faster and must give the same weights.

An engine has ``name``, ``unsupported(trainer) -> reason or None`` and
``run_epoch(trainer, X, T, order, k) -> (running loss sum, diverged update or None)``.
Each way an epoch can run is a row of :data:`.paths.PATHS`.

``engine="auto"`` chooses by the estimated work (:func:`worth_compiling`): the compiled
engine costs a fixed start-up (importing numba, loading its cached kernels: about half a
second) and saves a share of every update, so it is chosen only where the saving over the
run pays for that start-up (none where this process has already run the kernels the set-up
needs); otherwise, and wherever numba is missing or the set-up has no
kernel, the NumPy engine runs. Nothing here imports numba.
"""

from __future__ import annotations

from ..errors import ConfigError, unknown_name
from ..i18n import gettext as _
from . import numba_engine
from .numba_engine import NumbaEngine
from .numpy_engine import NumpyEngine

import sys

__all__ = ["ENGINES", "select_engine", "worth_compiling", "AutoEngine"]

#: name -> factory: the compiled engine first (it reports itself unsupported where numba is
#: missing or the set-up has no kernel).
ENGINES = {"numba": NumbaEngine, "numpy": NumpyEngine}

#: The compiled engine's start-up in seconds: importing numba (0.16-0.26 s measured) and
#: loading the cached kernels of one set-up (0.18-0.21 s), rounded up; once numba is
#: imported, loading kernels only.
START_UP_S, START_UP_IMPORTED_S = 0.6, 0.25
#: What the estimate takes of the NumPy engine: Python's share of an update
#: (``loss_and_gradient`` + ``Optimizer.step``: 34-42 us measured on 2-2-1 and 64-64-10,
#: taken lower) and its arithmetic rate (flop/s; 1.2e11 measured at 784-128-10, batch 32).
#: The compiled engine is taken to have no per-update overhead and 1.5 times that rate.
NUMPY_UPDATE_S, NUMPY_FLOPS, COMPILED_SPEED_UP = 25e-6, 1.0e11, 1.5
#: Epochs assumed when the caller does not say how many will run (``Trainer.fit``'s default).
ASSUMED_EPOCHS = 10


def worth_compiling(network, n: int, k: int, epochs: int | None = None, optimizer=None) -> bool:
    """Whether the compiled engine's estimated saving over ``epochs`` epochs of ``n`` rows in
    batches of ``k`` exceeds its start-up (:data:`START_UP_S`; :data:`START_UP_IMPORTED_S`
    once numba is imported; 0 where this process has already run the kernels
    ``optimizer``'s epochs need, :func:`.numba_engine.kernel_key`).

    Per epoch the NumPy engine is estimated at ``ceil(n/k) * NUMPY_UPDATE_S + F / NUMPY_FLOPS``
    and the compiled one at ``F / (COMPILED_SPEED_UP * NUMPY_FLOPS)``, with
    ``F = 6 n W`` the epoch's multiply-adds (forward 2, backward 4 per weight W per row).
    The same for every optimizer: the rule's own passes over the parameters are left out on
    both sides (the compiled rule is one pass, NumPy's Adam or RPROP several), so for any
    rule but SGD the estimate errs towards the NumPy engine, never against it.
    """
    weights = sum(layer.n_in * layer.n_out for layer in network.layers)
    flops = 6.0 * n * weights
    numpy_s = -(-n // k) * NUMPY_UPDATE_S + flops / NUMPY_FLOPS
    compiled_s = flops / (COMPILED_SPEED_UP * NUMPY_FLOPS)
    if optimizer is not None and numba_engine.kernel_key(network, k, optimizer) in numba_engine.LOADED:
        start_up = 0.0
    else:
        start_up = START_UP_IMPORTED_S if "numba" in sys.modules else START_UP_S
    return (numpy_s - compiled_s) * (ASSUMED_EPOCHS if epochs is None else epochs) > start_up


class AutoEngine:
    """``engine="auto"`` where the compiled engine could run the set-up: the choice waits for
    the first epoch, where the data's size is known (:func:`worth_compiling`), and holds for
    the rest of the fit. ``trainer.engine_used`` names what ran."""

    name = "auto"

    def __init__(self, epochs: int | None = None):
        self.epochs = epochs
        self.chosen = None

    def unsupported(self, trainer) -> str | None:
        return None

    def choose(self, network, n: int, k: int, optimizer=None):
        """The engine this fit runs on (decided once, at the first call)."""
        if self.chosen is None:
            self.chosen = (NumbaEngine() if worth_compiling(network, n, k, self.epochs, optimizer)
                           else NumpyEngine())
        return self.chosen

    def run_epoch(self, trainer, X, T, order, k):
        self.choose(trainer.network, len(X), k, trainer.optimizer)
        trainer.engine_used = self.chosen.name
        return self.chosen.run_epoch(trainer, X, T, order, k)


def select_engine(spec, trainer, epochs: int | None = None):
    """Return the engine for ``trainer``: ``"auto"`` the NumPy engine where the compiled one
    cannot run the set-up, else an :class:`AutoEngine` that chooses by the work of the run
    (``epochs``: how many the fit will run, where the caller knows); a name forces that
    engine (ConfigError if it cannot run it)."""
    if not isinstance(spec, str):
        return spec
    if spec == "auto":
        if NumbaEngine().unsupported(trainer) is None:
            return AutoEngine(epochs)
        return NumpyEngine()
    if spec not in ENGINES:
        raise unknown_name("engine", spec, list(ENGINES) + ["auto"])
    engine = ENGINES[spec]()
    reason = engine.unsupported(trainer)
    if reason:
        raise ConfigError(_("engine {name!r} cannot run this set-up: {reason}").format(name=spec, reason=reason))
    return engine
