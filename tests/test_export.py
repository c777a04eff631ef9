"""ONNX export: onnxruntime must give Model.predict_outputs' numbers, for every activation."""

import json
import sys

import numpy as np
import pytest

from conftest import worst
from deltaprop.activations import ACTIVATIONS
from deltaprop.cli import main
from deltaprop.data import Standardizer
from deltaprop.data.dataset import decode_labels
from deltaprop.errors import ConfigError, ModelFileError
from deltaprop.layers import Dense
from deltaprop.model import Model
from deltaprop.network import Network

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deltaprop.export import IR_VERSION, OPSET, export_onnx, float32_input_loss, to_onnx  # noqa: E402

#: float32 graph against the float64 (or float32) numpy forward pass. float32 rounds each input,
#: weight and product to a relative 6e-8; the test networks sum at most 6 products per unit over
#: 3 layers, with |activations| of order 1 to 10, so the differences are around 1e-7 to 1e-6.
#: 1e-5 leaves a margin of ten, and every real mistake (a missing bias, the wrong alpha, W
#: transposed, the standardisation left out) moves outputs by 1e-3 or more (see
#: test_the_comparison_notices_a_missing_standardisation).
TOL32 = 1e-5
#: float64 graph: the same operations in the same order as numpy, up to summation order.
TOL64 = 1e-12


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _network(activation: str, dtype: str, bias="trained", seed=0) -> Network:
    """A 3-6-5-4 network with ``activation`` on every layer (softmax: on the output only)."""
    hidden = "tanh" if activation == "softmax" else activation
    params = {"alpha": 0.2} if activation == "leaky_relu" else {}  # not the default 0.01
    act = {"name": activation, **params}
    hid = {"name": hidden, **params}
    layers = [Dense(3, 6, hid, bias=bias != "absent", train_bias=bias == "trained", dtype=dtype),
              Dense(6, 5, hid, bias=bias != "absent", train_bias=bias == "trained", dtype=dtype),
              Dense(5, 4, act, bias=bias != "absent", train_bias=bias == "trained", dtype=dtype)]
    net = Network.from_layers(layers, "half_sse", dtype)
    net.reset_parameters(seed, "glorot_uniform")
    if bias != "absent":
        # glorot leaves biases at zero: give them values, or a dropped Add would go unnoticed.
        rng = np.random.default_rng(seed + 1)
        for layer in net.layers:
            layer.b[...] = rng.normal(0, 0.5, layer.n_out)
    return net


def _raw_data(rng, n=64):
    """Raw features on different scales and offsets, as a CSV would give them.

    Each offset is at most 5 standard deviations: a float32 input keeps a relative 6e-8 of
    |x|, i.e. 6e-8 * |mean| / sd of the standardised value (see test_ill_conditioned_features).
    """
    return rng.normal(size=(n, 3)) * [1.0, 20.0, 0.01] + [0.0, 100.0, -0.03]


def _model(net, X, standardize: bool, task="regression", classes=None) -> Model:
    std = Standardizer().fit(X) if standardize else None
    return Model(net, task=task, classes=classes, feature_names=["a", "b", "c"],
                 target_names=[f"t{j}" for j in range(net.n_outputs)] if task == "regression" else ["label"],
                 standardizer=std)


@pytest.mark.parametrize("graph_dtype", ["float32", "float64"])
@pytest.mark.parametrize("standardize", [True, False], ids=["standardised", "raw"])
@pytest.mark.parametrize("model_dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_onnxruntime_gives_the_same_outputs(activation, model_dtype, standardize, graph_dtype, rng):
    X = _raw_data(rng)
    net = _network(activation, model_dtype)
    model = _model(net, X, standardize)
    if not standardize:
        X = X / [1.0, 20.0, 0.01] - [0.0, 5.0, -3.0]  # inputs of order 1 without the standardisation
    ref = model.predict_outputs(X)
    out, = _session(to_onnx(model, dtype=graph_dtype)).run(None, {"input": X.astype(graph_dtype)})
    assert out.dtype == np.dtype(graph_dtype) and out.shape == ref.shape
    # A float32 model computes in float32 whatever the graph's type: its own rounding sets the bar.
    tol = TOL32 if "float32" in (graph_dtype, model_dtype) else TOL64
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=worst(out, ref))


