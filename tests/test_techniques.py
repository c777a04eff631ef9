"""Escaping plateaus and poor basins: the flat-spot fix, stall detection with its remedies, and
random restarts. Trainers use the NumPy engine (the reference)."""

import json
import math

import numpy as np
import pytest

import deltaprop as dp

from deltaprop import Network, Trainer, load_model, save_model
from deltaprop.activations import Sigmoid
from deltaprop.data import load_builtin
from deltaprop.errors import ConfigError
from deltaprop.optimizers import SGD, IRpropMinus
from deltaprop.schedules import ExponentialDecay
from deltaprop.techniques import StallDetector, train_with_restarts, use_flat_spot
from deltaprop.training import Callback

XOR = load_builtin("xor")


def _saturated_xor_net():
    """2-2-1 sigmoid net whose output unit is driven to 0 for every input (bias -12, no weights
    from the hidden units): sigma'(z) = 6e-6 there, so half-SSE gradient descent barely moves."""
    net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=8)
    net.layers[1].W[...] = 0.0
    net.layers[1].b[...] = -12.0
    return net


class Recorder(Callback):
    def __init__(self):
        self.flat, self.state, self.lr = [], [], []

    def on_epoch_end(self, trainer, logs):
        self.flat.append(trainer.network.flat.copy())
        self.state.append(dict(trainer.optimizer.state))
        self.lr.append(trainer.optimizer.lr)


# --------------------------------------------------------------------------- flat spot
def test_flat_spot_adds_to_the_sigmoid_derivative_of_every_sigmoid_layer():
    net = Network([2, 3, 3, 1], "sigmoid", "sigmoid", seed=0)
    assert use_flat_spot(net) == 3
    z = np.array([[-20.0, 0.0, 3.0]])
    a = Sigmoid().forward(z)
    for layer in net.layers[:2]:
        # sigma(1 - sigma) + 0.1: 0.1 + ~2e-9 at z = -20, 0.35 at z = 0
        np.testing.assert_allclose(layer.activation.derivative(z, a), a * (1 - a) + 0.1, rtol=0, atol=1e-16)
    assert use_flat_spot(net, 0.0) == 3  # off again: the exact derivative
    np.testing.assert_array_equal(net.layers[0].activation.derivative(z, a), a * (1 - a))
    tanh_net = Network([2, 3, 1], "tanh", "sigmoid", seed=0)
    assert use_flat_spot(tanh_net) == 1  # only the sigmoid output layer
    with pytest.raises(ConfigError, match="no sigmoid layer"):
        use_flat_spot(Network([2, 3, 1], "tanh", "identity", seed=0))
    with pytest.raises(ConfigError, match="flat spot must be a number >= 0"):
        use_flat_spot(net, -0.1)


def test_flat_spot_is_kept_in_model_files(tmp_path):
    net = Network([2, 2, 1], "sigmoid", seed=0)
    use_flat_spot(net, 0.1)
    save_model(tmp_path / "m.npz", net)
    loaded, _ = load_model(tmp_path / "m.npz")
    assert [layer.activation.flat_spot for layer in loaded.layers] == [0.1, 0.1]


def test_flat_spot_lets_a_saturated_output_unit_learn():
    # Without the fix, sigma' ~ 6e-6 at the output: 300 epochs of batch gradient descent leave the
    # loss at 0.25 (all four outputs ~0). With it the output delta keeps 0.1 (t - o) and the net learns.
    losses = {}
    for fix in (0.0, 0.1):
        net = _saturated_xor_net()
        if fix:
            use_flat_spot(net, fix)
        h = Trainer(net, SGD(lr=2.0), mode="batch", engine="numpy").fit(XOR.X, XOR.T, 300)
        losses[fix] = h.loss
    assert losses[0.0][-1] > 0.2499  # stuck: it moved by less than 1e-5
    assert losses[0.1][-1] < 0.05


