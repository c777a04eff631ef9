"""Task inference for CSV targets and several target columns (--target a,b,c)."""

import numpy as np
import pytest

from deltaprop.config import TrainConfig
from deltaprop.data import load_csv
from deltaprop.errors import DataError
from deltaprop.runs import prepare_run


def _write(tmp_path, header, rows):
    p = tmp_path / "t.csv"
    p.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return str(p)


def test_a_target_written_with_decimals_is_regression(tmp_path):
    rows = [(i, f"{i % 3}.0") for i in range(30)]  # three whole values, written as floats
    assert load_csv(_write(tmp_path, ["x", "y"], rows), "y").task == "regression"
    rows = [(i, i % 3) for i in range(30)]  # the same values written as integers: labels
    assert load_csv(_write(tmp_path, ["x", "y"], rows), "y").task == "classification"


def test_nearly_one_class_per_row_warns(tmp_path):
    rows = [(i, i) for i in range(16)]  # the case: 16 distinct values in 16 rows
    with pytest.warns(UserWarning, match="16 distinct integer values in 16 rows.*task='regression'"):
        ds = load_csv(_write(tmp_path, ["x", "y"], rows), "y")
    assert ds.task == "classification"
    assert load_csv(_write(tmp_path, ["x", "y"], rows), "y", task="regression").task == "regression"


def test_several_target_columns(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    Y = np.column_stack([X[:, 0] * 100 + 50, 3 * X[:, 1] - 1e3, np.tanh(X.sum(axis=1))])
    path = _write(tmp_path, ["x0", "Weight", "x1", "Waist", "Pulse"],
                  [(a, p, b, q, r) for (a, b), (p, q, r) in zip(X, Y)])
    ds = load_csv(path, "Weight,Waist,Pulse")
    assert ds.task == "regression" and ds.target_names == ["Weight", "Waist", "Pulse"]
    assert ds.feature_names == ["x0", "x1"]
    np.testing.assert_allclose(ds.T, Y)
    with pytest.raises(DataError, match="no target column 'Nope'"):
        load_csv(path, "Weight,Nope")
    with pytest.raises(DataError, match="regression targets"):
        load_csv(path, "Weight,Waist", task="classification")
    run = prepare_run(TrainConfig(data=path, target="Weight,Waist,Pulse", epochs=40))
    assert run.model.network.n_outputs == 3 and run.model.target_scaler is not None
    run.fit()
    # Held-out MSE per column well below each column's variance (predicting the mean).
    v = run.validation
    mse = ((run.model.predict(v.X) - v.T) ** 2).mean(axis=0)
    assert np.all(mse < 0.5 * v.T.var(axis=0))


def test_several_targets_must_be_numbers(tmp_path):
    path = _write(tmp_path, ["x", "a", "b"], [(1, 2, "cat"), (2, 3, "dog")])
    with pytest.raises(DataError, match="line 2, column 'b': 'cat' is not a number"):
        load_csv(path, "a,b")
