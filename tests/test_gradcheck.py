"""Level-1 gradient tests: backprop against central differences in float64."""

import itertools
import zlib

import numpy as np
import pytest

from deltaprop import Dense, Network, gradcheck
from deltaprop.activations import ACTIVATIONS
from deltaprop.errors import ConfigError
from deltaprop.losses import LOSSES

HIDDEN = sorted(n for n, cls in ACTIVATIONS.items() if cls.elementwise)
OUTPUT = sorted(ACTIVATIONS)


def _targets(loss, rng, n, k):
    if loss == "cross_entropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def _valid_pairs():
    for hidden, output, loss in itertools.product(HIDDEN, OUTPUT, sorted(LOSSES)):
        try:
            Network([2, 2], output, loss=loss)
        except ConfigError:
            continue
        yield hidden, output, loss


PAIRS = list(_valid_pairs())


def test_every_activation_and_loss_appears():
    assert {h for h, _, _ in PAIRS} == set(HIDDEN)
    assert {o for _, o, _ in PAIRS} == set(OUTPUT)
    assert {l for _, _, l in PAIRS} == set(LOSSES)


def _random_case(hidden, output, loss, rng):
    """A 3-layer net (two hidden layers) with random weights and biases, and random data.

    Redrawn while a pre-activation lies within 0.02 of a ReLU kink (finite differences are
    invalid across it) or the gradient is degenerate (e.g. every ReLU output unit dead).
    """
    while True:
        net = Network([4, 5, 3, 3], hidden, output, loss, init="uniform:1", seed=rng)
        X = rng.normal(size=(6, 4))
        T = _targets(loss, rng, 6, 3)
        _, g = net.loss_and_gradient(X, T)
        if min(np.abs(layer.z).min() for layer in net.layers) > 0.02 and np.abs(g).max() > 1e-3:
            return net, X, T


@pytest.mark.parametrize("hidden,output,loss", PAIRS)
def test_backprop_matches_finite_differences(hidden, output, loss):
    rng = np.random.default_rng(zlib.crc32(f"{hidden}/{output}/{loss}".encode()))
    net, X, T = _random_case(hidden, output, loss, rng)
    res = gradcheck(net, X, T)
    assert res.near_kink == 0
    assert res.max_rel_error < 1e-6, res.summary()
    assert res.max_abs_error < 1e-9, res.summary()
    # reentrant: a second backward pass gives the same gradient
    assert np.array_equal(gradcheck(net, X, T, indices=res.indices).analytic, res.analytic)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_depths_two_to_four_layers(depth, rng):
    sizes = [3] + [4] * (depth - 1) + [2]
    net = Network(sizes, "tanh", "sigmoid", "binary_cross_entropy", init="uniform:1", seed=rng)
    assert len(net.layers) == depth
    res = gradcheck(net, rng.normal(size=(5, 3)), rng.integers(0, 2, (5, 2)))
    assert res.max_rel_error < 1e-6, res.summary()


def test_frozen_biases_are_checked_and_not_trainable(rng):
    net = Network([3, 4, 2], "sigmoid", loss="half_sse", train_bias=False, init="uniform:1", seed=rng)
    assert net.n_trainable == 3 * 4 + 4 * 2 and net.n_params == net.n_trainable + 4 + 2
    res = gradcheck(net, rng.normal(size=(4, 3)), rng.normal(size=(4, 2)))
    assert res.max_rel_error < 1e-6, res.summary()


class _BrokenDense(Dense):
    """A layer whose backward pass forgets to transpose the input: a classic bug."""

    def backward(self, da=None, *, delta=None, accumulate=False, input_grad=True):
        dX = super().backward(da, delta=delta, accumulate=accumulate, input_grad=input_grad)
        self.dW[...] = (self.X.T @ self.delta)[::-1]  # rows in the wrong order
        return dX


def test_gradcheck_flags_a_broken_backward_pass(rng):
    layers = [_BrokenDense(3, 4, "tanh"), Dense(4, 2, "sigmoid")]
    net = Network.from_layers(layers, "half_sse")
    net.reset_parameters(rng, "uniform:1")
    res = gradcheck(net, rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    assert res.max_rel_error > 1e-2
    assert not res.passed()
    assert res.worst.startswith("W1[")


def test_batch_gradient_is_mean_of_per_sample_gradients(rng):
    net = Network([3, 6, 4], "relu", "softmax", "cross_entropy", seed=rng)
    X = rng.normal(size=(7, 3))
    T = np.eye(4)[rng.integers(0, 4, 7)]
    _, g = net.loss_and_gradient(X, T)
    batch = g.copy()
    per_sample = np.mean([net.loss_and_gradient(X[i:i + 1], T[i:i + 1])[1].copy() for i in range(7)], axis=0)
    np.testing.assert_allclose(batch, per_sample, rtol=1e-12, atol=1e-15)
    # and chunked accumulation gives the same gradient as one pass
    _, g2 = net.loss_and_gradient(X, T, chunk_size=3)
    np.testing.assert_allclose(g2, batch, rtol=1e-12, atol=1e-15)


def test_sampled_gradcheck_reports_how_many(rng):
    net = Network([10, 20, 3], "tanh", "identity", "mse", seed=rng)
    res = gradcheck(net, rng.normal(size=(4, 10)), rng.normal(size=(4, 3)), max_params=25)
    assert len(res.indices) == 25 and res.n_params == net.n_params
    assert "25 of 283 parameters" in res.summary()


def test_a_gradient_below_what_differences_resolve_is_said_to_be(rng):
    # at a minimum the loss and every gradient entry are near 0: finite differences are round-off
    # there, relative errors of order 1 mean nothing, and the summary says so (not "backprop is
    # wrong"); at the starting weights the same net is checked as usual
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    T = np.array([[0], [1], [1], [0]], float)
    net = Network([2, 2, 1], "identity", "identity", "mse", seed=0)
    fresh = gradcheck(net, X, T)
    assert fresh.passed() and not fresh.unresolved and "round-off" not in fresh.summary()
    # the least-squares fit of a linear net: the gradient is zero up to rounding
    A = np.column_stack([X, np.ones(4)])
    coef = np.linalg.lstsq(A, T, rcond=None)[0]
    net.set_weights([(np.eye(2), np.zeros(2)), (coef[:2], coef[2])])
    res = gradcheck(net, X, T)
    assert res.unresolved and np.abs(res.analytic).max() < res.resolution
    assert "where finite differences are mostly round-off" in res.summary()
    # a broken backward pass is never excused: its gradient is far above the resolution
    layers = [_BrokenDense(3, 4, "tanh"), Dense(4, 2, "sigmoid")]
    broken = Network.from_layers(layers, "half_sse")
    broken.reset_parameters(rng, "uniform:1")
    bad = gradcheck(broken, rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    assert not bad.unresolved and not bad.passed()