# --------------------------------------------------------------------------- stall detection
def test_stall_fires_a_restart_and_records_it():
    # The saturated start barely moves: its loss never improves by 1% on the epoch-1 value, so after
    # 20 epochs without improvement (epochs 2..21) the remedy fires at the end of epoch 21.
    rec = Recorder()
    detector = StallDetector(patience=20, min_improvement=0.01, remedy="restart", seed=0)
    trainer = Trainer(_saturated_xor_net(), SGD(lr=2.0, momentum=0.5), mode="batch",
                      callbacks=[detector, rec], engine="numpy")
    h = trainer.fit(XOR.X, XOR.T, 30)
    stalls = [e for e in h.events if e["event"] == "stall"]
    assert [(e["epoch"], e["remedy"]) for e in stalls] == [(21, "restart")]
    assert "had not improved by 0.01 (relative)" in stalls[0]["detail"]
    assert "restarted from new random weights" in stalls[0]["detail"]
    # The new weights are the network's init scheme drawn from the detector's generator (seed 0).
    fresh = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=np.random.default_rng(0))
    np.testing.assert_array_equal(rec.flat[20], fresh.flat)
    assert rec.state[19] and rec.state[20] == {}  # momentum cleared
    assert h.loss[21] < 0.2  # and training goes on from there (0.25 before)


