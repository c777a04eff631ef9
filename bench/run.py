"""Throughput of deltaprop against its peers: PyTorch (eager and torch.compile), scikit-learn,
plain NumPy, JAX, FANN.

    python bench/run.py                      # the full table, 1 thread (W1-W3 took about 15
                                             # minutes; W4-W7 and the defaults rows add to it)
    python bench/run.py --threads 1,2        # ... at 1 and at 2 threads
    python bench/run.py --quick              # a smoke run of a few seconds (CI runs it; it leaves
                                             # out torch_compile unless --systems names it)
    python bench/run.py --json               # one JSON object per result

Workloads (the registry ``CELLS``; fixed seeds, synthetic data):

* W1: 784-128-10 on 60,000 samples x 784 float32, (a) sigmoid + half-SSE, (b) ReLU + softmax
  cross-entropy; batch sizes 1 (on the first 5,000 samples), 32, 256 and full; each timed
  run is 3 epochs (``fit(X, T, epochs=3)`` for deltaprop, the same for every peer);
* W2: XOR 2-2-1 sigmoid, per-sample updates: the four patterns tiled to 100,000 samples,
  one epoch of 100,000 updates (a whole epoch is one call, so the per-call cost of any
  system is paid once per 100,000 updates); plus deltaprop's ``Trainer.fit`` on the real
  four-sample set, 2,500 epochs, where the per-epoch Python bookkeeping shows;
* W3: the worked example (2-2-2, biases fixed, lr 0.5), 10,000 updates of its one sample;
* W4: Adam (lr 0.001) on 784-256-128-10 ReLU + softmax cross-entropy, mini-batch 32 and 256,
  on the W1 data, one epoch per timed run (peers: torch.optim.Adam, optax.adam in JAX's scan epoch, a plain NumPy Adam
  loop, scikit-learn's solver="adam");
* W5: a wide layer, 784-512-10 tanh + softmax cross-entropy, momentum 0.9, mini-batch 64, one
  epoch per timed run;
* W6: tabular regression, 13-64-64-1 ReLU + MSE (linear output), mini-batch 32, 100,000 rows;
* W7: the RPROP family (Rprop-, Rprop+, iRprop-, iRprop+; initial step 0.01) in batch mode
  on 784-128-10 sigmoid + half-SSE (peers: torch.optim.Rprop, optax.rprop, FANN's iRprop-).

deltaprop runs the W1 and W4-W7 cells twice, as two systems timed in turn like any peer:
``deltaprop`` names everything (the cell's dtype, ``eval_every=0``), and
``deltaprop_defaults`` (the rows ``<cell> defaults``) is what a user gets who names only the
network, mode, batch size, optimizer and learning rate: ``deltaprop.model.build_training``
with the library's defaults (``deltaprop.config.DEFAULTS``: its dtype, evaluation and engine).

Each system runs in its own worker process per thread count (pinned to that many cores, BLAS
threads set with threadpoolctl, ``torch.set_num_threads``), kept alive across cells; for
every cell the systems are timed in turn, repeats alternating between them, and the median
of the repeats is reported with the ratio deltaprop / peer measured in the same run. A timed
run repeats the cell's work until it has lasted 0.1 s (``MIN_TIMED_S``; only fast systems on
the small cells repeat), so that timer and scheduler noise stay small against it. The
model building, warm-up and JIT compilation (numba, JAX, torch.compile) are outside the timed
region: deltaprop's warm-up runs the compiled engine where it can run the cell, so that
``engine="auto"`` counts no start-up in the timed fits, as in any process that has run those
kernels once (the start-up of a fresh process is the start-up measurement below). A missing
peer skips its rows with a note.

Also measured: a large float32 GEMM in the deltaprop worker (its FLOP rate gives the
"GEMM limit" of 784-128-10: rate / 409,088 FLOP per sample), the products of full-batch
epochs alone (the ceiling of W1's batch-256 and full-batch cells), the peak memory of one
full-batch epoch over the data (a child process's peak RSS above its RSS before the epoch),
the time of ``import deltaprop`` in fresh interpreters, and start-up: the whole command
``deltaprop train`` with its defaults against ``deltaprop train --engine numpy``, in fresh
processes, alternating.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ROOT = HERE.parent

#: FLOP per sample of one SGD step of 784-128-10: forward 2(784x128 + 128x10), weight
#: gradients the same again, and the hidden delta 2(128x10).
FLOP_784 = 2 * (784 * 128 + 128 * 10) * 2 + 2 * 128 * 10


#: Epochs per timed run of a W1 cell, for every system: one-off costs of a call (deltaprop
#: validates the data once per fit; JAX dispatches; sklearn checks its input) are spread
#: over several epochs, as in real training.
W1_EPOCHS = 3
MIN_TIMED_S = 0.1  # shortest timed run (see worker's "time")


@dataclass
class Cell:
    id: str
    workload: str
    sizes: list
    activation: str
    loss: str
    batch: int
    n: int
    dtype: str = "float32"
    lr: float = 0.01
    epochs: int = 1
    shuffle: bool = True
    worked_example: bool = False
    only: list = field(default_factory=list)  # systems limited to these (empty: all)
    label: str = ""
    data: str = "images"  # make_data's kind: images (784 -> 10 classes), tabular, xor, worked
    output: str = ""  # output activation; "": softmax under cross-entropy, else the hidden one
    optimizer: str = "sgd"  # a name in deltaprop.optimizers.OPTIMIZERS
    opt_kw: dict = field(default_factory=dict)  # its other hyper-parameters (momentum=0.9)
    defaults: bool = False  # also timed as deltaprop_defaults (what a user gets)

    @property
    def out_activation(self) -> str:
        return self.output or ("softmax" if self.loss == "cross_entropy" else self.activation)

    @property
    def mode(self) -> str:
        return "stochastic" if self.batch == 1 else ("batch" if self.batch >= self.n else "minibatch")

    @property
    def is_784(self) -> bool:
        """784-128-10: the net whose GEMM limit and products ceiling the run measures."""
        return self.sizes == [784, 128, 10]


def make_cells(quick: bool) -> list[Cell]:
    N = 2000 if quick else 60000
    n1 = 200 if quick else 5000
    epochs = 1 if quick else W1_EPOCHS
    cells = []
    for tag, act, loss in (("a", "sigmoid", "half_sse"), ("b", "relu", "cross_entropy")):
        what = "sigmoid+half-SSE" if tag == "a" else "ReLU+softmax-CE"
        for batch, n, name in ((1, n1, "stochastic"), (32, N, "mini-batch 32"),
                               (256, N, "mini-batch 256"), (N, N, "full batch")):
            cells.append(Cell(f"W1{tag}-{batch if batch < N else 'full'}", "W1", [784, 128, 10],
                              act, loss, batch, n, epochs=epochs, defaults=True,
                              label=f"W1 784-128-10 {what}, {name}"))
    nx = 2000 if quick else 100000
    cells.append(Cell("W2-xor", "W2", [2, 2, 1], "sigmoid", "half_sse", 1, nx, lr=0.5,
                      label=f"W2 XOR 2-2-1, {nx:,} per-sample updates (one epoch)", data="xor"))
    cells.append(Cell("W2-xor-fit4", "W2", [2, 2, 1], "sigmoid", "half_sse", 1, 4, lr=0.5,
                      epochs=50 if quick else 2500, only=["deltaprop"], data="xor",
                      label="W2 XOR via Trainer.fit on the 4 patterns, 2,500 epochs"))
    nw = 500 if quick else 10000
    cells.append(Cell("W3-worked", "W3", [2, 2, 2], "sigmoid", "half_sse", 1, nw, dtype="float64",
                      lr=0.5, shuffle=False, worked_example=True,
                      label=f"W3 worked example 2-2-2, {nw:,} updates", data="worked"))
    # W4 and W5: one epoch per timed run (1,875 updates at batch 32), as their epochs are
    # 2-4x W1's work and every peer's slower runs would otherwise stretch the run by minutes
    for batch in (32, 256):
        cells.append(Cell(f"W4-adam-{batch}", "W4", [784, 256, 128, 10], "relu", "cross_entropy", batch, N,
                          lr=0.001, epochs=1, optimizer="adam", defaults=True,
                          label=f"W4 784-256-128-10 ReLU+softmax-CE, Adam, mini-batch {batch}"))
    cells.append(Cell("W5-wide", "W5", [784, 512, 10], "tanh", "cross_entropy", 64, N, epochs=1,
                      opt_kw={"momentum": 0.9}, defaults=True,
                      label="W5 784-512-10 tanh+softmax-CE, momentum 0.9, mini-batch 64"))
    nt = 2000 if quick else 100000
    cells.append(Cell("W6-tabular", "W6", [13, 64, 64, 1], "relu", "mse", 32, nt, epochs=epochs,
                      output="identity", data="tabular", defaults=True,
                      label=f"W6 13-64-64-1 ReLU+MSE regression, mini-batch 32, {nt:,} rows"))
    for rule in ("rprop-", "rprop+", "irprop-", "irprop+"):
        cells.append(Cell(f"W7-{rule}", "W7", [784, 128, 10], "sigmoid", "half_sse", N, N, epochs=epochs,
                          optimizer=rule, defaults=True,
                          label=f"W7 784-128-10 sigmoid+half-SSE, {rule}, batch"))
    return cells


def make_data(cell: Cell):
    import numpy as np

    dt = np.dtype(cell.dtype)
    rng = np.random.default_rng(1234)
    n = cell.n
    if cell.data == "images":
        X = rng.standard_normal((n, 784), dtype=np.float32).astype(dt, copy=False)
        labels = rng.integers(0, 10, n)
        T = np.eye(10, dtype=dt)[labels]
        return X, T
    if cell.data == "tabular":
        # a smooth target of all 13 columns plus noise, so that the net has something to fit
        X = rng.standard_normal((n, 13), dtype=np.float32)
        a, b = rng.standard_normal(13) / np.sqrt(13), rng.standard_normal(13) / np.sqrt(13)
        y = np.tanh(X @ a) + 0.5 * (X @ b) ** 2 + 0.1 * rng.standard_normal(n)
        return X.astype(dt, copy=False), y.reshape(n, 1).astype(dt)
    if cell.data == "xor":
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dt)
        T = np.array([[0], [1], [1], [0]], dt)
        reps = -(-cell.n // 4)
        return np.tile(X, (reps, 1))[: cell.n].copy(), np.tile(T, (reps, 1))[: cell.n].copy()
    X = np.tile(np.array([[0.05, 0.10]], dt), (cell.n, 1))
    T = np.tile(np.array([[0.01, 0.99]], dt), (cell.n, 1))
    return X, T


# --------------------------------------------------------------------------- worker
def _set_threads(threads: int) -> dict:
    """Pin this process to `threads` cores and set every thread pool it has to that size."""
    info = {}
    try:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    except (AttributeError, OSError):
        pass
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        import numpy  # noqa: F401 (load its BLAS before limiting it)

        threadpool_limits(threads)
        info["blas"] = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                        f"x{i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = ["unknown (threadpoolctl not installed)"]
    return info


def _gemm_gflops(size: int, repeats: int = 5) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    C = np.empty_like(A)
    np.matmul(A, B, out=C)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def _products_rate(n: int, chunk: int = 512, repeats: int = 3) -> float:
    """Samples/s of the products of full-batch epochs of 784-128-10 alone, float32: per
    chunk of rows (streamed from an n x 784 array, as an epoch reads its data) the forward
    products X W1, A1 W2, the delta product D2 W2^T and the gradients A1^T D2, X^T D1, with
    ``np.matmul(..., out=)`` -- the part of an epoch no implementation avoids. Its fraction
    of the GEMM limit bounds what an epoch can reach."""
    import numpy as np

    rng = np.random.default_rng(0)
    f = np.float32
    X = rng.standard_normal((n, 784), dtype=f)
    W1, W2 = rng.standard_normal((784, 128), dtype=f), rng.standard_normal((128, 10), dtype=f)
    Z1, A1, D1 = (rng.standard_normal((chunk, 128), dtype=f) for _ in range(3))
    Z2, D2 = np.empty((chunk, 10), f), rng.standard_normal((chunk, 10), dtype=f)
    G1, G2 = np.empty((784, 128), f), np.empty((128, 10), f)
    stop = n - n % chunk
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass warms the caches and BLAS
        t = time.perf_counter()
        for s in range(0, stop, chunk):
            x = X[s:s + chunk]
            np.matmul(x, W1, out=Z1)
            np.matmul(A1, W2, out=Z2)
            np.matmul(D2, W2.T, out=D1)
            np.matmul(A1.T, D2, out=G2)
            np.matmul(x.T, D1, out=G1)
        best = min(best, time.perf_counter() - t)
    return stop / best


def worker(system_name: str, threads: int, quick: bool) -> None:
    """Serve timing requests on stdin/stdout, one JSON object per line."""
    info = _set_threads(threads)
    from systems import SYSTEMS

    system = SYSTEMS[system_name]()
    cells = {c.id: c for c in make_cells(quick)}
    reason = system.available()
    if system_name in ("torch", "torch_compile") and reason is None:
        import torch

        torch.set_num_threads(threads)
    print(json.dumps({"ready": reason is None, "reason": reason, **info}), flush=True)
    data_cache, runs = {}, {}
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "prepare":
                cell = cells[req["cell"]]
                why = system.supports(cell)
                if why is None:
                    key = (cell.data, cell.n, cell.dtype)
                    if key not in data_cache:
                        data_cache.clear()
                        data_cache[key] = make_data(cell)
                    t = time.perf_counter()
                    runs[cell.id] = system.prepare(cell, data_cache[key])
                    reply = {"ok": True, "warmup_s": time.perf_counter() - t}
                    _set_threads(threads)  # again: libraries loaded while preparing
                else:
                    reply = {"ok": False, "reason": why}
            elif op == "time":
                # a timed run lasts at least MIN_TIMED_S: a fast system repeats the cell's
                # work (XOR's 100,000 updates take 5 ms), so that timer and scheduler noise
                # stay small against it; slow systems run it once, as before
                run = runs[req["cell"]]
                samples, calls = 0, 0
                t = time.perf_counter()
                while True:
                    samples += run()
                    calls += 1
                    dt = time.perf_counter() - t
                    if quick or dt >= MIN_TIMED_S:
                        break
                reply = {"samples_per_s": samples / dt, "seconds": dt, "calls": calls}
            elif op == "info":
                run = runs.get(req["cell"])
                reply = run.info() if run is not None and hasattr(run, "info") else {}
            elif op == "drop":
                runs.pop(req["cell"], None)
                reply = {}
            elif op == "gemm":
                reply = {"gflops": _gemm_gflops(req["size"])}
            elif op == "products":
                reply = {"samples_per_s": _products_rate(req["n"])}
            else:
                reply = {"error": f"unknown op {op}"}
        except Exception as exc:  # report and keep serving: one failing cell is a note
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


class Worker:
    def __init__(self, system: str, threads: int, quick: bool):
        env = dict(os.environ)
        env.setdefault("PYTHONWARNINGS", "ignore")
        # every BLAS and OpenMP pool the worker may load later (SciPy's own OpenBLAS, ...)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        if system == "jax":  # one XLA thread pool of the right size, before jax is imported
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                + ("true" if threads > 1 else "false")).strip()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "run.py"), "--worker", system, "--threads", str(threads)]
            + (["--quick"] if quick else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        self.hello = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            return {"ready": False, "reason": "worker exited", "error": "worker exited"}
        return json.loads(line)

    def ask(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


@contextlib.contextmanager
def _only_running(worker: "Worker", workers: list) -> "Iterator[None]":
    """Stop every other worker while ``worker`` is timed (POSIX): a peer's idle runtime
    threads (JAX's, for one) otherwise keep spinning on the same cores for a while after its
    own run and slow down the next system's, which in the short XOR cell cost 15-30%."""
    others = [w for w in workers if w is not worker and w.proc.poll() is None]
    stop = getattr(signal, "SIGSTOP", None)
    if stop is None:
        yield
        return
    for w in others:
        os.kill(w.proc.pid, stop)
    try:
        yield
    finally:
        for w in others:
            os.kill(w.proc.pid, signal.SIGCONT)


# --------------------------------------------------------------------------- memory, import
def memory_child(n: int, engine: str) -> None:
    """Run one full-batch epoch on n x 784 float32 and print the peak RSS above the RSS
    before the epoch (Linux: VmHWM reset through /proc/self/clear_refs)."""
    import numpy as np

    import deltaprop as dp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 784), dtype=np.float32)
    T = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    net = dp.Network([784, 128, 10], "sigmoid", loss="half_sse", dtype="float32", seed=0)
    tr = dp.Trainer(net, lr=0.01, mode="batch", eval_every=0, engine=engine)
    from deltaprop.engines.numba_engine import NumbaEngine

    if engine == "auto" and NumbaEngine().unsupported(tr) is None:
        tr.engine = "numba"  # as the cells' warm-up: auto then counts the kernels as loaded
    tr.fit(X[:512], T[:512], 1)  # imports, compiled kernels: not part of the epoch
    tr.engine = engine

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        return 0

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = status("VmRSS:")
    tr.fit(X, T, 1)
    peak = status("VmHWM:")
    print(json.dumps({"data_mb": (X.nbytes + T.nbytes) / 2**20, "rss_before_mb": before / 2**20,
                      "peak_mb": peak / 2**20, "extra_mb": (peak - before) / 2**20,
                      "engine": tr.engine_used}))


