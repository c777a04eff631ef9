"""Every optimizer of the registry on the compiled engine: the NumPy engine's weights, state and
generator in every mode it allows and on every path that runs it (float64, 1e-10)."""

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


@pytest.fixture(params=["blas", "matmul"])
def blas_route(request, monkeypatch):
    """The two batch paths: ?gemm from compiled code, or np.matmul between compiled steps."""
    from deltaprop.engines import blas_lib, blas_path

    pytest.importorskip("numba")
    if request.param == "matmul":
        monkeypatch.setenv("DELTAPROP_BLAS", "none")
        blas_lib.gemm_for.cache_clear()
        monkeypatch.setattr(blas_path, "gemm_for", blas_lib.gemm_for)
    yield f"numba/batch-{request.param}"
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
    assert tr.engine_used == blas_route
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
