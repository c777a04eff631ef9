"""The Dask engine against a LocalCluster of 2 single-threaded worker processes: the weights
of every optimizer equal the single-process NumPy engine's (float64), because the driver adds
the shards' gradient sums in a fixed order (see deltaprop.distributed)."""

import os

import numpy as np
import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from deltaprop import Network  # noqa: E402
from deltaprop.distributed import DaskEngine, shard_bounds  # noqa: E402
from deltaprop.training import Trainer  # noqa: E402

# dask's own servers leave sockets for the garbage collector and warn about them: noise here
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning",
                                        "ignore::pytest.PytestUnraisableExceptionWarning")

PIN = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           host="127.0.0.1", env=PIN)
    with cluster, Client(cluster) as c:
        yield c


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    T = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    return X, T


def _fit(engine, optimizer, mode, epochs=4, chunk=64, **kw):
    X, T = _data()
    net = Network([4, 5, 1], "tanh", "sigmoid", loss="binary_cross_entropy", dtype="float64", seed=1)
    tr = Trainer(net, optimizer, lr=0.05, mode=mode, batch_size=50, seed=3, chunk_size=chunk,
                 engine=engine, **kw)
    tr.fit(X, T, epochs)
    return net.flat.copy(), tr


def test_shard_bounds():
    # shard_rows: whole chunks each, so chunks never straddle two shards
    assert shard_bounds(300, 64, shard_rows=64)[-1] == (256, 300)
    assert all(lo % 64 == 0 for lo, _ in shard_bounds(300, 64, shard_rows=128))
    # by count: balanced, the largest shard (which every update waits for) as small as it can be
    assert shard_bounds(300, 64, 2) == [(0, 150), (150, 300)]
    assert shard_bounds(60000, 4096, 2) == [(0, 30000), (30000, 60000)]
    assert shard_bounds(1, 64, 2) == [(0, 1)]  # fewer rows than parts: fewer shards
    for n, parts in ((60000, 3), (60000, 7), (5000, 16), (7, 3), (2, 5)):
        b = shard_bounds(n, 4096, parts)
        sizes = [hi - lo for lo, hi in b]
        assert b[0][0] == 0 and b[-1][1] == n and min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
        assert all(p[1] == q[0] for p, q in zip(b, b[1:])) and len(b) == min(n, parts)


@pytest.mark.parametrize("optimizer,mode", [("sgd", "batch"), ("adam", "batch"), ("rprop+", "batch"),
                                            ("irprop+", "batch"), ("quickprop", "batch"),
                                            ("sarprop", "batch"), ("sgd", "minibatch"),
                                            ("adam", "minibatch")])
def test_same_weights_as_one_process(client, optimizer, mode):
    ref, _ = _fit("numpy", optimizer, mode)
    got, tr = _fit(DaskEngine(client), optimizer, mode)
    assert tr.engine_used == "dask"
    # 2 shards of 3 chunks: only the grouping of the sum differs (relative ~1e-16 per step)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shard_rows", [None, 64])
def test_lbfgs_on_the_cluster_same_weights(client, shard_rows):
    # L-BFGS runs its own loop (scipy's): each evaluation of its objective is one full-batch
    # reduction on the workers, so the iterates equal one process's. One chunk per shard: the
    # same additions, the same bits; two shards of three chunks: the grouping of one sum
    # differs (relative ~1e-16 per evaluation, which scipy's line search can carry a little)
    pytest.importorskip("scipy")
    ref, one = _fit("numpy", "lbfgs", "batch", epochs=15)
    got, tr = _fit(DaskEngine(client, shard_rows=shard_rows), "lbfgs", "batch", epochs=15)
    assert tr.engine_used == "dask" and tr.optimizer.n_fun == one.optimizer.n_fun > 15
    if shard_rows == 64:
        assert np.array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_a_call_that_timed_out_itself_is_not_waited_for_again():
    # from Python 3.11 a call's own TimeoutError is the class the poll's timeout raises too: it
    # must end the wait, not start another poll (which would repeat while the workers live)
    import concurrent.futures

    engine = DaskEngine(client=None)
    failed = concurrent.futures.Future()
    failed.set_exception(TimeoutError("the worker's own"))
    with pytest.raises(TimeoutError, match="the worker's own"):
        engine._wait([(["tcp://nowhere:1"], failed)])