def measure_memory(n: int, engine: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "run.py"), "--memory-child", str(n), "--engine", engine],
                         capture_output=True, text=True, cwd=str(ROOT))
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_bytecode() -> None:
    """Bring deltaprop's cached bytecode up to date, as an installed package has it (pip
    compiles on install; an interpreter writes it on first import). Where
    PYTHONDONTWRITEBYTECODE is set (as on the project's machines) a source edited since its
    ``.pyc`` was written would otherwise be compiled again in every measured interpreter: 14 ms
    of a 42 ms import, measured."""
    import compileall

    import deltaprop

    compileall.compile_dir(os.path.dirname(deltaprop.__file__), quiet=1)


def measure_import(repeats: int) -> dict:
    """Wall time of ``import deltaprop`` (which loads its names on first use, NumPy included),
    of its first use (``import deltaprop`` then ``Network``, ``Trainer`` and ``train``, which
    load NumPy and the training modules) and, for scale, of ``import numpy``: fresh
    interpreters, alternating, with the bytecode compiled."""
    compile_bytecode()
    codes = {"deltaprop": "import deltaprop", "numpy": "import numpy",
             "first_use": "import deltaprop; deltaprop.Network, deltaprop.Trainer, deltaprop.train"}
    times = {name: [] for name in codes}
    for _ in range(repeats):
        for name, stmt in codes.items():
            code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            times[name].append(float(out.stdout))
    return {"import_ms_median": 1000 * statistics.median(times["deltaprop"]),
            "import_ms_min": 1000 * min(times["deltaprop"]),
            "first_use_ms_median": 1000 * statistics.median(times["first_use"]),
            "numpy_ms_median": 1000 * statistics.median(times["numpy"])}


