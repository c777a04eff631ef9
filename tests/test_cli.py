import json
import subprocess
import sys

import numpy as np
import pytest

from deltaprop.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def iris_csv(tmp_path):
    from deltaprop.data import load_builtin

    ds = load_builtin("iris")
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [",".join(f"{v:g}" for v in x) + "," + ds.classes[int(t.argmax())] for x, t in zip(ds.X, ds.T)]
    p = tmp_path / "iris.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_default_train_reaches_95_percent_on_digits(capsys, tmp_path):
    out_file = tmp_path / "digits.npz"
    code, out, err = run(capsys, "train", "--out", str(out_file))
    assert code == 0, err
    assert out.startswith("data: digits (1438 training, 359 held-out samples, 64 features, classification, 10 classes)")
    final = [line for line in out.splitlines() if line.startswith("final:")][0]
    acc = float(final.split("held-out accuracy ")[1].split("%")[0])
    assert acc >= 95.0, final
    assert out_file.exists() and (tmp_path / "digits.npz.history.json").exists()
    # evaluate agrees with the training run's own held-out figure is not checkable without the split,
    # but evaluating on all of digits must be at least as good as chance by far
    code, out, _ = run(capsys, "evaluate", str(out_file), "--data", "digits")
    assert code == 0 and "1797 samples" in out and float(out.split("accuracy ")[1].rstrip("%\n")) > 95


def test_xor_is_learned_from_the_default_seed(capsys, tmp_path):
    model = tmp_path / "xor.npz"
    code, out, err = run(capsys, "train", "--data", "xor", "--out", str(model))
    assert code == 0, err
    assert "train accuracy 100.00%" in out and "20000 updates in 5000 epochs" in out
    csv = tmp_path / "xor.csv"
    csv.write_text("a,b\n0,0\n0,1\n1,0\n1,1\n")
    code, out, _ = run(capsys, "predict", str(model), "--data", str(csv), "--proba")
    assert code == 0
    rows = out.strip().splitlines()
    assert rows[0] == "prediction,p_1"
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "1", "0"]
    probs = [float(r.split(",")[1]) for r in rows[1:]]
    assert probs[0] < 0.5 < probs[1] and probs[2] > 0.5 > probs[3]


def test_csv_training_predict_and_evaluate(capsys, tmp_path, iris_csv):
    model = tmp_path / "iris.npz"
    code, out, err = run(capsys, "train", "--data", str(iris_csv), "--target", "species", "--hidden", "8",
                         "--epochs", "60", "--out", str(model), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["final"]["heldout_accuracy"] > 0.85
    assert lines[0]["epoch"] == 1 and "val_loss" in lines[0]
    code, out, _ = run(capsys, "predict", str(model), "--data", str(iris_csv))
    preds = out.split()[1:]
    assert len(preds) == 150 and set(preds) <= {"setosa", "versicolor", "virginica"}
    code, out, _ = run(capsys, "evaluate", str(model), "--data", str(iris_csv))
    assert code == 0 and out.startswith("150 samples: loss")
    # a text cell in a column the model reads as a number: declaring it categorical is no longer
    # the user's choice at predict time, so the message says what the model expects
    lines = iris_csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[0] = "n/a"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:3] + [",".join(cells)] + lines[4:]) + "\n")
    column = lines[0].split(",")[0]
    code, _, err = run(capsys, "predict", str(model), "--data", str(bad))
    assert code == 2 and f"line 4, column '{column}': 'n/a' is not a number (the model reads '{column}' as a number)" in err


def test_existing_output_is_not_overwritten(capsys, tmp_path):
    model = tmp_path / "m.npz"
    model.write_bytes(b"mine")
    code, _, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", str(model))
    assert code == 2 and "already exists; use --force" in err
    assert model.read_bytes() == b"mine"


def test_divergence_is_reported_and_weights_stay_finite(capsys, tmp_path):
    csv = tmp_path / "r.csv"
    rng = np.random.default_rng(0)
    rows = ["a,b,y"] + [f"{a:.3f},{b:.3f},{100 * a - 50 * b:.3f}" for a, b in rng.normal(size=(40, 2)) * 10]
    csv.write_text("\n".join(rows) + "\n")
    model = tmp_path / "r.npz"
    code, out, err = run(capsys, "train", "--data", str(csv), "--target", "y", "--lr", "50",
                         "--no-standardize", "--epochs", "300", "--out", str(model))
    assert code == 1
    assert "training diverged" in err and "weights of the last good epoch were kept" in err
    assert "Traceback" not in err
    from deltaprop import load_model

    assert np.all(np.isfinite(load_model(model)[0].flat))


