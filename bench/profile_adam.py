"""Where an Adam epoch's time goes, before (NumPy engine) and after (compiled engine): the W4
cell of bench/run.py, 784-256-128-10 ReLU + softmax cross-entropy, Adam lr 0.001, float32,
1 thread.

    python bench/profile_adam.py              # batch 256 and 32, 20,000 rows
    python bench/profile_adam.py --rows 60000 --batch 256
    python bench/profile_adam.py --split      # also: where the compiled epoch's time goes,
                                              # beside JAX's scan epoch (optax.adam)

NumPy engine: cProfile of one epoch, the cumulative time of ``Network.loss_and_gradient``
(the gradient) and of ``Optimizer.step`` (the update: transforms + Adam's eight array
operations). Compiled engine: the epoch (one compiled call: gradients by ``?gemm``, Adam as
one compiled pass per update) timed whole, and the update alone (``rule_next`` on the flat
parameters, as many times as the epoch has updates); the gradient is the difference.

``--split`` times, in turn in one process (the minimum of 3 each): the compiled epoch; the
eight BLAS products of its updates alone (``np.matmul`` of the same shapes on contiguous
rows: the floor of any epoch whose products run in this BLAS); Adam's pass alone; and
JAX's epoch (bench/systems.py's ``Jax``, optax.adam in one ``lax.scan``) where installed. The
epoch less the products and the update is everything else: the row gather, the bias,
activation, softmax and loss passes, the bias gradients and the calls.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

import deltaprop as dp


def _setup(rows, batch, engine):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 784), dtype=np.float32)
    T = np.eye(10, dtype=np.float32)[rng.integers(0, 10, rows)]
    net = dp.Network([784, 256, 128, 10], "relu", "softmax", "cross_entropy", seed=0, dtype="float32")
    tr = dp.Trainer(net, dp.Adam(0.001), mode="minibatch", batch_size=batch, seed=0, eval_every=0,
                    engine=engine)
    return X, T, net, tr


def numpy_split(rows, batch):
    X, T, net, tr = _setup(rows, batch, "numpy")
    tr.fit(X[:batch * 4], T[:batch * 4], 1)  # warm
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    tr.fit(X, T, 1)
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    cum = {f"{fn[0].rsplit('/', 1)[-1]}:{fn[2]}": v[3] for fn, v in stats.items()}
    grad = cum.get("network.py:loss_and_gradient", 0.0)
    step = cum.get("optimizers.py:step", 0.0)
    return total, grad, step


def compiled_split(rows, batch, repeats=3):
    X, T, net, tr = _setup(rows, batch, "numba")
    tr.fit(X[:batch * 4], T[:batch * 4], 1)  # compile / load, and the optimizer's state
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        tr.fit(X, T, 1)
        best = min(best, time.perf_counter() - t0)
    assert tr.engine_used == "numba/batch-blas", tr.engine_used
    from deltaprop.engines import _numba_kernels as K
    from deltaprop.engines.numba_engine import RuleState

    updates = -(-rows // batch)
    rs = RuleState(tr.optimizer, net.params)
    params, grads = net.params.copy(), net.grads.copy()
    K.rule_next(rs.rule, rs.h, rs.q, 1.0, params, grads, rs.mask, rs.noise, rs.rnd, *rs.S, rs.ns)
    update = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(updates):
            K.rule_next(rs.rule, rs.h, rs.q, 1.0, params, grads, rs.mask, rs.noise, rs.rnd, *rs.S, rs.ns)
        update = min(update, time.perf_counter() - t0)
    return best, best - update, update


def products_alone(rows, batch, repeats=3):
    """Seconds of the epoch's products alone: per batch the forward X W1, A1 W2, A2 W3, the
    deltas D3 W3^T, D2 W2^T and the gradients A2^T D3, A1^T D2, X^T D1 (``np.matmul`` into
    preallocated arrays, rows in order)."""
    rng = np.random.default_rng(0)
    f = np.float32
    X = rng.standard_normal((rows, 784), dtype=f)
    Ws = [rng.standard_normal(s, dtype=f) * 0.05 for s in ((784, 256), (256, 128), (128, 10))]
    G = [np.empty_like(w) for w in Ws]
    b = batch
    A1, A2, Z3 = np.empty((b, 256), f), np.empty((b, 128), f), np.empty((b, 10), f)
    D1, D2, D3 = np.empty((b, 256), f), np.empty((b, 128), f), rng.standard_normal((b, 10), dtype=f)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in range(0, rows - b + 1, b):
            x = X[s:s + b]
            np.matmul(x, Ws[0], out=A1)
            np.matmul(A1, Ws[1], out=A2)
            np.matmul(A2, Ws[2], out=Z3)
            np.matmul(D3, Ws[2].T, out=D2)
            np.matmul(D2, Ws[1].T, out=D1)
            np.matmul(A2.T, D3, out=G[2])
            np.matmul(A1.T, D2, out=G[1])
            np.matmul(x.T, D1, out=G[0])
        best = min(best, time.perf_counter() - t0)
    return best * rows / (rows - rows % b)


def jax_epoch(rows, batch, repeats=3):
    """Seconds of JAX's Adam epoch (bench/systems.py), None without JAX and optax."""
    import importlib.util
    import sys
    from pathlib import Path

    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("optax") is None:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import Cell, make_data
    from systems import Jax

    cell = Cell("W4", "W4", [784, 256, 128, 10], "relu", "cross_entropy", batch, rows, lr=0.001,
                optimizer="adam")
    run = Jax().prepare(cell, make_data(cell))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        samples = run()
        best = min(best, time.perf_counter() - t0)
    return best * rows / samples


def split(rows, batch):
    """The ``--split`` row of one batch size (see the module's docstring)."""
    epoch, _, update = compiled_split(rows, batch)
    products = products_alone(rows, batch)
    jx = jax_epoch(rows, batch)
    rest = epoch - products - update
    print(f"| {batch} | {epoch:.3f} | {rows / epoch:,.0f} | {products:.3f} ({products / epoch:.0%}) | "
          f"{update:.3f} ({update / epoch:.0%}) | {rest:.3f} ({rest / epoch:.0%}) | "
          + (f"{jx:.3f} | {rows / jx:,.0f} | {jx / epoch:.2f} |" if jx else "not installed | - | - |"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--batch", type=int, nargs="*", default=[256, 32])
    p.add_argument("--split", action="store_true",
                   help="only the compiled epoch's split: products, update, the rest; JAX beside it")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if args.split:
        print(f"784-256-128-10 ReLU + softmax CE, Adam, float32, 1 thread, one epoch of {args.rows} rows")
        print("| batch | compiled epoch s | samples/s | products alone s | Adam's pass s | the rest s "
              "| JAX epoch s | JAX samples/s | deltaprop / JAX |")
        print("|---|---|---|---|---|---|---|---|---|")
        for batch in args.batch:
            split(args.rows, batch)
        return 0
    print(f"784-256-128-10 ReLU + softmax CE, Adam, float32, 1 thread, one epoch of {args.rows} rows")
    print("| batch | engine | epoch s | samples/s | gradient s | update s | update share |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batch:
        total, grad, step = numpy_split(args.rows, batch)
        print(f"| {batch} | numpy (cProfile) | {total:.3f} | {args.rows / total:,.0f} | {grad:.3f} | "
              f"{step:.3f} | {step / total:.0%} |")
        total, grad, step = compiled_split(args.rows, batch)
        print(f"| {batch} | numba | {total:.3f} | {args.rows / total:,.0f} | {grad:.3f} | {step:.3f} | "
              f"{step / total:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
