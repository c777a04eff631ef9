"""Gradient transformations: each alone by hand, the bias mask, the order of a chain, the
options' chain against the formula bit for bit, and a chain through a checkpoint."""

import copy
import math

import numpy as np
import pytest

from deltaprop import Network, Trainer
from deltaprop.data import load_builtin
from deltaprop.engines import numba_engine
from deltaprop.errors import ConfigError
from deltaprop.optimizers import SGD, Adam, Sarprop
from deltaprop.transforms import AddDecayedWeights, AddNoise, GradientTransform, from_options

from test_optimizers import _through_a_file

THETA = np.array([1.0, -2.0, 0.5])
G = np.array([0.5, -1.0, 0.25])


class Scale(GradientTransform):
    """g -> c g: a transformation whose order against decay shows in the result."""

    name = "scale"

    def __init__(self, c):
        self.c = c

    def __call__(self, g, params, t, rng):
        return self.c * g

    def hyperparameters(self):
        return {"c": self.c}


# --------------------------------------------------------------------------- each alone
def test_decayed_weights_by_hand_with_the_mask_sparing_the_last_entry():
    # lambda 0.5, m = [1, 1, 0]: g + 0.5 m theta = [0.5 + 0.5, -1 - 1, 0.25] = [1, -2, 0.25]
    tf = AddDecayedWeights(0.5, mask=np.array([1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(tf(G, THETA, 1, None), [1.0, -2.0, 0.25])
    # no mask: every entry, the last one 0.25 + 0.25 = 0.5
    np.testing.assert_array_equal(AddDecayedWeights(0.5)(G, THETA, 1, None), [1.0, -2.0, 0.5])


def test_noise_by_hand_for_two_updates():
    # nu 0.5, gamma 0.55: sigma_1 = sqrt(0.5 / 2^0.55), sigma_2 = sqrt(0.5 / 3^0.55); xi from the generator
    tf, rng = AddNoise(0.5), np.random.default_rng(3)
    out = [tf(G, THETA, t, rng) for t in (1, 2)]
    xi = np.random.default_rng(3).standard_normal((2, 3))
    np.testing.assert_allclose(out[0], G + math.sqrt(0.5 / 2 ** 0.55) * xi[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out[1], G + math.sqrt(0.5 / 3 ** 0.55) * xi[1], rtol=0, atol=1e-15)
    assert AddNoise(0.5, gamma=0.0)(G, THETA, 7, np.random.default_rng(3)).tolist() == \
        (G + math.sqrt(0.5) * xi[0]).tolist()  # gamma 0: no annealing


def test_transforms_leave_the_gradient_buffer_alone():
    g = G.copy()
    for tf in (AddDecayedWeights(0.5), AddNoise(0.5)):
        tf(g, THETA, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(g, G)


def test_noise_keeps_the_dtype():
    p = THETA.astype(np.float32)
    out = AddNoise(0.5)(G.astype(np.float32), p, 1, np.random.default_rng(0))
    assert out.dtype == np.float32


@pytest.mark.parametrize("make,match", [
    (lambda: AddDecayedWeights(-1), "weight decay must be a number >= 0"),
    (lambda: AddNoise(float("nan")), "gradient noise must be a number >= 0"),
    (lambda: AddNoise(0.1, gamma=-1), "noise decay must be a number >= 0")])
def test_bad_transform_hyperparameters(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# --------------------------------------------------------------------------- the bias mask
def test_weight_mask_is_zero_on_the_biases_only():
    net = Network([2, 3, 1], seed=0)
    mask = net.weight_mask()
    names = net.param_names()[: net.n_trainable]
    assert mask.shape == net.params.shape and mask.dtype == net.dtype
    assert [bool(m) for m in mask] == [n.startswith("W") for n in names]
    assert mask.sum() == 2 * 3 + 3 * 1


def test_weight_mask_of_frozen_biases_covers_only_the_trainable_weights():
    net = Network([2, 3, 1], train_bias=False, dtype="float32", seed=0)
    assert net.n_trainable == 9 and net.weight_mask().tolist() == [1.0] * 9
    assert net.weight_mask().dtype == np.float32
    assert Network([2, 1], bias=False, seed=0).weight_mask().tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------- chains
def test_the_options_chain_is_decay_then_noise():
    mask = np.ones(3)
    chain = from_options(0.1, 0.2, 0.3, mask)
    assert [type(tf) for tf in chain] == [AddDecayedWeights, AddNoise]
    assert chain[0].mask is mask and (chain[1].nu, chain[1].gamma) == (0.2, 0.3)
    assert from_options(0.0, 0.0) == [] and [type(tf) for tf in from_options(0.0, 0.1)] == [AddNoise]
    assert SGD(weight_decay=0.1, grad_noise=0.2).transforms[0].name == "weight_decay"


def test_a_chain_applies_in_order():
    # [2 g] then decay: 2 G + 0.5 theta; decay then [2 g]: 2 (G + 0.5 theta)
    for chain, expected in (([Scale(2.0), AddDecayedWeights(0.5)], 2 * G + 0.5 * THETA),
                            ([AddDecayedWeights(0.5), Scale(2.0)], 2 * (G + 0.5 * THETA))):
        theta = THETA.copy()
        SGD(lr=1.0, transforms=chain).step(theta, G)
        np.testing.assert_array_equal(theta, THETA - expected)


def test_options_under_a_trainer_are_the_formula_bit_for_bit():
    # theta -= lr (g + lambda m theta + sigma_t xi), m = the weight mask, xi from the generator
    # the trainer seeds from its own: the formula written out, not through the transforms
    ds = load_builtin("xor")
    lr, lam, nu, gamma = 0.5, 0.01, 0.05, 0.3
    net = Network([2, 3, 1], "sigmoid", loss="half_sse", seed=2)
    manual = net.copy()
    trainer = Trainer(net, SGD(lr, weight_decay=lam, grad_noise=nu, noise_decay=gamma), mode="batch", seed=5,
                      engine="numpy")
    rng = np.random.default_rng(int(copy.deepcopy(trainer.rng).integers(2**63)))
    trainer.fit(ds.X, ds.T, 20)
    m = manual.weight_mask()
    for t in range(1, 21):
        _, g = manual.loss_and_gradient(ds.X, ds.T)
        p = manual.params
        g = g + lam * (p * m)
        g = g + math.sqrt(nu / (1.0 + t) ** gamma) * rng.standard_normal(g.shape)
        p -= lr * g
    np.testing.assert_array_equal(net.flat, manual.flat)


@pytest.mark.parametrize("make", [lambda **kw: SGD(0.5, momentum=0.9, **kw), lambda **kw: Adam(0.05, **kw),
                                  lambda **kw: Sarprop(**kw)], ids=["momentum", "adam", "sarprop"])
def test_an_explicit_chain_is_the_options_bit_for_bit(make):
    # SARPROP draws after the noise from the same generator: the order of draws must hold too
    ds = load_builtin("xor")

    def run(**kw):
        net = Network([2, 3, 1], "sigmoid", loss="half_sse", seed=2)
        if kw.pop("masked", False):
            kw["transforms"] = [AddDecayedWeights(0.01, mask=net.weight_mask()), AddNoise(0.05, 0.3)]
        Trainer(net, make(**kw), mode="batch", seed=5, engine="numpy").fit(ds.X, ds.T, 25)
        return net.flat

    np.testing.assert_array_equal(run(weight_decay=0.01, grad_noise=0.05, noise_decay=0.3), run(masked=True))
    np.testing.assert_array_equal(run(weight_decay=0.01, decay_biases=True, grad_noise=0.05, noise_decay=0.3),
                                  run(transforms=[AddDecayedWeights(0.01), AddNoise(0.05, 0.3)]))


def test_an_option_changed_after_construction_takes_effect():
    opt = SGD(lr=0.1)
    assert opt.transforms == ()
    opt.weight_decay = 0.5
    theta = THETA.copy()
    opt.step(theta, G)
    np.testing.assert_array_equal(theta, THETA - 0.1 * (G + 0.5 * THETA))


# --------------------------------------------------------------------------- state and refusals
def test_an_explicit_chain_resumes_bitwise_and_a_different_one_is_refused():
    ds = load_builtin("xor")

    def trainer(chain):
        net = Network([2, 3, 1], "sigmoid", loss="half_sse", seed=2)
        opt = SGD(0.5, transforms=chain)
        return Trainer(net, opt, mode="minibatch", batch_size=3, seed=5, engine="numpy")

    chain = [AddDecayedWeights(0.01), AddNoise(0.05)]
    a = trainer(chain)
    a.fit(ds.X, ds.T, 30)
    b = trainer(chain)
    b.fit(ds.X, ds.T, 12)
    state = _through_a_file(copy.deepcopy(b.state_dict()))
    assert state["optimizer"]["hyper"]["transforms"] == [
        {"name": "AddDecayedWeights", "weight_decay": 0.01, "masked": False},
        {"name": "AddNoise", "nu": 0.05, "gamma": 0.55}]
    c = trainer([AddDecayedWeights(0.01), AddNoise(0.05)])
    c.load_state_dict(state)
    c.fit(ds.X, ds.T, 18)
    np.testing.assert_array_equal(c.network.flat, a.network.flat)
    options = Trainer(Network([2, 3, 1], seed=2), SGD(0.5, grad_noise=0.1))
    for other in (trainer([AddNoise(0.05)]), options):
        with pytest.raises(ConfigError, match="optimizer state was saved with transforms"):
            other.optimizer.load_state_dict(state["optimizer"])


def test_the_options_keep_their_hyperparameters():
    # what checkpoints hold: no new key where no chain was given
    assert SGD(0.1, weight_decay=0.1, grad_noise=0.2).hyperparameters() == {
        "lr": 0.1, "weight_decay": 0.1, "decay_biases": False, "grad_noise": 0.2, "noise_decay": 0.55,
        "momentum": 0.0, "nesterov": False}


@pytest.mark.parametrize("kwargs,match", [
    ({"weight_decay": 0.1, "transforms": [AddNoise(0.1)]}, "or transforms=, not both"),
    ({"noise_decay": 0.3, "transforms": []}, "or transforms=, not both"),
    ({"transforms": [lambda g, p, t, r: g]}, "transforms must be GradientTransform instances"),
])
def test_bad_chains_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SGD(0.1, **kwargs)


def test_noise_in_a_chain_needs_a_generator_and_a_trainer_gives_one():
    with pytest.raises(ConfigError, match="draws random numbers and has no generator"):
        SGD(0.1, transforms=[AddNoise(0.1)]).step(THETA.copy(), G)
    opt = SGD(0.1, transforms=[AddNoise(0.1)])
    Trainer(Network([2, 1], seed=0), opt, mode="batch", seed=0, engine="numpy").fit([[0.0, 1.0]], [[1.0]], 1)
    assert opt.rng is not None and opt.t == 1


def test_the_compiled_engine_leaves_other_chains_to_numpy():
    # weight decay and noise (the options' chain) are compiled (tests/test_engine_rules.py);
    # a transformation of the user's own is not
    pytest.importorskip("numba")
    net = Network([4, 3], "sigmoid", seed=0)
    tr = Trainer(net, SGD(0.1, transforms=[Scale(1.0)]), mode="stochastic", seed=0)
    assert numba_engine.NumbaEngine().unsupported(tr) == (
        "the gradient transforms [Scale] have no compiled form (weight decay, then gradient noise, "
        "each at most once, do)")