BAD = [
    ("nan.csv", "a,b,t\n1,2,0\n3,nan,1\n", ["--target", "t"], "line 3, column 'b': 'nan' is not a finite number"),
    ("inf.csv", "a,b,t\n1,2,0\n3,-inf,1\n", ["--target", "t"], "line 3, column 'b': '-inf' is not a finite number"),
    ("ragged.csv", "a,b,t\n1,2,0\n3,1\n", ["--target", "t"], "line 3 has 2 cells but the header has 3"),
    ("text.csv", "a,b,t\n1,2,0\n3,abc,1\n", ["--target", "t"], "line 3, column 'b': 'abc' is not a number"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "label"], "no target column 'label'; columns are: a, b, t"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", [], "--target is required with a CSV file"),
    ("empty.csv", "a,b,t\n", ["--target", "t"], "no data rows after the header"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--batch-size", "-2"], "--batch-size must be an integer >= 1, got -2"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--lr", "0"], "--lr must be a number > 0, got 0.0"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--lr", "-0.1"], "--lr must be a number > 0, got -0.1"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--hidden", "4,x"], "--hidden must be positive integers separated by commas, e.g. 16,8, got '4,x'"),
    ("ok.csv", "a,b,t\n1,2,0\n3,4,1\n", ["--target", "t", "--init", "orthogonal"], "unknown init 'orthogonal'"),
]


@pytest.mark.parametrize("name,text,extra,message", BAD, ids=[f"{b[0]}:{b[3][:30]}" for b in BAD])
def test_bad_input_gets_one_clear_line_and_exit_2(capsys, tmp_path, name, text, extra, message):
    p = tmp_path / name
    p.write_text(text)
    code, out, err = run(capsys, "train", "--data", str(p), "--val-split", "0", *extra)
    assert code == 2
    assert message in err, err
    assert err.startswith("deltaprop: error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("flag,value", [("--loss", "hinge"), ("--mode", "online")])
def test_unknown_names_list_the_valid_ones(capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "xor", flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"invalid choice: '{value}'" in err and "Traceback" not in err


def test_an_unknown_activation_lists_the_valid_ones(capsys):
    """--activation takes a list too (one per hidden layer), so the settings table checks each name."""
    assert main(["train", "--data", "xor", "--activation", "relu,sigmod"]) == 2
    err = capsys.readouterr().err
    assert "--activation must be one of gelu, identity, leaky_relu, relu, sigmoid, softmax, softplus, tanh, or " \
           "several separated by commas, got 'relu,sigmod'" in err and "Traceback" not in err


def test_missing_and_unreadable_files(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "nope.csv"), "--target", "t")
    assert code == 2 and "nope.csv: no such file" in err
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\x00\xff\xfe\x81")
    code, _, err = run(capsys, "train", "--data", str(binary), "--target", "t")
    assert code == 2 and "cannot be read as UTF-8" in err
    code, _, err = run(capsys, "predict", str(tmp_path / "none.npz"), "--data", "xor")
    assert code == 2 and "none.npz: no such file" in err


def test_data_of_the_wrong_width_for_the_model(capsys, tmp_path, iris_csv):
    model = tmp_path / "xor.npz"
    assert run(capsys, "train", "--data", "xor", "--epochs", "3", "--out", str(model))[0] == 0
    code, _, err = run(capsys, "predict", str(model), "--data", str(iris_csv))
    assert code == 2 and "lacks the model's feature columns: a, b" in err
    wide = tmp_path / "wide.csv"
    wide.write_text("p,q,r\n1,2,3\n")
    model2 = tmp_path / "plain.npz"
    from deltaprop import Network
    from deltaprop.model import Model

    Model(Network([2, 2, 1], seed=0)).save(model2)  # a model without feature names
    code, _, err = run(capsys, "predict", str(model2), "--data", str(wide))
    assert code == 2 and "data has shape (1, 3), but the model takes 2 features" in err


def test_batch_size_above_n_is_clipped_with_a_warning(capsys):
    code, out, err = run(capsys, "train", "--data", "iris", "--batch-size", "500", "--epochs", "2")
    assert code == 0
    assert "warning: batch size 500 is larger than the 120 training samples; using 120" in err
    assert "2 updates in 2 epochs" in out


def test_datasets_and_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "deltaprop", "datasets"], capture_output=True, text=True)
    assert res.returncode == 0
    for name in ("xor", "parity", "encoder", "spirals", "iris", "digits"):
        assert f"\n{name} " in res.stdout


