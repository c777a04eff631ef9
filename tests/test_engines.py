"""Engines: the compiled engine gives the NumPy engine's weights in every mode it runs."""

import subprocess
import sys

import numpy as np
import pytest

import deltaprop

from conftest import worst
from deltaprop import SGD, Network, Trainer
from deltaprop.engines import ENGINES, numba_engine, select_engine
from deltaprop.engines import codes as C
from deltaprop.errors import ConfigError

# (hidden activation, output activation, loss): every activation and loss with a kernel,
# fused and unfused output deltas
SETUPS = [
    ("sigmoid", "sigmoid", "half_sse"),
    ("tanh", "identity", "mse"),
    ("relu", "softmax", "cross_entropy"),
    ("leaky_relu", "sigmoid", "binary_cross_entropy"),
    ("softplus", "softmax", "half_sse"),
    ("tanh", "tanh", "half_sse"),
    ("relu", "sigmoid", "cross_entropy"),
    ("identity", "softmax", "binary_cross_entropy", 0.01),  # ill-conditioned: a small rate
    ("sigmoid", "relu", "mse"),
    ({"name": "sigmoid", "flat_spot": 0.1}, {"name": "leaky_relu", "alpha": 0.2}, "mse"),
    ("gelu", "gelu", "half_sse"),
]
MODES = [("stochastic", 1), ("minibatch", 5), ("batch", 23)]
OPTIMIZERS = [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}]


def _data(loss, n=23, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if loss == "cross_entropy":
        T = np.eye(n_out)[rng.integers(0, n_out, n)]
    else:
        T = rng.uniform(0.05, 0.95, (n, n_out))
    return X, T


def _train(engine, setup, mode, k, opt, epochs=3, sizes=(4, 6, 3), dtype="float64", **kw):
    act, out, loss, lr = (*setup, 0.1)[:4]
    X, T = _data(loss, n_out=sizes[-1])
    net = Network(list(sizes), act, out, loss, seed=1, dtype=dtype)
    tr = Trainer(net, SGD(lr, **opt), mode=mode, batch_size=k, seed=3, engine=engine, **kw)
    h = tr.fit(X, T, epochs)
    return net, tr, h




@pytest.fixture(scope="module")
def needs_numba():
    pytest.importorskip("numba")


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: "-".join(x if isinstance(x, str) else x["name"] for x in s[:3]))
@pytest.mark.parametrize("mode,k", MODES, ids=[m for m, _ in MODES])
def test_numba_engine_gives_the_numpy_weights(needs_numba, setup, mode, k, monkeypatch):
    # stochastic epochs of this 4-6-3 net run in the generated tiny-net kernel; forcing
    # MAX_WEIGHTS to 0 runs them in the general per-sample kernel instead
    from deltaprop.engines import tiny_kernels

    paths = ("tiny", "general") if mode == "stochastic" else ("batched",)
    for path, opt in [(p, o) for p in paths for o in OPTIMIZERS]:
        monkeypatch.setattr(tiny_kernels, "MAX_WEIGHTS", 0 if path == "general" else 64)
        ref, tr_ref, h_ref = _train("numpy", setup, mode, k, opt)
        net, tr, h = _train("numba", setup, mode, k, opt)
        expected = {"tiny": "numba/tiny", "general": "numba/per-sample"}.get(path, "numba/batch-blas")
        assert tr.engine_used == expected and tr_ref.engine_used == "numpy"
        tiny_used = any(f is not None for f in numba_engine._PLANS[net].tiny.values())
        assert tiny_used == (path == "tiny"), path
        np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10,
                                   err_msg=f"{opt}: {worst(net.flat, ref.flat)}")
        np.testing.assert_allclose(h.loss_running, h_ref.loss_running, rtol=1e-10)
        np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
        assert tr.optimizer.t == tr_ref.optimizer.t == h.updates[-1]
        if opt:
            np.testing.assert_allclose(tr.optimizer.state["velocity"],
                                       tr_ref.optimizer.state["velocity"], rtol=0, atol=1e-10)


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: "-".join(x if isinstance(x, str) else x["name"] for x in s[:3]))
def test_blocked_stochastic_updates_give_the_numpy_weights(needs_numba, setup, monkeypatch):
    # the wide-first-layer path (stochastic_blocks), forced on a small net; blocks of 4
    # samples over 23 leave a partial last block
    from deltaprop.engines import stochastic_blocks

    monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(stochastic_blocks, "BLOCK", 4)
    monkeypatch.setattr(stochastic_blocks, "BLOCK_THREADED", 4)
    # momentum and Nesterov in blocks (the compiled epoch), two and three layers
    for sizes, opt in [(sz, o) for sz in ((4, 6, 3), (4, 7, 5, 3)) for o in OPTIMIZERS]:
        ref, tr_ref, h_ref = _train("numpy", setup, "stochastic", 1, opt, sizes=sizes)
        net, tr, h = _train("numba", setup, "stochastic", 1, opt, sizes=sizes)
        assert numba_engine._PLANS[net].blocks is not None and not numba_engine._PLANS[net].tiny
        np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10, err_msg=worst(net.flat, ref.flat))
        np.testing.assert_allclose(h.loss_running, h_ref.loss_running, rtol=1e-10)
        assert tr.optimizer.t == tr_ref.optimizer.t
        if opt:
            np.testing.assert_allclose(tr.optimizer.state["velocity"],
                                       tr_ref.optimizer.state["velocity"], rtol=0, atol=1e-10)


