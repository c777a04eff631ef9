import numpy as np
import pytest
from conftest import central_differences

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
    assert set(LOSSES) == {"half_sse", "mse", "binary_cross_entropy", "cross_entropy", "huber"}


def test_huber_by_hand_on_two_outputs():
    a, t = np.array([[1.0, 3.0]]), np.array([[0.5, 0.0]])  # residuals 0.5 and 3
    # delta 1: 0.5 * 0.5^2 + 1 * (3 - 0.5) = 0.125 + 2.5
    assert get_loss("huber").value(a, t)[0] == pytest.approx(2.625, abs=1e-15)
    np.testing.assert_array_equal(get_loss("huber").grad(a, t), [[0.5, 1.0]])
    # delta 0.5: the first residual sits exactly on the threshold, 0.125; then 0.5 * (3 - 0.25)
    h = get_loss({"name": "huber", "delta": 0.5})
    assert h.value(a, t)[0] == pytest.approx(0.125 + 1.375, abs=1e-15)
    np.testing.assert_array_equal(h.grad(a, t), [[0.5, 0.5]])
    # within the threshold it is half_sse itself, not mse (no division by the outputs)
    small = np.array([[0.7, 0.9]])  # residuals 0.2 and 0.9
    assert get_loss("huber").value(small, t)[0] == pytest.approx(get_loss("half_sse").value(small, t)[0], rel=1e-15)
    np.testing.assert_array_equal(get_loss("huber").grad(small, t), get_loss("half_sse").grad(small, t))


def test_huber_is_continuous_at_the_threshold():
    d = 0.75
    h = get_loss({"name": "huber", "delta": d})
    t = np.zeros((1, 1))
    for sign in (1.0, -1.0):
        at = h.value(np.array([[sign * d]]), t)[0]
        assert at == 0.5 * d * d
        for eps in (1e-9, -1e-9):  # both branches meet the same value and slope
            assert h.value(np.array([[sign * (d + eps)]]), t)[0] == pytest.approx(at, abs=1e-8)
        assert h.grad(np.array([[sign * d]]), t)[0, 0] == sign * d
        assert h.grad(np.array([[sign * 5 * d]]), t)[0, 0] == sign * d


def _loss_case(name, rng):
    """Outputs and targets in the range each loss takes; huber's include residuals of exactly
    +-delta and both sides of it."""
    a = rng.uniform(0.2, 0.8, (4, 3))
    if name == "cross_entropy":
        return a, np.eye(3)[rng.integers(0, 3, 4)]
    if name == "binary_cross_entropy":
        return a, rng.integers(0, 2, (4, 3)).astype(float)
    t = a + rng.normal(scale=2.0, size=a.shape)
    if name == "huber":
        t[0, 0], t[1, 1] = a[0, 0] - 1.0, a[1, 1] + 1.0  # r = +delta, -delta
    return a, t


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_grad_is_the_derivative_of_value(name, rng):
    L = get_loss(name)
    a, t = _loss_case(name, rng)
    num = central_differences(lambda x: L.value(x, t).sum(), a, h=1e-6)
    # huber's second derivative jumps at +-delta: central differences there are off by h/4
    np.testing.assert_allclose(L.grad(a, t), num, rtol=1e-6, atol=1e-6)
    if name == "huber":
        assert L.grad(a, t)[0, 0] == 1.0 and L.grad(a, t)[1, 1] == -1.0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_unknown_key_is_rejected_for_every_loss(name):
    valid = ", ".join(("name",) + LOSSES[name].params)
    with pytest.raises(ConfigError, match=f"loss '{name}' takes no key 'typo'; valid keys: {valid}$"):
        get_loss({"name": name, "typo": 1})


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_config_round_trip_for_every_loss(name):
    loss = get_loss(name)
    cfg = loss.to_config()
    assert cfg["name"] == name and set(cfg) == {"name", *LOSSES[name].params}
    again = get_loss(cfg)
    assert type(again) is type(loss) and again.to_config() == cfg
    assert get_loss(loss) is loss


def test_huber_config_keeps_delta_and_checks_it():
    h = get_loss({"name": "huber", "delta": 0.25})
    assert h.to_config() == {"name": "huber", "delta": 0.25} and repr(h) == "Huber(delta=0.25)"
    assert get_loss("huber").to_config() == {"name": "huber", "delta": 1.0}  # the default is saved too
    assert get_loss({"name": "huber", "delta": 2}).threshold == 2.0
    for bad in (-1, 0, 0.0, float("nan"), float("inf"), True, "1", None):
        with pytest.raises(ConfigError, match=f"huber delta must be a finite number > 0, got {bad!r}$"):
            get_loss({"name": "huber", "delta": bad})


def test_a_bad_name_in_a_config_dict_lists_the_losses():
    for spec in ({"delta": 1.0}, {"name": "hinge"}, {"name": ["mse"]}):
        with pytest.raises(ConfigError, match="unknown loss .*; valid: binary_cross_entropy"):
            get_loss(spec)
