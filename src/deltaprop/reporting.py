"""What a training run shows a person: one line per (thinned) epoch, a progress bar, the final
line. Used by ``deltaprop train``; any front end that wants the same lines can use it too."""

from __future__ import annotations

import json
import math

from .errors import ConfigError
from .i18n import gettext as _, ngettext
from .training import Callback

__all__ = ["EpochPrinter", "want_progress_bar", "format_number", "final_line"]


def format_number(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4g}"


class EpochPrinter(Callback):
    """One line per (thinned) epoch to ``out``, as text or JSON; with ``bar`` a tqdm progress
    bar too. ``every`` 0 means every epoch up to 100 epochs, else about 50 lines."""

    def __init__(self, total: int, every: int, as_json: bool, out, quiet: bool = False, bar: bool = False):
        self.total, self.as_json, self.out, self.quiet = total, as_json, out, quiet
        self.every = every or (1 if total <= 100 else max(1, total // 50))
        self.want_bar, self.bar = bar, None

    def on_train_begin(self, trainer):
        if self.want_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=trainer.epoch, unit="epoch", file=self.out,
                            dynamic_ncols=True, leave=False)
            self._t = trainer.optimizer.t

    def on_epoch_end(self, trainer, logs):
        e = logs["epoch"]
        if self.bar is not None:
            rate = (trainer.optimizer.t - self._t) / max(logs.get("seconds", 0.0), 1e-9)
            self._t = trainer.optimizer.t
            loss = logs.get("loss", float("nan"))
            if isinstance(loss, float) and math.isnan(loss):
                loss = logs["loss_running"]
            self.bar.set_postfix_str(_("loss {loss}, {rate} updates/s").format(
                loss=format_number(loss), rate=f"{rate:,.0f}"), refresh=False)

            self.bar.update(1)
        if self.quiet or not (e % self.every == 0 or e == self.total or e == 1 or trainer.stop_training):
            return
        if self.as_json:
            line = json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in logs.items()})
        else:
            width = len(str(self.total))
            parts = [_("epoch {epoch}/{total}").format(epoch=f"{e:>{width}}", total=self.total)]
            for key, label in (("loss", _("loss")), ("loss_running", _("running")), ("accuracy", _("acc")),
                               ("val_loss", _("val_loss")), ("val_accuracy", _("val_acc"))):
                v = logs.get(key)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    parts.append(f"{label} {format_number(v)}" if "acc" not in key else f"{label} {v:.3f}")
            line = "  ".join(parts)
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def want_progress_bar(progress: str, out, *, quiet: bool = False, as_json: bool = False) -> bool:
    """Whether to draw a bar: ``progress`` is auto (when ``out`` is a terminal), always or never."""
    if quiet or as_json or progress == "never":
        return False
    try:
        import tqdm  # noqa: F401 - optional extra
    except ImportError:
        if progress == "always":
            raise ConfigError(_("--progress always needs tqdm: pip install 'deltaprop[progress]'")) from None
        return False
    return progress == "always" or (hasattr(out, "isatty") and out.isatty())


def final_line(summary: dict) -> str:
    """``final: train loss ..., held-out accuracy ..., N updates in E epochs``; regression adds
    R^2 (the losses are in the epoch lines' units, see :meth:`deltaprop.runs.Run.summary`)."""
    line = [_("final: train loss {loss}").format(loss=format_number(summary["train_loss"]))]
    if summary["train_accuracy"] is not None:
        line.append(_("train accuracy {accuracy}").format(accuracy=f"{summary['train_accuracy']:.2%}"))
    if summary.get("train_r2") is not None:
        line.append(_("train R² {r2}").format(r2=f"{summary['train_r2']:.3f}"))
    if "heldout_loss" in summary:
        line.append(_("held-out loss {loss}").format(loss=format_number(summary["heldout_loss"])))
        if summary["heldout_accuracy"] is not None:
            line.append(_("held-out accuracy {accuracy}").format(accuracy=f"{summary['heldout_accuracy']:.2%}"))
        if summary.get("heldout_r2") is not None:
            line.append(_("held-out R² {r2}").format(r2=f"{summary['heldout_r2']:.3f}"))
    u, e = summary["updates"], summary["epochs"]
    line.append(_("{updates} in {epochs}").format(
        updates=ngettext("{n} update", "{n} updates", u).format(n=u),
        epochs=ngettext("{n} epoch", "{n} epochs", e).format(n=e)))
    return ", ".join(line)
