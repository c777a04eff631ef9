"""Every optimizer of the registry on the compiled engine: the NumPy engine's weights, state and
generator in every mode it allows and on every path that runs it (float64, 1e-10)."""

import os

import numpy as np
import pytest

from conftest import worst
from deltaprop import Network, Trainer
from deltaprop.engines import ENGINES, AutoEngine, numba_engine, select_engine
from deltaprop.errors import ConfigError
from deltaprop.optimizers import OPTIMIZERS, Adam, get_optimizer
from deltaprop.transforms import AddDecayedWeights, AddNoise

# (optimizer name, options, network set-up): every rule of the registry, the SGD family with
# weight decay (its bias mask) and annealed gradient noise, Adam with both; the set-ups
# rotate over fused and unfused output deltas
CASES = [
    ("sgd", {"weight_decay": 0.05}, ("sigmoid", "sigmoid", "half_sse")),
    ("sgd", {"momentum": 0.8, "weight_decay": 0.05, "grad_noise": 0.01}, ("tanh", "identity", "mse")),
    ("sgd", {"momentum": 0.8, "nesterov": True, "grad_noise": 0.01, "decay_biases": True,
             "weight_decay": 0.01}, ("relu", "softmax", "cross_entropy")),
    ("adam", {"lr": 0.01}, ("relu", "softmax", "cross_entropy")),
    ("adam", {"lr": 0.01, "weight_decay": 0.01, "grad_noise": 0.001}, ("tanh", "sigmoid", "binary_cross_entropy")),
    ("rprop-", {}, ("sigmoid", "sigmoid", "half_sse")),
    ("rprop+", {}, ("tanh", "identity", "mse")),
    ("irprop-", {"weight_decay": 0.01}, ("leaky_relu", "sigmoid", "binary_cross_entropy")),
    ("irprop+", {}, ("softplus", "softmax", "half_sse")),
    ("quickprop", {"lr": 0.5}, ("sigmoid", "sigmoid", "half_sse")),
    ("sarprop", {}, ("tanh", "identity", "mse")),
    ("sarprop", {"grad_noise": 0.01}, ("sigmoid", "softmax", "cross_entropy")),
]
MODES = [("stochastic", 1), ("minibatch", 5), ("batch", 23)]
# every mode each optimizer allows (RPROP, Quickprop, SARPROP: batch only)
GRID = [(*case, mode, k) for case in CASES for mode, k in MODES
        if mode == "batch" or not OPTIMIZERS[case[0]].batch_only]
IDS = [f"{name}{'-' + '-'.join(opts) if opts else ''}-{mode}" for name, opts, _, mode, _ in GRID]


@pytest.fixture(scope="module")
def needs_numba():
    pytest.importorskip("numba")


def _split_rows(threads):
    """BlasPath.row_threads as on a machine of that many cores (whatever this one has): the
    rules that draw random numbers keep the one-call epoch."""
    return lambda self, k, draws: 1 if draws else threads


@pytest.fixture
def blas_at_two():
    """BLAS (float64's ``?gemm``) set to two threads for the test, then back as it was."""
    from deltaprop.engines.blas_lib import gemm_for

    gemm = gemm_for(np.float64)
    if gemm is None or gemm.threads() is None or not gemm.set_threads(gemm.threads()):
        pytest.skip(f"the BLAS here cannot report or set its threads ({gemm})")
    before = gemm.threads()
    gemm.set_threads(2)
    yield gemm
    gemm.set_threads(before)


@pytest.fixture(params=["blas", "matmul", "threads"])
def blas_route(request, monkeypatch):
    """The batch paths: ?gemm from compiled code; np.matmul between compiled steps; each
    batch's rows split between threads (three, so that the sums' order and uneven shares are
    tested). Yields a function of the trainer: the path it should have taken."""
    from deltaprop.engines import blas_lib, blas_path

    pytest.importorskip("numba")
    if request.param == "matmul":
        monkeypatch.setenv("DELTAPROP_BLAS", "none")
        blas_lib.gemm_for.cache_clear()
        monkeypatch.setattr(blas_path, "gemm_for", blas_lib.gemm_for)
    if request.param == "threads":
        if blas_lib.gemm_for(np.float64) is None:
            pytest.skip("no ?gemm callable from compiled code here: no row split")
        monkeypatch.setattr(blas_path.BlasPath, "row_threads", _split_rows(3))
        yield lambda tr: "numba/batch-blas" if tr.optimizer.rng is not None else "numba/batch-threads"
    else:
        yield lambda tr: f"numba/batch-{request.param}"
    blas_lib.gemm_for.cache_clear()