def test_stall_jitter_adds_the_detectors_noise():
    rec_before, rec_after = Recorder(), Recorder()
    detector = StallDetector(patience=20, remedy="jitter", jitter=0.5, seed=3)
    Trainer(_saturated_xor_net(), SGD(lr=2.0), mode="batch", callbacks=[rec_before, detector, rec_after],
            engine="numpy").fit(XOR.X, XOR.T, 21)
    noise = 0.5 * np.random.default_rng(3).standard_normal(9)  # 9 trainable parameters
    np.testing.assert_allclose(rec_after.flat[20] - rec_before.flat[20], noise, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(rec_after.flat[19], rec_before.flat[19])  # nothing before the stall


def test_stall_reset_lr_restarts_the_schedule():
    # lr 0.5 halved every epoch: 0.5, 0.25, ... soon too small to make progress -> a stall; the remedy
    # puts the rate back to 0.5 and the schedule starts again from its epoch 0.
    before, rec = Recorder(), Recorder()
    detector = StallDetector(patience=10, remedy="reset_lr")
    net = Network([2, 3, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    h = Trainer(net, SGD(lr=0.5, momentum=0.9), mode="batch", callbacks=[ExponentialDecay(0.5), before, detector, rec],
                engine="numpy").fit(XOR.X, XOR.T, 20)
    stalls = [e for e in h.events if e["event"] == "stall"]
    assert len(stalls) == 1 and stalls[0]["remedy"] == "reset_lr"
    e = stalls[0]["epoch"]
    np.testing.assert_allclose(h.lr[:e], 0.5 * 0.5 ** np.arange(e), rtol=1e-15)
    assert h.lr[e:e + 3] == [0.5, 0.25, 0.125]
    np.testing.assert_array_equal(rec.flat[e - 1], before.flat[e - 1])  # the weights are kept
    assert before.state[e - 1] and rec.state[e - 1] == {}  # the momentum is cleared
    assert rec.lr[e - 1] == 0.5


def test_runs_that_do_not_stall_record_nothing():
    # Adam on 2-3-1 XOR keeps improving by more than 1% per 25 epochs for 300 epochs.
    net = Network([2, 3, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    h = Trainer(net, "adam", lr=0.05, mode="batch", callbacks=[StallDetector(patience=25)],
                engine="numpy").fit(XOR.X, XOR.T, 300)
    assert h.events == [] and h.loss[-1] < 0.01
    # iRprop- solves 2-2-1 XOR from seed 8; once the loss is below target the run is solved, not stalled
    # (without a target, the loss sinks to ~1e-34 and then stops improving, which is a stall).
    net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=8)
    h = Trainer(net, IRpropMinus(), mode="batch", callbacks=[StallDetector(patience=25, target=1e-4)],
                engine="numpy").fit(XOR.X, XOR.T, 300)
    assert h.events == [] and h.loss[-1] < 1e-4


def test_restarts_escape_the_plateaus_of_2_2_1_xor():
    # iRprop- from seed 4 ends on the plateau where two patterns sit at 0.5 (loss 0.0625) and stays
    # there; with stall detection it restarts and finds a solution.
    def run(callbacks):
        net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=4)
        h = Trainer(net, IRpropMinus(), mode="batch", callbacks=callbacks, engine="numpy").fit(XOR.X, XOR.T, 600)
        return net, h

    net, h = run([])
    assert h.loss[-1] == pytest.approx(0.0625, abs=1e-3)
    net, h = run([StallDetector(patience=30, target=1e-3, seed=0)])
    assert any(e["event"] == "stall" for e in h.events)
    assert np.all(np.abs(net.predict(XOR.X) - XOR.T) < 0.4)


def test_max_remedies_limits_firing():
    # Every restart of the saturated SGD set-up stalls again on the 0.125 plateau of XOR.
    detector = StallDetector(patience=10, remedy="restart", max_remedies=2, seed=1)
    h = Trainer(_saturated_xor_net(), SGD(lr=2.0), mode="batch", callbacks=[detector],
                engine="numpy").fit(XOR.X, XOR.T, 80)
    assert [(e["epoch"], e["event"]) for e in h.events] == [(11, "stall"), (22, "stall")]


def test_keep_best_hands_back_the_best_weights_when_the_last_attempt_is_worse():
    # iRprop- solves 2-2-1 XOR from seed 8 and drives the loss down to ~1e-34, where it stops improving:
    # with target 0 (the default 1e-10 would call it solved) that is a stall, and the restart at
    # epoch 116 starts a new, worse attempt. When training ends four epochs later, the best weights
    # seen come back.
    rec = Recorder()
    detector = StallDetector(patience=25, remedy="restart", max_remedies=1, seed=0, target=0.0)
    net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=8)
    h = Trainer(net, IRpropMinus(), mode="batch", callbacks=[rec, detector], engine="numpy").fit(XOR.X, XOR.T, 120)
    assert [(e["epoch"], e["event"]) for e in h.events] == [(116, "stall"), (120, "stall_best_restored")]
    best = int(np.argmin(h.loss))
    assert h.loss[-1] > 0.01 > h.loss[best]
    assert detector.overall == h.loss[best] and f"epoch {best + 1}" in h.events[-1]["detail"]
    np.testing.assert_array_equal(net.flat, rec.flat[best])
    assert net.evaluate(XOR.X, XOR.T)[0] == h.loss[best]


def test_a_resumed_run_with_stall_detection_matches_an_uninterrupted_one():
    def trainer():
        return Trainer(_saturated_xor_net(), SGD(lr=2.0), mode="batch", seed=3, engine="numpy",
                       callbacks=[ExponentialDecay(0.99), StallDetector(patience=10, remedy="jitter", jitter=1.0)])

    a = trainer()
    a.fit(XOR.X, XOR.T, 40)
    b = trainer()
    b.fit(XOR.X, XOR.T, 15)  # stalls and is jittered at epoch 11, and hands back epoch 11's weights
    assert b.history.events[-1]["event"] == "stall_best_restored"
    np.testing.assert_array_equal(b.network.flat, b.callbacks[1].overall_params)
    c = trainer()
    c.load_state_dict(b.state_dict())
    c.fit(XOR.X, XOR.T, 25)
    stalls = [e["epoch"] for e in a.history.events if e["event"] == "stall"]
    assert len(stalls) >= 2 and stalls == [e["epoch"] for e in c.history.events if e["event"] == "stall"]
    np.testing.assert_array_equal(c.network.flat, a.network.flat)
    b.fit(XOR.X, XOR.T, 25)  # the same trainer, fit in two pieces
    np.testing.assert_array_equal(b.network.flat, a.network.flat)


@pytest.mark.parametrize("kwargs,match", [
    ({"patience": 0}, "patience must be a positive integer"),
    ({"min_improvement": 1.0}, "min_improvement must be in \\[0, 1\\)"),
    ({"remedy": "pray"}, "unknown stall remedy 'pray'; valid: restart, jitter, reset_lr"),
    ({"jitter": 0}, "jitter must be a positive number"),
    ({"max_remedies": -1}, "max_remedies must be None or an integer >= 0"),
    ({"seed": 1.5}, "seed must be a non-negative integer or a numpy Generator"),
])
def test_bad_stall_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StallDetector(**kwargs)


# --------------------------------------------------------------------------- random restarts
def test_restarts_keep_the_best_of_r_seeded_runs():
    net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5")
    result = train_with_restarts(net, XOR.X, XOR.T, restarts=4, seed=0, epochs=150, optimizer="irprop-",
                                 mode="batch", engine="numpy")
    scores = [r["score"] for r in result.runs]
    assert len(scores) == 4 and result.best == int(np.argmin(scores))
    assert net.evaluate(XOR.X, XOR.T)[0] == scores[result.best] == min(scores)
    assert np.all(np.abs(net.predict(XOR.X) - XOR.T) < 0.4)
    # Run r can be repeated alone from the documented seed.
    r = result.best
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(4)[r])
    alone = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=rng)
    Trainer(alone, "irprop-", mode="batch", seed=rng, engine="numpy").fit(XOR.X, XOR.T, 150)
    np.testing.assert_array_equal(alone.flat, net.flat)
    # The same seed gives the same result; the runs differ from one another.
    again = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5")
    result2 = train_with_restarts(again, XOR.X, XOR.T, restarts=4, seed=0, epochs=150, optimizer="irprop-",
                                  mode="batch", engine="numpy")
    assert [r["score"] for r in result2.runs] == scores and len(set(scores)) > 1


