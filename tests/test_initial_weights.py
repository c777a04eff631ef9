"""Random initial weights by default; a seed makes them reproducible; zeros only when asked."""

import numpy as np

import deltaprop as dp


def test_no_seed_draws_fresh_random_weights():
    a, b = dp.Network([2, 2, 1]), dp.Network([2, 2, 1])
    assert np.any(a.layers[0].W != 0)
    # Two fresh Generators: equal draws of 6 uniform weights would be a 1-in-2^300 event.
    assert not np.array_equal(a.flat, b.flat)


def test_a_seed_reproduces_the_weights():
    np.testing.assert_array_equal(dp.Network([3, 4, 2], seed=7).flat, dp.Network([3, 4, 2], seed=7).flat)


def test_zeros_only_when_asked_for():
    net = dp.Network([2, 2, 1], init="zeros")
    assert not net.flat.any()
    net.reset_parameters(0)  # keeps its scheme
    assert not net.flat.any()


def test_sklearn_scheme_draws_weights_then_biases_within_scikit_learns_bound():
    """init="sklearn": per layer W then b from U(-r, r), r = sqrt(f / (n_in + n_out)), f = 2 for
    logistic (sigmoid) hidden units and 6 otherwise; the output layer takes the last hidden
    layer's f, as scikit-learn's one ``activation`` does."""
    for act, f in (("sigmoid", 2.0), ("relu", 6.0), ("tanh", 6.0)):
        net = dp.Network([3, 4, 5, 2], activation=act, output_activation="softmax", loss="cross_entropy",
                         dtype="float64", init="sklearn", seed=11)
        rng = np.random.default_rng(11)
        for layer in net.layers:
            r = np.sqrt(f / (layer.n_in + layer.n_out))
            np.testing.assert_array_equal(layer.W, rng.uniform(-r, r, layer.W.shape))
            np.testing.assert_array_equal(layer.b, rng.uniform(-r, r, layer.b.shape))
            assert np.all(layer.b != 0)


def test_sklearn_scheme_from_a_config_and_bounded_by_its_radius():
    from deltaprop.config import TrainConfig

    assert TrainConfig(init="sklearn").init == "sklearn"
    net = dp.Network([50, 200, 10], activation="sigmoid", init="sklearn", seed=0, dtype="float64")
    r = np.sqrt(2.0 / 250)
    W = net.layers[0].W
    # 10,000 draws of U(-r, r): every one inside, the extremes within 0.1% of r
    assert np.abs(W).max() <= r and np.abs(W).max() > 0.999 * r
