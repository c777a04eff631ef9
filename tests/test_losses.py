import numpy as np
import pytest

from deltaprop.activations import Sigmoid, Softmax
from deltaprop.errors import ConfigError
from deltaprop.losses import LOSSES, get_loss
from deltaprop.network import Network


def test_half_sse_is_the_worked_example_total_error():
    # Mazur: outputs 0.75136507, 0.772928465 against targets 0.01, 0.99 -> E_total 0.298371109
    a = np.array([[0.75136507, 0.772928465]])
    t = np.array([[0.01, 0.99]])
    assert get_loss("half_sse").value(a, t)[0] == pytest.approx(0.298371109, abs=1e-9)


def test_mse_averages_over_outputs_half_sse_sums():
    a, t = np.array([[1.0, 3.0]]), np.zeros((1, 2))
    assert get_loss("mse").value(a, t)[0] == pytest.approx(5.0)
    assert get_loss("half_sse").value(a, t)[0] == pytest.approx(5.0)
    np.testing.assert_allclose(get_loss("mse").grad(a, t), [[1.0, 3.0]])


@pytest.mark.parametrize("loss,act", [("cross_entropy", Softmax()), ("binary_cross_entropy", Sigmoid())])
def test_probability_of_exactly_one_stays_finite(loss, act):
    z = np.array([[1e4, -1e4], [-1e4, 1e4]])
    a = act.forward(z)
    assert np.any(a == 1.0)
    t = np.array([[0.0, 1.0], [0.0, 1.0]])
    L = get_loss(loss)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        fused = L.value(a, t, z=z, activation=act)
        unfused = L.value(a, t)
        grad = L.grad(a, t)
    assert np.all(np.isfinite(fused)) and np.all(np.isfinite(unfused)) and np.all(np.isfinite(grad))
    # the fused value is exact: a logit margin of 2e4 costs 2e4 (CE) / 1e4 per unit (BCE)
    assert fused[0] == pytest.approx(2e4 if loss == "cross_entropy" else 2e4)
    assert fused[1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("loss,act", [("cross_entropy", Softmax()), ("binary_cross_entropy", Sigmoid())])
def test_fused_delta_equals_chain_rule_through_activation(loss, act, rng):
    z = rng.normal(size=(5, 3))
    a = act.forward(z)
    t = np.eye(3)[rng.integers(0, 3, 5)] if loss == "cross_entropy" else rng.integers(0, 2, (5, 3)).astype(float)
    L = get_loss(loss)
    fused = L.delta(z, a, t, act)
    generic = act.backward(z, a, L.grad(a, t))
    np.testing.assert_allclose(fused, a - t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fused, generic, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_probability_losses_refuse_unbounded_outputs(loss):
    with pytest.raises(ConfigError, match="needs outputs in \\(0, 1\\).*'tanh'"):
        Network([2, 3, 2], "tanh", loss=loss)
    Network([2, 3, 2], "tanh", output_activation="sigmoid", loss=loss)  # fine


def test_unknown_loss():
    with pytest.raises(ConfigError, match="unknown loss 'hinge'; valid: binary_cross_entropy, cross_entropy"):
        get_loss("hinge")
    assert set(LOSSES) == {"half_sse", "mse", "binary_cross_entropy", "cross_entropy"}
