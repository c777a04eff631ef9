"""``deltaprop train``: flags derived from the settings table (:mod:`deltaprop.config`), the run
from :mod:`deltaprop.runs`, lines from :mod:`deltaprop.reporting`; here only what a process
adds: precedence of flags over a --config file, and signals."""

from __future__ import annotations

import contextlib
import json
import signal
import sys

from .cli import float_arg, int_arg
from .config import DEFAULTS, SETTINGS, read_toml, resolve
from . import i18n
from .i18n import N_, gettext as _, ngettext
from .errors import DeltapropError, ModelFileError
from .io import all_or_nothing
from .reporting import EpochPrinter, final_line, want_progress_bar
from .runs import check_outputs, checkpoint_certain, load_resume, prepare_run, run_checkpoint

_GROUPS = {"data": N_("data"), "network": N_("network"), "training": N_("training"),
           "optimizer": N_("optimizer and techniques (see docs/techniques.md)"),
           "output": N_("output and checkpoints")}
_TASKS = (N_("classification"), N_("regression"), N_("unknown"))  # the data line names the task in words


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown_default(name: str) -> str:
    v = DEFAULTS.to_dict()[name]
    return "" if v is None or isinstance(v, bool) else " " + _("(default: {value})").format(
        value=v if v != "" else _("none"))


def _add_setting(group, name: str, s) -> None:
    """One flag for one setting of the table; every default the flag falls back to is shown."""
    if s.file_only:
        return
    kw = {"dest": name, "help": _(s.help) + _shown_default(name)}
    if s.kind == "bool":
        negate = s.flag == "negate"
        group.add_argument(f"--no-{name.replace('_', '-')}" if negate else _flag(name), action="store_const",
                           const=not negate, help=_("do not {what}").format(what=_(s.help)) if negate else _(s.help),
                           dest=name)
        return
    if s.kind in ("int", "float"):
        kw["type"] = int_arg if s.kind == "int" else float_arg
    if s.kind == "choice":
        kw["choices"] = s.valid_choices()
    if s.kind == "choices":
        kw["metavar"] = "{" + ",".join(s.valid_choices()) + "}[,...]"
    if s.kind == "pairs":
        kw["action"] = "append"
    if s.const is not None:
        kw |= {"nargs": "?", "const": s.const}
    if s.metavar:
        kw["metavar"] = s.metavar
    group.add_argument(_flag(name), **kw)


def register(sub) -> None:
    t = sub.add_parser("train", help=_("train a network on a data file or a built-in data set"),
                       description=_("Train a network. Flags left out take the built-in data set's "
                                     "recommended value (deltaprop datasets), else the general default shown."))
    groups = {key: t.add_argument_group(_(title)) for key, title in _GROUPS.items()}
    for name, s in SETTINGS.items():
        _add_setting(groups[s.group], name, s)
    t.add_argument("--config", metavar="FILE.toml", help=_("read settings from a TOML file whose keys are these "
                                                           "flags' long names; flags given override it"))
    t.add_argument("--resume", metavar="CKPT", help=_("continue a checkpointed run to the same result as an "
                                                      "uninterrupted one (--epochs may raise the total)"))
    t.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    given = {k: getattr(args, k) for k in SETTINGS}
    resume, file_settings = None, {}
    if args.resume:
        cfg, resume = load_resume(args.resume, given)
    else:
        file_settings = read_toml(args.config) if args.config else {}
        cfg = resolve(given, file_settings, label=_flag)
    check_outputs(cfg, resumed_from=args.resume)
    with _cluster(cfg) as engine:
        return _run(args, cfg, resume, engine, given, file_settings)


