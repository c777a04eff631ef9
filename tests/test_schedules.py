"""Learning-rate schedules: the rates of the first epochs by hand, and the bold driver undoing a
worse epoch. Trainers use the NumPy engine (the reference)."""

import math

import numpy as np
import pytest

from deltaprop import Network, Trainer
from deltaprop.errors import ConfigError
from deltaprop.optimizers import SGD
from deltaprop.schedules import (SCHEDULES, BoldDriver, ExponentialDecay, InverseScaling, StepDecay,
                                 get_schedule)
from deltaprop.training import Callback

X, T = [[1.0], [2.0]], [[1.0], [0.0]]


def _linear_net():
    net = Network([1, 1], "identity", loss="half_sse")
    net.set_weights([([[0.5]], [0.0])])
    return net


def _rates(schedule, lr=0.8, epochs=5, **kw):
    trainer = Trainer(_linear_net(), SGD(lr=lr), mode="batch", callbacks=[schedule], engine="numpy", **kw)
    return trainer, trainer.fit(X, T, epochs).lr


@pytest.mark.parametrize("schedule,expected", [
    # 0.8 * 0.5^floor(e/2), e = 0, 1, 2, 3, 4
    (StepDecay(step_size=2, gamma=0.5), [0.8, 0.8, 0.4, 0.4, 0.2]),
    # 0.8 * 0.9^e
    (ExponentialDecay(gamma=0.9), [0.8, 0.72, 0.648, 0.5832, 0.52488]),
    # 0.8 / (1 + e)^0.5
    (InverseScaling(power=0.5), [0.8, 0.8 / math.sqrt(2), 0.8 / math.sqrt(3), 0.4, 0.8 / math.sqrt(5)]),
    # 0.8 / (1 + 0.5 e)^1
    (InverseScaling(power=1.0, scale=0.5), [0.8, 0.8 / 1.5, 0.4, 0.8 / 2.5, 0.8 / 3.0]),
    # lr0 given explicitly overrides the optimizer's rate: 0.2 * 0.5^e
    (ExponentialDecay(gamma=0.5, lr0=0.2), [0.2, 0.1, 0.05, 0.025, 0.0125]),
])
def test_rates_of_the_first_epochs(schedule, expected):
    _, lrs = _rates(schedule)
    np.testing.assert_allclose(lrs, expected, rtol=1e-15, atol=0)


def test_the_rate_is_the_one_the_epoch_used():
    # 1-1 identity net (as tests/test_training.py): gradient (0.75, 0.25) at w = 0.5, b = 0, so the first
    # epoch at lr 0.8 gives w = 0.5 - 0.6 = -0.1, b = -0.2, whatever the schedule does afterwards.
    trainer, lrs = _rates(StepDecay(step_size=1, gamma=0.5), epochs=1)
    assert lrs == [0.8]
    assert trainer.network.layers[0].W[0, 0] == pytest.approx(-0.1, abs=1e-15)
    assert trainer.network.layers[0].b[0] == pytest.approx(-0.2, abs=1e-15)


def test_a_schedule_continues_across_fit_calls_and_keeps_an_outside_factor():
    sched = ExponentialDecay(gamma=0.5)
    trainer, _ = _rates(sched, lr=1.0, epochs=2)  # 1, 0.5
    trainer.optimizer.lr *= 0.1  # an outside change (as the divergence guard's halving) is kept as a factor
    h = trainer.fit(X, T, 2)
    np.testing.assert_allclose(h.lr, [1.0, 0.5, 0.025, 0.0125], rtol=1e-15)
    sched.restart(trainer)  # back to lr0 = 1 at the next epoch, without the outside factor
    np.testing.assert_allclose(trainer.fit(X, T, 2).lr[-2:], [1.0, 0.5], rtol=1e-15)


def test_a_schedule_resumes_from_its_state():
    a, _ = _rates(StepDecay(3, 0.5), epochs=7)
    b, _ = _rates(StepDecay(3, 0.5), epochs=4)
    c = Trainer(_linear_net(), SGD(lr=0.8), mode="batch", callbacks=[StepDecay(3, 0.5)], engine="numpy")
    c.load_state_dict(b.state_dict())
    c.fit(X, T, 3)
    assert c.history.lr == a.history.lr
    np.testing.assert_array_equal(c.network.flat, a.network.flat)


class Recorder(Callback):
    """Copies the weights at each epoch end, before the callbacks after it act."""

    def __init__(self):
        self.flat = []

    def on_epoch_end(self, trainer, logs):
        self.flat.append(trainer.network.flat.copy())


