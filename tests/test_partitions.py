"""Data in partitions (a folder or glob of NPY or CSV files), read in one process; the cluster's
side is in test_distributed.py."""

import numpy as np
import pytest

from deltaprop.cli import main
from deltaprop.data.dataset import Standardizer
from deltaprop.data.partitions import (combine_moments, load_partitions, moments, partition_files,
                                       standardizer_from_moments)
from deltaprop.errors import DataError
from deltaprop.io import load_model


def _table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 100.0] + [5.0, -3.0, 1e4]
    y = np.array(["a", "b", "c"])[(X[:, 0] > 5).astype(int) + (X[:, 1] > -3).astype(int)]
    return X, y


def write_csv_parts(folder, X, y, cuts, header="u,v,w,label"):
    folder.mkdir(exist_ok=True)
    paths = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(X)])):
        p = folder / f"part{i}.csv"
        p.write_text(header + "\n" + "".join(",".join(repr(float(v)) for v in X[r]) + f",{y[r]}\n"
                                             for r in range(a, b)))
        paths.append(p)
    return paths


def test_chan_combination_equals_one_pass_to_rounding():
    # columns with a mean 1e6 times their spread: the naive sum of squares loses every digit
    rng = np.random.default_rng(1)
    A = rng.normal(size=(1000, 3)) * [1.0, 1e-3, 5.0] + [1e6, 2.0, -7.0]
    cuts = [0, 1, 130, 131, 600, 1000]  # a one-row part and an empty one too
    parts = [moments(A[a:b]) for a, b in zip(cuts[:-1], cuts[1:])] + [moments(A[:0])]
    std = standardizer_from_moments(*combine_moments(parts))
    ref = Standardizer().fit(A)
    np.testing.assert_allclose(std.mean, ref.mean, rtol=1e-14)
    # any method's spread is off by about kappa * eps relative, kappa = |mean| / spread (the
    # means of the parts carry an absolute error of |mean| eps); 1e6 for the first column
    kappa = np.maximum(1.0, np.abs(ref.mean) / ref.scale)
    assert np.all(np.abs(std.scale - ref.scale) <= 50 * np.finfo(float).eps * kappa * ref.scale)


def test_folder_equals_one_file_bit_for_bit(tmp_path):
    # the same rows in three CSV partitions or in one file: the same weights; the first
    # partition holds class "a" only (classes are the union over partitions)
    X, y = _table()
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    n_a = int(np.sum(y == "a"))
    write_csv_parts(tmp_path / "parts", X, y, [n_a, n_a + 5])
    write_csv_parts(tmp_path / "whole", X, y, [])
    outs = []
    for name, data in (("a", tmp_path / "parts"), ("b", tmp_path / "whole" / "part0.csv"),
                       ("c", str(tmp_path / "parts" / "part*.csv"))):
        out = str(tmp_path / f"{name}.npz")
        assert main(["train", "--data", str(data), "--target", "label", "--epochs", "3", "--dtype", "float64",
                     "--mode", "minibatch", "--quiet", "--out", out]) == 0
        outs.append(load_model(out))
    (a, ia), (b, ib), (c, _) = outs
    assert ia["classes"] == ib["classes"] == ["a", "b", "c"]
    assert np.array_equal(a.flat, b.flat) and np.array_equal(a.flat, c.flat)
    assert ia["standardizer"] == ib["standardizer"]


def test_npy_partitions(tmp_path):
    rng = np.random.default_rng(2)
    A = np.column_stack([rng.normal(size=(40, 2)), rng.normal(size=40)])
    (tmp_path / "p").mkdir()
    np.save(tmp_path / "p" / "0.npy", A[:15])
    np.save(tmp_path / "p" / "1.npy", A[15:])
    ds = load_partitions(tmp_path / "p", "-1")
    assert ds.task == "regression" and ds.partition_rows == [15, 25]
    assert np.array_equal(ds.X, A[:, :2]) and np.array_equal(ds.T[:, 0], A[:, 2])


def test_empty_glob_and_folder(tmp_path):
    with pytest.raises(DataError, match="no files match"):
        partition_files(str(tmp_path / "nothing*.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .npy, .csv"):
        partition_files(tmp_path / "empty")


def test_mixed_formats_refused(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    np.save(tmp_path / "b.npy", np.zeros((2, 2)))
    with pytest.raises(DataError, match="mix formats"):
        partition_files(tmp_path)


def test_other_columns_name_the_file(tmp_path, capsys):
    X, y = _table(30)
    write_csv_parts(tmp_path / "p", X[:20], y[:20], [10])
    bad = tmp_path / "p" / "part9.csv"
    bad.write_text("u,v,z,label\n1,2,3,a\n")  # one class only: read on, the columns are wrong
    assert main(["train", "--data", str(tmp_path / "p"), "--target", "label", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "part9.csv" in err and "feature columns differ" in err and "Traceback" not in err


def test_empty_glob_cli_exit_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none-*.csv"), "--target", "y", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "no files match" in err and "Traceback" not in err


def test_partitions_need_a_target(tmp_path, capsys):
    X, y = _table(20)
    write_csv_parts(tmp_path / "p", X, y, [10])
    assert main(["train", "--data", str(tmp_path / "p"), "--epochs", "1"]) == 2
    assert "--target is required with partitions" in capsys.readouterr().err


def test_a_file_named_like_a_glob_is_that_file(tmp_path):
    from deltaprop.data.partitions import is_partitioned

    f = tmp_path / "day[1].csv"
    f.write_text("x,y\n1,2\n")
    assert not is_partitioned(f) and is_partitioned(tmp_path / "day*.csv") and is_partitioned(tmp_path)