@pytest.mark.parametrize("bias", ["frozen", "absent"])
@pytest.mark.parametrize("graph_dtype", ["float32", "float64"])
def test_frozen_and_absent_biases(bias, graph_dtype, rng):
    X = _raw_data(rng)
    net = _network("tanh", "float64", bias=bias)
    model = _model(net, X, standardize=True)
    proto = to_onnx(model, dtype=graph_dtype)
    ops = [n.op_type for n in proto.graph.node]
    # Two standardisation nodes (Sub, Div) and then, per layer, MatMul, [Add,] Tanh.
    assert ops.count("Add") == (3 if bias == "frozen" else 0) and ops.count("MatMul") == 3
    out, = _session(proto).run(None, {"input": X.astype(graph_dtype)})
    ref = model.predict_outputs(X)
    tol = TOL32 if graph_dtype == "float32" else TOL64
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=worst(out, ref))


@pytest.mark.parametrize("graph_dtype", ["float32", "float64"])
def test_softplus_and_sigmoid_stay_finite_for_huge_preactivations(graph_dtype, rng):
    # Weights times 200 push |z| into the hundreds, where log(exp(z) + 1) overflows float32.
    for activation in ("softplus", "sigmoid", "leaky_relu"):
        net = Network([3, 4, 2], activation, dtype="float64", seed=3)
        net.flat[...] *= 200.0
        model = Model(net)
        X = rng.normal(size=(32, 3))
        out, = _session(to_onnx(model, dtype=graph_dtype)).run(None, {"input": X.astype(graph_dtype)})
        ref = model.predict_outputs(X)
        assert np.all(np.isfinite(out)), activation
        tol = TOL32 if graph_dtype == "float32" else TOL64
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=f"{activation}: {worst(out, ref)}")


def test_the_comparison_notices_a_missing_standardisation(rng):
    # The same weights exported without the Standardizer: the outputs must differ by far more
    # than the tolerance, or the tests above could not tell a dropped Sub/Div.
    X = _raw_data(rng)
    model = _model(_network("tanh", "float64"), X, standardize=True)
    out, = _session(to_onnx(model.network)).run(None, {"input": X.astype("float32")})
    assert np.max(np.abs(out - model.predict_outputs(X))) > 100 * TOL32


