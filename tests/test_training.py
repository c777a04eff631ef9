import math

import numpy as np
import pytest

from deltaprop import EarlyStopping, Network, Trainer, train
from deltaprop.data import load_builtin
from deltaprop.errors import ConfigError, DataError
from deltaprop.optimizers import SGD
from deltaprop.training import Callback


class CountingSGD(SGD):
    """Plain SGD that records the batch size behind every update it applies."""

    def __init__(self, lr):
        super().__init__(lr)
        self.calls = 0

    def step(self, params, grads, loss=None):
        self.calls += 1
        super().step(params, grads, loss)


def _data(rng, n=40):
    X = rng.normal(size=(n, 3))
    T = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    return X, T


@pytest.mark.parametrize("mode,k,expected", [("stochastic", 7, 23), ("batch", 7, 1), ("minibatch", 7, 4),
                                             ("minibatch", 23, 1), ("minibatch", 1, 23), ("minibatch", 5, 5)])
def test_updates_per_epoch_counted_through_the_optimizer(mode, k, expected, rng):
    X, T = _data(rng, 23)
    net = Network([3, 4, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    opt = CountingSGD(0.1)
    tr = Trainer(net, opt, mode=mode, batch_size=k, seed=0)
    h = tr.fit(X, T, epochs=3)
    assert opt.calls == 3 * expected == opt.t
    assert h.updates == [expected, 2 * expected, 3 * expected]
    assert tr.updates_per_epoch(len(X)) == expected == math.ceil(23 / {"stochastic": 1, "batch": 23}.get(mode, k))


def test_minibatch_with_k_equal_n_is_batch_mode(rng):
    X, T = _data(rng, 40)
    a = Network([3, 5, 1], "sigmoid", loss="half_sse", seed=3)
    b = a.copy()
    train(a, X, T, mode="batch", epochs=25, lr=0.7, seed=1)
    train(b, X, T, mode="minibatch", batch_size=40, epochs=25, lr=0.7, seed=2)  # a different seed: no shuffle at k = N
    np.testing.assert_allclose(a.flat, b.flat, rtol=0, atol=1e-12)


def test_minibatch_with_k_one_unshuffled_is_stochastic(rng):
    X, T = _data(rng, 17)
    a = Network([3, 5, 1], "sigmoid", loss="half_sse", seed=3)
    b = a.copy()
    train(a, X, T, mode="stochastic", shuffle=False, epochs=10, lr=0.5)
    train(b, X, T, mode="minibatch", batch_size=1, shuffle=False, epochs=10, lr=0.5)
    np.testing.assert_allclose(a.flat, b.flat, rtol=0, atol=1e-12)
    # and the same with the same shuffling seed
    c, d = Network([3, 5, 1], "sigmoid", seed=3), Network([3, 5, 1], "sigmoid", seed=3)
    train(c, X, T, mode="stochastic", epochs=5, lr=0.5, seed=9)
    train(d, X, T, mode="minibatch", batch_size=1, epochs=5, lr=0.5, seed=9)
    np.testing.assert_allclose(c.flat, d.flat, rtol=0, atol=1e-12)


def test_batch_mode_in_chunks_equals_one_pass(rng):
    X, T = _data(rng, 50)
    a = Network([3, 6, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=1)
    b = a.copy()
    Trainer(a, lr=0.3, mode="batch", chunk_size=7).fit(X, T, 20)
    Trainer(b, lr=0.3, mode="batch", chunk_size=4096).fit(X, T, 20)
    np.testing.assert_allclose(a.flat, b.flat, rtol=0, atol=1e-12)


def test_one_hand_computed_batch_step():
    # 1-1 identity net, w = 0.5, b = 0, half-SSE; samples (x, t) = (1, 1), (2, 0).
    # outputs 0.5 and 1.0; dE/dw per sample = (o - t) x = -0.5, 2.0 -> batch mean 0.75
    # dE/db = (o - t) = -0.5, 1.0 -> mean 0.25; lr 0.1: w = 0.5 - 0.075 = 0.425, b = -0.025
    net = Network([1, 1], "identity", loss="half_sse")
    net.set_weights([([[0.5]], [0.0])])
    h = train(net, [[1.0], [2.0]], [[1.0], [0.0]], mode="batch", epochs=1, lr=0.1)
    assert net.layers[0].W[0, 0] == pytest.approx(0.425, abs=1e-15)
    assert net.layers[0].b[0] == pytest.approx(-0.025, abs=1e-15)
    # running loss: mean of 1/2 (0.5)^2 and 1/2 (1.0)^2 = 0.3125, before the update
    assert h.loss_running[0] == pytest.approx(0.3125)
    # re-evaluated after it: outputs 0.4, 0.825 -> mean(0.18, 0.3403125) = 0.26015625
    assert h.loss[0] == pytest.approx(0.26015625)


@pytest.mark.parametrize("mode,lr,epochs", [("stochastic", 0.5, 4000), ("minibatch", 1.0, 4000), ("batch", 2.0, 4000)])
def test_every_mode_learns_xor_from_a_fixed_seed(mode, lr, epochs):
    ds = load_builtin("xor")
    net = Network([2, 2, 1], "sigmoid", loss="half_sse", init="uniform:0.5", seed=1)
    train(net, ds.X, ds.T, mode=mode, batch_size=2, epochs=epochs, lr=lr, seed=0, eval_every=0)
    out = net.predict(ds.X).ravel()
    assert np.all((out > 0.5) == (ds.T.ravel() > 0.5)), out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes_are_kept(dtype, rng):
    X, T = _data(rng)
    net = Network([3, 4, 1], "tanh", "sigmoid", "binary_cross_entropy", dtype=dtype, seed=0)
    h = train(net, X, T, epochs=3)
    assert net.flat.dtype == np.dtype(dtype) and net.predict(X).dtype == np.dtype(dtype)
    assert np.isfinite(h.loss[-1])


def test_same_seed_same_result_every_mode(rng):
    X, T = _data(rng)
    for mode in ("stochastic", "minibatch", "batch"):
        runs = []
        for _ in range(2):
            net = Network([3, 4, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=5)
            train(net, X, T, mode=mode, batch_size=4, epochs=5, seed=11)
            runs.append(net.flat.copy())
        assert np.array_equal(runs[0], runs[1])


def test_history_records_both_losses_and_validation(rng):
    X, T = _data(rng, 60)
    net = Network([3, 8, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    h = train(net, X[:40], T[:40], epochs=4, validation_data=(X[40:], T[40:]), eval_every=2)
    assert h.epoch == [1, 2, 3, 4]
    assert math.isnan(h.loss[0]) and not math.isnan(h.loss[1]) and not math.isnan(h.loss[3])
    assert all(np.isfinite(h.loss_running)) and all(np.isfinite(h.val_loss))
    assert all(0 <= a <= 1 for a in h.val_accuracy)


def test_early_stopping_restores_the_best_weights(rng):
    X, T = _data(rng, 60)
    Tv = 1 - T[40:]  # validation labels flipped: validation loss rises as training succeeds
    net = Network([3, 8, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    es = EarlyStopping(patience=3)
    tr = Trainer(net, lr=0.5, mode="batch", callbacks=[es])
    h = tr.fit(X[:40], T[:40], 200, validation_data=(X[40:], Tv))
    assert len(h) < 200
    assert h.events[-1]["event"] == "early_stopping"
    best = int(np.argmin(h.val_loss))
    assert len(h) == best + 1 + 3
    np.testing.assert_array_equal(net.flat, es.best_params)
    assert net.evaluate(X[40:], Tv)[0] == pytest.approx(h.val_loss[best])


def test_divergence_stops_and_keeps_the_last_finite_weights(rng):
    X = rng.normal(size=(30, 3)) * 100
    T = rng.normal(size=(30, 1)) * 100
    net = Network([3, 4, 1], "relu", "identity", "mse", seed=0)
    h = train(net, X, T, mode="minibatch", batch_size=5, epochs=50, lr=1e3)
    assert any(e["event"] == "divergence" for e in h.events)
    assert np.all(np.isfinite(net.flat))
    assert len(h) < 50


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"batch_size": -3}, "batch_size must be an integer >= 1, got -3"),
    ({"lr": 0.0}, "learning rate must be a positive number, got 0.0"),
    ({"lr": -1}, "learning rate must be a positive number"),
    ({"lr": float("nan")}, "learning rate must be a positive number"),
    ({"mode": "online"}, "unknown mode 'online'; valid: stochastic, minibatch, batch"),
])
def test_bad_settings(kwargs, match):
    net = Network([2, 2, 1], seed=0)
    with pytest.raises(ConfigError, match=match):
        Trainer(net, **kwargs)


def test_batch_size_above_n_is_clipped_with_a_warning(rng):
    X, T = _data(rng, 10)
    net = Network([3, 2, 1], seed=0)
    opt = CountingSGD(0.1)
    with pytest.warns(UserWarning, match="batch size 64 is larger than the 10 training samples; using 10"):
        Trainer(net, opt, mode="minibatch", batch_size=64).fit(X, T, 2)
    assert opt.calls == 2


@pytest.mark.parametrize("X,T,match", [
    (np.zeros((0, 3)), np.zeros((0, 1)), "empty"),
    (np.ones((4, 2)), np.ones((4, 1)), "has 2 columns but the network takes 3 inputs"),
    (np.array([[1, 2, np.nan]] * 4), np.ones((4, 1)), "NaN or inf .*row 0, column 2"),
    (np.ones((4, 3)), np.array([[1.0], [np.inf], [0], [1]]), "targets contain NaN or inf .*row 1, column 0"),
    (np.ones((4, 3)), np.ones((3, 1)), "targets have shape \\(3, 1\\), expected \\(4, 1\\)"),
])
def test_bad_data(X, T, match):
    net = Network([3, 2, 1], seed=0)
    with pytest.raises(DataError, match=match):
        train(net, X, T, epochs=1)


def test_per_epoch_evaluation_uses_a_fixed_subsample_and_the_full_set_at_the_end():
    rng = np.random.default_rng(0)
    n = 5000
    Xb = rng.normal(size=(n, 4))
    Tb = (Xb[:, :1] > 0).astype(float)
    net = Network([4, 6, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    trainer = Trainer(net, lr=0.1, mode="minibatch", batch_size=100, seed=0)
    assert trainer.eval_rows_for(n) == max(Trainer.EVAL_ROWS_MIN, n // 16) == 512
    assert trainer.eval_rows_for(500) == 500 and trainer.eval_rows_for(800) == 512
    assert trainer.eval_rows_for(16000) == 1000 and trainer.eval_rows_for(10**6) == Trainer.EVAL_ROWS_MAX

    seen = []

    class Spy(Callback):
        def on_epoch_end(self, tr, logs):
            seen.append((logs["loss"], tr.network.copy()))

    trainer.callbacks.append(Spy())
    idx = (np.arange(512) * n) // 512  # evenly spaced rows, no random numbers drawn
    # a short fit: every epoch, the last included, on the subsample (the whole set would cost
    # the fit more than a tenth)
    trainer.fit(Xb, Tb, 3)
    for loss, snap in seen:
        assert loss == snap.evaluate(Xb[idx], Tb[idx])[0]
    # a fit of FULL_EVAL_EPOCHS or more: every row after its last epoch
    trainer.fit(Xb, Tb, Trainer.FULL_EVAL_EPOCHS)
    assert len(seen) == 3 + Trainer.FULL_EVAL_EPOCHS
    for loss, snap in seen[3:-1]:
        assert loss == snap.evaluate(Xb[idx], Tb[idx])[0]
    assert seen[-1][0] == seen[-1][1].evaluate(Xb, Tb, trainer.chunk_size)[0]  # the last epoch: every row
    assert seen[-1][0] != seen[-1][1].evaluate(Xb[idx], Tb[idx])[0]

    # The subsample changes what is recorded, never the training: same weights without evaluation.
    plain = Network([4, 6, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=0)
    off = Trainer(plain, lr=0.1, mode="minibatch", batch_size=100, seed=0, eval_every=0)
    off.fit(Xb, Tb, 3)
    off.fit(Xb, Tb, Trainer.FULL_EVAL_EPOCHS)
    np.testing.assert_array_equal(plain.flat, net.flat)


def test_eval_rows_setting():
    net = Network([2, 2, 1], seed=0)
    assert Trainer(net, eval_rows=10).eval_rows_for(4) == 4
    assert Trainer(net, eval_rows=3).eval_rows_for(100) == 3
    with pytest.raises(ConfigError, match=r"eval_rows must be an integer >= 1, got 0"):
        Trainer(net, eval_rows=0)


def test_history_append_fills_every_column_and_nan_for_the_missing():
    from deltaprop.training import History

    h = History()
    row = {k: float(i + 1) for i, k in enumerate(History._COLUMNS)}
    h.append(row)
    h.append({"epoch": 2})
    assert h.last()["epoch"] == 2 and all(np.isnan(v) for k, v in h.last().items() if k != "epoch")
    assert {k: getattr(h, k)[0] for k in History._COLUMNS} == row


def test_a_callback_may_turn_the_evaluation_on_during_a_fit():
    class TurnOn(Callback):
        def on_epoch_end(self, trainer, logs):
            trainer.eval_every = 1

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    net = Network([3, 4, 1], "tanh", "identity", "mse", seed=0)
    tr = Trainer(net, lr=0.05, mode="minibatch", batch_size=8, seed=0, eval_every=0, callbacks=[TurnOn()])
    history = tr.fit(X, T, 3)
    assert np.isnan(history.loss[0]) and history.loss[2] == net.evaluate(X, T)[0]


def test_train_runs_at_least_one_epoch_and_fit_may_add_none(rng):
    # train() builds and trains a network: 0 epochs is a mistake, as `deltaprop train --epochs 0`
    # is; Trainer.fit adds epochs to a run and may add none
    X, T = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
    net = Network([2, 3, 1], "tanh", "identity", "mse", seed=0)
    before = net.flat.copy()
    for bad in (0, -3):
        with pytest.raises(ConfigError, match=f"epochs must be at least 1, got {bad}"):
            train(net, X, T, epochs=bad, batch_size=8)
    np.testing.assert_array_equal(net.flat, before)
    assert len(Trainer(net, batch_size=8).fit(X, T, 0)) == 0
    assert len(train(net, X, T, epochs=1, batch_size=8)) == 1
