"""Scaling of data-parallel training on Dask (deltaprop.distributed): what one step costs in
communication and in computation, an analytic model of T(p) fitted from them, and the measured
speed-up of batch mode.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/distributed.py --json /tmp/d.json \
        --plot docs/img/distributed-model.png
    python bench/distributed.py --quick          # seconds: small sizes, for the tests

Measured, on a LocalCluster of single-threaded worker processes (BLAS pinned to one thread),
with a client that talks to the workers directly, as ``--dask`` makes it:

0. one reduction at 407 KB by parts: Dask's floors (a no-op task submitted and gathered; an
   empty actor call), the weights out alone and with one row's gradient back, the serialisation
   of the weights, the driver's sum, the engine's whole step, and the previous design (the
   weights inside one task per shard) for comparison;
1. the reduction per step, as DaskEngine makes it (one call per worker's holder carrying the
   weights, one row's gradient, the gradients back and added in shard order), for payloads from
   1 KB to 8 MB at 1 and 2 workers;
2. the gradient time of a shard of n rows on one worker (the engine's own _shard_gradient),
   fitted as a + b n by least squares;
3. batch mode on N x 784 synthetic rows (784-128-10, softmax + cross-entropy, float32, the
   default dtype): seconds per epoch with the shards on 1 worker and on 2 workers of the same
   cluster, alternating, and the single-process numba engine (BLAS with its own threads).

Modelled: T(p) = a + b N / p + comm(p), comm(p) = c0 + c1 p + 2 alpha + 2 p S / B: c0 and c1
(the fixed and per-worker turn-around) fitted from the loopback round trips of small
payloads at 1 and 2 workers, the latency alpha and bandwidth B of a network assumed (the
driver's link carries the weights out and one gradient back per worker). The crossover batch
size is the N below which p workers are not faster than one: b N (1 - 1/p) = comm(p) - comm(1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

# Run as a script, this file's folder comes first on the path, and its name would hide the
# `distributed` package itself.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

PIN = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
PAYLOADS_KB = (1, 4, 16, 64, 256, 407, 1024, 4096, 8192)
#: The network the model assumes (a data-centre link); stated beside every modelled figure.
ASSUMED = {"bandwidth_bytes_per_s": 1.25e9, "latency_s": 50e-6, "label": "10 Gbit/s, 50 us latency"}


def _noop(token):
    return 0


def _worker_blas():
    """On a worker: its BLAS libraries' kernels and thread counts (the pinning, checked)."""
    import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)
    from threadpoolctl import threadpool_info

    return [(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()
            if i.get("user_api") == "blas"]


def _timed(fn, repeats, warm=2):
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warm`` unmeasured ones."""
    for _ in range(warm):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _gradient_seconds(n, d, hidden, out, repeats, dtype="float32"):
    """On a worker: the median seconds of _shard_gradient on n rows (784-128-10 by default)."""
    from deltaprop import Network
    from deltaprop.distributed import _shard_gradient

    rng = np.random.default_rng(n)
    net = Network([d, hidden, out], "tanh", "softmax", loss="cross_entropy", dtype=dtype, seed=0)
    X = rng.normal(size=(n, d)).astype(dtype)
    T = np.eye(out, dtype=dtype)[rng.integers(0, out, n)]
    flat = net.flat.copy()
    shard = (net, X, T)
    return _timed(lambda: _shard_gradient(shard, flat, None, 1.0 / n, 4096), repeats, warm=1)


def payload_sizes(kb):
    """The layer sizes of a float32 network of about ``kb`` KB (1 KB = 1000 bytes): 784-h-10
    (tanh, softmax) where h >= 1 fits, so that 407 KB is the issue's 784-128-10 exactly
    (101,770 parameters); below that, n-1-1."""
    params = kb * 1000 // 4
    hidden = round((params - 10) / 795)  # 784 h + h + 10 h + 10 parameters
    return [784, hidden, 10] if hidden >= 1 else [max(1, params - 3), 1, 1]


class _Step:
    """One reduction as DaskEngine makes it, on a float32 network of ``kb`` KB (payload_sizes),
    one row per worker: the engine's call to each worker's holder with the weights, the
    worker's gradient of its one row, the gradients back, added in shard order."""

    def __init__(self, client, workers, kb):
        from deltaprop import Network
        from deltaprop.distributed import DaskEngine
        from deltaprop.training import Trainer

        p = len(workers)
        sizes = payload_sizes(kb)
        out = sizes[-1]
        head, loss = ("softmax", "cross_entropy") if out > 1 else ("identity", "mse")
        net = Network(sizes, "tanh", head, loss=loss, dtype="float32", seed=0)
        self.bytes = net.flat.nbytes
        self.trainer = Trainer(net, "sgd", mode="batch", chunk_size=1, eval_every=0)
        self.X = np.ones((p, sizes[0]), np.float32)
        self.T = np.eye(out, dtype=np.float32)[np.arange(p) % out]
        self.engine = DaskEngine(client, shard_rows=1, workers=workers)
        self.engine._place(self.trainer, self.X, self.T)
        self.flat, self.parts = net.flat.copy(), [(s, None) for s in range(p)]

    def __call__(self):
        from deltaprop.distributed import _add_in_order

        return _add_in_order(self.engine._gradients(self.trainer, self.X, self.T, self.flat, self.parts, 1.0))


def reduction_times(client, workers, payloads_kb, repeats):
    """Median seconds of one reduction (:class:`_Step`) per payload."""
    out = {}
    for kb in payloads_kb:
        step = _Step(client, workers, kb)
        out[kb] = _timed(step, repeats)
        step.engine._drop_holders()  # each payload's holders leave the workers before the next
    return out


def round_trip_parts(client, workers, kb, repeats):
    """What one reduction of ``kb`` KB costs, by parts (seconds, medians): the floors of Dask
    (a task that does nothing, submitted and gathered; an actor call with nothing in it), the
    serialisation of the weights (each way), the driver's sum, the engine's whole step, and the
    previous design (one task per shard with the weights inside, gathered through the scheduler)."""
    from distributed.protocol import deserialize_bytes, serialize_bytes

    from deltaprop.distributed import _shard_gradient

    step = _Step(client, workers, kb)
    eng = step.engine
    tokens = [client.submit(_noop, i, workers=[w], pure=False) for i, w in enumerate(workers)]
    client.gather(tokens)
    tiny = np.zeros(1, np.float32)
    w = step.flat

    def calls(flat, jobs):  # one call per worker's holder, made as the engine makes them
        return eng._call([(h, "gradients", (flat, jobs, 1.0, 1)) for h in range(len(eng._holders))])

    grads = [w.copy() for _ in workers]

    def driver_sum():
        total = grads[0].copy()
        for g in grads[1:]:
            total += g

    parts = {
        "task floor (no-op task per worker, submit + gather)":
            _timed(lambda: client.gather([client.submit(_noop, t, pure=False) for t in tokens]), repeats),
        "call floor (empty actor call per worker)":
            _timed(lambda: calls(tiny, []), repeats),
        "the weights out, nothing back (a call with no shard)":
            _timed(lambda: calls(w, []), repeats),
        "the weights out, one row's gradient back":
            _timed(lambda: calls(w, [(0, None)]), repeats),
        "serialise + deserialise the weights, once":
            _timed(lambda: deserialize_bytes(serialize_bytes(w)), repeats),
        "driver's sum in shard order": _timed(driver_sum, repeats),
        "engine step (calls, one-row gradients, sum)": _timed(step, repeats),
        "previous design (weights inside a task per shard)":
            _timed(lambda: client.gather([client.submit(_shard_gradient, f, w, None, 1.0, 1, pure=False)
                                          for f in eng.shards], direct=False), repeats),
    }
    eng._drop_holders()
    return parts


def fit_line(ns, ts):
    """Least squares t = a + b n."""
    A = np.column_stack([np.ones(len(ns)), np.asarray(ns, float)])
    (a, b), *_ = np.linalg.lstsq(A, np.asarray(ts, float), rcond=None)
    return float(a), float(b)


def _cpu_seconds():
    return time.process_time()


def epoch_seconds(client, workers_sets, rows, features, hidden, out, epochs, seed=0):
    """Seconds per batch-mode epoch: DaskEngine on each set of workers (alternating, one epoch
    each, ``epochs`` times after one that places the shards) and the single-process numba
    engine; the medians. Beside them, per epoch: the CPU seconds of the busiest worker process
    and of this process (the driver, and the LocalCluster's scheduler, which runs in it), and
    the wall seconds of the whole fit call they were taken over. A worker's CPU seconds over the
    wall seconds is the share of a core it had: on a machine with a core for each, near 1."""
    from deltaprop import Network
    from deltaprop.distributed import DaskEngine
    from deltaprop.training import Trainer

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    T = np.eye(out, dtype=np.float32)[rng.integers(0, out, rows)]
    systems = {f"dask {len(ws)} worker{'s' * (len(ws) > 1)}": DaskEngine(client, workers=ws) for ws in workers_sets}
    systems["numba, one process"] = "numba"
    trainers = {}
    for name, engine in systems.items():
        net = Network([features, hidden, out], "tanh", "softmax", loss="cross_entropy", dtype="float32", seed=1)
        trainers[name] = Trainer(net, "sgd", lr=0.1, mode="batch", eval_every=0, engine=engine, seed=0)
        trainers[name].fit(X, T, 1)  # shards placed, kernels compiled
    times = {name: [] for name in systems}
    cpu = {name: {"wall": [], "busiest worker": [], "driver and scheduler": []} for name in systems}
    for _ in range(epochs):
        for name, tr in trainers.items():
            w0, d0, t0 = client.run(_cpu_seconds), time.process_time(), time.perf_counter()
            tr.fit(X, T, 1)
            t1, d1, w1 = time.perf_counter(), time.process_time(), client.run(_cpu_seconds)
            times[name].append(tr.history.seconds[-1])  # the epoch's updates, not fit's checks of X
            cpu[name]["wall"].append(t1 - t0)
            cpu[name]["busiest worker"].append(max(w1[w] - w0[w] for w in w0))
            cpu[name]["driver and scheduler"].append(d1 - d0)
    shards = {name: [hi - lo for lo, hi in e.bounds] for name, e in systems.items() if not isinstance(e, str)}
    return ({name: statistics.median(ts) for name, ts in times.items()},
            {name: {k: statistics.median(v) for k, v in c.items()} for name, c in cpu.items()}, shards)


def model(a, b, c0, c1, payload, n, p, assumed=ASSUMED):
    """Modelled seconds per batch-mode step on p machines (see the module docstring)."""
    comm = c0 + c1 * p + 2 * assumed["latency_s"] + 2 * p * payload / assumed["bandwidth_bytes_per_s"]
    return a + b * n / p + comm, comm


def plot(path, a, b, c0, c1, payload, sizes, measured=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = np.arange(1, 65)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for n in sizes:
        t = np.array([model(a, b, c0, c1, payload, n, p)[0] for p in ps])
        ax1.plot(ps, t * 1e3, label=f"N = {n:,}")
        ax2.plot(ps, t[0] / t, label=f"N = {n:,}")
    ax2.plot(ps, ps, "k:", lw=0.8, label="ideal")
    if measured:
        ax2.plot([2], [measured], "ko", label=f"measured, 2 local workers, N = {sizes[1]:,}")
    ax1.set(xscale="log", yscale="log", xlabel="machines p", ylabel="time per step (ms)",
            title="T(p) = a + bN/p + comm(p)")
    ax2.set(xscale="log", yscale="log", xlabel="machines p", ylabel="speed-up T(1)/T(p)",
            title=f"assumed network: {ASSUMED['label']}")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats, workers in this process "
                                                        "(a smoke run: its figures mean nothing)")
    p.add_argument("--rows", type=int, default=60000, help="rows of the speed-up measurement (default 60000)")
    p.add_argument("--repeats", type=int, default=40, help="repeats of each timing (default 40)")
    p.add_argument("--epochs", type=int, default=7, help="epochs per system in the speed-up (default 7)")
    p.add_argument("--json", metavar="FILE", help="write every figure here")
    p.add_argument("--from-json", metavar="FILE", help="no measuring: report (and plot) the figures of a --json file")
    p.add_argument("--plot", metavar="FILE.png", help="the model's plot (needs matplotlib)")
    args = p.parse_args(argv)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            res = json.load(f)
        derive(res)
        _print(res, res["rows"])
        if args.plot:
            _plot_from(res, args.plot)
        return 0
    from distributed import Client, LocalCluster

    from deltaprop.machine import machine_facts

    features, hidden, out = 784, 128, 10
    payloads = (1, 407) if args.quick else PAYLOADS_KB
    repeats = 2 if args.quick else args.repeats
    rows = 512 if args.quick else args.rows
    epochs = 1 if args.quick else args.epochs
    shard_ns = (64, 256) if args.quick else (1024, 4096, 8192, 16384, 30000)
    res = {"machine": machine_facts(["distributed"]), "assumed_network": ASSUMED}
    # --quick checks that the script runs: workers in this process start in a fraction of the time
    where = {"processes": False} if args.quick else {"processes": True, "host": "127.0.0.1", "env": PIN}
    # direct_to_workers: the client --dask makes (the engine's calls skip the scheduler's relay)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0", **where) as cluster, \
            Client(cluster, direct_to_workers=True) as client:
        workers = sorted(client.scheduler_info()["workers"])
        if not args.quick:
            res["machine"]["workers_blas"] = client.run(_worker_blas)
        res["round_trip_parts_s"] = {str(k): round_trip_parts(client, workers[:k], 407, repeats) for k in (1, 2)}
        res["reduction_s"] = {str(k): reduction_times(client, workers[:k], payloads, repeats) for k in (1, 2)}
        grad = {n: client.submit(_gradient_seconds, n, features, hidden, out, repeats, workers=[workers[0]],
                                 pure=False).result() for n in shard_ns}
        a, b = fit_line(list(grad), list(grad.values()))
        res["gradient_s"] = {"per_shard": grad, "a": a, "b": b}
        res["epoch_s"], res["epoch_cpu_s"], res["shard_rows"] = epoch_seconds(
            client, [workers[:1], workers], rows, features, hidden, out, epochs)
    res["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    res["rows"] = rows
    derive(res)
    _print(res, rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, default=float)
    if args.plot:
        _plot_from(res, args.plot)
    return 0


def _plot_from(res, path):
    m, rows = res["model"], res["rows"]
    plot(path, m["a"], res["gradient_s"]["b"], m["c0"], m["c1"], m["payload_bytes"], (rows // 10, rows, rows * 10),
         res["speed_up"]["2 workers vs 1 worker"])


def derive(res) -> None:
    """The model, crossovers, speed-ups and targets from the measurements in ``res``."""
    features, hidden, out, rows = 784, 128, 10, res["rows"]
    res["reduction_s"] = {w: {int(k): v for k, v in row.items()} for w, row in res["reduction_s"].items()}
    payloads = list(res["reduction_s"]["1"])
    a_fit, b = res["gradient_s"]["a"], res["gradient_s"]["b"]
    a = max(0.0, a_fit)  # a negative intercept is noise in the timings: no fixed cost is modelled then
    payload = 4 * (features * hidden + hidden + hidden * out + out)  # float32 weights
    red1, red2 = res["reduction_s"]["1"], res["reduction_s"]["2"]
    small = min(payloads)
    c1 = max(0.0, red2[small] - red1[small])
    c0 = max(0.0, red1[small] - c1)
    sizes = (rows // 10, rows, rows * 10)
    at = 407 if 407 in red1 else small  # the 784-128-10 net's size in KB
    res["model"] = {"a": a, "c0": c0, "c1": c1, "payload_bytes": payload,
                    "T_ms": {str(n): {str(q): 1e3 * model(a, b, c0, c1, payload, n, q)[0]
                                      for q in (1, 2, 4, 8, 16, 32, 64)} for n in sizes}}
    comm = {q: model(a, b, c0, c1, payload, 0, q)[1] for q in (1, 2, 64)}
    res["crossover_rows"] = {
        "2 local workers (measured round trips)": (red2[at] - red1[at]) / (b * 0.5) if b > 0 else None,
        "2 machines (model)": (comm[2] - comm[1]) / (b * 0.5),
        "64 machines (model)": (comm[64] - comm[1]) / (b * (1 - 1 / 64)),
    }
    e = res["epoch_s"]
    res["speed_up"] = {"2 workers vs 1 worker": e["dask 1 worker"] / e["dask 2 workers"],
                       "2 workers vs numba, one process": e["numba, one process"] / e["dask 2 workers"]}
    if "shard_rows" in res:  # every update waits for the largest shard: the best 2 workers can do
        res["speed_up"]["ideal, 2 workers (rows / largest shard)"] = rows / max(res["shard_rows"]["dask 2 workers"])
    res["targets"] = {"speed-up >= 1.6 (2 workers vs 1)": res["speed_up"]["2 workers vs 1 worker"] >= 1.6,
                      f"reduction <= 5 ms at {at} KB (2 workers)": red2[at] <= 5e-3}


def _print(res, rows):
    print(f"machine: {res['machine']['cpu']}, {res['machine']['logical_cpus']} logical CPUs, load "
          f"{res['machine']['loadavg']} before, {res['machine']['loadavg_after']} after; BLAS "
          f"{[(x['internal_api'], x['architecture'], x['num_threads']) for x in res['machine']['blas'] or []]}"
          + (f"; workers' BLAS {sorted(res['machine']['workers_blas'].values())}"
             if res["machine"].get("workers_blas") else ""))
    parts = res.get("round_trip_parts_s")
    if parts:
        print("\none reduction at 407 KB (784-128-10 in float32), by parts (ms), loopback:")
        for what in parts["1"]:
            print(f"  {what:<52}" + "  ".join(f"{1e3 * parts[w][what]:7.2f}" for w in parts)
                  + "   (" + ", ".join(f"{w} worker{'s' * (w != '1')}" for w in parts) + ")")
    print("\nreduction round trip per step (ms), loopback:")
    print("payload KB  " + "  ".join(f"{k:>7}" for k in res["reduction_s"]["1"]))
    for w, row in res["reduction_s"].items():
        print(f"{w} worker{'s' if w != '1' else ' '}   " + "  ".join(f"{1e3 * v:7.2f}" for v in row.values()))
    g = res["gradient_s"]
    print("\ngradient per shard on one worker (784-128-10, float32): "
          + ", ".join(f"n={n}: {1e3 * t:.1f} ms" for n, t in g["per_shard"].items())
          + f"; fit a = {1e3 * g['a']:.2f} ms, b = {1e6 * g['b']:.2f} us/row")
    print(f"\nbatch mode, {rows:,} x 784, seconds per epoch: "
          + ", ".join(f"{k} {v:.3f}" for k, v in res["epoch_s"].items()))
    for name, c in res.get("epoch_cpu_s", {}).items():
        print(f"  {name}: per epoch {c['wall']:.3f} s wall, CPU {c['busiest worker']:.3f} s in the busiest worker "
              f"({c['busiest worker'] / c['wall']:.0%} of a core), {c['driver and scheduler']:.3f} s in the driver "
              f"and scheduler" + (f"; shards of {res['shard_rows'][name]} rows" if name in res.get("shard_rows", {})
                                  else ""))
    print("speed-up: " + ", ".join(f"{k} {v:.2f}x" for k, v in res["speed_up"].items()))
    print("crossover rows: " + ", ".join(f"{k} {v:,.0f}" for k, v in res["crossover_rows"].items() if v is not None))
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'not met'}" for k, v in res["targets"].items()))


if __name__ == "__main__":
    sys.exit(main())
