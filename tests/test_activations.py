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


def test_gelu_is_the_tanh_form():
    # PyTorch's nn.GELU(approximate="tanh"), written out by hand per value:
    # 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))); not the erf form (its default)
    import math

    z = np.array([[-6.0, -3.0, -1.0, -0.5, 0.0, 0.3, 1.0, 2.0, 5.0]])
    hand = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))) for v in z[0]]
    erf_form = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in z[0]]
    a = get_activation("gelu").forward(z)
    np.testing.assert_allclose(a[0], hand, rtol=1e-15, atol=1e-16)
    assert abs(a[0, 6] - erf_form[6]) > 1e-4  # at z = 1: 0.841192 (tanh) vs 0.841345 (erf)
    assert np.max(np.abs(a[0] - erf_form)) < 5e-4  # the documented bound between the two
    # its derivative by hand: 0.5 (1 + t) + 0.5 z (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 z^2)
    t = np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3))
    slope = 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * z ** 2)
    np.testing.assert_allclose(get_activation("gelu").derivative(z, a), slope, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_the_two_branch_logistic_to_the_bit_and_leaves_z_alone(dtype, rng):
    # 1/(1+e) for z >= 0 and e/(1+e) below, e = exp(-|z|), each rounded in z's dtype: the
    # in-place form must give these very numbers (the compiled kernels are checked against them)
    z = np.concatenate([rng.standard_normal((50, 7)) * 30, [[0.0, -0.0, 1e-30, -1e-30, 88.0, -104.0, 1e4]]])
    z = z.astype(dtype)
    before = z.copy()
    e = np.exp(-np.abs(z))
    expected = np.where(z >= 0, dtype(1) / (dtype(1) + e), e / (dtype(1) + e))
    a = Sigmoid().forward(z)
    assert a.dtype == dtype and np.array_equal(a, expected)
    assert np.array_equal(z, before)
    assert np.isnan(Sigmoid().forward(np.array([[np.nan]], dtype))).all()


def test_sigmoid_of_a_scalar_or_0d_array():
    for z in (np.array(0.5), np.float64(0.5), np.float32(-3.0)):
        a = Sigmoid().forward(z)
        assert a.shape == () and a.dtype == np.asarray(z).dtype
        z = np.asarray(z)
        e = np.exp(-np.abs(z))
        assert a == (z.dtype.type(1) / (1 + e) if z >= 0 else e / (1 + e))