def test_sample_weights_are_refused(client):
    # the workers' sums are unweighted: weights must not be dropped without a word
    from deltaprop.errors import ConfigError

    X, T = _data()
    for optimizer in ("sgd", "lbfgs"):
        net = Network([4, 5, 1], "tanh", "sigmoid", loss="binary_cross_entropy", dtype="float64", seed=1)
        tr = Trainer(net, optimizer, mode="batch", engine=DaskEngine(client))
        with pytest.raises(ConfigError, match="sample weights are not supported on a Dask cluster"):
            tr.fit(X, T, 1, sample_weight=np.linspace(0.5, 2, len(X)))


def test_one_chunk_per_shard_is_bitwise(client):
    # with shard_rows = chunk_size the driver adds the same chunk sums in the same order as the
    # NumPy engine: the same additions, so the same bits
    ref, _ = _fit("numpy", "sgd", "batch")
    got, _ = _fit(DaskEngine(client, shard_rows=64), "sgd", "batch")
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("mode", ["batch", "stochastic"])
def test_jobs_on_the_holders_thread_same_bits(client, mode):
    # small jobs run on the worker's event loop, large ones on the holder's thread: the same
    # arithmetic either way. INLINE_WORK = 0 sends every job to the thread; without the
    # allocator change, too.
    inline = DaskEngine(client, shard_rows=64)
    threaded = DaskEngine(client, shard_rows=64, reuse_freed_buffers=False)
    threaded.INLINE_WORK = 0
    assert inline.INLINE_WORK > 5 * 4 * 64 + 6 * 64  # the data here is small enough to run inline
    a, _ = _fit(inline, "adam", mode, epochs=2)
    b, _ = _fit(threaded, "adam", mode, epochs=2)
    assert np.array_equal(a, b)


def test_reuse_freed_buffers_stops_the_page_faults():
    # the cause of most of a step's communication time: with Dask's MALLOC_TRIM_THRESHOLD_ each
    # 407 KB buffer is a fresh mapping that faults in page by page (100 faults per buffer);
    # after _reuse_freed_buffers the freed buffer is reused. In a child process, as on a worker.
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    code = (
        "import ctypes, resource, numpy as np\n"
        "from deltaprop.distributed import _reuse_freed_buffers\n"
        "ctypes.CDLL('libc.so.6').mallopt(-1, 65536)  # M_TRIM_THRESHOLD as Dask's workers start\n"
        "def faults():\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    for _ in range(50):\n"
        "        np.ones(101770, np.float32)\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
        "faults()\n"
        "dask_like = faults()\n"
        "assert _reuse_freed_buffers()\n"
        "faults()\n"
        "print(dask_like, faults())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    dask_like, reused = map(int, out.split())
    assert dask_like >= 50 * 90  # about 100 pages each time
    assert reused < 50


def test_updates_are_calls_not_tasks(client):
    # once the shards are placed, an update is one actor call per worker: in 3 epochs of 6
    # updates the scheduler makes fewer transitions than there are updates. A task per shard and
    # update would make at least 108 (2 shards x 18 updates x 3 transitions: waiting,
    # processing, memory); the few it may make are the release of futures from before (CI
    # measured 6 once, asynchronously after the first fit), which an exact count cannot allow.
    X, T = _data()
    net = Network([4, 5, 1], "tanh", "sigmoid", loss="binary_cross_entropy", dtype="float64", seed=1)
    engine = DaskEngine(client)
    tr = Trainer(net, "adam", lr=0.05, mode="minibatch", batch_size=50, seed=3, chunk_size=64, engine=engine)

    def transitions():
        return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)

    start = transitions()
    tr.fit(X, T, 1)
    before = transitions()
    assert before > start  # placing the shards and starting the holders were tasks: the counter counts
    tr.fit(X, T, 3)
    assert tr.optimizer.t == 4 * 6 and len(engine._holders) == 2
    assert transitions() - before < tr.optimizer.t - 6