def _data(loss, n=23, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if loss == "cross_entropy":
        T = np.eye(n_out)[rng.integers(0, n_out, n)]
    else:
        T = rng.uniform(0.05, 0.95, (n, n_out))
    return X, T


def _trainer(engine, name, opts, setup, mode, k, dtype="float64", seed=1):
    act, out, loss = setup
    net = Network([4, 6, 3], act, out, loss, seed=seed, dtype=dtype)
    return Trainer(net, get_optimizer(name, **opts), mode=mode, batch_size=k, seed=3, engine=engine)


def _same_optimizer(ours, ref):
    assert ours.t == ref.t
    assert ours.state.keys() == ref.state.keys()
    for key in ref.state:
        np.testing.assert_allclose(ours.state[key], ref.state[key], rtol=0, atol=1e-10, err_msg=key)
    if ref.rng is not None:  # the same draws, in the same order
        assert ours.rng.bit_generator.state == ref.rng.bit_generator.state


@pytest.mark.parametrize("name,opts,setup,mode,k", GRID, ids=IDS)
def test_every_optimizer_gives_the_numpy_weights(needs_numba, blas_route, name, opts, setup, mode, k):
    X, T = _data(setup[2])
    ref = _trainer("numpy", name, opts, setup, mode, k)
    h_ref = ref.fit(X, T, 4)
    tr = _trainer("numba", name, opts, setup, mode, k)
    h = tr.fit(X, T, 4)
    assert tr.engine_used == blas_route(tr)
    ours, theirs = tr.network.flat, ref.network.flat
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10, err_msg=worst(ours, theirs))
    np.testing.assert_allclose(h.loss_running, h_ref.loss_running, rtol=1e-10)
    assert h.updates == h_ref.updates
    _same_optimizer(tr.optimizer, ref.optimizer)


@pytest.mark.parametrize("name,opts,setup,mode,k", [
    ("adam", {"lr": 0.01}, CASES[3][2], "minibatch", 5),
    ("sgd", CASES[1][1], CASES[1][2], "stochastic", 1),
    ("irprop+", {}, CASES[8][2], "batch", 23),
    ("sarprop", {"grad_noise": 0.01}, CASES[11][2], "batch", 23),
    ("quickprop", {"lr": 0.5}, CASES[9][2], "batch", 23),
], ids=["adam", "sgd-noise", "irprop+", "sarprop", "quickprop"])
def test_switching_engines_and_resuming_continue_exactly(needs_numba, name, opts, setup, mode, k):
    # the state is the optimizer's own: numba then numpy, numpy then numba, and a numba fit
    # resumed from state_dict()s all end where four epochs on the NumPy engine end
    X, T = _data(setup[2])
    ref = _trainer("numpy", name, opts, setup, mode, k)
    ref.fit(X, T, 4)
    for first, second in (("numba", "numpy"), ("numpy", "numba")):
        tr = _trainer(first, name, opts, setup, mode, k)
        tr.fit(X, T, 2)
        tr.engine = second
        tr.fit(X, T, 2)
        np.testing.assert_allclose(tr.network.flat, ref.network.flat, rtol=0, atol=1e-10)
        _same_optimizer(tr.optimizer, ref.optimizer)
    tr = _trainer("numba", name, opts, setup, mode, k)
    tr.fit(X, T, 2)
    saved, weights = tr.state_dict(), tr.network.flat.copy()
    resumed = _trainer("numba", name, opts, setup, mode, k, seed=7)
    resumed.network.flat[...] = weights
    resumed.load_state_dict(saved)
    resumed.fit(X, T, 2)
    np.testing.assert_allclose(resumed.network.flat, ref.network.flat, rtol=0, atol=1e-10)
    _same_optimizer(resumed.optimizer, ref.optimizer)


