r"""Running modes x techniques x seeds and summarising the runs.

Every run of seed *s* starts from the same weights, drawn from :math:`U(-r, r)` with
``numpy.random.default_rng([s, 0])``, whatever the mode and technique, so the comparisons are
paired; its shuffling and noise come from ``default_rng([s, 1])``.

After every epoch the run's training loss and outputs are measured over the whole training
set; the first epoch that meets the success criterion ends the run. Cost to the target is
counted three ways: epochs, samples processed (gradient evaluations of one sample) and
seconds.
"""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data import load_builtin, split
from ..data.dataset import Standardizer
from ..errors import ConfigError
from ..i18n import gettext as _
from ..machine import usable_cpus
from ..network import Network
from ..optimizers import OPTIMIZERS, get_optimizer
from ..techniques import build_callbacks
from ..training import MODES, Callback, Trainer, accuracy
from .registry import Problem, Technique, get_problem, get_technique

__all__ = ["RunResult", "Success", "parse_success", "run_one", "run_grid", "summarise"]


@dataclass(frozen=True)
class Success:
    """A success criterion: ``correct`` (every output on the right side of 0.5), ``loss<=X``,
    or ``accuracy>=X`` (training set)."""

    kind: str
    value: float = 0.0

    def __str__(self) -> str:
        return "correct" if self.kind == "correct" else f"{self.kind}{'<=' if self.kind == 'loss' else '>='}{self.value:g}"

    def met(self, loss: float, out: np.ndarray, T: np.ndarray, network: Network) -> bool:
        if self.kind == "loss":
            return loss <= self.value
        if self.kind == "correct":
            return bool(np.all((out > 0.5) == (T > 0.5)))
        return accuracy(network, out, T) >= self.value


def parse_success(text: str) -> Success:
    text = text.replace(" ", "")
    if text == "correct":
        return Success("correct")
    m = re.fullmatch(r"(loss)<=?([0-9.eE+-]+)|(accuracy)>=?([0-9.eE+-]+)", text)
    if not m:
        raise ConfigError(_("success criterion {value!r} not understood; use 'correct', 'loss<=X' or "
                            "'accuracy>=X'").format(value=text))
    kind, value = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(_("success criterion {text!r}: {value!r} is not a number").format(
            text=text, value=value)) from None
    # a criterion no run can meet would report 0% everywhere, as if every technique failed
    if kind == "accuracy" and not 0 <= number <= 1:
        raise ConfigError(_("success criterion {text!r}: accuracy is a fraction from 0 to 1 "
                            "(e.g. accuracy>=0.95)").format(text=text))
    if kind == "loss" and not (number >= 0 and math.isfinite(number)):
        raise ConfigError(_("success criterion {text!r}: the loss bound must be a finite number of at least "
                            "0").format(text=text))
    return Success(kind, number)


@dataclass
class RunResult:
    problem: str
    mode: str
    technique: str
    seed: int
    success: bool
    epochs: int  # epochs to the target, or the epochs run
    samples: int  # samples processed (one per sample per epoch)
    seconds: float
    final_loss: float
    test_accuracy: float | None
    curve: list = field(default_factory=list)  # training loss after every epoch
    events: int = 0  # remedies fired, undone epochs, ...
    diverged: bool = False


class _Monitor(Callback):
    """Measures the training loss after every epoch and stops the run at the first success."""

    def __init__(self, X, T, success: Success):
        self.X, self.T, self.success = X, T, success
        self.curve, self.hit = [], None

    def on_epoch_end(self, trainer, logs):
        loss, out = trainer.network.evaluate(self.X, self.T)
        logs["loss"] = loss  # callbacks after this one (and the history) see the honest loss
        self.curve.append(loss)
        if self.hit is None and math.isfinite(loss) and self.success.met(loss, out, self.T, trainer.network):
            self.hit = (logs["epoch"], time.perf_counter())
            trainer.stop_training = True


_DATA_CACHE: dict = {}


