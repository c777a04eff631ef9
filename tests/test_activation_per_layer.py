"""One activation per hidden layer: the setting ``activation`` takes one name (every hidden
layer) or a comma-separated list of one per hidden layer, through the CLI, a TOML file,
TrainConfig, Network, model files, checkpoints, explain and ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deltaprop.cli import main
from deltaprop.config import TrainConfig, read_toml
from deltaprop.errors import ConfigError
from deltaprop.layers import Dense
from deltaprop.model import Model
from deltaprop.network import Network


def test_one_name_stays_one_name_and_a_list_becomes_a_tuple():
    assert TrainConfig(hidden=(4, 4), activation="relu").activation == "relu"
    cfg = TrainConfig(hidden=(4, 4), activation="relu, tanh")
    assert cfg.activation == ("relu", "tanh")
    assert cfg.to_dict()["activation"] == "relu,tanh"
    assert 'activation = "relu,tanh"' in cfg.to_toml()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig(hidden=(4, 4), activation=["sigmoid", "relu"]).activation == ("sigmoid", "relu")


@pytest.mark.parametrize("hidden, activation, given, n", [((4,), "relu,tanh", 2, 1), ((4, 4, 4), "relu,tanh", 2, 3),
                                                         ((), "relu,tanh", 2, 0)])
def test_a_list_of_the_wrong_length_names_the_setting_and_both_lengths(hidden, activation, given, n):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(hidden=hidden, activation=activation)
    msg = str(exc.value)
    assert msg.startswith(f"activation lists {given} names, one per hidden layer, but hidden has {n} layer")


@pytest.mark.parametrize("value", ["relu,nope", "relu,", ["relu", 3], 7])
def test_an_unknown_name_lists_the_valid_ones(value):
    with pytest.raises(ConfigError, match=r"activation must be one of .*tanh, or several separated by commas"):
        TrainConfig(hidden=(4, 4), activation=value)


def test_network_takes_one_activation_per_hidden_layer_as_from_layers_does():
    net = Network([2, 5, 3, 1], ["relu", "tanh"], "sigmoid", seed=3)
    assert [layer.activation.name for layer in net.layers] == ["relu", "tanh", "sigmoid"]
    ref = Network.from_layers([Dense(2, 5, "relu"), Dense(5, 3, "tanh"), Dense(3, 1, "sigmoid")])
    ref.reset_parameters(3, "glorot_uniform")
    np.testing.assert_array_equal(net.flat, ref.flat)
    with pytest.raises(ConfigError, match="activation lists 1 names, one per hidden layer, but the network has 2"):
        Network([2, 5, 3, 1], ["relu"], "sigmoid")


def test_cli_train_toml_model_file_explain_and_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", "xor", "--hidden", "4,3", "--activation", "relu,tanh", "--epochs", "4",
            "--engine", "numpy", "--out", "m.npz", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    net = Model.load("m.npz").network
    assert [layer.activation.name for layer in net.layers] == ["relu", "tanh", "sigmoid"]
    # the side file repeats the run bit for bit
    assert read_toml("m.npz.config.toml")["activation"] == ("relu", "tanh")
    assert main(["train", "--config", "m.npz.config.toml", "--out", "again.npz", "--quiet"]) == 0
    np.testing.assert_array_equal(Model.load("again.npz").network.flat, net.flat)
    # a TOML array says the same
    (tmp_path / "a.toml").write_text('data = "xor"\nhidden = "4,3"\nactivation = ["relu", "tanh"]\nepochs = 4\n'
                                     'engine = "numpy"\n')
    assert main(["train", "--config", "a.toml", "--out", "array.npz", "--quiet"]) == 0
    np.testing.assert_array_equal(Model.load("array.npz").network.flat, net.flat)
    # resume from the checkpoint to more epochs keeps the activations
    assert main(argv[:-2] + ["c.npz", "--checkpoint-every", "2", "--quiet"]) == 0
    assert main(["train", "--resume", "c.npz.ckpt", "--epochs", "6", "--out", "c.npz", "--force", "--quiet"]) == 0
    assert [layer.activation.name for layer in Model.load("c.npz").network.layers] == ["relu", "tanh", "sigmoid"]
    # explain traces each layer with its own activation
    capsys.readouterr()
    assert main(["explain", "--model", "again.npz", "--input", "1,0", "--target", "1", "--format", "json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    text = json.dumps(trace)
    assert "relu" in text and "tanh" in text
    assert "model saved to m.npz" in out


def test_cli_wrong_length_is_exit_2_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "xor", "--hidden", "4", "--activation", "relu,tanh", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "activation lists 2 names, one per hidden layer, but hidden has 1 layer (4)" in err
    assert "Traceback" not in err
    (tmp_path / "c.toml").write_text('data = "xor"\nhidden = "4,4,4"\nactivation = "relu,tanh"\n')
    assert main(["train", "--config", "c.toml"]) == 2
    assert "but hidden has 3 layers (4,4,4)" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_onnx_export_runs_each_layer_with_its_activation(tmp_path, monkeypatch):
    """The trained CLI model with relu then tanh, through ONNX: onnxruntime gives the model's own
    outputs (float64 graph of a float64 model: the same operations, up to summation order,
    hence test_export's 1e-12)."""
    ort = pytest.importorskip("onnxruntime")
    from deltaprop.export import to_onnx

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "xor", "--hidden", "4,3", "--activation", "relu,tanh", "--epochs", "3",
                 "--dtype", "float64", "--out", "m.npz", "--quiet"]) == 0
    model = Model.load("m.npz")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.3, -2.0]], dtype=np.float64)
    proto = to_onnx(model, dtype="float64")
    assert [n.op_type for n in proto.graph.node].count("Relu") == 1
    assert [n.op_type for n in proto.graph.node].count("Tanh") == 1
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out, index = sess.run(None, {"input": X})  # a classifier: its outputs and the class index
    np.testing.assert_allclose(out, model.predict_outputs(X), rtol=1e-12, atol=1e-12)
