"""Held-out score of the estimators with defaults on raw data, against scikit-learn's MLP with
defaults (docs/defaults.md). Run: python bench/defaults_table.py [--seeds 5]

Each table is split 75/25 (stratified for classes) per seed; the score is accuracy or R^2 on
the held-out quarter; fit time is the median over the seeds (noisy on a shared machine)."""

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor

from deltaprop.sklearn import BackpropClassifier, BackpropRegressor


def spread(X, rng):
    """Columns rescaled to span six orders of magnitude (1e-3 .. 1e3)."""
    return X * np.logspace(-3, 3, X.shape[1])[rng.permutation(X.shape[1])]


def tables():
    rng = np.random.default_rng(0)
    yield "iris", *datasets.load_iris(return_X_y=True), True
    yield "wine", *datasets.load_wine(return_X_y=True), True
    yield "breast_cancer", *datasets.load_breast_cancer(return_X_y=True), True
    yield "digits", *datasets.load_digits(return_X_y=True), True
    yield "diabetes", *datasets.load_diabetes(return_X_y=True, scaled=False), False
    yield "linnerud (3 targets)", *datasets.load_linnerud(return_X_y=True), False
    X, y = datasets.make_classification(2000, 20, n_informative=10, random_state=0)
    yield "make_classification, 1e-3..1e3", spread(X, rng), y, True
    X, y = datasets.make_regression(2000, 20, n_informative=10, noise=10, random_state=0)
    yield "make_regression, 1e-3..1e3", spread(X, rng), y, False
    X, y = datasets.make_friedman1(2000, 10, noise=1, random_state=0)
    yield "friedman1, 1e-3..1e3", spread(X, rng), y, False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # MLP's ConvergenceWarning at max_iter
    print("| table | deltaprop | MLP | deltaprop fit s | MLP fit s |\n|---|---|---|---|---|")
    for name, X, y, is_class in tables():
        rows = {"ours": [], "mlp": []}
        for s in range(args.seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=s,
                                                  stratify=y if is_class else None)
            for key, est in (("ours", (BackpropClassifier if is_class else BackpropRegressor)(random_state=s)),
                             ("mlp", (MLPClassifier if is_class else MLPRegressor)(random_state=s))):
                t0 = time.perf_counter()
                est.fit(Xtr, ytr)
                rows[key].append((est.score(Xte, yte), time.perf_counter() - t0))
        med = {k: (statistics.median(v[0] for v in r), statistics.median(v[1] for v in r)) for k, r in rows.items()}
        print(f"| {name} | {med['ours'][0]:.3f} | {med['mlp'][0]:.3f} | {med['ours'][1]:.2f} | {med['mlp'][1]:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