def _problem_data(p: Problem):
    if p.name not in _DATA_CACHE:
        ds = load_builtin(p.dataset)
        test = None
        if p.test_fraction:
            ds, test = split(ds, p.test_fraction, np.random.default_rng(0))
        std = Standardizer().fit(ds.X) if p.standardize else None
        X = std.transform(ds.X) if std else ds.X
        Xt = (std.transform(test.X) if std else test.X) if test is not None else None
        _DATA_CACHE[p.name] = (X, ds.T, Xt, None if test is None else test.T)
    return _DATA_CACHE[p.name]


def applicable(problem: str, mode: str, technique: str) -> bool:
    """Whether ``technique`` can run in ``mode`` (batch-only rules need mode 'batch')."""
    tech = get_technique(technique)
    return mode == "batch" or not OPTIMIZERS[tech.optimizer].batch_only


def run_one(problem: str, mode: str, technique: str, seed: int, *, epochs: int | None = None,
            init_range: float | None = None, success: str | None = None, lr: dict | None = None,
            curve: bool = True) -> RunResult:
    """One training run; see the module docstring."""
    p, tech = get_problem(problem), get_technique(technique)
    X, T, Xt, Tt = _problem_data(p)
    epochs = p.epochs if epochs is None else int(epochs)
    r = p.init_range if init_range is None else float(init_range)
    crit = parse_success(success or p.success)
    net = Network([X.shape[1], *p.hidden, T.shape[1]], p.activation, p.output_activation, p.loss)
    net.reset_parameters(np.random.default_rng([seed, 0]), f"uniform:{r}")
    if tech.flat_spot:
        from ..techniques import use_flat_spot

        use_flat_spot(net, tech.flat_spot)
    run_rng = np.random.default_rng([seed, 1])
    rates = p.lr | (lr or {})
    lr = tech.lr if tech.lr is not None else rates[mode]
    opt = get_optimizer(tech.optimizer, lr=lr, **tech.params)
    monitor = _Monitor(X, T, crit)
    trainer = Trainer(net, opt, mode=mode, batch_size=p.batch_size, seed=run_rng, eval_every=0,
                      accuracy=False, callbacks=[monitor, *build_callbacks(
                          # its own generator: restarts draw the same weights whatever the mode's shuffling
                          tech.callbacks, stall_seed=np.random.default_rng([seed, 2]))])
    t0 = time.perf_counter()
    trainer.fit(X, T, epochs)
    t_end = time.perf_counter()
    ok = monitor.hit is not None
    ran = monitor.hit[0] if ok else trainer.epoch
    final = monitor.curve[-1] if monitor.curve else math.nan
    test_acc = None
    if Xt is not None:
        test_acc = accuracy(net, net.predict(Xt), Tt)
    n_events = sum(e["event"] not in ("divergence",) for e in trainer.history.events)
    # samples processed: one per row and epoch; for L-BFGS one per row and loss evaluation (its
    # line search makes one or more per epoch), as its history counts them
    samples = trainer.history.samples[-1] if getattr(opt, "runs_own_loop", False) and len(trainer.history) \
        else ran * len(X)
    return RunResult(problem, mode, technique, seed, ok, ran, int(samples),
                     (monitor.hit[1] if ok else t_end) - t0, final, test_acc,
                     monitor.curve if curve else [], n_events, trainer.diverged)


def _run_batch(args) -> list[RunResult]:
    problem, mode, technique, seeds, kw = args
    return [run_one(problem, mode, technique, s, **kw) for s in seeds]