def test_no_optimizer_is_refused_by_the_compiled_engine(needs_numba):
    # the ConfigError "optimizer ... is not plain, momentum or Nesterov SGD" is gone: every
    # class of the registry, with either option, runs compiled, and auto may choose it
    X, T = _data("half_sse")
    for name, cls in OPTIMIZERS.items():
        if getattr(cls, "runs_own_loop", False):  # L-BFGS: scipy's loop on NumPy's gradient, no engine's epoch
            tr = Trainer(Network([4, 3], seed=0), cls(), mode="batch", seed=0)
            assert "runs its own loop" in numba_engine.NumbaEngine().unsupported(tr)
            continue
        for opts in ({}, {"weight_decay": 0.01, "grad_noise": 0.01}):
            tr = Trainer(Network([4, 3], seed=0), cls(**opts), mode="batch", seed=0)
            assert numba_engine.NumbaEngine().unsupported(tr) is None, name
            assert select_engine("numba", tr).name == "numba"
            assert isinstance(select_engine("auto", tr), AutoEngine)
            tr.engine = "numba"
            tr.fit(X, T, 1)
            assert tr.engine_used == "numba/batch-blas" or tr.engine_used == "numba/batch-matmul"


def test_what_stays_on_the_numpy_engine_says_why(needs_numba):
    net = Network([4, 3], seed=0)

    class MyAdam(Adam):  # a subclass may change step(): only the NumPy engine calls it
        pass

    tr = Trainer(net, MyAdam(), seed=0)
    with pytest.raises(ConfigError, match="optimizer MyAdam is not a class of the registry"):
        select_engine("numba", tr)
    assert select_engine("auto", tr).name == "numpy"
    # a chain the options cannot build (noise before decay) has no compiled form
    opt = Adam(transforms=[AddNoise(0.01), AddDecayedWeights(0.1)])
    tr = Trainer(net, opt, seed=0)
    with pytest.raises(ConfigError, match=r"gradient transforms \[AddNoise, AddDecayedWeights\]"):
        select_engine("numba", tr)
    # the options' own chain, given explicitly, runs compiled
    opt = Adam(transforms=[AddDecayedWeights(0.1, mask=net.weight_mask()), AddNoise(0.01)])
    assert numba_engine.NumbaEngine().unsupported(Trainer(net, opt, seed=0)) is None


@pytest.mark.parametrize("mode,k", [("stochastic", 1), ("minibatch", 4)])
def test_divergence_with_noise_takes_no_draws(needs_numba, mode, k):
    # the compiled engine draws an update's noise before its batch's loss is known; where the
    # loss is not finite it takes the draws back, as the NumPy engine never made them
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(30, 3)) * 100, rng.normal(size=(30, 1)) * 100
    res = []
    for engine in ("numpy", "numba"):
        net = Network([3, 4, 1], "relu", "identity", "mse", seed=0)
        tr = Trainer(net, get_optimizer("sgd", lr=1e3, grad_noise=0.1, seed=5), mode=mode,
                     batch_size=k, seed=0, engine=engine)
        tr.optimizer.attach(tr, X, T)
        bad = None
        for _ in range(5):
            _, bad = ENGINES[engine]().run_epoch(tr, X, T, None, k)
            if bad:
                break
        res.append((net.flat.copy(), bad, tr.optimizer.t, tr.optimizer.rng.random()))
    assert res[0][1] is not None
    assert res[0][1:] == res[1][1:]
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name,opts,mode,k", [("adam", {"lr": 0.01}, "minibatch", 5),
                                              ("irprop+", {}, "batch", 23)])
