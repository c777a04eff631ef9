"""Checkpoints: everything a run needs to continue bitwise identically.

A checkpoint is a ``deltaprop-checkpoint`` file in the same container as model files (arrays +
JSON, never pickle, written atomically: temporary file, fsync, rename). It holds the
network's config and weights, the trainer's state (:meth:`Trainer.state_dict`: optimizer
state, the random generator's state, epoch reached, history, callbacks' state) and whatever
the caller needs to rebuild the run (``info``: the CLI keeps the training settings, the data
source and the model's preprocessing there).

Checkpoints are taken at epoch boundaries, so resuming from one repeats nothing and skips
nothing.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np

from .errors import DeltapropError, ModelFileError
from .i18n import gettext as _
from .io import pack, read_npz, unpack, write_npz_atomic
from .network import Network
from .training import Callback, Trainer

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "save_checkpoint", "load_checkpoint", "Checkpointer", "free_name",
           "is_checkpoint"]

CHECKPOINT_FORMAT = "deltaprop-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path, trainer: Trainer, info: dict | None = None) -> None:
    """Write ``trainer``'s full state to ``path`` atomically, replacing an older checkpoint."""
    arrays: dict = {}
    state = pack(trainer.state_dict(), arrays)
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "network": trainer.network.to_config(), "trainer": state, "info": pack(info or {}, arrays, "i")}
    write_npz_atomic(path, arrays, meta, overwrite=True)


def load_checkpoint(path) -> tuple[Network, dict, dict]:
    """Read a checkpoint; returns ``(network, trainer_state, info)``.

    Build a :class:`Trainer` with the same settings around the network and call
    ``trainer.load_state_dict(trainer_state)``.
    """
    meta, arrays = read_npz(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
    try:
        net = Network.from_config(meta["network"])
        state = unpack(meta["trainer"], arrays, str(path))
        info = unpack(meta.get("info", {}), arrays, str(path))
        params = state["params"]
        if params.shape != net.flat.shape or params.dtype != net.dtype:
            raise ModelFileError(_("{path}: weights of shape {shape} {dtype} do not fit the network "
                                   "({net_shape} {net_dtype})").format(
                path=path, shape=params.shape, dtype=params.dtype, net_shape=net.flat.shape, net_dtype=net.dtype))
        for key in ("epoch", "optimizer", "rng", "history", "callbacks", "settings"):
            state[key]  # noqa: B018 - presence check, KeyError below names the missing part
    except ModelFileError:
        raise
    except DeltapropError as exc:
        raise ModelFileError(_("{path}: bad checkpoint: {reason}").format(path=path, reason=exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(_("{path}: bad checkpoint (missing or malformed {what})").format(
            path=path, what=exc)) from None

    return net, state, info


def is_checkpoint(path) -> bool:
    """Whether ``path`` holds a deltaprop checkpoint (only its metadata entry is read; a FIFO
    or device is not opened)."""
    if not os.path.isfile(path):
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["__meta__"].tobytes().decode("utf-8"))
        return isinstance(meta, dict) and meta.get("format") == CHECKPOINT_FORMAT
    except Exception:  # not an archive, not ours, unreadable: in every case not a checkpoint
        return False


def free_name(path) -> str:
    """``path`` where nothing exists under that name, else the first free ``NAME-2.EXT``,
    ``NAME-3.EXT``, ... beside it."""
    path = str(path)
    if not os.path.lexists(path):
        return path
    stem, ext = os.path.splitext(path)
    n = 2
    while os.path.lexists(f"{stem}-{n}{ext}"):
        n += 1
    return f"{stem}-{n}{ext}"


def _claim_free_name(path) -> str:
    """:func:`free_name`, made ours at once (an empty file created exclusively): two runs
    stopped by the same Ctrl-C never take the same name."""
    while True:
        name = free_name(path)
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return name
        except FileExistsError:
            continue


class Checkpointer(Callback):
    """Save a checkpoint every ``every`` epochs (0: never on a schedule) and whenever training
    is asked to stop before its end (a signal, divergence), but not when early stopping ends
    it: that run is finished, its model is the result, and a checkpoint left behind would only
    make the same command refuse to start again ("checkpoint file already exists").

    ``at_end``: also save when training ends, whatever ended it. The CLI sets it where the user
    named the checkpoint file: asking for a file and getting none would be a surprise, and the
    file lets a finished run go on for more epochs with ``--resume``.

    ``keep_existing``: a file already at ``path`` when this checkpointer first saves is left as
    it is, and the checkpoint takes the first free name ``NAME-2.EXT``, ``NAME-3.EXT``, ...
    (:attr:`path` says which). The CLI sets it where the run writes a checkpoint only if it is
    stopped early: a checkpoint an earlier run left under the default name must neither stop
    this run from starting nor be replaced by it."""

    def __init__(self, path, every: int = 1, info: dict | None = None, at_end: bool = False,
                 keep_existing: bool = False):
        self.path, self.every, self.info, self.at_end = path, int(every), info or {}, at_end
        self.keep_existing = keep_existing
        self.saved_epoch = None

    def on_train_end(self, trainer):
        if self.at_end and self.saved_epoch != trainer.epoch:
            self.save(trainer)

    def on_epoch_end(self, trainer, logs):
        finished = any(ev["event"] == "early_stopping" and ev["epoch"] == logs["epoch"]
                       for ev in trainer.history.events[-2:])
        if (self.every and logs["epoch"] % self.every == 0) or (trainer.stop_training and not finished):
            self.save(trainer)

    def save(self, trainer) -> None:
        claimed = None
        if self.keep_existing and self.saved_epoch is None and os.path.lexists(self.path):
            self.path = claimed = _claim_free_name(self.path)
        try:
            save_checkpoint(self.path, trainer, self.info)
        except BaseException:
            if claimed is not None:
                with contextlib.suppress(OSError):
                    os.unlink(claimed)  # the empty placeholder
            raise
        self.saved_epoch = trainer.epoch