def measure_startup(repeats: int, quick: bool) -> dict:
    """Wall time of the whole command ``deltaprop train`` with its defaults (the built-in data
    set, ``engine="auto"``) against the same command with ``--engine numpy``: fresh processes,
    alternating, the first of each pair swapped every repeat. Start-up counts here (imports, the
    engine's kernels loaded), which the cells leave out. A temporary working directory: the
    command writes no file without ``--out``, and none lands in the checkout if it ever does."""
    base = [sys.executable, "-m", "deltaprop", "train"] + (["--epochs", "2"] if quick else [])
    commands = {"defaults": base, "numpy": base + ["--engine", "numpy"]}
    compile_bytecode()
    times = {k: [] for k in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for k in list(commands)[:: 1 if r % 2 == 0 else -1]:
                t = time.perf_counter()
                out = subprocess.run(commands[k], capture_output=True, text=True, cwd=tmp)
                times[k].append(time.perf_counter() - t)
                if out.returncode:
                    last = out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]
                    return {"error": f"{' '.join(commands[k][2:])}: {last[0]}"}
    return {"command": " ".join(base[2:]), "repeats": repeats,
            **{f"{k}_s_median": statistics.median(v) for k, v in times.items()},
            **{f"{k}_s_min": min(v) for k, v in times.items()}}


