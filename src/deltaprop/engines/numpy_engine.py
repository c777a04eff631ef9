"""The reference engine: one epoch of updates with vectorised NumPy, any network and optimizer."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NumpyEngine"]


class NumpyEngine:
    """Runs the updates of one epoch through ``Network.loss_and_gradient`` and ``Optimizer.step``.

    Every other engine must give the same weights as this one (float64, to 1e-10).
    """

    name = "numpy"

    def unsupported(self, trainer) -> str | None:
        """None when this engine can run ``trainer``'s set-up, else the reason it cannot."""
        return None

    def run_epoch(self, trainer, X: np.ndarray, T: np.ndarray, order: np.ndarray | None,
                  k: int) -> tuple[float, int | None]:
        """Apply the epoch's updates in place.

        ``order`` is the epoch's sample order (None: data order); ``k`` the batch size.
        Returns the sum over updates of (batch loss x batch size), measured before each
        update, and the 1-based number of the update whose loss was NaN or inf (None if
        all were finite; the epoch stops there without applying it).
        """
        net, opt = trainer.network, trainer.optimizer
        params, chunk = net.params, trainer.chunk_size
        n = X.shape[0]
        # Sample weights (Trainer.fit scales them to sum to n): each batch's loss is their
        # weighted mean, and the running sum adds it times the batch's weight.
        w = getattr(trainer, "sample_weight", None)
        wb = None
        running = 0.0
        for u, start in enumerate(range(0, n, k), start=1):
            if order is None:
                xb, tb = X[start:start + k], T[start:start + k]
                if w is not None:
                    wb = w[start:start + k]
            else:
                idx = order[start:start + k]
                xb, tb = X[idx], T[idx]
                if w is not None:
                    wb = w[idx]
            batch_loss, grads = net.loss_and_gradient(xb, tb, chunk, wb)
            if not math.isfinite(batch_loss):
                return running, u
            running += batch_loss * (xb.shape[0] if wb is None else float(wb.sum()))
            # the batch loss too: iRprop+ and SARPROP use it, and it is already computed
            opt.step(params, grads, loss=batch_loss)
        return running, None