def test_config_file_and_the_effective_config_saved_beside_the_model(capsys, tmp_path):
    import tomllib

    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "iris"\nhidden = [8, 4]\nepochs = 7\nlr = 0.2\nbatch-size = 10\n')
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--config", str(cfg), "--epochs", "5", "--out", str(model))
    assert code == 0, err
    assert "60 updates in 5 epochs" in out  # the flag beat the file: 120 samples / 10 per batch x 5 epochs
    saved = tomllib.loads((tmp_path / "m.npz.config.toml").read_text())
    assert saved["hidden"] == "8,4" and saved["epochs"] == 5 and saved["batch-size"] == 10 and saved["data"] == "iris"
    # the saved file repeats the run exactly
    model2 = tmp_path / "m2.npz"
    code, out2, _ = run(capsys, "train", "--config", str(tmp_path / "m.npz.config.toml"), "--out", str(model2))
    assert code == 0
    from deltaprop import load_model

    assert load_model(model)[0].flat.tobytes() == load_model(model2)[0].flat.tobytes()


@pytest.mark.parametrize("text,message", [
    ("epochz = 3\n", "unknown key 'epochz'; valid keys: activation"),
    ('epochs = "3"\n', "key 'epochs' must be an integer >= 1, got '3'"),
    ("lr = true\n", "key 'lr' must be a number > 0, got True"),
    ("epochs = [\n", "not valid TOML"),
])
def test_bad_config_files(capsys, tmp_path, text, message):
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    code, _, err = run(capsys, "train", "--config", str(cfg))
    assert code == 2 and message in err and err.count("\n") == 1


def test_quiet_prints_only_the_result(capsys):
    code, out, _ = run(capsys, "train", "--data", "iris", "--epochs", "3", "--quiet")
    assert code == 0
    assert out.splitlines()[0].startswith("final: ") and "epoch" not in out.split("final:")[0]


def test_progress_bar_when_forced(capsys):
    pytest.importorskip("tqdm")
    code, out, _ = run(capsys, "train", "--data", "iris", "--epochs", "3", "--progress", "always")
    assert code == 0
    assert "3/3" in out and "updates/s" in out and "epoch 3/3" in out
    code, out, _ = run(capsys, "train", "--data", "iris", "--epochs", "3")  # not a terminal: no bar
    assert "updates/s" not in out


def test_array_and_idx_files_through_the_cli(capsys, tmp_path):
    from deltaprop.data import load_builtin
    from deltaprop.data.idx import write_idx

    iris = load_builtin("iris")
    y = iris.T.argmax(1)
    np.savez(tmp_path / "iris.npz", X=iris.X, y=y)
    code, out, err = run(capsys, "train", "--data", str(tmp_path / "iris.npz"), "--target", "y", "--epochs", "40",
                         "--out", str(tmp_path / "m.npz"))
    assert code == 0, err
    assert float(out.split("held-out accuracy ")[1].split("%")[0]) > 80
    code, out, err = run(capsys, "evaluate", str(tmp_path / "m.npz"), "--data", str(tmp_path / "iris.npz"))
    assert code == 0 and out.startswith("150 samples"), err
    digits = load_builtin("digits")
    write_idx(tmp_path / "img-idx3-ubyte", digits.X.reshape(-1, 8, 8).astype(np.uint8))
    write_idx(tmp_path / "lab-idx1-ubyte", digits.T.argmax(1).astype(np.uint8))
    code, _, err = run(capsys, "train", "--data", str(tmp_path / "img-idx3-ubyte"), "--epochs", "1")
    assert code == 2 and "--labels FILE is required with IDX images" in err
    code, out, err = run(capsys, "train", "--data", str(tmp_path / "img-idx3-ubyte"), "--labels",
                         str(tmp_path / "lab-idx1-ubyte"), "--epochs", "5", "--out", str(tmp_path / "d.npz"))
    assert code == 0, err
    code, out, err = run(capsys, "predict", str(tmp_path / "d.npz"), "--data", str(tmp_path / "img-idx3-ubyte"))
    assert code == 0 and len(out.split()) == 1 + 1797