def test_float32_rules_stay_close_to_numpy(needs_numba, name, opts, mode, k):
    # float32 arithmetic in both engines: the same operations, summed in another order
    setup = ("relu", "softmax", "cross_entropy")
    X, T = _data("cross_entropy")
    ref = _trainer("numpy", name, opts, setup, mode, k, dtype="float32")
    ref.fit(X, T, 3)
    tr = _trainer("numba", name, opts, setup, mode, k, dtype="float32")
    tr.fit(X, T, 3)
    assert tr.network.flat.dtype == np.float32
    assert all(v.dtype in (np.float32, np.int64, np.float64) for v in tr.optimizer.state.values())
    np.testing.assert_allclose(tr.network.flat, ref.network.flat, rtol=0, atol=1e-5)


@pytest.mark.parametrize("threads,n,k,chunk", [(2, 22, 22, 4096), (3, 22, 5, 4096), (4, 22, 10, 4096),
                                               (2, 22, 22, 3), (3, 22, 10, 2)])
def test_rows_split_between_threads_give_the_numpy_weights(needs_numba, monkeypatch, threads, n, k, chunk):
    # shares of unequal size, and last batches of fewer rows than threads (22 = 4 x 5 + 2: two
    # of three threads have no row; 22 = 2 x 10 + 2 on four threads), shares of several
    # chunks (chunk_size 2 and 3: each thread adds its chunks' gradients), shuffled and in
    # order; a layer without bias and one with a frozen bias
    from deltaprop.engines import blas_path
    from deltaprop.layers import Dense

    if blas_path.gemm_for(np.float64) is None:
        pytest.skip("no ?gemm callable from compiled code here: no row split")
    monkeypatch.setattr(blas_path.BlasPath, "row_threads", _split_rows(threads))
    X, T = _data("cross_entropy", n=n)
    for shuffle in (True, False):
        mode = "batch" if k == n else "minibatch"
        runs = []
        for engine in ("numpy", "numba"):
            layers = [Dense(4, 6, "tanh", bias=False), Dense(6, 5, "relu", train_bias=False),
                      Dense(5, 3, "softmax")]
            net = Network.from_layers(layers, "cross_entropy")
            net.flat[...] = np.random.default_rng(1).normal(0.0, 0.5, net.flat.size)
            tr = Trainer(net, Adam(lr=0.05), mode=mode, batch_size=k, seed=3, engine=engine, shuffle=shuffle,
                         chunk_size=chunk)
            runs.append((tr, tr.fit(X, T, 3)))
        (ref, h_ref), (tr, h) = runs
        assert tr.engine_used == "numba/batch-threads"
        np.testing.assert_allclose(tr.network.flat, ref.network.flat, rtol=0, atol=1e-10)
        np.testing.assert_allclose(h.loss_running, h_ref.loss_running, rtol=1e-10)
        _same_optimizer(tr.optimizer, ref.optimizer)


def test_rows_split_between_threads_stop_together_at_a_divergent_batch(needs_numba, monkeypatch, blas_at_two):
    # every thread sees the same loss sums: all stop at the first non-finite batch, as the
    # NumPy engine stops (the epoch is taken back), and none waits for ever; BLAS gets the
    # thread count back that it had
    from deltaprop.engines import blas_path

    gemm = blas_at_two
    monkeypatch.setattr(blas_path.BlasPath, "row_threads", _split_rows(2))
    X, T = _data("mse", n=40)
    T[25] = 1e200  # the third batch of 10 has a squared error of 1e400
    out = []
    for engine in ("numpy", "numba"):
        net = Network([4, 6, 3], "tanh", "identity", "mse", seed=1)
        tr = Trainer(net, "sgd", lr=0.1, mode="minibatch", batch_size=10, shuffle=False, engine=engine,
                     on_divergence="stop")
        out.append((tr, tr.fit(X, T, 2)))
    (ref, h_ref), (tr, h) = out
    assert tr.engine_used == "numba/batch-threads"
    assert tr.diverged and ref.diverged and h.updates == h_ref.updates
    assert h.events == h_ref.events
    np.testing.assert_allclose(tr.network.flat, ref.network.flat, rtol=0, atol=1e-10)
    assert gemm.threads() == 2


