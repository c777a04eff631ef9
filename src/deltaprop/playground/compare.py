"""The three modes side by side: the page's settings run in stochastic, mini-batch and batch
mode from the same seed, hence the same initial weights (drawn before any sample order) and,
in stochastic and mini-batch mode, the same sample order (one permutation per epoch from the
same generator; batch mode uses all samples in data order)."""

from __future__ import annotations

import hashlib

import numpy as np

from ..config import check_value
from ..errors import ConfigError, DeltapropError
from ..i18n import gettext as _
from ..runs import prepare_run
from .session import LIMITS, Session

__all__ = ["compare_modes"]

MODES = ("stochastic", "minibatch", "batch")


def compare_modes(session: Session, epochs) -> dict:
    """Train a copy of the session's run in each mode for ``epochs`` epochs (capped by
    ``LIMITS['compare_epochs']`` and ``LIMITS['compare_updates']``); the session's own run is
    not touched. Returns per mode the loss after each epoch against updates and samples seen,
    the hash of the initial weights and the order of epoch 1, or the error that mode gives."""
    epochs = check_value("epochs", epochs)
    with session.reading():
        cfg = session.config
        n = len(session.run.X)
    if epochs > LIMITS["compare_epochs"]:
        raise ConfigError(_("epochs: {n}; the comparison runs at most {most}").format(
            n=epochs, most=LIMITS["compare_epochs"]))
    if epochs * n > LIMITS["compare_updates"]:
        raise ConfigError(_("epochs: {epochs} epochs of {n} samples is {updates} stochastic updates; the "
                            "comparison runs at most {most} (ask for {fewer} epochs or fewer)").format(
            epochs=epochs, n=n, updates=f"{epochs * n:,}", most=f"{LIMITS['compare_updates']:,}",
            fewer=LIMITS["compare_updates"] // n))
    out = {"epochs": epochs, "samples": n, "modes": {}}
    for mode in MODES:
        try:
            run = prepare_run(cfg.replace(mode=mode, epochs=epochs, out=None, checkpoint=None))
            w0 = hashlib.sha256(run.model.network.flat.tobytes()).hexdigest()[:16]
            first = np.random.Generator(np.random.PCG64())
            first.bit_generator.state = run.trainer.rng.bit_generator.state
            order = first.permutation(n)[:8].tolist() if mode != "batch" else list(range(min(8, n)))
            init = run.model.network.evaluate(run.X, run.T)[0]
            run.fit()
        except DeltapropError as exc:
            out["modes"][mode] = {"error": str(exc)}
            continue
        h = run.trainer.history
        out["modes"][mode] = {
            "initial_weights": w0, "first_order": order, "batch": run.trainer.batch_rows(n),
            "updates": [0] + [int(u) for u in h.updates], "samples": [0] + [int(s) for s in h.samples],
            "loss": [float(init)] + [float(v) for v in h.loss],
            "final_loss": float(h.loss[-1]) if len(h) else float(init)}
    return out