def test_independent_of_worker_count(client):
    # the shards are fixed by shard_rows, not by the workers: one worker gives the same bits
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as one, \
            Client(one) as c1:
        a, _ = _fit(DaskEngine(c1, shard_rows=128), "adam", "minibatch")
    b, _ = _fit(DaskEngine(client, shard_rows=128), "adam", "minibatch")
    assert np.array_equal(a, b)


@pytest.mark.parametrize("shuffle", [True, False])
def test_stochastic_moves_the_model_same_bits(client, shuffle):
    # stochastic mode: the model visits the shards in the epoch's order (every sample when
    # shuffled, each shard once when not); the worker runs the NumPy engine's own updates, so
    # the weights and the optimizer's state equal one process's bit for bit
    X, T = _data(n=40)
    runs = []
    for engine in ("numpy", DaskEngine(client, shard_rows=16)):
        net = Network([4, 5, 1], "tanh", "sigmoid", loss="binary_cross_entropy", dtype="float64", seed=1)
        tr = Trainer(net, "adam", lr=0.05, mode="stochastic", seed=3, chunk_size=8, shuffle=shuffle,
                     engine=engine)
        tr.fit(X, T, 2)
        runs.append((net.flat.copy(), tr.optimizer.state_dict(), tr.history.loss_running))
    (a, sa, la), (b, sb, lb) = runs
    assert np.array_equal(a, b) and sa["t"] == sb["t"] == 80
    assert all(np.array_equal(x, y) for x, y in zip(sa["state"].values(), sb["state"].values()))
    # the running loss is summed per visit and then added: only the grouping of that sum differs
    np.testing.assert_allclose(lb, la, rtol=1e-14, atol=0)


def _cli_weights(tmp_path, name, *extra):
    from deltaprop.cli import main
    from deltaprop.io import load_model

    out = str(tmp_path / f"{name}.npz")
    assert main(["train", "--data", "iris", "--mode", "batch", "--epochs", "4", "--dtype", "float64",
                 "--optimizer", "adam", "--quiet", "--out", out, *extra]) == 0
    return load_model(out)[0].flat.copy()


def test_setup_line_path_in_words(client):
    # what `deltaprop train` shows after "engine": the workers and the shards, in the reader's
    # language (the Russian plural forms included)
    from deltaprop.i18n import language

    engine = DaskEngine(client)
    assert engine.path == "dask (2 workers, one shard per worker)"
    assert DaskEngine(client, shard_rows=64).path == "dask (2 workers, shards of 64 rows)"
    _fit(engine, "sgd", "batch", epochs=1)
    assert engine.path == "dask (2 workers, 2 shards)"
    with language("ru"):
        assert engine.path == "dask (2 рабочих процесса, 2 шарда)"


def test_cli_dask_local_same_weights(tmp_path):
    # --dask local:2 starts its own cluster, trains on it and shuts it down; same weights
    ref = _cli_weights(tmp_path, "one")
    got = _cli_weights(tmp_path, "two", "--dask", "local:2")
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


def test_cli_dask_bad_spec(tmp_path, capsys):
    from deltaprop.cli import main

    assert main(["train", "--data", "iris", "--epochs", "1", "--dask", "local:zero",
                 "--checkpoint", str(tmp_path / "c.npz")]) != 0
    assert "local:N" in capsys.readouterr().err


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs, kill=False):
    """Workers first, then the scheduler: asked to stop (a nanny stops its worker process), or
    killed with ``kill`` (a worker whose scheduler is gone would try to reach it first), and
    killed anyway after 30 s."""
    import subprocess

    for p in reversed(procs):
        p.kill() if kill else p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=30)


