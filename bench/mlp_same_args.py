"""BackpropClassifier(**same_args) against MLPClassifier(**same_args): fit time and held-out
accuracy with scikit-learn's parameter names, for solver lbfgs, adam and sgd (issue 19).

Run (the docs' table: one seed, about 5 minutes on an idle 2-core machine, far longer under load):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/mlp_same_args.py --seeds 1 --docs docs/sklearn.md

The same arguments go to both (scikit-learn's defaults but the solver, and max_iter=200); the
rest is each estimator's own defaults. Each table is split 75/25 stratified per seed; the two
systems fit one after the other on the same split, which one goes first alternating from cell
to cell, so machine load hits them alike; cells are medians over the seeds, and the time ratio
is computed from this run's own medians (never from figures of another run). The inputs are
raw: deltaprop standardises them as part of its model, scikit-learn's MLP uses them as given.

``--docs FILE`` rewrites the table between the markers ``<!-- mlp_same_args:begin -->`` and
``<!-- mlp_same_args:end -->`` in FILE, with the command, the machine (CPU, BLAS kernel and
threads, load average before and after) and the date; ``--tables``/``--solvers`` pick a part
(for a quick check: ``--tables digits --solvers lbfgs``).
"""

import argparse
import datetime
import os
import re
import shlex
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from deltaprop.machine import machine_facts
from deltaprop.sklearn import BackpropClassifier

TABLES = {
    "digits": ("digits (1,797 x 64)", lambda: load_digits(return_X_y=True)),
    "large": ("make_classification (20,000 x 100)",
              lambda: make_classification(20000, 100, n_informative=20, random_state=0)),
}
SOLVERS = ("lbfgs", "adam", "sgd")
BEGIN, END = "<!-- mlp_same_args:begin -->", "<!-- mlp_same_args:end -->"


def _names(text, valid):
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        sys.exit(f"unknown name(s) {bad or text!r}; valid: {', '.join(valid)}")
    return names


def _machine_line(before, after) -> str:
    facts = machine_facts()
    blas = "; ".join(f"{b['internal_api']} {b.get('version', '')} {b.get('architecture', '')} kernel, "
                     f"{b['num_threads']} threads" for b in facts.get("blas", [])) or "BLAS unknown"
    return (f"{facts['cpu']}, {facts['logical_cpus']} logical CPUs; {blas}; load average "
            f"{before[0]:.1f} before, {after[0]:.1f} after; numpy {facts['numpy']}; "
            f"{datetime.date.today().isoformat()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--tables", default=",".join(TABLES), help=f"comma separated: {', '.join(TABLES)}")
    ap.add_argument("--solvers", default=",".join(SOLVERS), help=f"comma separated: {', '.join(SOLVERS)}")
    ap.add_argument("--docs", metavar="FILE", help="rewrite the marked table in FILE (docs/sklearn.md)")
    ap.add_argument("--max-iter", type=int, default=200, help="max_iter of both (200, scikit-learn's; less only "
                                                              "to check the script quickly)")
    args = ap.parse_args()
    tables, solvers = _names(args.tables, list(TABLES)), _names(args.solvers, list(SOLVERS))
    if args.docs:
        text = open(args.docs, encoding="utf-8").read()
        if BEGIN not in text or END not in text:
            sys.exit(f"{args.docs}: no {BEGIN} ... {END} block to rewrite")
    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter, for both
    before = os.getloadavg()
    lines = ["| table | solver | deltaprop acc | MLP acc | deltaprop fit s | MLP fit s | MLP / deltaprop time |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    cell = 0
    for table in tables:
        name, load = TABLES[table]
        X, y = load()
        for solver in solvers:
            same_args = dict(solver=solver, max_iter=args.max_iter)
            rows = {"ours": [], "mlp": []}
            for seed in range(args.seeds):
                Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
                pair = [("ours", BackpropClassifier), ("mlp", MLPClassifier)]
                for key, cls in (pair if cell % 2 == 0 else pair[::-1]):
                    est = cls(**same_args, random_state=seed)
                    t0 = time.perf_counter()
                    est.fit(Xtr, ytr)
                    rows[key].append((est.score(Xte, yte), time.perf_counter() - t0))
                    print(f"  {table} {solver} seed {seed} {key}: acc {rows[key][-1][0]:.3f}, "
                          f"{rows[key][-1][1]:.2f} s, {est.n_iter_} iterations", file=sys.stderr, flush=True)
                cell += 1
            acc = {k: statistics.median(a for a, _ in r) for k, r in rows.items()}
            sec = {k: statistics.median(s for _, s in r) for k, r in rows.items()}
            line = (f"| {name} | {solver} | {acc['ours']:.3f} | {acc['mlp']:.3f} | {sec['ours']:.2f} | "
                    f"{sec['mlp']:.2f} | {sec['mlp'] / sec['ours']:.2f} |")
            lines.append(line)
            print(line, flush=True)
    machine = _machine_line(before, os.getloadavg())
    print(machine)
    if args.docs:
        command = "python bench/mlp_same_args.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        block = "\n".join([BEGIN, "```", command, "```", "", *lines, "", f"Machine: {machine}.", END])
        text = open(args.docs, encoding="utf-8").read()
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, count=1, flags=re.S)
        with open(args.docs, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"written: {args.docs}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
