"""What ``deltaprop train --data FILE.csv --target COLUMN`` gives on regression tables, with the
defaults and with candidate settings (docs/defaults.md, "The CLI on regression tables").

    python bench/cli_regression_defaults.py                   # the defaults only
    python bench/cli_regression_defaults.py --candidates      # the candidates measured for them
    python bench/cli_regression_defaults.py --seeds 5 --out /tmp/tables

The tables are written as CSV files, as a user would have them: scikit-learn's diabetes
(raw, unscaled), linnerud (three targets), and synthetic tables whose columns span six orders
of magnitude (1e-3 .. 1e3): make_regression (linear), friedman1 (nonlinear), and friedman2 as
it comes (columns from 0-1 to 0-1,750, the target up to about 1,700). For each seed, 20% of
the rows are kept apart in a test file; the run trains on the rest exactly as
``deltaprop train`` does (``config.resolve`` + ``runs.prepare_run``, with its own validation
split) and the score is R^2 on the test file, in the targets' units (averaged over targets).
Beside it: least squares (a linear model with intercept) and the mean of the training targets
(R^2 <= 0) on the same rows. "sat" is the share of hidden tanh outputs beyond +-0.99 on the
training rows (saturation), "div" the runs that diverged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

import numpy as np

from deltaprop.config import DEFAULTS, resolve
from deltaprop.data import load_csv
from deltaprop.runs import prepare_run

CANDIDATES = {
    "defaults": {},
    "50 epochs (the general defaults)": {"epochs": 50, "early_stopping": 0},
    "lr 0.01": {"lr": 0.01, "epochs": 50, "early_stopping": 0},
    "lr 0.1, 200ep, early stop 10": {"lr": 0.1, "epochs": 200, "early_stopping": 10},
    "lr 0.01, 200ep, early stop 10": {"lr": 0.01, "epochs": 200, "early_stopping": 10},
    "lr 0.03, 200ep, early stop 10": {"lr": 0.03, "epochs": 200, "early_stopping": 10},
    "lr 0.01, 200ep, early stop 10, wd 1e-3": {"lr": 0.01, "epochs": 200, "early_stopping": 10,
                                               "weight_decay": 1e-3},
    "adam 0.001, 200ep, early stop 10": {"optimizer": "adam", "lr": 0.001, "epochs": 200, "early_stopping": 10},
    "relu lr 0.01, 200ep, early stop 10": {"activation": "relu", "lr": 0.01, "epochs": 200, "early_stopping": 10},
}


def spread(X, rng):
    """Columns rescaled to span six orders of magnitude (1e-3 .. 1e3)."""
    return X * np.logspace(-3, 3, X.shape[1])[rng.permutation(X.shape[1])]


def tables():
    """(name, feature names, X, target names, Y)."""
    from sklearn import datasets

    rng = np.random.default_rng(0)
    d = datasets.load_diabetes(scaled=False)
    yield "diabetes", list(d.feature_names), d.data, ["progression"], d.target[:, None]
    lin = datasets.load_linnerud()
    yield "linnerud (3 targets)", list(lin.feature_names), lin.data, list(lin.target_names), lin.target
    X, y = datasets.make_regression(2000, 20, n_informative=10, noise=10, random_state=0)
    yield "make_regression 1e-3..1e3", [f"x{i}" for i in range(20)], spread(X, rng), ["y"], y[:, None]
    X, y = datasets.make_friedman1(2000, 10, noise=1, random_state=0)
    yield "friedman1 1e-3..1e3", [f"x{i}" for i in range(10)], spread(X, rng), ["y"], y[:, None]
    X, y = datasets.make_friedman2(2000, noise=10, random_state=0)
    yield "friedman2 (raw)", [f"x{i}" for i in range(4)], X, ["y"], y[:, None]


def write_csv(path, names, X, tnames, Y):
    with open(path, "w") as f:
        f.write(",".join(names + tnames) + "\n")
        for row in np.hstack([X, Y]):
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def r2(T, P, T_train) -> float:
    """R^2 per target column, averaged (as scikit-learn's r2_score does)."""
    ss_res = ((T - P) ** 2).sum(axis=0)
    ss_tot = ((T - T.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1 - ss_res / ss_tot))


def least_squares(Xtr, Ttr, Xte) -> np.ndarray:
    A = np.hstack([Xtr, np.ones((len(Xtr), 1))])
    W = np.linalg.lstsq(A, Ttr, rcond=None)[0]
    return np.hstack([Xte, np.ones((len(Xte), 1))]) @ W


def measure(folder, name, names, X, tnames, Y, seed, settings):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_test = len(X) // 5
    test, train = order[:n_test], order[n_test:]
    stem = os.path.join(folder, f"{name.split()[0]}-{seed}")
    write_csv(stem + "-train.csv", names, X[train], tnames, Y[train])
    write_csv(stem + "-test.csv", names, X[test], tnames, Y[test])
    cfg = resolve({"data": stem + "-train.csv", "target": ",".join(tnames), "seed": seed, "quiet": True,
                   **settings})
    run = prepare_run(cfg)
    t0 = time.perf_counter()
    run.fit()
    seconds = time.perf_counter() - t0
    te = load_csv(stem + "-test.csv", ",".join(tnames), task="regression")
    P = run.model.predict(te.X)
    net = run.model.network
    sat = float("nan")
    if net.layers[0].activation.name == "tanh" and len(net.layers) > 1:
        h = np.tanh(run.model.prepare(run.train.X) @ net.layers[0].W + net.layers[0].b)
        sat = float(np.mean(np.abs(h) > 0.99))
    return {"r2": r2(te.T, P, run.train.T), "ls": r2(te.T, least_squares(run.train.X, run.train.T, te.X), run.train.T),
            "mean": r2(te.T, np.broadcast_to(run.train.T.mean(axis=0), te.T.shape), run.train.T),
            "sat": sat, "div": run.trainer.diverged, "epochs": run.trainer.epoch, "s": seconds, "cfg": cfg}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--candidates", action="store_true", help="measure every candidate, not only the defaults")
    ap.add_argument("--only", default=None, help="comma-separated candidate names")
    ap.add_argument("--out", default=None, help="folder for the CSV files (default: a temporary one)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    folder = args.out or tempfile.mkdtemp(prefix="deltaprop-regression-")
    os.makedirs(folder, exist_ok=True)
    names = list(CANDIDATES) if args.candidates else ["defaults"]
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; seeds 0-{args.seeds - 1}; R^2 on the "
          f"20% test rows: median (min-max)")
    print("| settings | table | deltaprop R² | least squares R² | mean R² | sat | div | epochs | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cand in names:
        for table in tables():
            res = [measure(folder, *table, s, CANDIDATES[cand]) for s in range(args.seeds)]

            def col(k, fmt="{:.2f}"):
                v = [r[k] for r in res]
                return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}..{fmt.format(max(v))})"
            print(f"| {cand} | {table[0]} | {col('r2')} | {col('ls')} | {statistics.median(r['mean'] for r in res):.2f} | "
                  f"{statistics.median(r['sat'] for r in res):.2f} | {sum(r['div'] for r in res)} | "
                  f"{statistics.median(r['epochs'] for r in res):.0f} | {statistics.median(r['s'] for r in res):.2f} |",
                  flush=True)
    cfg = res[0]["cfg"]
    print(f"\nthe last run's effective settings: activation {cfg.activation}, optimizer {cfg.optimizer}, lr {cfg.lr}, "
          f"epochs {cfg.epochs}, early_stopping {cfg.early_stopping}, weight_decay {cfg.weight_decay}, "
          f"hidden {cfg.hidden}, mode {cfg.mode}, batch {cfg.batch_size} (DEFAULTS.lr {DEFAULTS.lr})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