# --------------------------------------------------------------------------- main
#: deltaprop's two systems: everything named (evaluation off), and what a user gets by default
OURS = ["deltaprop", "deltaprop_defaults"]
PEERS = ["numpy", "torch", "torch_compile", "sklearn", "jax", "fann"]

#: Peers left out of ``--quick`` unless ``--systems`` names them: torch.compile spends seconds
#: compiling each cell (more on a cold inductor cache), not a smoke run's few seconds.
NOT_QUICK = {"torch_compile": "left out of --quick (inductor compiles for seconds per cell); "
                              "name it in --systems to run it"}


#: The peers' modules whose versions the results record beside the machine.
PEER_MODULES = ("numba", "torch", "jax", "sklearn", "threadpoolctl")


def run_threads(threads: int, cells: list[Cell], systems: list[str], repeats: int, quick: bool,
                emit) -> list[dict]:
    workers = {}
    for s in systems:
        w = Worker(s, threads, quick)
        if w.hello.get("ready"):
            workers[s] = w
        else:
            emit({"threads": threads, "system": s, "skipped": w.hello.get("reason")})
            w.close()
    results = []
    blas = workers["deltaprop"].hello.get("blas") if "deltaprop" in workers else None
    gemm_size = 512 if quick else 2048
    # the GEMM rate (and the products bound) come from the deltaprop worker; without it, none
    gemm = [workers["deltaprop"].ask(op="gemm", size=gemm_size)["gflops"]] if "deltaprop" in workers else []
    for cell in cells:
        active = {}
        for s, w in workers.items():
            if cell.only and s not in cell.only:
                continue
            rep = w.ask(op="prepare", cell=cell.id)
            if rep.get("ok"):
                active[s] = (w, rep["warmup_s"])
            else:
                emit({"threads": threads, "cell": cell.id, "system": s,
                      "skipped": rep.get("reason") or rep.get("error")})
        times = {s: [] for s in active}
        errors = {}
        order = list(active)
        for r in range(repeats):
            for s in order[r % max(len(order), 1):] + order[: r % max(len(order), 1)]:
                if s in errors:
                    continue
                # a slow peer (more than 20 s a run) is timed three times, not five
                if r >= 3 and times[s] and min(times[s], key=lambda x: x[1])[1] > 20:
                    continue
                with _only_running(active[s][0], [w for w, _ in active.values()]):
                    rep = active[s][0].ask(op="time", cell=cell.id)
                if "error" in rep:
                    errors[s] = rep["error"]
                    emit({"threads": threads, "cell": cell.id, "system": s, "error": rep["error"]})
                    continue
                times[s].append((rep["samples_per_s"], rep["seconds"]))
        for s, (w, warm) in active.items():
            if not times[s]:
                continue
            info = w.ask(op="info", cell=cell.id)
            w.ask(op="drop", cell=cell.id)
            res = {"threads": threads, "cell": cell.id, "label": cell.label, "system": s,
                   "samples_per_s": statistics.median(x[0] for x in times[s]),
                   "repeats": len(times[s]), "warmup_s": warm, **({"info": info} if info else {})}
            results.append(res)
            emit(res)
    products = None
    if "deltaprop" in workers:
        w = workers["deltaprop"]
        with _only_running(w, list(workers.values())):
            gemm.append(w.ask(op="gemm", size=gemm_size)["gflops"])
            if any(c.is_784 for c in cells):
                products = w.ask(op="products", n=2048 if quick else 60000).get("samples_per_s")
    for w in workers.values():
        w.close()
    g = max(gemm) if gemm else float("nan")
    summary = {"threads": threads, "gemm_gflops": g, "gemm_size": gemm_size,
               "gemm_limit_samples_per_s": g * 1e9 / FLOP_784, "blas": blas,
               "products_samples_per_s": products}
    emit(summary)
    return results, summary


