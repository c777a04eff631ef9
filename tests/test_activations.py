import numpy as np
import pytest
from conftest import central_differences

from deltaprop.activations import ACTIVATIONS, Sigmoid, Softmax, get_activation
from deltaprop.errors import ConfigError

EXTREME = np.array([[-1e4, -800.0, -50.0, -1.0, 0.0, 1.0, 50.0, 800.0, 1e4]])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_preactivations_are_finite_and_silent(name, dtype):
    act = get_activation(name)
    z = EXTREME.astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # any overflow/invalid warning becomes an error
        a = act.forward(z)
        g = act.backward(z, a, np.ones_like(z))
    assert a.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g))


def test_known_values():
    z = np.array([[0.0, 1e4, -1e4]])
    np.testing.assert_allclose(get_activation("sigmoid").forward(z), [[0.5, 1.0, 0.0]])
    np.testing.assert_allclose(get_activation("softplus").forward(z), [[np.log(2.0), 1e4, 0.0]])
    s = Softmax().forward(np.array([[1e4, 1e4, -1e4]]))
    np.testing.assert_allclose(s, [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(get_activation({"name": "leaky_relu", "alpha": 0.1}).forward(np.array([[-2.0, 3.0]])),
                               [[-0.2, 3.0]])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_central_differences(name, rng):
    act = get_activation(name)
    z = rng.normal(size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep clear of the ReLU kink
    g = rng.normal(size=z.shape)
    analytic = act.backward(z, act.forward(z), g)
    numeric = central_differences(lambda x: (act.forward(x) * g).sum(), z, h=1e-6)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_flat_spot_adds_to_derivative_only_when_asked():
    z = np.array([[0.0, 30.0]])
    plain, fixed = Sigmoid(), Sigmoid(flat_spot=0.1)
    a = plain.forward(z)
    np.testing.assert_allclose(fixed.derivative(z, a) - plain.derivative(z, a), 0.1)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown activation 'sigmod'.*sigmoid"):
        get_activation("sigmod")