@pytest.mark.parametrize("path", ["tiny", "general", "blocked", "batch"])
def test_changes_between_fits_are_seen(needs_numba, path, monkeypatch):
    # the engine keeps one plan per network across fits; a plan is what the network is, so
    # the flat spot, a new activation and a new loss set between fits (same arrays) must
    # reach the kernels: each fit's weights equal the NumPy engine's after the same changes
    from deltaprop.activations import Tanh
    from deltaprop.losses import get_loss
    from deltaprop.techniques import use_flat_spot
    from deltaprop.engines import stochastic_blocks, tiny_kernels

    if path != "tiny":
        monkeypatch.setattr(tiny_kernels, "MAX_WEIGHTS", 0)
    if path == "blocked":
        monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
        monkeypatch.setattr(stochastic_blocks, "BLOCK", 4)
        monkeypatch.setattr(stochastic_blocks, "BLOCK_THREADED", 4)
    mode, k = ("minibatch", 5) if path == "batch" else ("stochastic", 1)
    X, T = _data("half_sse")
    changes = [lambda n: None, lambda n: use_flat_spot(n, 0.25),
               lambda n: setattr(n.layers[0], "activation", Tanh()),
               lambda n: setattr(n, "loss", get_loss("binary_cross_entropy"))]
    nets = {e: Network([4, 6, 3], "sigmoid", "sigmoid", "half_sse", seed=1) for e in ("numpy", "numba")}
    trainers = {e: Trainer(n, lr=0.3, mode=mode, batch_size=k, seed=3, engine=e) for e, n in nets.items()}
    for i, change in enumerate(changes):
        for e in nets:
            change(nets[e])
            trainers[e].fit(X, T, 2)
        np.testing.assert_allclose(nets["numba"].flat, nets["numpy"].flat, rtol=0, atol=1e-10,
                                   err_msg=f"after change {i}: {worst(nets['numba'].flat, nets['numpy'].flat)}")
    assert not np.allclose(nets["numba"].flat, Network([4, 6, 3], seed=1).flat)


@pytest.mark.parametrize("path", ["tiny", "general", "batch"])
def test_changes_by_a_callback_between_epochs_of_one_fit_are_seen(needs_numba, path, monkeypatch):
    # without callbacks the engine checks its plan once per fit; a callback runs between
    # epochs and may change the network, so with one the plan is checked every epoch
    from deltaprop.activations import Tanh
    from deltaprop.losses import get_loss
    from deltaprop.techniques import use_flat_spot
    from deltaprop.engines import tiny_kernels
    from deltaprop.training import Callback

    if path != "tiny":
        monkeypatch.setattr(tiny_kernels, "MAX_WEIGHTS", 0)
    changes = {1: lambda n: use_flat_spot(n, 0.25), 2: lambda n: setattr(n.layers[0], "activation", Tanh()),
               3: lambda n: setattr(n, "loss", get_loss("binary_cross_entropy"))}

    class Change(Callback):
        def on_epoch_end(self, trainer, logs):
            changes.get(logs["epoch"], lambda n: None)(trainer.network)

    mode, k = ("minibatch", 5) if path == "batch" else ("stochastic", 1)
    X, T = _data("half_sse")
    nets = {e: Network([4, 6, 3], "sigmoid", "sigmoid", "half_sse", seed=1) for e in ("numpy", "numba")}
    for e, n in nets.items():
        Trainer(n, lr=0.3, mode=mode, batch_size=k, seed=3, engine=e, callbacks=[Change()]).fit(X, T, 4)
    assert nets["numba"].layers[0].activation.name == "tanh"
    np.testing.assert_allclose(nets["numba"].flat, nets["numpy"].flat, rtol=0, atol=1e-10,
                               err_msg=worst(nets["numba"].flat, nets["numpy"].flat))


def test_an_engine_object_used_for_two_fits_checks_its_plan_again(needs_numba):
    # the plan checked once in a training loop is not trusted in the next one
    from deltaprop.engines import NumbaEngine
    from deltaprop.techniques import use_flat_spot

    X, T = _data("half_sse")
    nets = {e: Network([4, 6, 3], "sigmoid", "sigmoid", "half_sse", seed=1) for e in ("numpy", "numba")}
    trainers = {"numpy": Trainer(nets["numpy"], lr=0.3, mode="stochastic", seed=3, engine="numpy"),
                "numba": Trainer(nets["numba"], lr=0.3, mode="stochastic", seed=3, engine=NumbaEngine())}
    for e in nets:
        trainers[e].fit(X, T, 2)
        use_flat_spot(nets[e], 0.25)
        trainers[e].fit(X, T, 2)
    np.testing.assert_allclose(nets["numba"].flat, nets["numpy"].flat, rtol=0, atol=1e-10)


def test_a_direct_run_epoch_after_a_fit_checks_the_plan(needs_numba):
    # the plan checked in a fit's loop is not trusted by a later run_epoch called directly
    from deltaprop.engines import NumbaEngine, NumpyEngine
    from deltaprop.techniques import use_flat_spot

    X, T = _data("half_sse")
    nets = {e: Network([4, 6, 3], "sigmoid", "sigmoid", "half_sse", seed=1) for e in ("numpy", "numba")}
    for name, engine in (("numpy", NumpyEngine()), ("numba", NumbaEngine())):
        tr = Trainer(nets[name], lr=0.3, mode="stochastic", seed=3, engine=engine)
        tr.fit(X, T, 1)
        use_flat_spot(nets[name], 0.25)
        engine.run_epoch(tr, X, T, None, 1)
    np.testing.assert_allclose(nets["numba"].flat, nets["numpy"].flat, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sizes", [(4, 3), (4, 7, 5, 3)], ids=["one-layer", "three-layers"])
@pytest.mark.parametrize("mode,k", [("stochastic", 1), ("minibatch", 4)])
def test_any_depth(needs_numba, sizes, mode, k):
    setup = ("tanh", "sigmoid", "half_sse")
    ref, _, _ = _train("numpy", setup, mode, k, {}, sizes=sizes)
    net, _, _ = _train("numba", setup, mode, k, {}, sizes=sizes)
    np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10, err_msg=worst(net.flat, ref.flat))


def test_frozen_and_absent_biases_the_worked_example(needs_numba):
    # Mazur's worked example: 2-2-2 sigmoid, half-SSE, biases 0.35 / 0.60 held fixed, lr 0.5
    from deltaprop.layers import Dense

    def net():
        layers = [Dense(2, 2, "sigmoid", train_bias=False), Dense(2, 2, "sigmoid", train_bias=False)]
        n = Network.from_layers(layers, "half_sse")
        n.set_weights([([[0.15, 0.25], [0.20, 0.30]], 0.35), ([[0.40, 0.50], [0.45, 0.55]], 0.60)])
        return n

    X, T = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    a, b = net(), net()
    Trainer(a, lr=0.5, mode="stochastic", engine="numpy", eval_every=0).fit(X, T, 200)
    Trainer(b, lr=0.5, mode="stochastic", engine="numba", eval_every=0).fit(X, T, 200)
    np.testing.assert_allclose(b.flat, a.flat, rtol=0, atol=1e-12)
    assert b.layers[0].b[0] == 0.35 and b.layers[1].b[1] == 0.60
    for layers in ([Dense(4, 5, "tanh", bias=False), Dense(5, 3, "sigmoid")],):
        X, T = _data("half_sse")
        nets = [Network.from_layers([Dense(l.n_in, l.n_out, l.activation, bias=l.bias) for l in layers])
                for _ in range(2)]
        for n in nets:
            n.reset_parameters(0)
        for n, eng in zip(nets, ("numpy", "numba")):
            Trainer(n, lr=0.3, mode="stochastic", seed=1, engine=eng).fit(X, T, 3)
        np.testing.assert_allclose(nets[1].flat, nets[0].flat, rtol=0, atol=1e-10)