def test_categorical_columns_through_the_cli(capsys, tmp_path):
    rows = ["size,colour,kind"] + [f"{i % 7},{['red', 'green', 'blue'][i % 3]},{'a' if i % 3 == 0 else 'b'}"
                                   for i in range(60)]
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(capsys, "train", "--data", str(tmp_path / "c.csv"), "--target", "kind", "--categorical",
                         "colour", "--epochs", "60", "--val-split", "0", "--out", str(tmp_path / "m.npz"))
    assert code == 0, err
    assert "train accuracy 100.00%" in out  # kind is a function of colour
    (tmp_path / "new.csv").write_text("size,colour\n1,red\n2,purple\n")
    code, _, err = run(capsys, "predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "new.csv"))
    assert code == 2 and "purple" in err and "colour" in err


def test_optimizer_schedule_and_techniques_from_the_cli(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--data", "xor", "--mode", "batch", "--optimizer", "irprop+", "--lr", "0.1",
                         "--epochs", "300", "--out", str(tmp_path / "x.npz"))
    assert code == 0, err
    assert "train accuracy 100.00%" in out and "300 updates in 300 epochs" in out
    from deltaprop import load_model

    info = load_model(tmp_path / "x.npz")[1]
    assert info["training"]["optimizer"] == "irprop+"
    code, out, err = run(capsys, "train", "--data", "iris", "--optimizer", "sgd", "--momentum", "0.9", "--nesterov",
                         "--schedule", "step", "--schedule-param", "step_size=2", "--schedule-param", "gamma=0.5",
                         "--epochs", "4", "--json")
    assert code == 0, err
    lrs = [json.loads(line)["lr"] for line in out.splitlines() if line.startswith('{"epoch"')]
    assert lrs == [0.1, 0.1, 0.05, 0.05]  # the lr used in epochs 1-4: halved after every 2 epochs
    code, out, err = run(capsys, "train", "--data", "xor", "--mode", "batch", "--stall", "50", "--lr", "0.5",
                         "--epochs", "200")
    assert code == 0 and "had not improved by 0.01 (relative)" in out and "restarted from new random weights" in out


@pytest.mark.parametrize("args,message", [
    (["--optimizer", "quickprop"], "optimizer 'quickprop' needs the whole data set's gradient; use mode 'batch'"),
    (["--opt-param", "foo=1"], "optimizer 'sgd' takes no parameter 'foo'; its parameters: momentum, nesterov, "
                               "weight_decay"),
    (["--optimizer", "adam", "--opt-param", "beta1=0.8", "--opt-param", "gamma=2"],
     "optimizer 'adam' takes no parameter 'gamma'; its parameters: beta1, beta2, eps,"),
    (["--schedule", "bold_driver", "--schedule-param", "foo=2"],
     "schedule 'bold_driver' takes no parameter 'foo'; its parameters: increase, decrease, tolerance"),
    (["--opt-param", "transforms=1"], "opt_param may not set transforms"),
    (["--opt-param", "foo"], "--opt-param expects KEY=VALUE, got 'foo'"),
    (["--schedule-param", "gamma=0.5"], "--schedule-param needs --schedule"),
    (["--momentum", "1.5"], "--momentum must be a number in [0, 1), got 1.5"),
    (["--flat-spot", "--data", "iris", "--activation", "tanh"], "this network has no sigmoid layer"),
])
def test_bad_optimizer_settings(capsys, args, message):
    code, _, err = run(capsys, "train", "--data", "xor", "--epochs", "2", *args)
    assert code == 2 and message in err, err


def test_opening_lines_name_network_mode_optimizer_dtype_and_engine(capsys):
    code, out, _ = run(capsys, "train", "--data", "xor", "--epochs", "1", "--momentum", "0.9", "--engine", "numpy")
    assert code == 0
    line = out.splitlines()[1]
    assert line == ("network: 2-2-1 sigmoid, loss half_sse, float32; stochastic, sgd lr 0.5, momentum 0.9; "
                    "engine numpy")
    assert out.splitlines()[-2].endswith("4 updates in 1 epoch")
    _, out, _ = run(capsys, "train", "--data", "xor", "--epochs", "1", "--engine", "numba")
    assert out.splitlines()[1].endswith("; engine numba/tiny")  # the compiled engine's path
