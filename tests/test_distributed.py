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


def test_shard_bounds_fall_on_chunks():
    # chunks never straddle two shards, whatever the number of parts asked for
    assert shard_bounds(300, 64, 2) == [(0, 192), (192, 300)]
    assert shard_bounds(300, 64, shard_rows=64)[-1] == (256, 300)


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


def test_one_chunk_per_shard_is_bitwise(client):
    # with shard_rows = chunk_size the driver adds the same chunk sums in the same order as the
    # NumPy engine: the same additions, so the same bits
    ref, _ = _fit("numpy", "sgd", "batch")
    got, _ = _fit(DaskEngine(client, shard_rows=64), "sgd", "batch")
    assert np.array_equal(got, ref)


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
    finally:
        for p in reversed(procs):  # workers first, then the scheduler
            p.terminate()
            p.wait(timeout=30)


def test_worker_killed_mid_epoch_same_weights():
    # a worker process is SIGKILLed in the middle of epoch 2 (its shard is lost with it); the
    # update is recomputed from the same weights with the shards sent again, so the final
    # weights equal an uninterrupted run's, bit for bit (same shard boundaries, same order)
    import signal

    class KillOnce(DaskEngine):
        calls = 0

        def _gradients(self, *a):
            KillOnce.calls += 1
            if KillOnce.calls == 9:  # 6 updates per epoch: update 3 of epoch 2
                pid = next(iter(self.client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
            return super()._gradients(*a)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1", env=PIN) as cluster, Client(cluster) as c:
        ref, _ = _fit(DaskEngine(c, shard_rows=128), "adam", "minibatch")
        engine = KillOnce(c, shard_rows=128)
        got, _ = _fit(engine, "adam", "minibatch")
    assert engine.recoveries >= 1  # the kill did hit an update in flight
    assert np.array_equal(got, ref)


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
        for p in (worker, sched):
            p.kill()
            p.wait(timeout=30)