def test_large_batches_in_chunks(needs_numba):
    setup = ("sigmoid", "softmax", "cross_entropy")
    ref, _, _ = _train("numpy", setup, "batch", 23, {}, chunk_size=4096)
    net, _, _ = _train("numba", setup, "batch", 23, {}, chunk_size=4)
    np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10)


def test_fits_continue_exactly(needs_numba):
    # momentum state made by one engine is carried on by the other
    setup = ("tanh", "sigmoid", "binary_cross_entropy")
    X, T = _data("binary_cross_entropy")
    nets = [Network([4, 6, 3], "tanh", "sigmoid", "binary_cross_entropy", seed=2) for _ in range(2)]
    trs = [Trainer(n, SGD(0.1, momentum=0.8), mode="stochastic", seed=4, engine=e)
           for n, e in zip(nets, ("numpy", "numba"))]
    for tr in trs:
        tr.fit(X, T, 2)
    trs[0].engine, trs[1].engine = "numba", "numpy"
    for tr in trs:
        tr.fit(X, T, 2)
    np.testing.assert_allclose(nets[1].flat, nets[0].flat, rtol=0, atol=1e-10)
    assert trs[0].optimizer.t == trs[1].optimizer.t == 4 * len(X)
    del setup


@pytest.mark.parametrize("opt", [{}, {"momentum": 0.5}], ids=["plain", "momentum"])
@pytest.mark.parametrize("path", ["tiny", "general", "blocked"])
def test_divergence_stops_at_the_same_update(needs_numba, path, opt, monkeypatch):
    from deltaprop.engines import stochastic_blocks, tiny_kernels

    if path == "blocked":
        monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
        monkeypatch.setattr(stochastic_blocks, "BLOCK", 4)
        monkeypatch.setattr(stochastic_blocks, "BLOCK_THREADED", 4)
    if path != "tiny":
        monkeypatch.setattr(tiny_kernels, "MAX_WEIGHTS", 0)
    # through fit, both engines stop at the same update and roll back alike
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(30, 3)) * 100, rng.normal(size=(30, 1)) * 100
    res = []
    for engine in ("numpy", "numba"):
        net = Network([3, 4, 1], "relu", "identity", "mse", seed=0)
        tr = Trainer(net, SGD(1e3, **opt), mode="stochastic", seed=0, engine=engine)
        h = tr.fit(X, T, 5)
        res.append((net.flat.copy(), h.events, tr.optimizer.t))
    assert any(e["event"] == "divergence" for e in res[0][1])
    assert res[0][1] == res[1][1] and res[0][2] == res[1][2]
    np.testing.assert_array_equal(res[0][0], res[1][0])
    # the epoch itself, called directly (the Trainer's roll-back would hide a wrongly applied
    # or miscounted update): same first bad update, same updates applied before it, same
    # weights, velocity and loss sum; the bad sample's update is not applied
    order = np.random.default_rng(1).permutation(len(X))
    res = []
    for engine in ("numpy", "numba"):
        net = Network([3, 4, 1], "relu", "identity", "mse", seed=0)
        tr = Trainer(net, SGD(30.0, **opt), mode="stochastic", seed=0, engine=engine)
        bad = None
        with np.errstate(all="ignore"):  # (overflow on the way to inf: the Trainer's errstate)
            for _ in range(5):
                running, bad = ENGINES[engine]().run_epoch(tr, X, T, order, 1)
                if bad:
                    break
        vel = tr.optimizer.state.get("velocity")
        res.append((net.flat.copy(), bad, tr.optimizer.t, running, None if vel is None else vel.copy()))
    assert res[0][1] is not None and 1 < res[0][1] and np.isfinite(res[0][0]).all()
    assert res[0][1:3] == res[1][1:3]
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-9, atol=0)
    np.testing.assert_allclose(res[1][3], res[0][3], rtol=1e-9)
    if opt:
        np.testing.assert_allclose(res[1][4], res[0][4], rtol=1e-9, atol=0)


@pytest.mark.parametrize("mode,k", MODES[1:])  # (float32 stochastic kernels: the benchmark's;
def test_float32_stays_float32(needs_numba, mode, k):  # each dtype is a compile of several s)
    ref, _, _ = _train("numpy", SETUPS[0], mode, k, {}, dtype="float32")
    net, tr, h = _train("numba", SETUPS[0], mode, k, {}, dtype="float32")
    assert net.flat.dtype == np.float32 and tr.engine_used == "numba/batch-blas"
    np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-5)


def test_float32_blocked_stochastic(needs_numba, monkeypatch):
    # the benchmark's stochastic cells: float32, the compiled blocked epoch
    from deltaprop.engines import stochastic_blocks

    monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(stochastic_blocks, "BLOCK", 4)
    monkeypatch.setattr(stochastic_blocks, "BLOCK_THREADED", 4)
    ref, _, _ = _train("numpy", SETUPS[0], "stochastic", 1, {}, dtype="float32")
    net, tr, h = _train("numba", SETUPS[0], "stochastic", 1, {}, dtype="float32")
    assert numba_engine._PLANS[net].blocks is not None
    # 69 updates in float32 (eps 1.2e-7) from weights of order 1: differences of summation
    # order stay near 1e-6 (that the arithmetic is float32 at all is
    # test_float32_kernels_do_float32_arithmetic's to check)
    np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-5)