def test_restarts_copy_the_optimizer_and_keep_frozen_biases():
    net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", train_bias=False)
    net.layers[0].b[...] = [0.25, -0.25]
    net.layers[1].b[...] = 0.5
    opt = SGD(lr=1.0, momentum=0.5)
    result = train_with_restarts(net, XOR.X, XOR.T, restarts=2, seed=1, epochs=5, optimizer=opt, mode="batch",
                                 engine="numpy", validation_data=(XOR.X, 1 - XOR.T))
    assert opt.t == 0 and opt.state == {}  # each run trained its own copy
    assert net.layers[0].b.tolist() == [0.25, -0.25] and net.layers[1].b.tolist() == [0.5]
    assert result.runs[result.best]["score"] == pytest.approx(net.evaluate(XOR.X, 1 - XOR.T)[0])
    assert not math.isnan(result.history.loss[-1])
    with pytest.raises(ConfigError, match="restarts must be a positive integer"):
        train_with_restarts(net, XOR.X, XOR.T, restarts=0)


def test_a_solved_run_is_not_a_stall():
    # iRprop+ drives XOR's loss to round-off level (~1e-33), where it only jitters: no remedy
    import deltaprop as dp

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    T = np.array([[0], [1], [1], [0]], float)
    net = dp.Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=1)
    dp.train(net, X, T, mode="stochastic", epochs=4000, lr=0.5, seed=0)
    tr = dp.Trainer(net, dp.IRpropPlus(lr=0.1), mode="batch", callbacks=[dp.StallDetector(patience=100)])
    tr.fit(X, T, 500)
    assert tr.history.loss[-1] < 1e-20
    assert [e for e in tr.history.events if e["event"].startswith("stall")] == []


def test_flat_spot_leaves_a_sigmoid_output_fused_with_bce_alone():
    """The fused delta o - t has no flat spot; adding c to sigma' there would scale the loss's
    own (o - t)/(o(1 - o)) into about c/eps for a saturated wrong output (issue 13)."""
    net = Network([3, 4, 2], "sigmoid", "sigmoid", "binary_cross_entropy", seed=0)
    assert use_flat_spot(net, 0.1) == 1
    assert net.layers[0].activation.flat_spot == 0.1
    assert net.layers[-1].activation.flat_spot == 0.0 and net.loss.is_fused_with(net.layers[-1].activation)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)) * 5
    T = (rng.random((64, 2)) > 0.5).astype(float)
    h = dp.train(net, X, T, mode="batch", epochs=300, lr=0.5, optimizer=dp.SGD(lr=0.5, momentum=0.9), seed=0)
    assert np.isfinite(net.flat).all() and np.abs(net.flat).max() < 1e3
    assert h.loss[-1] < h.loss[0]


def test_flat_spot_on_an_output_only_sigmoid_with_bce_is_refused():
    net = Network([2, 3, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    with pytest.raises(ConfigError, match="no sigmoid layer but its output, whose fused delta o - t"):
        use_flat_spot(net)


def test_cli_flat_spot_with_bce_and_momentum_converges(capsys):
    from deltaprop.cli import main

    code = main(["train", "--data", "xor", "--loss", "binary_cross_entropy", "--flat-spot", "--momentum", "0.9",
                 "--lr", "0.5", "--epochs", "300", "--json"])
    out = capsys.readouterr().out
    final = json.loads(out.strip().splitlines()[-1])["final"]
    assert code == 0 and final["train_loss"] < 1.0  # was 5e13 when the fix touched the fused output
