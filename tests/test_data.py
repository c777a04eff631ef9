import gzip

import numpy as np
import pytest

from deltaprop.data import BUILTIN, Standardizer, load_builtin, load_csv, split
from deltaprop.errors import DataError


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_string_labels_become_classes_and_delimiter_is_detected(tmp_path):
    p = write(tmp_path, "a;b;kind\n1;2;cat\n3;4;dog\n5;6;cat\n7;8;bird\n")
    ds = load_csv(p, "kind")
    assert ds.classes == ["bird", "cat", "dog"] and ds.task == "classification"
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6], [7, 8]])
    np.testing.assert_array_equal(ds.T.argmax(1), [1, 2, 1, 0])
    assert ds.feature_names == ["a", "b"]


def test_two_classes_give_one_column_and_regression_stays_numeric(tmp_path):
    p = write(tmp_path, "x,y\n1,yes\n2,no\n3,yes\n")
    assert load_csv(p, "y").T.ravel().tolist() == [1, 0, 1]
    ds = load_csv(write(tmp_path, "x,z\n1,0.5\n2,1.5\n3,2.25\n", "r.csv"), "z")
    assert ds.task == "regression" and ds.T.ravel().tolist() == [0.5, 1.5, 2.25]


def test_gzip_files(tmp_path):
    p = tmp_path / "d.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("a,t\n1,0\n2,1\n")
    assert load_csv(p, "t").X.ravel().tolist() == [1, 2]


@pytest.mark.parametrize("text,target,match", [
    ("a,b,t\n1,2,0\n3,4\n", "t", r"line 3 has 2 cells but the header has 3 \(ragged row\)"),
    ("a,b,t\n1,2,0\n3,x4,1\n", "t", r"line 3, column 'b': 'x4' is not a number"),
    ("a,b,t\n1,,0\n", "t", r"line 2, column 'b': an empty cell"),
    ("a,b,t\n1,nan,0\n", "t", r"line 2, column 'b': 'nan' is not a finite number"),
    ("a,b,t\n1,inf,0\n", "t", r"line 2, column 'b': 'inf' is not a finite number"),
    ("a,b,t\n1,2,0\n", "label", r"no target column 'label'; columns are: a, b, t"),
    ("a,b,t\n", "t", r"no data rows"),
    ("", "t", r"the file is empty"),
    ("a,a,t\n1,2,0\n", "t", r"header names repeated: a"),
    ("a,b,t\n1,2,\n", "t", r"line 2, column 't': the target cell is empty"),
])
def test_bad_csv_names_line_and_column(tmp_path, text, target, match):
    p = write(tmp_path, text)
    with pytest.raises(DataError, match=match):
        load_csv(p, target)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "nope.csv", "t")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match="cannot be read as UTF-8"):
        load_csv(p, "t")
    with pytest.raises(DataError, match="is a directory"):
        load_csv(tmp_path, "t")


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_sets_match_their_listing(name):
    ds = load_builtin(name)
    assert (len(ds), ds.n_features) == BUILTIN[name][1:3]
    assert np.all(np.isfinite(ds.X)) and np.all(np.isfinite(ds.T))


def test_builtin_contents():
    assert load_builtin("xor").T.ravel().tolist() == [0, 1, 1, 0]
    assert load_builtin("parity").T.ravel().tolist() == [0, 1, 1, 0, 1, 0, 0, 1]
    digits = load_builtin("digits")
    assert digits.classes == list(range(10)) and digits.X.max() == 16
    assert load_builtin("iris").classes == ["setosa", "versicolor", "virginica"]


def test_split_and_standardizer_fit_on_training_only(rng):
    ds = load_builtin("iris")
    tr, va = split(ds, 0.2, rng)
    assert len(tr) == 120 and len(va) == 30
    st = Standardizer().fit(tr.X)
    np.testing.assert_allclose(st.transform(tr.X).mean(0), 0, atol=1e-12)
    assert not np.allclose(st.transform(va.X).mean(0), 0, atol=1e-3)
    const = Standardizer().fit(np.ones((5, 2)))
    np.testing.assert_array_equal(const.transform(np.ones((2, 2))), 0)