def test_real_scheduler_and_worker_processes(tmp_path):
    # what the README tells a user to run: `dask scheduler` and `dask worker` as separate
    # processes on 127.0.0.1; --dask tcp://... joins them and gives the same weights
    import subprocess
    import sys

    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    addr = f"tcp://127.0.0.1:{_free_port()}"
    env = os.environ | PIN
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", addr.rsplit(":", 1)[1],
                               "--dashboard-address", ":0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--host", "127.0.0.1",
                                           "--dashboard-address", ":0"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(addr, timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
        ref = _cli_weights(tmp_path, "one")
        got = _cli_weights(tmp_path, "two", "--dask", addr)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
        # partitions named relative to the driver's folder: the workers, started elsewhere,
        # read them at the absolute path the driver found
        from deltaprop.cli import main
        from deltaprop.io import load_model

        _csv_parts(tmp_path / "p")
        old = os.getcwd()
        os.chdir(tmp_path)
        try:
            common = ["train", "--data", "p", "--target", "label", "--epochs", "2", "--dtype", "float64", "--quiet"]
            assert main([*common, "--out", "local.npz"]) == 0
            assert main([*common, "--out", "there.npz", "--dask", addr]) == 0
        finally:
            os.chdir(old)
        np.testing.assert_allclose(load_model(tmp_path / "there.npz")[0].flat, load_model(tmp_path / "local.npz")[0].flat,
                                   rtol=1e-12, atol=1e-14)
    finally:
        _stop(procs)


@pytest.mark.parametrize("banner", [None, b"SSH-2.0-OpenSSH_9.2\r\n"])
def test_a_port_that_is_not_a_dask_scheduler_is_one_clear_error(capsys, monkeypatch, banner):
    # a server that accepts and then stays silent (an HTTP server waits for a request) or talks
    # another protocol (an SSH banner read as a frame length: a MemoryError): a ClusterError
    # within the connect timeout, not a hang or "out of memory"
    import socket
    import threading
    import time

    import deltaprop.distributed as dd
    from deltaprop.cli import main

    monkeypatch.setattr(dd, "CONNECT_TIMEOUT_S", 1.5)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
            if banner:
                conn.sendall(banner)

    threading.Thread(target=serve, daemon=True).start()
    try:
        t = time.perf_counter()
        code = main(["train", "--data", "xor", "--epochs", "1", "--dask", f"tcp://127.0.0.1:{srv.getsockname()[1]}"])
        took = time.perf_counter() - t
    finally:
        srv.close()
        for conn in held:
            conn.close()
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("deltaprop: error: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert err.count("\n") == 1 and "out of memory" not in err
    assert took < 20  # the timeout (1.5 s here) and Dask's own shutdown, never for ever


def test_worker_killed_mid_epoch_same_weights(tmp_path):
    # a worker process is SIGKILLed in the middle of epoch 2 (its shard is lost with it); the
    # update is recomputed from the same weights with the shards sent again, so the final
    # weights equal an uninterrupted run's, bit for bit (same shard boundaries, same order).
    # Partitions read by the workers: Dask reads and computes the lost shards again itself.
    import signal

    from deltaprop.config import resolve
    from deltaprop.runs import prepare_run

    class KillOnce(DaskEngine):
        calls = 0

        def _gradients(self, *a):
            type(self).calls += 1
            if type(self).calls == 9:  # 6 updates per epoch: update 3 of epoch 2
                self.killed, pid = next(iter(self.client.run(os.getpid).items()))
                os.kill(pid, signal.SIGKILL)
            return super()._gradients(*a)

    class KillOnceToo(KillOnce):
        calls = 0

    cfg = resolve({"data": str(_csv_parts(tmp_path / "p")), "target": "label", "epochs": 3, "dtype": "float64",
                   "mode": "minibatch", "batch_size": 16, "optimizer": "adam", "seed": 5, "val_split": 0.0})

    def partitioned(c, engine):
        run = prepare_run(cfg, client=c)
        run.trainer.engine = engine
        run.fit()
        return run.model.network.flat.copy()

    # direct_to_workers, as --dask makes it: a call to the dead worker is retried by Dask for its
    # connect timeout, unless the engine notices that the worker left
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1", env=PIN) as cluster, Client(cluster, direct_to_workers=True) as c:
        ref, _ = _fit(DaskEngine(c, shard_rows=128), "adam", "minibatch")
        engine = KillOnce(c, shard_rows=128)
        got, _ = _fit(engine, "adam", "minibatch")
        c.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
        ref_parts = partitioned(c, DaskEngine(c))
        engine_parts = KillOnceToo(c)
        got_parts = partitioned(c, engine_parts)
        assert engine_parts.killed not in c.scheduler_info()["workers"]
    assert engine.recoveries >= 1  # the kill did hit an update in flight
    # partitions: the shards are tasks' results, which Dask itself computes again (reading the
    # files) where the lost worker's tasks are rescheduled; the update goes through unretried
    assert np.array_equal(got, ref)
    assert np.array_equal(got_parts, ref_parts)


def test_scheduler_lost_is_one_clear_error():
    # the scheduler process dies mid-epoch: a ClusterError (a DeltapropError: the CLI shows it as
    # one line, and the checkpoint of the last finished epoch stays as it was), not a hang
    import subprocess
    import sys

    from deltaprop.distributed import ClusterError

    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    addr = f"tcp://127.0.0.1:{_free_port()}"
    env = os.environ | PIN
    sched = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", addr.rsplit(":", 1)[1],
                              "--dashboard-address", ":0"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--host", "127.0.0.1",
                               "--dashboard-address", ":0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    class KillScheduler(DaskEngine):
        calls = 0

        def _gradients(self, *a):
            KillScheduler.calls += 1
            if KillScheduler.calls == 5:
                sched.kill()
                sched.wait(timeout=30)
            return super()._gradients(*a)

    import dask as dask_module

    try:
        with Client(addr, timeout=60) as probe:  # up, with its worker
            probe.wait_for_workers(1, timeout=60)
        # a client's reconnect attempts last its timeout (60 s above): a short one here, as the
        # time the error takes is not what is tested
        with dask_module.config.set({"distributed.comm.timeouts.connect": "2s"}), \
                Client(addr, timeout=4) as c:
            with pytest.raises(ClusterError, match="lost the Dask scheduler"):
                _fit(KillScheduler(c), "sgd", "minibatch")
    finally:
        _stop([sched, worker], kill=True)


def _csv_parts(folder, n=120, cuts=(40, 45, 90), seed=0):
    # three classes; the second partition holds five rows of one class only
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 100.0] + [5.0, -3.0, 1e4]
    y = np.array(["a", "b", "c"])[(X[:, 0] > 5).astype(int) + (X[:, 1] > -3).astype(int)]
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    folder.mkdir()
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, n])):
        (folder / f"p{i}.csv").write_text("u,v,w,label\n" + "".join(
            ",".join(repr(float(v)) for v in X[r]) + f",{y[r]}\n" for r in range(a, b)))
    return folder