def _run(args, cfg, resume, engine, given, file_settings) -> int:
    out = sys.stdout
    printer = EpochPrinter(cfg.epochs, cfg.print_every, cfg.json, out, cfg.quiet,
                           want_progress_bar(cfg.progress, out, quiet=cfg.quiet, as_json=cfg.json))
    # the settings keep the checkpoint only where the user named one, so that the saved
    # OUT.config.toml repeats the run without naming (and then refusing) this run's file
    run = prepare_run(cfg, callbacks=[printer], checkpoint=run_checkpoint(cfg, args.resume), resume=resume,
                      client=getattr(engine, "client", None))
    trainer, ds = run.trainer, run.dataset
    # a named checkpoint, or the one resumed from, is written at the end too
    run.checkpointer.at_end = cfg.checkpoint is not None or args.resume is not None
    run.checkpointer.keep_existing = not (checkpoint_certain(cfg, args.resume) or cfg.force)
    if engine is not None:
        trainer.engine = engine
    if not cfg.json and not cfg.quiet:
        print(_("data: {name} ({train} training, {heldout} held-out samples, {features}, {task}{classes})").format(
            name=ds.name, train=len(run.train), heldout=len(run.validation) if run.validation else 0,
            features=ngettext("{n} feature", "{n} features", ds.n_features).format(n=ds.n_features),
            task=_(ds.task), classes=", " + ngettext("{n} class", "{n} classes", len(ds.classes)).format(
                n=len(ds.classes)) if ds.classes else ""), file=out)
        print(run.describe(), file=out)
        for note in run.notes(given, file_settings):
            print(note, file=out)
        if resume is not None:
            print(_("resumed from {file} after epoch {epoch}").format(file=args.resume, epoch=trainer.epoch), file=out)
    resumed_epoch = trainer.epoch  # (the epoch a resumed run's file holds)
    with _StopOnSignal(trainer) as stop:
        try:
            run.fit()
        except ModelFileError as exc:  # a checkpoint that no longer fits on the disk
            if run.checkpointer.saved_epoch is None:
                raise
            raise _kept(exc, run.checkpointer) from None
        except DeltapropError as exc:  # e.g. the Dask scheduler lost: say how to go on
            if not cfg.dask:
                raise
            ck = run.checkpointer
            epoch = ck.saved_epoch if ck.saved_epoch is not None else (resumed_epoch if args.resume else None)
            if epoch is None:
                raise type(exc)(_("{reason}; no checkpoint was written (--checkpoint-every N keeps one every N "
                                  "epochs)").format(reason=exc)) from None
            raise type(exc)(_("{reason}; the checkpoint of epoch {epoch} is in {file}: resume with deltaprop train "
                              "--resume {file} (with --dask to use a cluster again, without it on this machine)").format(
                reason=exc, epoch=epoch, file=ck.path)) from None
    if stop.signum is not None:
        if run.checkpointer.saved_epoch != trainer.epoch:
            run.checkpointer.save(trainer)
        name = signal.Signals(stop.signum).name
        print(_("deltaprop: interrupted by {signal} after epoch {epoch} of {total}; checkpoint saved to {file}. "
                "Resume with: deltaprop train --resume {file}").format(signal=name, epoch=trainer.epoch,
                                                                       total=cfg.epochs, file=run.checkpointer.path),
              file=sys.stderr)
        return 128 + stop.signum
    for ev in trainer.history.events:
        if ev["event"] != "divergence":
            print(_("note: epoch {epoch}: {detail}").format(epoch=ev["epoch"], detail=i18n.event_text(ev)), file=out)
    summary = run.summary()
    if cfg.out:
        try:
            with all_or_nothing():  # the model and its two side files, or none of them
                summary["model"] = run.save()
        except ModelFileError as exc:  # a disk that filled during training: keep the work
            if not _keep_in_checkpoint(run):
                raise
            raise _kept(exc, run.checkpointer) from None
    if cfg.json:
        print(json.dumps({"final": summary}), file=out)
    else:
        print(final_line(summary), file=out)
        print(_("model saved to {file}").format(file=cfg.out) if cfg.out
              else _("model not saved (use --out FILE to keep it)"), file=out)
    if trainer.diverged:
        ev = next(e for e in trainer.history.events if e["event"] == "divergence")
        print(_("deltaprop: training diverged: {detail}").format(detail=i18n.event_text(ev)), file=sys.stderr)
        return 1
    return 0


def _keep_in_checkpoint(run) -> bool:
    """Whether the trained run's checkpoint holds its last epoch once its model could not be
    saved: the one written at that epoch already, else one written now (False where that
    fails too). Resuming from it trains no more epochs and writes the model."""
    ck, trainer = run.checkpointer, run.trainer
    if ck.saved_epoch != trainer.epoch:
        try:
            ck.save(trainer)
        except ModelFileError:
            return False
    return True


def _kept(exc, ck) -> ModelFileError:
    """``exc`` (a write that failed, a full disk) with where the work is kept: the checkpoint
    of the epoch ``ck`` last saved, which ``--resume`` continues once there is room."""
    return ModelFileError(_("{reason}; the checkpoint of epoch {epoch} is kept in {file}: make room, then "
                            "resume with deltaprop train --resume {file}").format(
        reason=exc, epoch=ck.saved_epoch, file=ck.path))


@contextlib.contextmanager
def _cluster(cfg):
    """With --dask: the engine that runs the updates data-parallel on that cluster
    (deltaprop.distributed), the cluster shut down (local:N) or left (tcp://) at the end."""
    if not cfg.dask:
        yield None
        return
    from .distributed import DaskEngine, connect

    with connect(cfg.dask) as client:
        yield DaskEngine(client)


class _StopOnSignal:
    """While training, SIGINT/SIGTERM ask the trainer to stop after the current epoch (a
    checkpoint is then written); a second signal aborts at once."""

    def __init__(self, trainer):
        self.trainer, self.signum, self.old = trainer, None, {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.trainer.stop_training = True

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a worker): no handler
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)
        return False