def test_row_threads_follow_blas_cores_and_batch(needs_numba, monkeypatch):
    from deltaprop.engines import blas_path

    net = Network([4, 6, 3], seed=0)
    path = blas_path.BlasPath(net, numba_engine._Plan(net))
    if path.gemm is None:
        pytest.skip("no ?gemm callable from compiled code here")
    per = blas_path.ROWS_PER_THREAD
    monkeypatch.setattr(path.gemm, "threads", lambda: 4)
    monkeypatch.setattr(blas_path, "_cpus", lambda: 2)
    assert [path.row_threads(k, False) for k in (per, 2 * per - 1, 2 * per, 60000)] == [1, 1, 2, 2]
    assert path.row_threads(60000, True) == 1  # draws are made per update, from Python
    monkeypatch.setattr(blas_path, "_cpus", lambda: 8)
    assert path.row_threads(3 * per, False) == 3 and path.row_threads(60000, False) == 4
    monkeypatch.setattr(path.gemm, "threads", lambda: 1)
    assert path.row_threads(60000, False) == 1


def test_a_containers_cpu_quota_caps_the_threads(tmp_path, monkeypatch):
    # a container started with --cpus 1.5 on a bigger host: its affinity mask lists every
    # core, the quota file says 150,000 us per 100,000 us period; threads past 2 would wait
    from deltaprop import machine

    def files(v2=None, v1=None):
        out = []
        if v2 is not None:
            (tmp_path / "cpu.max").write_text(v2)
        out.append((str(tmp_path / "cpu.max"),))
        if v1 is not None:
            (tmp_path / "quota").write_text(v1[0])
            (tmp_path / "period").write_text(v1[1])
        out.append((str(tmp_path / "quota"), str(tmp_path / "period")))
        return tuple(out)

    assert machine._cgroup_cpus(files()) is None  # no cgroup files: no quota
    assert machine._cgroup_cpus(files(v1=("-1\n", "100000\n"))) is None  # v1 without a quota
    assert machine._cgroup_cpus(files(v1=("150000\n", "100000\n"))) == 1.5
    assert machine._cgroup_cpus(files(v2="max 100000\n")) == 1.5  # v2 without a quota, v1's stays
    assert machine._cgroup_cpus(files(v2="300000 100000\n")) == 1.5  # the smallest quota holds
    assert machine._cgroup_cpus(files(v2="100000 100000\n")) == 1.0
    (tmp_path / "quota").write_text("-1")
    for odd in ("garbage", "inf 100000", "1e400 100000", "100000 0", "", "nan 1"):
        (tmp_path / "cpu.max").write_text(odd)
        assert machine._cgroup_cpus(files()) is None, odd
    # a quota on one of the process's own nested cgroups (cgroupns=host) counts too
    nested = machine._cgroup_files()
    assert nested[-2:] == machine.CGROUP_CPU_FILES and all(len(f) in (1, 2) for f in nested)
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(machine, "_cgroup_cpus", lambda files=None: 0.5)
    assert machine.usable_cpus() == 1  # half a CPU still runs one thread
    monkeypatch.setattr(machine, "_cgroup_cpus", lambda files=None: 1000.0)
    assert machine.usable_cpus() == n  # a quota above the cores leaves the affinity
    monkeypatch.setattr(machine, "_cgroup_cpus", lambda files=None: 1.5)
    assert machine.usable_cpus() == min(n, 2)


def test_row_threads_stay_within_the_cpu_quota(needs_numba, monkeypatch):
    from deltaprop import machine
    from deltaprop.engines import blas_path

    net = Network([4, 6, 3], seed=0)
    path = blas_path.BlasPath(net, numba_engine._Plan(net))
    if path.gemm is None:
        pytest.skip("no ?gemm callable from compiled code here")
    monkeypatch.setattr(path.gemm, "threads", lambda: 8)
    monkeypatch.setattr(machine, "_cgroup_cpus", lambda files=None: 1.0)
    assert path.row_threads(60000, False) == 1  # one CPU's time: the one-call epoch