def test_partitions_read_by_the_workers(client, tmp_path, monkeypatch):
    # the workers read their own partitions; the driver only ever gathers small sets of rows;
    # the statistics (combined by Chan et al.'s formula) equal one process's to rounding, the
    # split and the fingerprint exactly, the weights to 1e-12
    from deltaprop.config import resolve
    from deltaprop.distributed.data import ShardedData
    from deltaprop.runs import prepare_run

    cfg = resolve({"data": str(_csv_parts(tmp_path / "p")), "target": "label", "epochs": 3, "dtype": "float64",
                   "mode": "minibatch", "batch_size": 16, "optimizer": "adam", "seed": 5})
    one = prepare_run(cfg)
    one.trainer.chunk_size = 8
    one.fit()
    gathered = []
    take = ShardedData.take
    monkeypatch.setattr(ShardedData, "take", lambda self, idx: gathered.append(len(idx)) or take(self, idx))
    run = prepare_run(cfg, client=client)
    run.trainer.engine, run.trainer.chunk_size = DaskEngine(client), 8
    run.fit()
    assert not isinstance(run.X, np.ndarray) and len(run.X) == len(one.X) == 96
    assert gathered and max(gathered) <= 8  # the divergence yardstick's first chunk, no more
    assert run.fingerprint == one.fingerprint
    assert run.model.classes == one.model.classes == ["a", "b", "c"]
    np.testing.assert_allclose(run.model.standardizer.mean, one.model.standardizer.mean, rtol=1e-15)
    np.testing.assert_allclose(run.model.standardizer.scale, one.model.standardizer.scale, rtol=1e-13)
    np.testing.assert_allclose(run.model.network.flat, one.model.network.flat, rtol=1e-12, atol=1e-14)
    a, b = run.summary(), one.summary()
    assert a.keys() == b.keys() and a["loss_units"] == b["loss_units"] == "targets"
    for k in a.keys() - {"loss_units"}:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)
    np.testing.assert_allclose(run.trainer.history.val_loss, one.trainer.history.val_loss, rtol=1e-12)


