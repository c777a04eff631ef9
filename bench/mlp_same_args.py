"""BackpropClassifier(**same_args) against MLPClassifier(**same_args): fit time and held-out
accuracy with scikit-learn's parameter names, for solver lbfgs, adam and sgd (issue 19).

Run: python bench/mlp_same_args.py [--seeds 3]

The same arguments go to both (scikit-learn's defaults but the solver, and max_iter=200);
each table is split 75/25 stratified per seed; both systems fit alternately in one loop, so
machine load hits them alike; cells are medians over the seeds. The inputs are raw: deltaprop
standardises them as part of its model, scikit-learn's MLP uses them as given."""

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from deltaprop.sklearn import BackpropClassifier


def tables():
    yield "digits (1,797 x 64)", *load_digits(return_X_y=True)
    yield "make_classification (20,000 x 100)", *make_classification(20000, 100, n_informative=20, random_state=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter, for both
    print("| table | solver | deltaprop acc | MLP acc | deltaprop fit s | MLP fit s | MLP / deltaprop time |")
    print("|---|---|---|---|---|---|---|")
    for name, X, y in tables():
        for solver in ("lbfgs", "adam", "sgd"):
            same_args = dict(solver=solver, max_iter=200)
            rows = {"ours": [], "mlp": []}
            for seed in range(args.seeds):
                Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
                for key, cls in (("ours", BackpropClassifier), ("mlp", MLPClassifier)):
                    est = cls(**same_args, random_state=seed)
                    t0 = time.perf_counter()
                    est.fit(Xtr, ytr)
                    rows[key].append((est.score(Xte, yte), time.perf_counter() - t0))
            acc = {k: statistics.median(a for a, _ in r) for k, r in rows.items()}
            sec = {k: statistics.median(s for _, s in r) for k, r in rows.items()}
            print(f"| {name} | {solver} | {acc['ours']:.3f} | {acc['mlp']:.3f} | {sec['ours']:.2f} | "
                  f"{sec['mlp']:.2f} | {sec['mlp'] / sec['ours']:.2f} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