def test_ill_conditioned_features(rng):
    # Feature c: mean -3, sd 0.01. float32 keeps -3 to about 1.2e-7, i.e. 1.2e-5 of a standard
    # deviation: too coarse for 1e-5 agreement, which float32_input_loss predicts. A float64
    # graph reads the same data exactly.
    X = rng.normal(size=(64, 3)) * [1.0, 20.0, 0.01] + [0.0, 100.0, -3.0]
    model = _model(_network("tanh", "float64"), X, standardize=True)
    assert [name for name, _ in float32_input_loss(model)] == ["c"]
    assert float32_input_loss(model)[0][1] == pytest.approx(300, rel=0.2)
    out, = _session(to_onnx(model, dtype="float64")).run(None, {"input": X})
    ref = model.predict_outputs(X)
    np.testing.assert_allclose(out, ref, rtol=TOL64, atol=TOL64, err_msg=worst(out, ref))
    assert float32_input_loss(Model(model.network)) == []  # nothing to amplify without a standardisation


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_class_index_and_metadata(n_classes, rng):
    X = rng.normal(size=(200, 3)) * 3
    if n_classes == 2:
        net = Network([3, 5, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=4)
        classes = ["no", "yes"]
    else:
        net = Network([3, 5, 3], "tanh", "softmax", "cross_entropy", seed=4)
        classes = ["setosa", "versicolor", "virginica"]
    model = _model(net, X, True, task="classification", classes=classes)
    model.categories = {"colour": ["red", "blue"]}
    proto = to_onnx(model)
    out, index = _session(proto).run(None, {"input": X.astype("float32")})
    labels = model.predict(X)
    assert index.dtype == np.int64 and index.shape == (len(X),)
    # Inputs right at the 0.5 threshold (or a tie) could round either way in float32: skip them.
    ref = model.predict_outputs(X)
    top = np.sort(ref, axis=1)
    clear = np.abs(ref[:, 0] - 0.5) > 1e-4 if n_classes == 2 else (top[:, -1] - top[:, -2]) > 1e-4
    assert clear.sum() > 150
    assert list(np.asarray(classes, object)[index[clear]]) == list(labels[clear])
    assert len(set(index.tolist())) == n_classes  # every class occurs: the check is not vacuous
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == classes
    assert json.loads(meta["feature_names"]) == ["a", "b", "c"]
    assert json.loads(meta["target_names"]) == ["label"]
    assert meta["task"] == "classification"
    assert json.loads(meta["categories"]) == {"colour": ["red", "blue"]}
    std = json.loads(meta["standardization"])
    np.testing.assert_allclose(std["mean"], model.standardizer.mean)
    assert json.loads(meta["network"]) == net.to_config()


def test_graph_format_versions_and_names(rng):
    model = _model(_network("relu", "float64"), _raw_data(rng), True)
    proto = to_onnx(model)
    assert proto.ir_version == IR_VERSION and [o.version for o in proto.opset_import] == [OPSET]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]  # regression: no class_index
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 3
    onnx.checker.check_model(proto, full_check=True)


def test_export_onnx_writes_and_refuses_to_overwrite(tmp_path, rng):
    model = _model(_network("sigmoid", "float32"), _raw_data(rng), True)
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    loaded = onnx.load(str(path))
    assert loaded.graph.name == "deltaprop"
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match="already exists"):
        export_onnx(Model(Network([2, 1], seed=0)), path)
    assert path.read_bytes() == before
    export_onnx(Model(Network([2, 1], seed=0)), path, overwrite=True)
    assert path.read_bytes() != before


def test_missing_onnx_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes "import onnx" raise ImportError
    with pytest.raises(ConfigError, match=r"pip install deltaprop\[onnx\]"):
        to_onnx(Network([2, 1], seed=0))


def test_bad_dtype_is_refused():
    with pytest.raises(ConfigError, match="float32 or float64"):
        to_onnx(Network([2, 1], seed=0), dtype="float16")


# --------------------------------------------------------------------------- the command line
def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def iris_model(tmp_path, capsys):
    path = tmp_path / "iris.npz"
    # float64, so that a float64 graph can be held to float64's tolerance
    code, _, err = _run(capsys, "train", "--data", "iris", "--epochs", "3", "--engine", "numpy", "--dtype", "float64",
                        "--out", path)
    assert code == 0, err
    return path


def test_cli_export_of_a_float32_model_checks_at_float32_tolerance(tmp_path, capsys):
    model = tmp_path / "iris32.npz"
    assert _run(capsys, "train", "--data", "iris", "--epochs", "3", "--out", model)[0] == 0  # float32 by default
    code, out, err = _run(capsys, "export", model, tmp_path / "g64.onnx", "--dtype", "float64", "--check")
    assert code == 0, err
    tol = float(out.split("(tolerance ")[1].split(")")[0])
    assert TOL64 < tol < 1e-4