def test_auto_chooses_by_work_and_falls_back(needs_numba, monkeypatch):
    import deltaprop.engines as E

    X, T = _data("half_sse")
    net = Network([4, 3], "sigmoid", seed=0)
    monkeypatch.setattr(numba_engine, "LOADED", set())  # as in a process that ran no kernel yet
    # a few updates cannot pay numba's start-up: the NumPy engine runs them
    tr = Trainer(net, lr=0.1, mode="stochastic")
    tr.fit(X, T, 1)
    assert tr.engine_used == "numpy"
    assert not E.worth_compiling(net, 23, 1, epochs=1, optimizer=tr.optimizer)
    assert not E.worth_compiling(net, 23, 1, epochs=100)
    assert E.worth_compiling(Network([784, 128, 10], seed=0), 60_000, 32, epochs=10)
    assert E.worth_compiling(net, 23, 1) == E.worth_compiling(net, 23, 1, epochs=E.ASSUMED_EPOCHS)
    # where the saving pays for the start-up, the compiled engine
    monkeypatch.setattr(E, "START_UP_S", 0.0)
    monkeypatch.setattr(E, "START_UP_IMPORTED_S", 0.0)
    tr = Trainer(net, lr=0.1, mode="stochastic")
    tr.fit(X, T, 1)
    assert tr.engine_used == "numba/tiny"
    ran = numba_engine.LOADED
    monkeypatch.undo()  # the start-up estimates as they are
    monkeypatch.setattr(numba_engine, "LOADED", ran)
    # once this process has run the kernels a set-up needs, their start-up is paid: any saving counts
    assert E.worth_compiling(net, 23, 1, epochs=1, optimizer=tr.optimizer)
    assert not E.worth_compiling(net, 23, 1, epochs=1, optimizer=SGD(0.1, momentum=0.9))
    tr = Trainer(net, lr=0.1, mode="stochastic")
    tr.fit(X, T, 1)
    assert tr.engine_used == "numba/tiny"

    class MySGD(SGD):  # a subclass may change step(): only the NumPy engine calls it
        pass

    tr = Trainer(net, MySGD(0.1), mode="stochastic")
    tr.fit(X, T, 1)
    assert tr.engine_used == "numpy"
    with pytest.raises(ConfigError, match="engine 'numba' cannot run this set-up: optimizer MySGD"):
        select_engine("numba", tr)

    class Later(SGD):  # a class added to the registry after import: no compiled rule
        name = "later"

    from deltaprop.optimizers import OPTIMIZERS

    monkeypatch.setitem(OPTIMIZERS, "later", Later)
    tr = Trainer(net, Later(0.1), mode="minibatch", batch_size=4)
    numba_engine.LOADED.add(numba_engine.kernel_key(net, 4, tr.optimizer))  # as after a numba fit
    tr.fit(X, T, 1)  # the batch kernels count as loaded: only the missing rule keeps it off numba
    assert tr.engine_used == "numpy"
    with pytest.raises(ConfigError, match="optimizer 'later' has no compiled rule"):
        select_engine("numba", tr)
    monkeypatch.setattr(numba_engine, "_numba_available", lambda: False)
    tr = Trainer(net, lr=0.1, mode="stochastic")
    tr.fit(X, T, 1)
    assert tr.engine_used == "numpy"
    assert "numba is not installed" in numba_engine.NumbaEngine().unsupported(tr)


