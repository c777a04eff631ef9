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
