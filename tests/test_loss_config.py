"""Loss settings beyond the loss itself: saved with the model, read back from older files,
run by the engine that can, and reachable from the CLI."""

from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import Network, Trainer, gradcheck
from deltaprop.cli import main
from deltaprop.engines.numba_engine import _numba_available
from deltaprop.errors import ConfigError, ModelFileError
from deltaprop.io import FORMAT, FORMAT_VERSION, write_npz_atomic

LEGACY = Path(__file__).parent / "legacy"


def test_model_file_keeps_the_huber_delta(tmp_path):
    net = Network([3, 4, 2], "tanh", "identity", {"name": "huber", "delta": 0.5}, seed=1)
    dp.save_model(tmp_path / "h.npz", net)
    again, _ = dp.load_model(tmp_path / "h.npz")
    assert again.to_config()["loss"] == {"name": "huber", "delta": 0.5}
    assert again.loss.threshold == 0.5
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


def test_model_written_before_loss_parameters_predicts_the_same():
    net, _ = dp.load_model(LEGACY / "loss-mse.npz")
    assert net.to_config()["loss"] == {"name": "mse"}
    out = net.predict(np.array([[0.1, 0.2], [-1.0, 3.0]]))
    # the predictions of the file's network when it was written
    assert out.ravel().tolist() == [0.6148163377933922, 0.6534159203444067]


def test_a_loss_stored_as_a_plain_name_still_loads():
    cfg = Network([2, 3, 1], loss="mse").to_config()
    cfg["loss"] = "mse"
    assert Network.from_config(cfg).to_config()["loss"] == {"name": "mse"}


def test_a_bad_loss_in_a_model_file_is_a_model_file_error(tmp_path):
    net = Network([2, 1], loss="huber")
    meta = {"format": FORMAT, "version": FORMAT_VERSION,
            "network": {**net.to_config(), "loss": {"name": "huber", "delta": -1}}, "info": {}}
    write_npz_atomic(tmp_path / "bad.npz", {"params": net.flat}, meta)
    with pytest.raises(ModelFileError, match="huber delta must be a finite number > 0, got -1"):
        dp.load_model(tmp_path / "bad.npz")


def test_huber_network_gradient_in_both_regions(rng):
    # a small delta puts residuals on both sides of it
    net = Network([3, 4, 2], "tanh", "identity", {"name": "huber", "delta": 0.3}, init="uniform:1", seed=rng)
    X, T = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    r = np.abs(net.predict(X) - T)
    assert (r < 0.3).any() and (r > 0.3).any()
    res = gradcheck(net, X, T)
    assert res.max_rel_error < 1e-6, res.summary()


def _regression(rng, n=40):
    X = rng.normal(size=(n, 2))
    return X, (X[:, :1] - 2 * X[:, 1:]) + rng.standard_t(2, size=(n, 1))  # heavy-tailed noise


def test_huber_trains_on_the_numpy_engine_under_auto(rng):
    X, T = _regression(rng)
    net = Network([2, 5, 1], "tanh", "identity", {"name": "huber", "delta": 0.5}, seed=0)
    before = net.evaluate(X, T)[0]
    tr = Trainer(net, lr=0.05, mode="stochastic", seed=0)
    tr.fit(X, T, 5)
    assert tr.engine_used == "numpy"
    assert net.evaluate(X, T)[0] < before


def test_numba_engine_refuses_huber_by_name(rng):
    X, T = _regression(rng)
    net = Network([2, 5, 1], "tanh", "identity", "huber", seed=0)
    reason = "loss Huber has no compiled kernel" if _numba_available() else "numba is not installed"
    with pytest.raises(ConfigError, match=f"engine 'numba' cannot run this set-up: {reason}"):
        Trainer(net, lr=0.05, engine="numba").fit(X, T, 1)


def test_cli_trains_iris_with_huber(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "iris", "--loss", "huber", "--epochs", "3", "--out", "m.npz", "--quiet"]) == 0
    net, _ = dp.load_model("m.npz")
    assert net.to_config()["loss"] == {"name": "huber", "delta": 1.0}
    # a classification head without softmax: huber is no cross-entropy (model.default_head)
    assert net.output_activation.name == "sigmoid"


def test_cli_trains_a_regression_csv_with_huber(tmp_path, monkeypatch, capsys, rng):
    monkeypatch.chdir(tmp_path)
    X, T = _regression(rng)
    rows = ["x1,x2,y"] + [f"{a!r},{b!r},{y!r}" for (a, b), (y,) in zip(X.tolist(), T.tolist())]
    Path("reg.csv").write_text("\n".join(rows) + "\n")
    assert main(["train", "--data", "reg.csv", "--target", "y", "--loss", "huber", "--epochs", "3",
                 "--out", "r.npz", "--quiet"]) == 0
    net, info = dp.load_model("r.npz")
    assert info["task"] == "regression" and net.output_activation.name == "identity"
    assert net.loss.to_config() == {"name": "huber", "delta": 1.0}


def test_onnx_export_ignores_the_loss_but_records_it():
    pytest.importorskip("onnx")
    import json

    from deltaprop.export import to_onnx

    huber = to_onnx(Network([2, 3, 1], "tanh", "identity", {"name": "huber", "delta": 0.5}, seed=0))
    mse = to_onnx(Network([2, 3, 1], "tanh", "identity", "mse", seed=0))
    # the forward pass only: the loss shows in the descriptions, not in the operators
    assert huber.graph.node == mse.graph.node and huber.graph.initializer == mse.graph.initializer
    meta = {p.key: p.value for p in huber.metadata_props}
    assert json.loads(meta["network"])["loss"] == {"name": "huber", "delta": 0.5}


def test_checkpoint_keeps_the_huber_delta(tmp_path, rng):
    from deltaprop.checkpoint import load_checkpoint, save_checkpoint

    X, T = _regression(rng)
    net = Network([2, 5, 1], "tanh", "identity", {"name": "huber", "delta": 0.25}, seed=0)
    tr = Trainer(net, lr=0.05, seed=0)
    tr.fit(X, T, 1)
    save_checkpoint(tmp_path / "h.ckpt", tr)
    again, _, _ = load_checkpoint(tmp_path / "h.ckpt")
    assert again.loss.to_config() == {"name": "huber", "delta": 0.25}