def _import_times(code: str) -> tuple[str, dict[str, int]]:
    """Run ``code`` under ``-X importtime``: its stdout, and the cumulative microseconds of
    each module imported at the top level of the program (not from inside another module)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                         text=True, check=True)
    top = {}
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            top[parts[2].strip()] = int(parts[1])
    return out.stdout.strip(), top


OPTIONAL = ('numba', 'scipy', 'matplotlib', 'sklearn', 'dask', 'distributed', 'pyarrow', 'pandas', 'selenium',
            'onnx', 'tqdm', 'babel')


def test_import_deltaprop_is_light():
    # `import deltaprop` loads the package's names on first use: no NumPy and no optional
    # library. Times are compared with NumPy's import in the same process (importtime's
    # cumulative microseconds), so that a loaded machine slows both alike: the package alone
    # is a few ms against NumPy's 60-150; half of NumPy's would mean a heavy import crept in.
    out, top = _import_times(f"import sys, deltaprop; print(sorted(m for m in {OPTIONAL + ('numpy',)} "
                             "if m in sys.modules)); import numpy")
    assert out == "[]"
    assert top["deltaprop"] < top["numpy"] / 2, (top["deltaprop"], top["numpy"])


def test_first_use_of_deltaprop_is_light():
    # engine="auto" never pays for numba where the NumPy engine would be done first, so the
    # first use of a network and a trainer imports NumPy and deltaprop's own modules only:
    # they add 20-40 ms to NumPy's 60-150 ms; twice NumPy's would mean a heavy import crept in.
    # (Timed with perf_counter: importtime does not see importlib.import_module, which the
    # package's first-use loading goes through.)
    code = ("import sys, time; t0 = time.perf_counter(); import numpy; t1 = time.perf_counter(); import deltaprop; "
            "deltaprop.Network, deltaprop.Trainer, deltaprop.train; t2 = time.perf_counter(); "
            f"print(sorted(m for m in {OPTIONAL} if m in sys.modules), 'deltaprop.training' in sys.modules, "
            "t1 - t0, t2 - t1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    optional, training, numpy_s, own_s = out.rsplit(" ", 3)
    assert optional == "[]" and training == "True"
    assert float(own_s) < 2 * float(numpy_s), (own_s, numpy_s)


def test_the_package_names_load_on_first_use():
    code = ("import sys, deltaprop as dp, types; import deltaprop.gradcheck as g; from deltaprop.gradcheck import "
            "gradient_cost; print(all(getattr(dp, n) is not None for n in dp.__all__), set(dp.__all__) <= "
            "set(dir(dp)), isinstance(dp.gradcheck, types.FunctionType), g is dp.gradcheck, "
            "dp.training.Trainer is dp.Trainer, not hasattr(dp, 'plot') and not hasattr(dp, 'sklearn'), "
            "'matplotlib' not in sys.modules and 'sklearn' not in sys.modules, "
            "not any(n in dir(dp) for n in ('sys', 'types', 'importlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the module deltaprop.gradcheck, imported by name, does not hide the function of that name;
    # an optional module is not imported because something asked whether the package has it
    assert out.stdout.split() == ["True"] * 8
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        deltaprop.nothing  # noqa: B018


def test_unknown_engine_lists_the_names():
    net = Network([2, 1], seed=0)
    with pytest.raises(ConfigError, match="numba"):
        select_engine("fortran", Trainer(net))
    assert list(ENGINES) == ["numba", "numpy"]


def test_codes_name_the_registry_classes():
    # one table of codes (engines/codes.py): each row names a class of the registry, and only
    # that exact class has the code (a subclass may change the formulas)
    from deltaprop.activations import ACTIVATIONS, Sigmoid
    from deltaprop.losses import LOSSES

    for code, (const, name, param) in enumerate(C.ACTIVATIONS):
        assert getattr(C, const) == code and C.activation_code(ACTIVATIONS[name]()) == code
        assert param is None or hasattr(ACTIVATIONS[name](), param)
    for code, (const, name) in enumerate(C.LOSSES):
        assert getattr(C, const) == code and C.loss_code(LOSSES[name]()) == code

    class MySigmoid(Sigmoid):
        pass

    assert C.activation_code(MySigmoid()) is None


def test_the_table_of_paths_says_what_runs(needs_numba, monkeypatch):
    # each numba path of the table runs the set-ups its row names, and is recorded as run
    from deltaprop.engines import paths, stochastic_blocks

    seen = {}
    cases = [("tiny", (4, 3, 2), "stochastic", {}), ("per-sample", (4, 30, 3), "stochastic", {}),
             ("batch-blas", (4, 6, 3), "minibatch", {"momentum": 0.5}),
             ("batch-blas", (4, 6, 3), "batch", {})]
    for want, sizes, mode, opt in cases:
        net, tr, _ = _train("numba", SETUPS[0], mode, 5, opt, sizes=sizes, epochs=1)
        seen[want] = tr.engine_used
        row = paths.PATHS[tr.engine_used]
        assert mode in row.modes and ("momentum" if opt else "sgd") in row.rules
    monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
    _, tr, _ = _train("numba", SETUPS[0], "stochastic", 1, {}, epochs=1)
    seen["blocked"] = tr.engine_used
    assert seen == {name: f"numba/{name}" for name in seen}
    assert "| `numba/blocked` |" in paths.markdown_table()


def test_import_loads_only_what_it_needs():
    # `import deltaprop` pays for NumPy and its own modules: numba, SciPy and the modules only
    # a translation, a TOML line or a file path needs are loaded when first used (gettext,
    # pathlib and json were 14 of the 42 ms deltaprop took after NumPy)
    heavy = ("numba", "scipy", "sklearn", "matplotlib", "distributed", "gettext", "pathlib", "json")
    code = f"import sys, deltaprop; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("source", ["numpy", "scipy", "none"])
def test_every_blas_route_gives_the_numpy_weights(needs_numba, source, monkeypatch):
    # the compiled batch epoch calls NumPy's own BLAS, or SciPy's, or (neither found) the
    # engine runs NumPy matmul between compiled steps: all three give the same weights
    # (and the blocked stochastic epoch: one compiled call with BLAS, a Python loop without)
    from deltaprop.engines import blas_lib, blas_path, stochastic_blocks

    if source == "scipy":
        pytest.importorskip("scipy")
    monkeypatch.setenv("DELTAPROP_BLAS", source)
    blas_lib.gemm_for.cache_clear()
    monkeypatch.setattr(blas_path, "gemm_for", blas_lib.gemm_for)
    monkeypatch.setattr(stochastic_blocks, "gemm_for", blas_lib.gemm_for)
    monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(stochastic_blocks, "BLOCK", 4)
    monkeypatch.setattr(stochastic_blocks, "BLOCK_THREADED", 4)
    try:
        gemm = blas_lib.gemm_for(np.float64)
        assert (gemm is None) == (source == "none")
        if gemm is not None:
            assert gemm.source.startswith(source)
        for mode, k, opt in (("minibatch", 5, {}), ("batch", 23, {"momentum": 0.9})):
            ref, _, _ = _train("numpy", SETUPS[0], mode, k, opt)
            net, tr, _ = _train("numba", SETUPS[0], mode, k, opt)
            assert tr.engine_used == ("numba/batch-matmul" if source == "none" else "numba/batch-blas")
            np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10)
        for setup in (SETUPS[0], SETUPS[2]):  # sigmoid (vectorised exp) and ReLU hidden units
            ref, _, h_ref = _train("numpy", setup, "stochastic", 1, {})
            net, tr, h = _train("numba", setup, "stochastic", 1, {})
            assert (numba_engine._PLANS[net].blocks.gemm is None) == (source == "none")
            np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10)
            np.testing.assert_allclose(h.loss_running, h_ref.loss_running, rtol=1e-10)
    finally:
        blas_lib.gemm_for.cache_clear()


@pytest.mark.parametrize("mode,k", [("minibatch", 4), ("batch", 30)])
def test_divergence_in_batches_stops_before_the_update(needs_numba, mode, k):
    # plain SGD on one-chunk batches writes the update straight into the weights, so the loss
    # check must come first: one epoch run by each engine directly (the Trainer's roll-back
    # would hide a wrongly applied update) leaves the same weights and update count
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(30, 3)) * 100, rng.normal(size=(30, 1)) * 100
    res = []
    for engine in ("numpy", "numba"):
        net = Network([3, 4, 1], "relu", "identity", "mse", seed=0)
        tr = Trainer(net, lr=1e3, mode=mode, batch_size=k, seed=0, engine=engine)
        bad = None
        for _ in range(5):
            running, bad = ENGINES[engine]().run_epoch(tr, X, T, None, k)
            if bad:
                break
        res.append((net.flat.copy(), bad, tr.optimizer.t))
    assert res[0][1] is not None and np.isfinite(res[0][0]).all()
    assert res[0][1:] == res[1][1:]
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype,max_ulp", [(np.float32, 1.5), (np.float64, 4.0)])
def test_vectorised_exp_is_within_a_few_ulp(needs_numba, dtype, max_ulp):
    # exp_nonpositive replaces libm's exp in the batch kernels' sigmoid; bounds from a
    # degree-12 Taylor polynomial on |r| <= ln2/2 (truncation < 2e-16) plus a few roundings
    from deltaprop.engines import _numba_batch as B

    lo = -110.0 if dtype == np.float32 else -760.0
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, 0, 200_001), -rng.exponential(3.0, 200_000), [0.0, -0.0]]).astype(dtype)
    ce, ci = B.exp_constants(dtype)
    n = len(x)
    out = np.empty(n, dtype)
    B.exp_nonpositive(x, out, ce, ci)
    exact = np.exp(x.astype(np.longdouble))
    ulp = np.spacing(np.maximum(exact, np.finfo(dtype).smallest_subnormal).astype(dtype)).astype(np.longdouble)
    err = np.abs(out.astype(np.longdouble) - exact) / ulp
    assert err.max() <= max_ulp, (err.max(), x[err.argmax()])
    assert out[-1] == 1.0 and out[-2] == 1.0
    special = np.array([np.nan, -np.inf], dtype)
    o2 = np.empty(2, dtype)
    B.exp_nonpositive(special, o2, ce, ci)
    assert np.isnan(o2[0]) and o2[1] == 0.0


def test_kernels_call_numpys_own_blas(needs_numba):
    # same library, same thread pool: threadpoolctl and OPENBLAS_NUM_THREADS govern the
    # compiled epochs exactly as they govern np.matmul (a second copy would bring its own)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from deltaprop.engines import blas_lib

    before = {i["filepath"] for i in threadpoolctl.threadpool_info()}
    gemm = blas_lib.gemm_for(np.float32)
    if gemm is None or not gemm.source.startswith("numpy"):
        pytest.skip(f"NumPy's BLAS is not a bundled OpenBLAS here ({gemm})")
    after = {i["filepath"] for i in threadpoolctl.threadpool_info()}
    assert after == before
    assert any(gemm.source.split("(")[1].rstrip(")") in path for path in after)


def _xor_fit(dtype, epochs=50, sizes=(2, 2, 1), **net_kw):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype)
    T = np.array([[0], [1], [1], [0]], dtype)
    net = Network(list(sizes), "sigmoid", "sigmoid", "half_sse", dtype=dtype, seed=0, **net_kw)
    h = Trainer(net, lr=0.5, mode="stochastic", seed=0, eval_every=0, engine="numba").fit(X, T, epochs)
    return net, h


def test_tiny_kernel_is_the_general_kernel_in_float32(needs_numba, monkeypatch):
    # the generated kernel does the general per-sample kernel's arithmetic in the same order
    # (only the general kernel's leading 0 + x w differs, which changes no bit), so in the
    # benchmark's float32 XOR the two agree to the bit
    from deltaprop.engines import tiny_kernels

    tiny, h_tiny = _xor_fit("float32")
    assert numba_engine._PLANS[tiny].tiny[0] is not None
    monkeypatch.setattr(tiny_kernels, "MAX_WEIGHTS", 0)
    general, h_general = _xor_fit("float32")
    assert numba_engine._PLANS[general].tiny[0] is None
    assert tiny.flat.dtype == np.float32
    np.testing.assert_array_equal(tiny.flat, general.flat)
    np.testing.assert_array_equal(h_tiny.loss_running, h_general.loss_running)


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=["plain", "momentum", "nesterov"])
def test_tiny_kernel_three_layers(needs_numba, opt):
    # 4-3-3-2 (27 weights): the generated kernel's deepest shape, every optimizer kind
    setup = ("tanh", "softmax", "cross_entropy")
    ref, _, h_ref = _train("numpy", setup, "stochastic", 1, opt, sizes=(4, 3, 3, 2))
    net, _, h = _train("numba", setup, "stochastic", 1, opt, sizes=(4, 3, 3, 2))
    assert numba_engine._PLANS[net].tiny  # the kernel was looked up ...
    assert all(f is not None for f in numba_engine._PLANS[net].tiny.values())  # ... and found
    np.testing.assert_allclose(net.flat, ref.flat, rtol=0, atol=1e-10, err_msg=worst(net.flat, ref.flat))
    np.testing.assert_allclose(h.loss_running, h_ref.loss_running, rtol=1e-10)


def test_tiny_kernel_bounds(needs_numba):
    from deltaprop.engines import tiny_kernels as TK

    lay = [(1, 1, C.SIGMOID)] * 2
    assert TK.spec_for([4, 8, 4], lay, C.HALF_SSE, False, C.PLAIN) is not None  # 64
    assert TK.spec_for([4, 8, 5], lay, C.HALF_SSE, False, C.PLAIN) is None  # 72
    assert TK.spec_for([2, 2, 2, 2, 2], [(1, 1, C.SIGMOID)] * 4, C.HALF_SSE, False,
                       C.PLAIN) is None  # four layers
    softmax_hidden = [(1, 1, C.SOFTMAX), (1, 1, C.SIGMOID)]
    assert TK.spec_for([2, 2, 1], softmax_hidden, C.HALF_SSE, False, C.PLAIN) is None


def test_tiny_kernel_source_cache(needs_numba, tmp_path, monkeypatch):
    # the generated source goes to a private directory and is rewritten when it differs
    from deltaprop.engines import tiny_kernels as TK

    monkeypatch.setattr(TK, "_LOADED", {})
    monkeypatch.setenv("DELTAPROP_KERNEL_DIR", str(tmp_path / "k"))
    spec = TK.spec_for([2, 3, 1], [(1, 1, C.TANH), (1, 1, C.SIGMOID)], C.MSE, False, C.PLAIN)
    fn = TK.kernel_for(spec)
    assert TK.kernel_for(spec) is fn
    (path,) = (tmp_path / "k").glob("deltaprop_tiny_*.py")
    assert path.read_text() == TK.source_for(spec)
    assert sys.modules[fn.py_func.__module__].__file__ == str(path)  # imported from the file
    # a file that is not ours, even one that is not text, is replaced
    for junk in (b"raise SystemExit('not ours')\n", b"\xff\xfe\x00 not utf-8"):
        path.write_bytes(junk)
        monkeypatch.setattr(TK, "_LOADED", {})
        fn2 = TK.kernel_for(spec)
        assert path.read_text() == TK.source_for(spec)
    # a directory others can write, or one inside such a directory (without the sticky bit
    # of /tmp), is not used: its files could be anyone's code
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    for inside in (shared, shared / "deltaprop" / "kernels"):
        monkeypatch.setenv("DELTAPROP_KERNEL_DIR", str(inside))
        assert TK._cache_dir() != str(inside)
    assert TK._private(str(tmp_path / "k"))
    # the module fails while it runs (as numba does when it cannot write its cache):
    # compiled from memory, and the half-built module is not left registered
    monkeypatch.setattr(TK, "_LOADED", {})
    real_spec = TK.importlib.util.spec_from_file_location

    class FailingLoader:
        def create_module(self, module_spec):
            return None

        def exec_module(self, module):
            raise RuntimeError("cannot cache function")

    def failing_spec(name, location):
        module_spec = real_spec(name, location)
        module_spec.loader = FailingLoader()
        return module_spec

    monkeypatch.setattr(TK.importlib.util, "spec_from_file_location", failing_spec)
    fn4 = TK.kernel_for(spec)
    assert not sys.modules.get(fn4.py_func.__module__)  # nothing half-built left registered
    monkeypatch.undo()
    # no directory at all: compiled from memory; the same kernel
    monkeypatch.setattr(TK, "_LOADED", {})
    monkeypatch.setattr(TK, "_cache_dir", lambda: None)
    fn3 = TK.kernel_for(spec)
    X = np.array([[0.5, -1.0], [2.0, 0.25]])
    T = np.array([[0.3], [0.8]])
    outs = []
    for f in (fn, fn2, fn3, fn4):
        W0, B0, W1, B1 = np.full((2, 3), 0.1), np.full(3, 0.2), np.full((3, 1), -0.3), np.zeros(1)
        c = np.zeros(9)
        c[0], c[2], c[4], c[6] = 0.1, 1.0, 0.5, 2.0
        empty2, empty1 = np.zeros((0, 0)), np.zeros(0)
        res = f(X, T, np.array([0, 1, 0], np.int64), W0, B0, empty2, empty1, W1, B1, empty2,
                empty1, np.zeros(2), c, 3)
        outs.append((res, W0, B0, W1, B1))
    assert outs[0][0][1:] == (0, 3)
    for other in outs[1:]:
        assert other[0] == outs[0][0]
        for a, b in zip(other[1:], outs[0][1:]):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(outs[0][1], np.full((2, 3), 0.1))  # it trained
    # numba cached the file's kernel on disk, next to its source
    assert list((tmp_path / "k" / "__pycache__").glob("deltaprop_tiny_*.nbi"))


def _double_ops(llvm_ir: str) -> list:
    """float64 multiplies, subtracts and divides in LLVM IR, less the two the kernels mean:
    ``fsub double %x, %x`` (how LLVM tests a float64 loss for finiteness) and a division by
    an integer converted to float64 (the MSE loss value, sum / n, reported as a float)."""
    import re

    defs = dict(re.findall(r"(%[\w.]+) = (\w+)", llvm_ir))
    found = []
    for op, a, b in re.findall(r"\b(fmul|fsub|fdiv|fneg) (?:\w+ )*double (%[\w.]+|[-\w.+]+), (%[\w.]+|[-\w.+]+)", llvm_ir):
        if op == "fsub" and a == b or op == "fdiv" and defs.get(b) == "sitofp":
            continue
        found.append((op, a, b))
    return found


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_gemm_every_shape_transpose_and_stride(needs_numba, dtype):
    # the compiled products' one entry point: ?gemm, or the loops of a thin product (one output
    # column with A transposed, or inner dimension one). Every (ta, tb), every m, n, k in
    # {1, 2, 5}, contiguous and strided operands (rows of a wider array), beta 0 (C holds NaN
    # and must not be read) and not 0, against NumPy
    import itertools

    from deltaprop.engines._numba_batch import gemm
    from deltaprop.engines.blas_lib import gemm_for

    dt = np.dtype(dtype)
    g = gemm_for(dt)
    if g is None:
        pytest.skip("no ?gemm reachable from compiled code")
    ib, fb, ch = np.zeros(8, g.int_dtype), np.zeros(2, dt), np.zeros(2, np.uint8)
    rng = np.random.default_rng(0)

    def operand(shape, strided):
        if not strided:
            return rng.normal(size=shape).astype(dt)
        return rng.normal(size=(shape[0], shape[1] + 3)).astype(dt)[:, 1:shape[1] + 1]

    tol = 1e-12 if dt == np.float64 else 1e-5
    for ta, tb, strided in itertools.product((False, True), repeat=3):
        for m, n, k in itertools.product((1, 2, 5), repeat=3):
            A = operand((k, m) if ta else (m, k), strided)
            B = operand((n, k) if tb else (k, n), strided)
            opA, opB = (A.T if ta else A), (B.T if tb else B)
            for beta in (0.0, 0.5):
                C0 = rng.normal(size=(m, n)).astype(dt)
                C = np.full((m, n), np.nan, dt) if beta == 0 else C0.copy()
                gemm(g.address, ib, fb, ch, A, ta, B, tb, C, dt.type(-0.7), dt.type(beta))
                want = -0.7 * (opA.astype(np.float64) @ opB) + (beta * C0 if beta else 0)
                np.testing.assert_allclose(C, want, rtol=tol, atol=tol, err_msg=str((ta, tb, strided, m, n, k, beta)))


def test_float32_kernels_do_float32_arithmetic(needs_numba, monkeypatch):
    # a float32 net must train in float32: numba promotes float32 combined with a float64 or
    # an integer literal to float64 silently, and float64 arithmetic would still pass a
    # tolerance test against float32 NumPy. So the compiled code itself is read: no float64
    # multiply, subtract or divide (the float64 loss sum is an add, and stays).
    import numba

    from deltaprop.engines import _numba_batch, stochastic_blocks
    from deltaprop.engines import tiny_kernels as TK

    # the generated tiny-net kernel, every optimizer kind
    for kind in (C.PLAIN, C.MOMENTUM, C.NESTEROV):
        spec = TK.spec_for([2, 3, 1], [(1, 1, C.TANH), (1, 1, C.SIGMOID)], C.HALF_SSE, False, kind)
        ns = {}
        exec(TK.source_for(spec).replace("cache=True", "cache=False"), ns)
        f32 = np.float32
        W0, B0, W1, B1 = np.zeros((2, 3), f32), np.zeros(3, f32), np.zeros((3, 1), f32), np.zeros(1, f32)
        vel = (np.zeros((2, 3), f32), np.zeros(3, f32), np.zeros((3, 1), f32), np.zeros(1, f32))
        c = np.zeros(9, f32)
        c[0], c[1], c[2], c[4] = 0.1, 0.9, 1, 0.5
        X, T = np.ones((2, 2), f32), np.ones((2, 1), f32)
        ns["epoch"](X, T, np.arange(2), W0, B0, vel[0], vel[1], W1, B1, vel[2], vel[3], np.zeros(2, f32), c, 2)
        llvm_ir = ns["epoch"].inspect_llvm(ns["epoch"].signatures[0])
        assert "fmul float" in llvm_ir and not _double_ops(llvm_ir), (kind, _double_ops(llvm_ir)[:5])
    # the compiled blocked epoch (its own loops; the helpers it calls are shared with the
    # float32 batch path)
    fresh = numba.njit(cache=False, nogil=True, error_model="numpy")(_numba_batch.block_epoch.py_func)
    monkeypatch.setattr(_numba_batch, "block_epoch", fresh)
    monkeypatch.setattr(stochastic_blocks, "MIN_WEIGHTS", 0)
    _train("numba", SETUPS[0], "stochastic", 1, {"momentum": 0.9}, dtype="float32")
    llvm_ir = fresh.inspect_llvm(fresh.signatures[0])
    assert "fmul float" in llvm_ir and not _double_ops(llvm_ir), _double_ops(llvm_ir)[:5]


@pytest.mark.parametrize("mode,k", [("minibatch", 5), ("batch", 23)])
def test_softmax_cross_entropy_soft_targets(needs_numba, mode, k):
    # targets that are not one-hot (soft labels, rows summing to 0.7-1.3): the fused delta is
    # a * sum(t) - t, which one-hot targets (sum 1) cannot tell from a - t
    rng = np.random.default_rng(5)
    X = rng.normal(size=(23, 4))
    T = rng.dirichlet(np.ones(3), size=23) * rng.uniform(0.7, 1.3, (23, 1))
    nets = []
    for engine in ("numpy", "numba"):
        net = Network([4, 6, 3], "tanh", "softmax", "cross_entropy", seed=1)
        h = Trainer(net, lr=0.1, mode=mode, batch_size=k, seed=3, engine=engine).fit(X, T, 3)
        nets.append((net, h))
    np.testing.assert_allclose(nets[1][0].flat, nets[0][0].flat, rtol=0, atol=1e-10)
    np.testing.assert_allclose(nets[1][1].loss_running, nets[0][1].loss_running, rtol=1e-10)


def test_block_size_follows_the_blas_threads(needs_numba):
    # one BLAS thread: short blocks; more: the taller products its threads need
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from deltaprop.engines import stochastic_blocks
    from deltaprop.engines.blas_lib import gemm_for

    gemm = gemm_for(np.float32)
    if gemm is None or gemm.threads() is None:
        pytest.skip(f"the BLAS here cannot report its threads ({gemm})")
    net = Network([784, 32, 10], "sigmoid", "sigmoid", "half_sse", dtype="float32", seed=0)
    blocks = stochastic_blocks.StochasticBlocks(net, numba_engine._Plan(net))
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert gemm.threads() == 1 and blocks.block_size() == stochastic_blocks.BLOCK
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if gemm.threads() < 2:  # (a one-core machine: OpenBLAS keeps one thread)
            pytest.skip("OpenBLAS runs one thread here")
        assert blocks.block_size() == stochastic_blocks.BLOCK_THREADED


def test_prefetch_rows_emits_prefetches_for_short_rows_and_reads_nothing(needs_numba):
    # a shuffled mini-batch epoch asks the cache for the next chunk's rows; the prefetch must
    # be real (LLVM's intrinsic in the compiled code), harmless at every edge, and skip wide rows
    from deltaprop.engines import _numba_batch as NB

    from numba import njit

    rng = np.random.default_rng(0)
    order = rng.permutation(50)
    # compiled with bounds checks: a read of order (or of a row) outside its array raises
    checked = njit(NB.prefetch_rows.py_func, boundscheck=True)
    for cols in (0, 1, 13, NB.PREFETCH_ROW_BYTES // 4 + 1):
        X = rng.standard_normal((50, cols)).astype(np.float32)
        T = rng.standard_normal((50, 1)).astype(np.float32)
        for start, stop in ((0, 50), (48, 50), (50, 50), (10, 5)):
            checked(X, T, order, start, stop)
    with pytest.raises(IndexError):
        checked(X[:, :13].copy(), T, order, 49, 51)  # the checks are on: past the end raises
    # the prefetch is real: LLVM's intrinsic in the compiled code (code loaded from numba's
    # cache cannot be inspected, hence a fresh compile)
    assert "call void @llvm.prefetch" in "\n".join(checked.inspect_llvm().values())

    # a shuffled epoch whose batches span several chunks (chunk_size 3 < batch 7 < N) gives the
    # NumPy engine's weights
    X, T = rng.standard_normal((200, 13)), rng.standard_normal((200, 1))
    nets = [Network([13, 8, 1], "relu", "identity", "mse", seed=2) for _ in range(2)]
    for net, engine in zip(nets, ("numpy", "numba")):
        Trainer(net, lr=0.01, mode="minibatch", batch_size=7, chunk_size=3, seed=4, engine=engine).fit(X, T, 3)
    np.testing.assert_allclose(nets[1].flat, nets[0].flat, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sizes,mode,k,opt", [
    ((2, 2, 1), "stochastic", 1, {}),  # tiny
    ((8, 40, 30, 3), "stochastic", 1, {}),  # per-sample
    ((200, 100, 3), "stochastic", 1, {}),  # blocked: 20,000 first-layer weights
    ((8, 16, 3), "stochastic", 1, {"weight_decay": 0.01}),  # a rule the per-sample kernels do not take
    ((8, 16, 3), "minibatch", 16, {}),
    ((8, 16, 3), "batch", 64, {}),  # split: forced below
    ((8, 16, 3), "batch", 64, {"grad_noise": 0.01}),  # random draws: not split
])
def test_the_path_named_before_a_fit_is_the_one_it_takes(needs_numba, monkeypatch, sizes, mode, k, opt):
    # what `deltaprop train` names in its opening lines (NumbaEngine.path_of) is what the
    # first epoch records as engine_used
    from deltaprop.engines import blas_path
    from deltaprop.optimizers import get_optimizer

    monkeypatch.setattr(blas_path, "ROWS_PER_THREAD", 32)  # batches of 64 split in two, of 16 not
    monkeypatch.setattr(blas_path, "_cpus", lambda: 2)
    monkeypatch.setattr(blas_path.ONE_BLAS_THREAD, "user_threads", lambda gemm: 2)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(64, sizes[0])), rng.uniform(size=(64, sizes[-1]))
    tr = Trainer(Network(list(sizes), "sigmoid", seed=0), get_optimizer("sgd", lr=0.1, **opt), mode=mode,
                 batch_size=k, engine="numba", seed=0)
    named = numba_engine.NumbaEngine().path_of(tr, len(X))
    tr.fit(X, T, 1)
    assert named == tr.engine_used
    assert named != "numba/batch-threads" or (mode == "batch" and not opt)