def test_regression_partitions_summary_as_one_process(client, tmp_path):
    # a regression target standardised for training: the workers' summary is in the units of
    # one process's (standardised targets) and its R^2, from per-partition moments and residual
    # sums, equals one process's to rounding
    from deltaprop.config import resolve
    from deltaprop.runs import prepare_run

    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 2)) * [1.0, 50.0]
    y = 3 * X[:, 0] - 0.02 * X[:, 1] + rng.normal(scale=0.1, size=90) + 400.0
    folder = tmp_path / "r"
    folder.mkdir()
    for i, (a, b) in enumerate([(0, 30), (30, 35), (35, 90)]):
        (folder / f"p{i}.csv").write_text("u,v,y\n" + "".join(f"{float(X[r, 0])!r},{float(X[r, 1])!r},{float(y[r])!r}\n"
                                                            for r in range(a, b)))
    cfg = resolve({"data": str(folder), "target": "y", "task": "regression", "epochs": 5, "dtype": "float64",
                   "seed": 2})
    assert cfg.epochs == 5 and cfg.early_stopping == 10  # --task regression: the regression defaults
    one = prepare_run(cfg)
    one.fit()
    run = prepare_run(cfg, client=client)
    run.trainer.engine = DaskEngine(client)
    run.fit()
    a, b = run.summary(), one.summary()
    assert a["loss_units"] == b["loss_units"] == "standardised targets"
    assert a.keys() == b.keys() and {"train_r2", "heldout_r2"} <= set(a)
    assert b["heldout_r2"] > 0.5  # it learnt: the check below compares meaningful numbers
    assert a["train_accuracy"] is b["train_accuracy"] is None
    for k in a.keys() - {"loss_units", "train_accuracy", "heldout_accuracy"}:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)  # the weights agree to 1e-12


def test_partitions_with_other_columns_on_the_workers(client, tmp_path):
    from deltaprop.config import resolve
    from deltaprop.errors import DataError
    from deltaprop.runs import prepare_run

    folder = _csv_parts(tmp_path / "p")
    (folder / "p9.csv").write_text("u,v,label\n1,2,a\n2,3,b\n")
    with pytest.raises(DataError, match="p9.csv: its feature columns differ"):
        prepare_run(resolve({"data": str(folder), "target": "label"}), client=client)


def test_dask_arrays_train_on_the_workers(client):
    # dask.array inputs: one shard per block of rows, computed on the workers
    import dask.array as da

    X, T = _data()
    ref, _ = _fit("numpy", "adam", "minibatch")
    net = Network([4, 5, 1], "tanh", "sigmoid", loss="binary_cross_entropy", dtype="float64", seed=1)
    tr = Trainer(net, "adam", lr=0.05, mode="minibatch", batch_size=50, seed=3, chunk_size=64,
                 engine=DaskEngine(client))
    tr.fit(da.from_array(X, chunks=(128, 4)), da.from_array(T[:, 0], chunks=100), 4)
    np.testing.assert_allclose(net.flat, ref, rtol=1e-12, atol=1e-14)
    with pytest.raises(Exception, match="DaskEngine"):
        Trainer(net, "sgd").fit(da.from_array(X, chunks=128), da.from_array(T, chunks=128), 1)