def run_grid(problems, modes, techniques, seeds, *, jobs: int | None = None, progress=None, client=None,
             **kw) -> list[RunResult]:
    """All applicable (problem, mode, technique) cells x seeds, in parallel over ``jobs``
    processes (default: all cores), or on the workers of a Dask ``client`` (the runs are
    independent: ``client.map`` over them). The result order is fixed (problem, mode,
    technique, seed), whatever the scheduling."""
    for m in modes:
        if m not in MODES:
            raise ConfigError(_("unknown mode {mode!r}; valid: {valid}").format(mode=m, valid=", ".join(MODES)))
    for p in problems:
        get_problem(p)
    for t in techniques:
        get_technique(t)
    seeds = list(seeds)
    chunk = max(1, math.ceil(len(seeds) / 5))  # a few tasks per cell balance the load
    tasks = [(p, m, t, seeds[i:i + chunk], kw) for p in problems for m in modes for t in techniques
             if applicable(p, m, t) for i in range(0, len(seeds), chunk)]
    jobs = jobs or usable_cpus()
    results = []
    if client is not None:
        from distributed import as_completed

        futures = client.map(_run_batch, tasks, pure=False)
        done = {}
        for future in as_completed(futures):
            done[future.key] = future.result()
            if progress:
                progress(sum(map(len, done.values())))
        results = [r for f in futures for r in done[f.key]]
    elif jobs == 1:
        for task in tasks:
            results += _run_batch(task)
            if progress:
                progress(len(results))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for batch in pool.map(_run_batch, tasks):
                results += batch
                if progress:
                    progress(len(results))
    return results


def _median(values):
    return float(np.median(values)) if len(values) else math.nan


def summarise(results: list[RunResult]) -> list[dict]:
    """One row per (problem, mode, technique): success rate; median epochs, samples and
    seconds to the target (over the successful runs); final loss mean and standard deviation;
    ``rises``: the share of epochs whose training loss rose above the previous epoch's (a
    measure of stability: 0 for a monotone descent), over all runs; mean test accuracy where the
    problem has a test split."""
    cells: dict = {}
    for r in results:
        cells.setdefault((r.problem, r.mode, r.technique), []).append(r)
    rows = []
    for (problem, mode, technique), rs in cells.items():
        ok = [r for r in rs if r.success]
        finals = np.array([r.final_loss for r in rs], float)
        finite = finals[np.isfinite(finals)]
        accs = [r.test_accuracy for r in rs if r.test_accuracy is not None]
        steps = [np.diff(np.asarray(r.curve, float)) for r in rs if len(r.curve) > 1]
        n_steps = sum(len(d) for d in steps)
        rows.append({
            "problem": problem, "mode": mode, "technique": technique, "runs": len(rs),
            "success_rate": len(ok) / len(rs),
            "median_epochs": _median([r.epochs for r in ok]),
            "median_samples": _median([r.samples for r in ok]),
            "median_seconds": _median([r.seconds for r in ok]),
            "final_loss_mean": float(finite.mean()) if len(finite) else math.nan,
            "final_loss_sd": float(finite.std()) if len(finite) else math.nan,
            "rises": sum(int(np.sum(d > 0)) for d in steps) / n_steps if n_steps else math.nan,
            "test_accuracy": float(np.mean(accs)) if accs else None,
            "diverged": sum(r.diverged for r in rs),
        })
    return rows


def curve_grid(budget: int, points: int = 120) -> np.ndarray:
    """Log-spaced epochs 1..budget (about ``points`` of them) at which curves are kept."""
    return np.unique(np.round(np.logspace(0, np.log10(max(budget, 1)), points)).astype(int))


def result_dicts(results: list[RunResult], timing: bool = True, points: int = 120) -> list[dict]:
    """The runs as plain dicts. Each loss curve is kept at log-spaced epochs of its cell's
    budget (``curve_epochs``), carried forward at its last value after the run stopped, so
    that files stay small and the runs of a cell share one epoch grid."""
    budgets: dict = {}
    for r in results:
        key = (r.problem, r.mode, r.technique)
        budgets[key] = max(budgets.get(key, 0), len(r.curve))
    out = []
    for r in results:
        d = asdict(r)
        if not timing:
            d.pop("seconds")
        if r.curve:
            grid = curve_grid(budgets[(r.problem, r.mode, r.technique)], points)
            d["curve_epochs"] = grid.tolist()
            d["curve"] = [r.curve[min(e, len(r.curve)) - 1] for e in grid]
        out.append(d)
    return out