def test_bold_driver_undoes_a_worse_epoch():
    # lr 0.7 is past the stable limit 2/3.43 of this problem (the larger eigenvalue of the Hessian
    # mean [[x^2, x], [x, 1]] = [[2.5, 1.5], [1.5, 1]] is 3.43), so the second epoch makes things worse.
    # Epoch 1 (the reference): gradient (0.75, 0.25) -> w = 0.5 - 0.525 = -0.025, b = -0.175;
    #   outputs -0.2, -0.225 -> loss mean(0.5 * 1.2^2, 0.5 * 0.225^2) = mean(0.72, 0.0253125) = 0.37265625
    # Epoch 2: gradient mean(-1.2 * 1, -0.225 * 2) = -0.825, mean(-1.2, -0.225) = -0.7125
    #   -> w = 0.5525, b = 0.32375; outputs 0.87625, 1.42875 -> loss 0.51416... > 0.3727: undone,
    #   the weights go back to (-0.025, -0.175) and lr to 0.35.
    # Epoch 3 at lr 0.35 is better -> accepted, lr grows by 1.1 to 0.385.
    rec, bold = Recorder(), BoldDriver(increase=1.1, decrease=0.5)
    trainer = Trainer(_linear_net(), SGD(lr=0.7), mode="batch", callbacks=[rec, bold], engine="numpy")
    h = trainer.fit(X, T, 3)
    assert h.loss[0] == pytest.approx(0.37265625, abs=1e-15)
    np.testing.assert_allclose(rec.flat[0], [-0.025, -0.175], rtol=0, atol=1e-15)
    assert h.loss[1] == pytest.approx(0.5 * (0.12375**2 + 1.42875**2) / 2, abs=1e-14)
    np.testing.assert_allclose(rec.flat[1], [0.5525, 0.32375], rtol=0, atol=1e-15)  # what epoch 2 did
    assert [e["event"] for e in h.events] == ["bold_driver_undo"] and h.events[0]["epoch"] == 2
    assert "cut to 0.35" in h.events[0]["detail"]
    assert h.lr == [0.7, 0.7, 0.35]
    assert trainer.optimizer.lr == pytest.approx(0.385, abs=1e-15)
    # epoch 3 started from the weights epoch 1 ended with (the undo), at lr 0.35
    np.testing.assert_allclose(rec.flat[2], rec.flat[0] - 0.35 * np.array([-0.825, -0.7125]), rtol=0, atol=1e-15)
    assert h.loss[2] < h.loss[0]


def test_bold_driver_clears_momentum_when_it_undoes():
    class StateAtEnd(Callback):
        def __init__(self):
            self.states = []

        def on_epoch_end(self, trainer, logs):
            self.states.append(dict(trainer.optimizer.state))

    probe = StateAtEnd()
    # lr 0.9 with momentum 0.5: epoch 2 is worse (checked: loss 0.573 -> 0.838)
    trainer = Trainer(_linear_net(), SGD(lr=0.9, momentum=0.5), mode="batch", callbacks=[BoldDriver(), probe],
                      engine="numpy")
    h = trainer.fit(X, T, 2)
    assert [(e["epoch"], e["event"]) for e in h.events] == [(2, "bold_driver_undo")]
    assert set(probe.states[0]) == {"velocity"}
    assert probe.states[1] == {}  # Vogl et al.: the momentum is set to zero


@pytest.mark.parametrize("make,match", [
    (lambda: StepDecay(0), "step_size must be a positive integer"),
    (lambda: StepDecay(2, gamma=1.5), "gamma must be in \\(0.0, 1.0\\]"),
    (lambda: ExponentialDecay(0.0), "gamma must be in \\(0.0, 1.0\\]"),
    (lambda: InverseScaling(power=-1), "power must be in \\(0.0, inf\\)"),
    (lambda: ExponentialDecay(0.9, lr0=0), "lr0 must be a positive number"),
    (lambda: BoldDriver(increase=0.9), "increase must be a number >= 1"),
    (lambda: BoldDriver(decrease=1.0), "decrease must be in \\(0.0, 1.0\\)"),
    (lambda: get_schedule("cosine"), "unknown schedule 'cosine'; valid: bold_driver, exponential, invscaling, step"),
    (lambda: get_schedule("step", gamma=0.5), "schedule 'step': .*step_size"),
])
def test_bad_settings(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_registry():
    assert set(SCHEDULES) == {"step", "exponential", "invscaling", "bold_driver"}
    assert isinstance(get_schedule("step", step_size=3), StepDecay)