def test_resume_with_and_without_dask(client, tmp_path):
    # a checkpoint written on the cluster resumes in one process, and the other way round,
    # to the uninterrupted run's weights; partitions included (the same fingerprint both ways)
    from deltaprop.cli import main
    from deltaprop.io import load_model
    from deltaprop.runs import load_resume

    addr = client.scheduler.address
    parts = str(_csv_parts(tmp_path / "p"))
    for data in (["--data", "iris"], ["--data", parts, "--target", "label"]):
        common = [*data, "--mode", "minibatch", "--batch-size", "16", "--dtype", "float64", "--optimizer",
                  "adam", "--quiet", "--force"]
        ref = str(tmp_path / "ref.npz")
        assert main(["train", *common, "--epochs", "4", "--out", ref]) == 0
        for first, second in ((["--dask", addr], []), ([], ["--dask", addr])):
            ck, out = str(tmp_path / "c.npz"), str(tmp_path / "r.npz")
            assert main(["train", *common, "--epochs", "2", "--checkpoint", ck, "--checkpoint-every", "2", *first]) == 0
            # without --dask the run goes on on this machine, whatever the checkpointed run used:
            # a cluster that is gone is not needed to continue
            assert load_resume(ck, {})[0].dask is None and load_resume(ck, {"dask": addr})[0].dask == addr
            assert main(["train", "--resume", ck, "--epochs", "4", "--out", out, "--quiet", "--force",
                         *second]) == 0
            np.testing.assert_allclose(load_model(out)[0].flat, load_model(ref)[0].flat, rtol=1e-12, atol=1e-14)


def test_compare_on_the_cluster_same_tables(client, capsys):
    # seeds x techniques as independent runs (client.map): the same tables as one process
    from deltaprop.cli import main

    argv = ["compare", "--problems", "xor", "--seeds", "4", "--techniques", "gd,rprop-", "--modes", "batch,minibatch",
            "--epochs", "150", "--no-timing"]
    assert main([*argv, "--jobs", "1"]) == 0
    local = capsys.readouterr().out
    assert main([*argv, "--dask", client.scheduler.address]) == 0
    assert capsys.readouterr().out == local
    assert "rprop-" in local and "minibatch" in local


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 15 epochs on purpose
def test_estimators_in_gridsearch_under_joblib_dask():
    # GridSearchCV's fits run on the cluster through joblib's dask backend: the same scores
    # (workers in this process: processes are not the point, and fresh ones import scikit-learn)
    import joblib
    from sklearn.model_selection import GridSearchCV

    from deltaprop.sklearn import BackpropClassifier

    X, T = _data(120)
    y = T[:, 0].astype(int)
    grid = {"hidden_layer_sizes": [(3,), (6,)], "learning_rate_init": [0.1, 0.5]}

    def search():
        est = BackpropClassifier(max_iter=15, mode="batch", random_state=0)
        return GridSearchCV(est, grid, cv=3, n_jobs=-1).fit(X, y).cv_results_["mean_test_score"]

    def transitions():
        return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        before = transitions()
        with joblib.parallel_backend("dask"):
            scores = search()
        ran = transitions() - before
    with joblib.parallel_backend("sequential"):
        ref = search()
    np.testing.assert_array_equal(scores, ref)
    assert ran >= 12  # the 12 fits (and the refit) went through the scheduler


def test_bench_distributed_smoke(tmp_path):
    # bench/distributed.py end to end on tiny sizes (its figures are not checked: a benchmark
    # measures, a test does not); every part of the report is there
    import importlib.util
    import json
    from pathlib import Path

    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "bench" / "distributed.py"
    spec = importlib.util.spec_from_file_location("bench_distributed", path)
    bench = importlib.util.module_from_spec(spec)
    import sys

    saved = list(sys.path)
    try:
        spec.loader.exec_module(bench)
        assert bench.main(["--quick", "--json", str(tmp_path / "d.json"), "--plot", str(tmp_path / "d.png")]) == 0
    finally:
        sys.path[:] = saved
    res = json.loads((tmp_path / "d.json").read_text())
    assert set(res["reduction_s"]) == {"1", "2"} and all(v > 0 for r in res["reduction_s"].values() for v in r.values())
    assert set(res["epoch_s"]) == {"dask 1 worker", "dask 2 workers", "numba, one process"}
    assert res["gradient_s"]["b"] != 0 and set(res["model"]["T_ms"]) and res["crossover_rows"]
    assert set(res["targets"]) and (tmp_path / "d.png").stat().st_size > 1000