def test_barriers_hold_threads_together_and_let_them_go_when_left(needs_numba):
    # two threads through 2,000 barriers in a row; then the flag set where a thread cannot
    # take its part (an interrupt before it started): the one waiting leaves instead of
    # spinning for ever. Threads with a timeout, so that a broken barrier fails, not hangs.
    import threading

    from deltaprop.engines import _numba_batch as NB
    from deltaprop.engines.blas_path import _YIELD

    sync = np.zeros(NB.SYNC_LENGTH, np.int64)
    assert NB.barrier(sync, 1, _YIELD)  # alone: through at once
    passed = []

    def run(rounds):
        passed.append(sum(NB.barrier(sync, 2, _YIELD) for _ in range(rounds)))

    pair = [threading.Thread(target=run, args=(2000,), daemon=True) for _ in range(2)]
    for t in pair:
        t.start()
    for t in pair:
        t.join(60)
    assert passed == [2000, 2000] and sync[0] == 0 and sync[8] == 2000 + 1
    waiting = threading.Thread(target=run, args=(1,), daemon=True)
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive()  # its partner never comes
    sync[NB.SYNC_ABANDON] = 1
    waiting.join(60)
    assert not waiting.is_alive() and passed[-1] == 0


def test_a_failing_thread_ends_the_epoch_and_gives_blas_back(needs_numba):
    # a thread whose part fails (here: raises before it enters the compiled epoch, as a
    # dispatch error or an interrupt would) makes the others leave their barriers: the fit
    # raises, BLAS has its thread count back and no thread is left. In a child process with a
    # time limit, so that a hang fails the test.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import threading, numpy as np
        from deltaprop import Network, Trainer
        from deltaprop.engines import _numba_batch as NB, blas_path
        from deltaprop.engines.blas_lib import gemm_for
        gemm = gemm_for(np.float64)
        if gemm is None or gemm.threads() is None or not gemm.set_threads(2):
            print("skip"); raise SystemExit
        blas_path.BlasPath.row_threads = lambda self, k, draws: 3
        X = np.random.default_rng(0).normal(size=(60, 4)); T = X[:, :2] ** 2
        real = NB.batch_epoch_rows
        for bad in (1, 0):
            def failing(tid, *args, real=real, bad=bad):
                if tid == bad:
                    raise RuntimeError(f"thread {tid} failed")
                return real(tid, *args)
            NB.batch_epoch_rows = failing
            tr = Trainer(Network([4, 5, 2], "tanh", "identity", "mse", seed=0), "adam", mode="batch", engine="numba")
            try:
                tr.fit(X, T, 2)
            except RuntimeError as error:
                print(error, gemm.threads(), threading.active_count())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "skip":
        pytest.skip("the BLAS here cannot report or set its threads")
    assert out.stdout.splitlines() == ["thread 1 failed 2 1", "thread 0 failed 2 1"]


def test_blas_stays_at_one_thread_through_a_row_split_loop(needs_numba, monkeypatch, blas_at_two):
    # the evaluation between epochs would wake OpenBLAS's own threads, which then spin on the
    # cores the next epoch's threads need: BLAS stays at one thread until the loop ends, and
    # the split keeps the count the user set; a direct run_epoch gives it back at once
    from deltaprop import Callback
    from deltaprop.engines import blas_path

    gemm = blas_at_two
    monkeypatch.setattr(blas_path, "_cpus", lambda: 2)
    monkeypatch.setattr(blas_path, "ROWS_PER_THREAD", 8)
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, logs):
            seen.append((gemm.threads(), trainer.engine_used))

    X, T = _data("mse", n=40)
    net = Network([4, 6, 3], "tanh", "identity", "mse", seed=1)
    tr = Trainer(net, "sgd", lr=0.1, mode="batch", engine="numba", callbacks=[Watch()])
    tr.fit(X, T, 3)
    assert seen == [(1, "numba/batch-threads")] * 3
    assert gemm.threads() == 2
    tr.engine_used = None
    numba_engine.NumbaEngine().run_epoch(tr, X, T, None, 40)
    assert tr.engine_used == "numba/batch-threads" and gemm.threads() == 2


