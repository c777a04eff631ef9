"""cProfile of one epoch of 784-128-10 (float32, 1 thread) per engine: where the time goes.

    python bench/profile_epoch.py                 # numpy and numba engines, every mode
    python bench/profile_epoch.py --engine numpy --mode stochastic

Prints, per engine and mode, the samples per second of the profiled epoch and the functions
with the most own time. (A profiler adds a cost per Python call, so the rates here are below
those of bench/run.py; compare engines with each other, not with the benchmark.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import numpy as np

import deltaprop as dp

MODES = {"stochastic": (1, 5000), "minibatch-32": (32, 60000), "minibatch-256": (256, 60000),
         "batch": (60000, 60000)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["numpy", "numba", "both"], default="both")
    p.add_argument("--mode", choices=list(MODES) + ["all"], default="all")
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60000, 784), dtype=np.float32)
    T = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 60000)]
    engines = ["numpy", "numba"] if args.engine == "both" else [args.engine]
    modes = list(MODES) if args.mode == "all" else [args.mode]
    for mode in modes:
        k, n = MODES[mode]
        for engine in engines:
            net = dp.Network([784, 128, 10], "sigmoid", loss="half_sse", dtype="float32", seed=0)
            tr = dp.Trainer(net, lr=0.01, mode="batch" if k >= n else "minibatch", batch_size=min(k, n),
                            seed=0, eval_every=0, engine=engine)
            tr.fit(X[:512], T[:512], 1)  # imports and compiled kernels: not profiled
            prof = cProfile.Profile()
            t = time.perf_counter()
            prof.enable()
            tr.fit(X[:n], T[:n], 1)
            prof.disable()
            dt = time.perf_counter() - t
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
            body = [line for line in out.getvalue().splitlines() if line.strip()][3:]
            print(f"## {mode}, engine {tr.engine_used}: {n / dt:,.0f} samples/s under the profiler")
            print("\n".join(body))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