def test_stochastic_on_partitions_read_by_the_workers(client, tmp_path):
    # the model visits the partitions the workers read (unshuffled: each once per epoch); the
    # statistics agree to rounding only, so the weights to 1e-12, not bit for bit
    from deltaprop.config import resolve
    from deltaprop.runs import prepare_run

    cfg = resolve({"data": str(_csv_parts(tmp_path / "p")), "target": "label", "epochs": 2, "dtype": "float64",
                   "mode": "stochastic", "shuffle": False, "optimizer": "sgd", "seed": 5, "engine": "numpy"})
    one = prepare_run(cfg)
    one.fit()
    run = prepare_run(cfg, client=client)
    run.trainer.engine = DaskEngine(client)
    run.fit()
    assert run.trainer.optimizer.t == one.trainer.optimizer.t == 2 * 96
    np.testing.assert_allclose(run.model.network.flat, one.model.network.flat, rtol=1e-12, atol=1e-14)


def test_a_lost_cluster_says_how_to_go_on(tmp_path, capsys, monkeypatch):
    # the scheduler is lost in epoch 2 (the engine raises as DaskEngine does): one line that
    # names the checkpoint and how to resume, with or without a cluster
    import contextlib

    import deltaprop.cli_train as cli_train
    from deltaprop.cli import main
    from deltaprop.distributed import ClusterError
    from deltaprop.engines import NumpyEngine

    class LostAtThree(NumpyEngine):
        def run_epoch(self, trainer, X, T, order, k):
            if trainer.epoch == 2:
                raise ClusterError("lost the Dask scheduler tcp://10.0.0.1:8786 (OSError: gone); training stopped")
            return super().run_epoch(trainer, X, T, order, k)

    monkeypatch.setattr(cli_train, "_cluster", lambda cfg: contextlib.nullcontext(LostAtThree()))
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data", "iris", "--epochs", "5", "--checkpoint-every", "1", "--out", "m.npz",
                 "--dask", "tcp://10.0.0.1:8786", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert ("training stopped; the checkpoint of epoch 1 is in m.npz.ckpt: resume with deltaprop train --resume "
            "m.npz.ckpt (with --dask to use a cluster again, without it on this machine)") in err
    # resumed, and lost again before a checkpoint: the file resumed from still holds its epoch
    code = main(["train", "--resume", "m.npz.ckpt", "--dask", "tcp://10.0.0.1:8786", "--quiet"])
    assert code == 2 and "the checkpoint of epoch 1 is in m.npz.ckpt" in capsys.readouterr().err
    # without --checkpoint-every nothing was kept: the message says so, and how to keep one
    assert main(["train", "--data", "iris", "--epochs", "5", "--dask", "tcp://10.0.0.1:8786", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training stopped; no checkpoint was written (--checkpoint-every N keeps" in err
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "m.npz.ckpt", "--quiet"]) == 0 and os.path.exists("m.npz")


def test_dask_log_lines_are_kept_out_while_the_cli_uses_a_cluster():
    # distributed.client keeps its own level and handler and does not propagate: quieting the
    # "distributed" logger alone let its lost-connection tracebacks through (37 lines)
    import io
    import logging

    from deltaprop.distributed import _quiet_dask_logs

    stream = io.StringIO()
    lg = logging.getLogger("distributed.client")
    handler = logging.StreamHandler(stream)
    before = (lg.level, lg.propagate)
    lg.addHandler(handler)
    lg.setLevel(logging.WARNING)
    lg.propagate = False
    try:
        with _quiet_dask_logs():
            lg.error("Failed to reconnect to scheduler after 30.00 seconds, closing client")
            logging.getLogger("distributed.comm.tcp").error("connection closed")
        assert stream.getvalue() == ""
        assert lg.level == logging.WARNING  # given back
        lg.error("after")
        assert stream.getvalue() == "after\n"
    finally:
        lg.removeHandler(handler)
        lg.setLevel(before[0])
        lg.propagate = before[1]