def test_concurrent_row_split_fits_give_blas_its_threads_back(needs_numba, monkeypatch, blas_at_two):
    # BLAS's thread count belongs to the process: fits in four threads that each hold it at
    # one thread must leave it where the user set it (saving and restoring it per fit did not)
    import threading

    from deltaprop.engines import blas_path

    gemm = blas_at_two
    monkeypatch.setattr(blas_path.BlasPath, "row_threads", _split_rows(2))
    X, T = _data("mse", n=64)
    seen = set()

    def fit(i):
        tr = Trainer(Network([4, 6, 3], "tanh", "identity", "mse", seed=i), "sgd", lr=0.01, mode="batch",
                     engine="numba", eval_every=0)
        tr.fit(X, T, 2)
        seen.add(tr.engine_used)

    for _ in range(30):
        go = threading.Barrier(4)
        threads = [threading.Thread(target=lambda i=i: (go.wait(), fit(i))) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert gemm.threads() == 2
    assert seen == {"numba/batch-threads"}


def test_a_loop_keeps_its_split_through_a_new_plan_a_copy_and_an_inner_fit(needs_numba, monkeypatch, blas_at_two):
    # within one loop, a callback that changes the network (a new plan, a new path object),
    # copies and pickles the trainer, and runs another trainer's fit on the same network (a
    # loop inside the loop): the split goes on, BLAS stays at one thread, then comes back
    import copy
    import pickle

    from deltaprop import Callback
    from deltaprop.engines import blas_path
    from deltaprop.techniques import use_flat_spot

    gemm = blas_at_two
    monkeypatch.setattr(blas_path, "_cpus", lambda: 2)
    monkeypatch.setattr(blas_path, "ROWS_PER_THREAD", 8)
    X, T = _data("mse", n=40)
    seen = []

    class Meddle(Callback):
        def on_epoch_end(self, tr, logs):
            seen.append((tr.epoch, tr.engine_used, gemm.threads()))
            if tr.epoch == 1:
                use_flat_spot(tr.network, 0.1)
            if tr.epoch == 2:
                twin = copy.deepcopy(tr)
                assert twin._loop_token is None
                twin.callbacks = []  # (this class is local to the test: not picklable)
                pickle.loads(pickle.dumps(twin))
            if tr.epoch == 3:
                inner = Trainer(tr.network, "sgd", lr=0.01, mode="batch", engine="numba", eval_every=0)
                inner.fit(X, T, 1)
                seen.append(("inner", inner.engine_used, gemm.threads()))

    tr = Trainer(Network([4, 6, 3], "sigmoid", "sigmoid", "half_sse", seed=1), "sgd", mode="batch",
                 engine="numba", callbacks=[Meddle()])
    tr.fit(X, T, 4)
    split = "numba/batch-threads"
    assert seen == [(1, split, 1), (2, split, 1), (3, split, 1), ("inner", split, 1), (4, split, 1)]
    assert gemm.threads() == 2


def test_a_fit_inside_its_own_loop_gives_the_outer_loop_back(needs_numba, monkeypatch, blas_at_two):
    # a callback that runs a fit of its own trainer: the inner loop ends, the outer one goes on
    # as a loop (BLAS still held, its own token back) and gives BLAS back when it ends
    from deltaprop import Callback
    from deltaprop.engines import blas_path

    gemm = blas_at_two
    monkeypatch.setattr(blas_path.BlasPath, "row_threads", _split_rows(2))
    X, T = _data("mse", n=40)
    seen = []

    class Again(Callback):
        def on_epoch_end(self, tr, logs):
            token = tr._loop_token
            if len(seen) == 0:
                seen.append("inner")
                tr.fit(X, T, 1)
            seen.append((tr._loop_token is token, token is not None, gemm.threads()))

    tr = Trainer(Network([4, 6, 3], "tanh", "identity", "mse", seed=1), "sgd", mode="batch", engine="numba",
                 callbacks=[Again()])
    tr.fit(X, T, 2)
    # the inner fit's epoch, then the outer one's (the inner fit took the outer fit's second
    # epoch: both count the same trainer's epochs)
    assert seen == ["inner", (True, True, 1), (True, True, 1)] and tr.epoch == 2
    assert tr._loop_token is None and gemm.threads() == 2
