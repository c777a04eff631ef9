"""Where an Adam epoch's time goes, before (NumPy engine) and after (compiled engine): the W4
cell of bench/run.py, 784-256-128-10 ReLU + softmax cross-entropy, Adam lr 0.001, float32,
1 thread.

    python bench/profile_adam.py              # batch 256 and 32, 20,000 rows
    python bench/profile_adam.py --rows 60000 --batch 256

NumPy engine: cProfile of one epoch, the cumulative time of ``Network.loss_and_gradient``
(the gradient) and of ``Optimizer.step`` (the update: transforms + Adam's eight array
operations). Compiled engine: the epoch (one compiled call: gradients by ``?gemm``, Adam as
one compiled pass per update) timed whole, and the update alone (``rule_next`` on the flat
parameters, as many times as the epoch has updates); the gradient is the difference.
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--batch", type=int, nargs="*", default=[256, 32])
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
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