def test_cli_export_matches_predict(tmp_path, capsys, iris_model):
    out_file = tmp_path / "iris.onnx"
    code, out, err = _run(capsys, "export", iris_model, out_file, "--check")
    assert code == 0, err
    assert f"wrote {out_file}" in out and "standardised inside the graph" in out
    assert "probabilities of setosa, versicolor, virginica" in out
    diff = float(out.split("largest |difference| from deltaprop ")[1].split()[0])
    assert diff <= TOL32
    # The file itself against the model, on the raw iris features.
    from deltaprop.data import load_builtin

    ds = load_builtin("iris")
    model = Model.load(iris_model)
    session = ort.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
    probs, index = session.run(None, {"input": ds.X.astype("float32")})
    ref = model.predict_outputs(ds.X)
    np.testing.assert_allclose(probs, ref, rtol=TOL32, atol=TOL32, err_msg=worst(probs, ref))
    margin = np.sort(ref, axis=1)[:, -1] - np.sort(ref, axis=1)[:, -2] > 1e-4
    assert (index[margin] == ref.argmax(axis=1)[margin]).all()
    assert list(decode_labels(ref, model.classes)[margin]) == [model.classes[i] for i in index[margin]]


def test_cli_export_float64(tmp_path, capsys, iris_model):
    out_file = tmp_path / "iris64.onnx"
    code, out, err = _run(capsys, "export", iris_model, out_file, "--dtype", "float64", "--check")
    assert code == 0, err
    assert "a float64 graph" in out
    assert float(out.split("largest |difference| from deltaprop ")[1].split()[0]) <= TOL64


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deltaprop: error: "), err
    return lines[0]


def test_cli_export_bad_inputs(tmp_path, capsys, iris_model):
    code, _, err = _run(capsys, "export", tmp_path / "missing.npz", tmp_path / "x.onnx")
    assert code == 2 and "no such file" in _one_line_error(err)
    assert not (tmp_path / "x.onnx").exists()

    existing = tmp_path / "taken.onnx"
    existing.write_bytes(b"keep me")
    code, _, err = _run(capsys, "export", iris_model, existing)
    assert code == 2 and "already exists" in _one_line_error(err) and "--force" in err
    assert existing.read_bytes() == b"keep me"
    code, _, err = _run(capsys, "export", iris_model, existing, "--force")
    assert code == 0, err
    assert onnx.load(str(existing)).graph.output[0].name == "output"

    not_a_model = tmp_path / "junk.npz"
    not_a_model.write_bytes(b"not a zip file")
    code, _, err = _run(capsys, "export", not_a_model, tmp_path / "y.onnx")
    assert code == 2 and "junk.npz" in _one_line_error(err)


def test_cli_export_warns_about_float32_inputs_and_categories(tmp_path, capsys):
    # A year column (2024 +- 3: |mean| / sd about 700) and a categorical colour.
    rng = np.random.default_rng(0)
    lines = ["year,colour,y"] + [f"{2024 + 3 * rng.normal():.3f},{c},{rng.normal():.4f}"
                                  for c in ["red", "blue"] * 40]
    (tmp_path / "years.csv").write_text("\n".join(lines) + "\n")
    model = tmp_path / "years.npz"
    code, _, err = _run(capsys, "train", "--data", tmp_path / "years.csv", "--target", "y", "--categorical",
                        "colour", "--epochs", "2", "--engine", "numpy", "--dtype", "float64", "--out", model)
    assert code == 0, err
    code, out, err = _run(capsys, "export", model, tmp_path / "y32.onnx")
    assert code == 0, err
    assert "worst: year, |mean| / sd = " in err and "--dtype float64 avoids this" in err
    assert "categorical columns colour enter one-hot encoded" in err
    assert "raw features year, colour=blue, colour=red" in out
    # float64 reads the year exactly: the check passes at its own, much tighter tolerance.
    code, out, err = _run(capsys, "export", model, tmp_path / "y64.onnx", "--dtype", "float64", "--check")
    assert code == 0, err
    assert "worst: year" not in err
    assert float(out.split("largest |difference| from deltaprop ")[1].split()[0]) <= TOL64