def table(by: dict, cells, peers, limit: float) -> str:
    """The Markdown table of one thread count, ``by[(cell id, system)]`` being a result: a row
    per cell deltaprop ran and, under it, a ``<cell> defaults`` row where deltaprop_defaults
    ran, each with the peers' rates and its ratio to each (the peers' runs of that cell, which
    alternated with both). The GEMM-limit column is for the 784-128-10 cells."""
    head = ["cell", "deltaprop"] + peers + [f"x {p}" for p in peers] + ["of GEMM limit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        for ours, name in zip(OURS, (c.id, f"{c.id} defaults")):
            d = by.get((c.id, ours))
            if d is None:
                continue
            row = [name, _fmt(d["samples_per_s"])]
            row += [_fmt(by[(c.id, p)]["samples_per_s"]) if (c.id, p) in by else "-" for p in peers]
            row += [f"{d['samples_per_s'] / by[(c.id, p)]['samples_per_s']:.2f}" if (c.id, p) in by else "-"
                    for p in peers]
            row.append(f"{d['samples_per_s'] / limit:.0%}" if c.is_784 and limit == limit else "-")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke run")
    p.add_argument("--json", action="store_true", help="one JSON object per result")
    p.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per cell and system (5)")
    p.add_argument("--systems", default=None,
                   help="comma-separated systems (default: " + ",".join(OURS + PEERS) + ")")
    p.add_argument("--cells", default="", help="comma-separated cell ids (default: all)")
    p.add_argument("--skip-extras", action="store_true",
                   help="leave out the memory and import measurements")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--engine", default="auto", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, int(args.threads), args.quick)
        return 0
    if args.memory_child:
        memory_child(args.memory_child, args.engine)
        return 0
    repeats = args.repeats or (1 if args.quick else 5)
    if args.systems:
        systems = args.systems.split(",")
        left_out = {}
    else:
        left_out = NOT_QUICK if args.quick else {}
        systems = [s for s in OURS + PEERS if s not in left_out]
    cells = make_cells(args.quick)
    if args.cells:
        wanted = set(args.cells.split(","))
        cells = [c for c in cells if c.id in wanted]

    rows = []  # everything emitted: the text output ends with report.py's targets from them

    def emit(obj):
        rows.append(obj)
        if args.json:
            print(json.dumps(obj), flush=True)

    # Imported here, not at the top: the workers (this file with --worker) stay free of it.
    from deltaprop.machine import machine_facts

    facts = machine_facts(PEER_MODULES)
    facts["fann"] = "2.2 (libfann)" if __import__("ctypes.util").util.find_library("floatfann") else None
    emit({"machine": facts, "command": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)})
    out = [f"# deltaprop benchmark ({'quick' if args.quick else 'full'}), samples/s, median of {repeats}",
           "", "machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()), ""]
    for s, why in left_out.items():
        emit({"system": s, "skipped": why})
        out += [f"{s}: {why}", ""]
    all_results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        results, summary = run_threads(threads, cells, systems, repeats, args.quick, emit)
        all_results.append((threads, results, summary))
        out += [f"## {threads} thread(s); BLAS: {summary['blas']}; GEMM {summary['gemm_size']}^3 float32: "
                f"{summary['gemm_gflops']:.0f} GFLOP/s, limit for 784-128-10: "
                f"{summary['gemm_limit_samples_per_s'] / 1e3:.0f}k samples/s"
                + (f"; a full-batch epoch's products alone: {summary['products_samples_per_s'] / 1e3:.0f}k"
                   f" ({summary['products_samples_per_s'] / summary['gemm_limit_samples_per_s']:.0%})"
                   if summary.get("products_samples_per_s") else ""), "",
                table({(r["cell"], r["system"]): r for r in results}, cells,
                      [s for s in systems if s not in OURS], summary["gemm_limit_samples_per_s"]), ""]
    n_mem = 4000 if args.quick else 60000
    for engine in () if args.skip_extras else ("auto", "numpy"):
        mem = measure_memory(n_mem, engine)
        emit({"memory": mem, "n": n_mem, "requested_engine": engine})
        if "error" in mem:
            out.append(f"memory ({engine}): {mem['error']}")
        else:
            out.append(f"memory, one full-batch epoch on {n_mem} x 784 float32 (engine {mem['engine']}): "
                       f"data {mem['data_mb']:.0f} MB, peak {mem['extra_mb']:.0f} MB above the RSS before it")
    if not args.skip_extras:
        imp = measure_import(3 if args.quick else 7)
        emit({"import": imp})
        out.append(f"import deltaprop: {imp['import_ms_median']:.0f} ms; with the first use of Network and "
                   f"Trainer (NumPy loaded): {imp['first_use_ms_median']:.0f} ms; import numpy alone "
                   f"{imp['numpy_ms_median']:.0f} ms (medians over fresh interpreters)")
        start = measure_startup(2 if args.quick else 5, args.quick)
        emit({"startup": start})
        out.append(f"start-up: {start['error']}" if "error" in start else
                   f"start-up, the whole command `{start['command']}`: defaults {start['defaults_s_median']:.2f} s, "
                   f"--engine numpy {start['numpy_s_median']:.2f} s (medians of {start['repeats']})")
    with contextlib.suppress(AttributeError, OSError):  # how busy the machine was at the end
        emit({"loadavg_end": [round(x, 2) for x in os.getloadavg()]})
    if not args.json:
        from report import targets  # a module beside this one that imports it: loaded only here

        print("\n".join(out + ["", targets(rows)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
