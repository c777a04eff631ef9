"""Regression from a CSV file with defaults (issue 15, item 2): the task's own defaults, the
loss in one kind of units everywhere, and what a newcomer sees."""

import json
import os

import numpy as np
import pytest

import deltaprop.runs as runs
from deltaprop.cli import main
from deltaprop.config import DEFAULTS, TASK_DEFAULTS, TrainConfig, resolve
from deltaprop.data import load_csv


def _write(path, names, X, Y):
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for row in np.hstack([X, Y]):
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return str(path)


@pytest.fixture
def reg_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3)) * [1e-3, 1.0, 1e3]
    y = 500 + 80 * np.tanh(X[:, :1] * 1e3) + 0.05 * X[:, 2:3] + rng.standard_normal((300, 1))
    return _write(tmp_path / "reg.csv", ["a", "b", "c", "price"], X, y)


def test_regression_from_a_file_takes_the_task_defaults(reg_csv, tmp_path):
    cfg = resolve({"data": reg_csv, "target": "price"})
    assert {k: getattr(cfg, k) for k in TASK_DEFAULTS["regression"]} == TASK_DEFAULTS["regression"]
    assert cfg.early_stopping and cfg.epochs > DEFAULTS.epochs  # the measured choice (docs/defaults.md)
    assert cfg.lr == DEFAULTS.lr and cfg.activation == DEFAULTS.activation
    # Flags and files win; early stopping is left out without a validation split.
    assert resolve({"data": reg_csv, "target": "price", "epochs": 7}).epochs == 7
    assert resolve({"data": reg_csv, "target": "price"}, {"early_stopping": 3}).early_stopping == 3
    no_split = resolve({"data": reg_csv, "target": "price", "val_split": 0.0})
    assert no_split.early_stopping is None and no_split.epochs == DEFAULTS.epochs
    assert resolve({"data": reg_csv, "target": "price", "early_stopping": 0}).early_stopping == 0  # never
    # Classification files and built-in sets keep theirs.
    cls = _write(tmp_path / "cls.csv", ["a", "y"], np.arange(40.0)[:, None], (np.arange(40) % 2)[:, None].astype(int))
    with open(cls) as f:
        text = f.read().replace(".0\n", "\n")  # integer labels
    with open(cls, "w") as f:
        f.write(text)
    assert resolve({"data": cls, "target": "y"}).epochs == DEFAULTS.epochs
    assert resolve({"data": "iris"}).early_stopping is None
    # A file that cannot be read: no task defaults, and the run reports it where it always did.
    assert resolve({"data": str(tmp_path / "missing.csv"), "target": "y"}).epochs == DEFAULTS.epochs


def test_the_file_is_read_once(reg_csv, monkeypatch):
    calls = []
    real = runs.load_data
    monkeypatch.setattr(runs, "load_data", lambda *a, **k: calls.append(a) or real(*a, **k))
    run = runs.prepare_run(resolve({"data": reg_csv, "target": "price"}))
    assert len(calls) == 1 and run.dataset.task == "regression"
    runs.prepare_run(TrainConfig(data=reg_csv, target="price"))  # nothing kept over: read again
    assert len(calls) == 2


def test_epoch_lines_and_final_line_share_units(reg_csv, capsys, tmp_path):
    """The final train loss is the last epoch's re-evaluated loss (standardised targets), not the
    same loss in the targets' units (which is about 80**2 times larger here)."""
    os.chdir(tmp_path)
    assert main(["train", "--data", reg_csv, "--target", "price", "--epochs", "5", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    final = lines[-1]["final"]
    assert final["loss_units"] == "standardised targets"
    assert final["train_loss"] == pytest.approx(lines[-2]["loss"], rel=1e-5)
    assert final["heldout_loss"] == pytest.approx(lines[-2]["val_loss"], rel=1e-5)
    assert 0.5 < final["heldout_r2"] <= 1 and final["heldout_loss"] < 0.5
    assert main(["train", "--data", reg_csv, "--target", "price", "--epochs", "5"]) == 0
    out = capsys.readouterr().out
    assert "loss: mse of the standardised targets" in out and "held-out R² " in out
    assert "regression defaults: early stopping after 10 epochs" in out  # --epochs given: not listed
    assert "up to 200 epochs" not in out


def test_a_regression_run_that_stops_early_can_be_run_again(reg_csv, capsys, tmp_path):
    """Early stopping ends the run; it leaves no checkpoint behind that would make the same
    command refuse to start ("checkpoint file ... already exists")."""
    os.chdir(tmp_path)
    for _ in range(2):
        assert main(["train", "--data", reg_csv, "--target", "price", "--early-stopping", "1", "--quiet"]) == 0
        assert "no val_loss improvement" in capsys.readouterr().out
    assert not os.path.exists("deltaprop-checkpoint.npz")


sklearn = pytest.importorskip("sklearn")


def _r2(T, P):
    return float(np.mean(1 - ((T - P) ** 2).sum(0) / ((T - T.mean(0)) ** 2).sum(0)))


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_defaults_on_diabetes_match_least_squares(tmp_path, seed):
    """The issue's table, raw: with defaults the held-out R^2 (on 88 rows kept out of the file)
    is about that of least squares on the same rows. Measured on these splits, seeds 0-4:
    defaults minus least squares -0.028..+0.017; the former 50 epochs without early stopping
    -0.141..-0.050, and -0.113, -0.141, -0.133 on seeds 0, 1 and 3, which the bound 0.07 fails
    while leaving 0.04 for rounding (float32 training, another BLAS) to move the stopping epoch."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=False)
    order = np.random.default_rng(seed).permutation(len(d.target))
    test, train = order[:88], order[88:]
    Y = d.target[:, None]
    names = list(d.feature_names) + ["progression"]
    path = _write(tmp_path / "train.csv", names, d.data[train], Y[train])
    _write(tmp_path / "test.csv", names, d.data[test], Y[test])
    run = runs.prepare_run(resolve({"data": path, "target": "progression", "seed": seed}))
    run.fit()
    te = load_csv(tmp_path / "test.csv", "progression")
    ours = _r2(te.T, run.model.predict(te.X))
    A = np.hstack([run.train.X, np.ones((len(run.train), 1))])
    W = np.linalg.lstsq(A, run.train.T, rcond=None)[0]
    ls = _r2(te.T, np.hstack([te.X, np.ones((len(te), 1))]) @ W)
    assert ours > 0.3 and ours > ls - 0.07, (ours, ls)
    assert not run.trainer.diverged


def test_evaluate_gives_both_units_and_r2(reg_csv, capsys, tmp_path):
    """evaluate on the training file repeats train's final train loss (standardised units) beside
    the loss in the targets' own units, and R^2."""
    os.chdir(tmp_path)
    assert main(["train", "--data", reg_csv, "--target", "price", "--val-split", "0", "--epochs", "20",
                 "--out", "m.npz", "--json"]) == 0
    final = json.loads(capsys.readouterr().out.splitlines()[-1])["final"]
    assert main(["evaluate", "m.npz", "--data", reg_csv]) == 0
    out = capsys.readouterr().out
    assert f"; {final['train_loss']:.4f} of the standardised targets, as train shows it" in out
    assert f"R² {final['train_r2']:.3f}" in out and "in the targets' units" in out
