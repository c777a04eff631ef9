"""Data formats beyond plain numeric CSV: categorical CSV columns, NPY/NPZ arrays, IDX files,
and the dispatch of ``load_data`` on the file name."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from deltaprop.data import (data_format, load_arrays, load_csv, load_data, load_idx, read_idx, split,
                            write_idx)
from deltaprop.errors import ConfigError, DataError, ModelFileError
from deltaprop.model import Model, fit_dataset


def write(path, text):
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- categorical CSV
PETS = ("size,colour,legs,kind\n"
        "1.0,red,4,cat\n"
        "2.5,green,2,bird\n"
        "1.2,red,4,cat\n"
        "9.0,blue,4,dog\n"
        "8.5,green,4,dog\n"
        "0.3,blue,2,bird\n")


def test_categorical_column_is_one_hot_encoded_in_place(tmp_path):
    ds = load_csv(write(tmp_path / "pets.csv", PETS), "kind", categorical=["colour"])
    # sorted categories, indicator columns where the column was
    assert ds.categories == {"colour": ["blue", "green", "red"]}
    assert ds.feature_names == ["size", "colour=blue", "colour=green", "colour=red", "legs"]
    np.testing.assert_array_equal(ds.X[:, 1:4], [[0, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0],
                                                 [1, 0, 0]])
    np.testing.assert_array_equal(ds.X[:, 0], [1.0, 2.5, 1.2, 9.0, 8.5, 0.3])
    # subsets (the train/validation split) keep the record
    tr, _ = split(ds, 0.5, np.random.default_rng(0))
    assert tr.categories == ds.categories


def test_saved_categories_encode_new_data_the_same_way(tmp_path):
    train = load_csv(write(tmp_path / "pets.csv", PETS), "kind", categorical=["colour"])
    # New data: other column order, only two of the colours, in another order, no target.
    new = write(tmp_path / "new.csv", "legs,colour,size\n4,red,1.0\n2,blue,0.3\n")
    ds = load_csv(new, None, features=train.feature_names, categories=train.categories)
    assert ds.feature_names == train.feature_names
    np.testing.assert_array_equal(ds.X, train.X[[0, 5]])


def test_categories_are_saved_with_the_model_and_applied_at_prediction(tmp_path):
    train = load_csv(write(tmp_path / "pets.csv", PETS), "kind", categorical=["colour"])
    model, _ = fit_dataset(train, hidden=(4,), epochs=3, batch_size=2, seed=0)
    assert model.categories == train.categories
    model.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    assert loaded.categories == {"colour": ["blue", "green", "red"]}
    ds = load_data(str(tmp_path / "pets.csv"), "kind", features=loaded.feature_names,
                   categories=loaded.categories, classes=loaded.classes, task=loaded.task)
    np.testing.assert_array_equal(loaded.predict(loaded.align(ds).X), model.predict(train.X))


def test_unseen_category_at_prediction_names_column_value_and_line(tmp_path):
    train = load_csv(write(tmp_path / "pets.csv", PETS), "kind", categorical=["colour"])
    new = write(tmp_path / "new.csv", "size,colour,legs\n1,red,4\n2,purple,4\n")
    with pytest.raises(DataError, match=r"new.csv: line 3, column 'colour': category 'purple' was not seen "
                                        r"in training; known categories: 'blue', 'green', 'red'"):
        load_csv(new, None, categories=train.categories)


def test_model_file_with_bad_categories_is_refused(tmp_path):
    train = load_csv(write(tmp_path / "pets.csv", PETS), "kind", categorical=["colour"])
    model, _ = fit_dataset(train, hidden=(2,), epochs=1, batch_size=2, seed=0)
    model.categories = {"colour": "red"}  # a string, not a list of categories
    model.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="bad model info.*categories must map column names"):
        Model.load(tmp_path / "m.npz")


@pytest.mark.parametrize("text,kwargs,match", [
    (PETS, {"categorical": ["color"]}, r"no categorical column 'color'; columns are: size, colour"),
    (PETS, {"categorical": ["kind"]}, r"column 'kind' is the target; it cannot also be a categorical input"),
    ("colour,t\nred,0\n,1\n", {"categorical": ["colour"]}, r"line 3, column 'colour': an empty cell"),
    (PETS, {}, r"line 2, column 'colour': 'red' is not a number \(declare 'colour' categorical"),
])
def test_bad_categorical_requests(tmp_path, text, kwargs, match):
    target = "kind" if "kind" in text else "t"
    with pytest.raises(DataError, match=match):
        load_csv(write(tmp_path / "d.csv", text), target, **kwargs)


def test_a_lone_column_name_is_not_read_letter_by_letter(tmp_path):
    ds = load_csv(write(tmp_path / "pets.csv", PETS), "kind", categorical="colour")
    assert list(ds.categories) == ["colour"]


# --------------------------------------------------------------------------- NPY / NPZ
def test_npz_round_trip_labels_and_images(tmp_path, rng):
    images = rng.integers(0, 256, size=(12, 3, 4)).astype(np.uint8)
    labels = np.array(["a", "b", "c"] * 4)
    np.savez(tmp_path / "d.npz", X=images, y=labels)
    ds = load_arrays(tmp_path / "d.npz", "y")
    assert ds.X.shape == (12, 12) and ds.X.dtype == np.float64
    np.testing.assert_array_equal(ds.X, images.reshape(12, 12))   # row by row
    assert ds.classes == ["a", "b", "c"] and ds.task == "classification"
    np.testing.assert_array_equal(ds.T.argmax(1), [0, 1, 2] * 4)
    assert ds.target_names == ["y"]


def test_npz_regression_targets_and_inputs_only(tmp_path, rng):
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    np.savez_compressed(tmp_path / "r.npz", inputs=X, out=Y)
    ds = load_arrays(tmp_path / "r.npz", "out", inputs="inputs")
    assert ds.task == "regression"
    np.testing.assert_array_equal(ds.T, Y)
    np.testing.assert_array_equal(ds.X, X)
    # prediction data may lack the target array
    only = load_arrays(tmp_path / "r.npz", "label", inputs="inputs", require_target=False)
    assert only.T.shape == (10, 0)


@pytest.mark.parametrize("col", [-1, 2, "2"])
def test_npy_target_column(tmp_path, col):
    A = np.array([[0.5, 1.0, 0], [1.5, 2.0, 1], [2.5, 3.0, 0], [3.5, 4.0, 1]])
    np.save(tmp_path / "a.npy", A)
    ds = load_arrays(tmp_path / "a.npy", col)
    np.testing.assert_array_equal(ds.X, A[:, :2])
    assert ds.classes == [0, 1] and ds.T.ravel().tolist() == [0, 1, 0, 1]
    # The same file for prediction: a model of 2 features sees the target column is there.
    assert load_arrays(tmp_path / "a.npy", col, features=["x0", "x1"], require_target=False).X.shape == (4, 2)
    # ... and a file without it is read as inputs only.
    np.save(tmp_path / "b.npy", A[:, :2])
    only = load_arrays(tmp_path / "b.npy", col, features=["x0", "x1"], require_target=False)
    assert only.X.shape == (4, 2) and only.T.shape == (4, 0)


def test_npy_model_round_trip(tmp_path, rng):
    X = rng.normal(size=(40, 3))
    A = np.column_stack([X, (X[:, 0] > 0).astype(float)])
    np.save(tmp_path / "a.npy", A)
    model, _ = fit_dataset(load_data(str(tmp_path / "a.npy"), "-1"), hidden=(3,), epochs=2, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    ds = load_data(str(tmp_path / "a.npy"), loaded.target_names[0], require_target=False,
                   features=loaded.feature_names, classes=loaded.classes)
    np.testing.assert_array_equal(loaded.predict(ds.X), model.predict(X))


class Thing:
    pass


def make_object_npz(path):
    np.savez(path, X=np.array([Thing(), Thing()], dtype=object), y=np.array([0, 1]))


def make_object_npy(path):
    np.save(path, np.array([[1, "a"], [2, None]], dtype=object), allow_pickle=True)


def make_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"X": [[1, 2]]}, f)


def make_truncated_npy(path):
    np.save(path, np.arange(100.0).reshape(25, 4))
    data = path.read_bytes()
    path.write_bytes(data[:-40])


def make_truncated_npz(path):
    np.savez(path, X=np.arange(100.0).reshape(25, 4), y=np.arange(25))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("name,make,target,match", [
    ("o.npz", make_object_npz, "y", r"array 'X' holds Python objects \(dtype object\).*allow_pickle=False"),
    ("o.npy", make_object_npy, 1, r"array 'array' holds Python objects"),
    ("p.npz", make_pickle, "y", r"not a NumPy .npy or .npz file \(it starts with b'\\x80"),
    ("e.npy", lambda p: p.write_bytes(b""), 0, r"not a NumPy .npy or .npz file \(it is empty\)"),
    ("t.npy", make_truncated_npy, 0, r"cannot be read \(truncated or corrupt"),
    ("t.npz", make_truncated_npz, "y", r"t.npz: .*(truncated or corrupt)"),
    ("k.npz", lambda p: np.savez(p, inputs=np.ones((2, 2)), y=[0, 1]), "y", r"no input array 'X'; arrays are: inputs, y"),
    ("k.npz", lambda p: np.savez(p, X=np.ones((2, 2)), y=[0, 1]), "label", r"no target array 'label'; arrays are: X, y"),
    ("s.npz", lambda p: np.savez(p, X=np.ones(4), y=[0, 1, 0, 1]), "y", r"inputs 'X' have shape \(4,\); give a 2-D array"),
    ("s.npz", lambda p: np.savez(p, X=np.array([["a", "b"]]), y=[0]), "y", r"inputs 'X' have dtype <U1; they must be numbers"),
    ("s.npz", lambda p: np.savez(p, X=np.ones((4, 2)), y=[0, 1, 0]), "y", r"the inputs have 4 rows but the targets 'y' have 3"),
    ("s.npz", lambda p: np.savez(p, X=np.ones((2, 2)), y=np.ones((2, 2, 2))), "y", r"targets 'y' have shape \(2, 2, 2\)"),
    ("s.npz", lambda p: np.savez(p, X=np.ones((2, 2)), y=np.ones((2, 3))), None, None),  # fine: inputs only
    ("n.npz", lambda p: np.savez(p, X=np.array([[1, np.nan]]), y=[0]), "y", r"inputs 'X' contain NaN or inf \(1 cells; first at row 0, column 1\)"),
    ("n.npz", lambda p: np.savez(p, X=np.ones((2, 1)), y=[0.5, np.inf]), "y", r"targets 'y' contain NaN or inf \(first at row 1\)"),
    ("c.npy", lambda p: np.save(p, np.ones((3, 3))), "last", r"in a .npy file the target is a column number, got 'last'"),
    ("c.npy", lambda p: np.save(p, np.ones((3, 3))), 3, r"no target column 3; the array has 3 columns"),
    ("c.npy", lambda p: np.save(p, np.ones(3)), 0, r"the array has shape \(3,\); a .npy file with a target column must be 2-D"),
])
def test_bad_array_files(tmp_path, name, make, target, match):
    path = tmp_path / name
    make(path)
    if match is None:
        assert load_arrays(path, target).X.shape == (2, 2)
        return
    with pytest.raises(DataError, match=match):
        load_arrays(path, target)


def test_missing_array_file(tmp_path):
    with pytest.raises(DataError, match="nope.npz: no such file"):
        load_arrays(tmp_path / "nope.npz", "y")


def test_two_dimensional_classification_targets_are_refused(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((2, 2)), y=np.ones((2, 3)))
    with pytest.raises(DataError, match="class labels must be one column"):
        load_arrays(tmp_path / "d.npz", "y", task="classification")


# --------------------------------------------------------------------------- IDX
def idx_bytes(type_code: int, dims, payload: bytes) -> bytes:
    """An IDX file built straight from the format description, independent of write_idx."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_idx_reader_follows_the_format_byte_for_byte(tmp_path):
    # MNIST's labels magic is 0x00000801, its images magic 0x00000803
    (tmp_path / "l.idx1-ubyte").write_bytes(bytes.fromhex("00000801") + struct.pack(">I", 3) + bytes([7, 0, 9]))
    np.testing.assert_array_equal(read_idx(tmp_path / "l.idx1-ubyte"), [7, 0, 9])
    # int16 big-endian: 0x0102 = 258, 0xFFFE = -2
    (tmp_path / "s.idx").write_bytes(idx_bytes(0x0B, [1, 2], bytes.fromhex("0102FFFE")))
    np.testing.assert_array_equal(read_idx(tmp_path / "s.idx"), [[258, -2]])
    # float64 big-endian
    (tmp_path / "d.idx").write_bytes(idx_bytes(0x0E, [2], struct.pack(">2d", 1.5, -0.25)))
    np.testing.assert_array_equal(read_idx(tmp_path / "d.idx"), [1.5, -0.25])


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, rng, dtype, gz):
    arr = (rng.normal(size=(5, 2, 3)) * 50).astype(dtype)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(path, arr)
    if gz:
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_load_idx_images_and_labels(tmp_path, rng):
    images = rng.integers(0, 256, size=(6, 2, 2)).astype(np.uint8)
    labels = np.array([3, 1, 3, 0, 1, 0], np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    ds = load_data(str(tmp_path / "train-images-idx3-ubyte.gz"), labels=str(tmp_path / "train-labels-idx1-ubyte.gz"))
    np.testing.assert_array_equal(ds.X, images.reshape(6, 4))
    assert ds.classes == [0, 1, 3] and ds.T.argmax(1).tolist() == [2, 1, 2, 0, 1, 0]
    only = load_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert only.T.shape == (6, 0)


@pytest.mark.parametrize("content,match", [
    (b"\x00\x00", r"truncated IDX file: 2 bytes, the header alone needs 4"),
    (b"\x01\x00\x08\x01" + b"\x00" * 6, r"bad magic number 0x01000801"),
    (idx_bytes(0x07, [2], b"\x01\x02"), r"unknown IDX data type code 0x07; valid: 0x08 \(uint8\)"),
    (bytes([0, 0, 8, 0]), r"declares 0 dimensions"),
    (idx_bytes(0x08, [2, 3], b"")[:9], r"truncated IDX header: 2 dimensions need 12 bytes, the file has 9"),
    (idx_bytes(0x08, [2, 3], b"\x00" * 5), r"truncated IDX file: sizes \(2, 3\) of uint8 need 6 data bytes, the file has 5"),
    (idx_bytes(0x0C, [2], b"\x00" * 7), r"sizes \(2,\) of int32 need 8 data bytes, the file has 7"),
    (idx_bytes(0x08, [2], b"\x00" * 3), r"1 unexpected bytes after the data of sizes \(2,\)"),
    (idx_bytes(0x0D, [2], struct.pack(">2f", 1.0, float("nan"))), r"NaN or inf at index \(1,\)"),
    (gzip.compress(idx_bytes(0x08, [4], b"\x00" * 4))[:-12], r"damaged or truncated gzip data"),
])
def test_bad_idx_files(tmp_path, content, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_idx(path)


def test_idx_labels_must_match_the_images(tmp_path):
    write_idx(tmp_path / "im.idx", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "l2.idx", np.zeros(2, np.uint8))
    write_idx(tmp_path / "l22.idx", np.zeros((3, 2), np.uint8))
    with pytest.raises(DataError, match=r"im.idx holds 3 items but .*l2.idx holds 2 labels"):
        load_idx(tmp_path / "im.idx", tmp_path / "l2.idx")
    with pytest.raises(DataError, match=r"a labels file must have 1 dimension .* sizes \(3, 2\)"):
        load_idx(tmp_path / "im.idx", tmp_path / "l22.idx")
    with pytest.raises(DataError, match="no such file"):
        load_idx(tmp_path / "im.idx", tmp_path / "missing.idx")


# --------------------------------------------------------------------------- dispatch
@pytest.mark.parametrize("name,fmt", [
    ("iris", "builtin"), ("a.csv", "csv"), ("a.csv.gz", "csv"), ("a.txt", "csv"), ("a.npy", "arrays"),
    ("A.NPZ", "arrays"), ("t10k-images-idx3-ubyte", "idx"), ("t10k-images.idx3-ubyte.gz", "idx"),
    ("x.idx", "idx"), ("x.idx.gz", "idx"),
])
def test_data_format_from_the_name(name, fmt):
    assert data_format(name) == fmt


def test_load_data_dispatches_and_refuses_options_of_other_formats(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), y=[0, 1, 0, 1])
    write_idx(tmp_path / "d.idx", np.ones((4, 2), np.uint8))
    assert load_data(str(tmp_path / "d.npz"), "y").classes == [0, 1]
    assert load_data(str(tmp_path / "d.idx")).X.shape == (4, 2)
    assert load_data("xor").name == "xor"
    with pytest.raises(ConfigError, match="categorical columns apply to CSV files only"):
        load_data(str(tmp_path / "d.npz"), "y", categorical=["a"])
    with pytest.raises(ConfigError, match="a separate labels file goes with IDX images only"):
        load_data(str(tmp_path / "d.npz"), "y", labels=str(tmp_path / "d.idx"))
    p = write(tmp_path / "d.csv", "a,t\n1,0\n2,1\n")
    assert load_data(str(p), "label", require_target=False).T.shape == (2, 0)
    with pytest.raises(DataError, match="no target column 'label'"):
        load_data(str(p), "label")


def test_idx_model_round_trip(tmp_path, rng):
    """Train on IDX files, save, and predict on the images alone, as the CLI does."""
    images = rng.integers(0, 256, size=(40, 3, 3)).astype(np.uint8)
    labels = (images.reshape(40, -1).mean(1) > 127).astype(np.uint8)
    write_idx(tmp_path / "im.idx3-ubyte", images)
    write_idx(tmp_path / "lab.idx1-ubyte", labels)
    train = load_data(str(tmp_path / "im.idx3-ubyte"), labels=str(tmp_path / "lab.idx1-ubyte"))
    model, _ = fit_dataset(train, hidden=(3,), epochs=2, batch_size=8, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    ds = load_data(str(tmp_path / "im.idx3-ubyte"), loaded.target_names[0], require_target=False,
                   features=loaded.feature_names, classes=loaded.classes, task=loaded.task)
    assert ds.T.shape == (40, 0)
    np.testing.assert_array_equal(loaded.predict(loaded.align(ds).X), model.predict(train.X))


def test_predict_reads_an_npy_of_the_inputs_for_a_model_trained_from_an_npz(tmp_path, rng, capsys):
    # the model names its target array 'y'; a .npy of exactly its inputs has no target column
    from deltaprop.cli import main

    X = rng.normal(size=(30, 3))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    np.save(tmp_path / "x.npy", X)
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--target", "y", "--epochs", "3",
                 "--out", str(tmp_path / "m.npz"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "x.npy")]) == 0
    lines = capsys.readouterr().out.split()
    assert lines[0] == "prediction" and len(lines) == 31
    model = Model.load(tmp_path / "m.npz")
    assert [int(v) for v in lines[1:]] == [int(v) for v in model.predict(X).ravel()]
    # a file of another width is still an error naming what is wrong
    np.save(tmp_path / "w.npy", X[:, :2])
    assert main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "w.npy")]) == 2
    assert "w.npy: the inputs have 2 columns but the model takes 3 features" in capsys.readouterr().err
    # one column too many: perhaps the target; say how to name it
    np.save(tmp_path / "t.npy", np.column_stack([X, X[:, 0] > 0]))
    assert main(["evaluate", str(tmp_path / "m.npz"), "--data", str(tmp_path / "t.npy")]) == 2
    assert ("t.npy: 4 columns for a model of 3 features; if one of them is the target, give its number with "
            "--target (e.g. --target -1)") in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "m.npz"), "--data", str(tmp_path / "t.npy"), "--target", "-1"]) == 0


def test_an_npy_of_no_rows_is_a_clear_error_alone_or_as_a_partition(tmp_path, capsys):
    from deltaprop.cli import main

    np.save(tmp_path / "e.npy", np.zeros((0, 5)))
    with pytest.raises(DataError, match=r"e.npy: inputs 'array' are empty \(shape \(0, 4\)\)"):
        load_arrays(tmp_path / "e.npy", -1)
    with pytest.raises(DataError, match=r"are empty \(shape \(0, 5\)\)"):
        load_arrays(tmp_path / "e.npy")
    (tmp_path / "parts").mkdir()
    np.save(tmp_path / "parts" / "a.npy", np.random.default_rng(0).random((20, 5)))
    np.save(tmp_path / "parts" / "b.npy", np.zeros((0, 5)))
    assert main(["train", "--data", str(tmp_path / "parts"), "--target", "-1", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "b.npy: inputs 'array' are empty" in err and err.count("\n") == 1


def test_predict_and_evaluate_read_what_train_read(tmp_path, capsys):
    # a folder of partitions; a 2-D target array of an .npz (its columns numbered in the
    # predictions' header); a file whose columns are all inputs although --target is named
    from deltaprop.cli import main

    rng = np.random.default_rng(0)
    A = rng.random((60, 5))
    A[:, -1] = A[:, 0] > 0.5
    (tmp_path / "parts").mkdir()
    np.save(tmp_path / "parts" / "a.npy", A[:30])
    np.save(tmp_path / "parts" / "b.npy", A[30:])
    m = str(tmp_path / "ps.npz")
    assert main(["train", "--data", str(tmp_path / "parts"), "--target", "-1", "--epochs", "2", "--out", m,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", m, "--data", str(tmp_path / "parts"), "--target", "-1"]) == 0
    assert capsys.readouterr().out.startswith("60 samples: loss ")
    assert main(["predict", m, "--data", str(tmp_path / "parts" / "*.npy")]) == 0
    assert len(capsys.readouterr().out.split()) == 61
    np.save(tmp_path / "x.npy", A[:, :4])
    assert main(["evaluate", m, "--data", str(tmp_path / "x.npy"), "--target", "-1"]) == 2
    assert "x.npy: its 4 columns are the model's inputs; none is left for the target '-1'" in capsys.readouterr().err
    X = rng.random((40, 3))
    np.savez(tmp_path / "r.npz", X=X, Y=np.column_stack([X.sum(1), X[:, 0] - X[:, 1]]))
    r = str(tmp_path / "r.npz.model.npz")
    assert main(["train", "--data", str(tmp_path / "r.npz"), "--target", "Y", "--epochs", "2", "--out", r,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", r, "--data", str(tmp_path / "r.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Y[0],Y[1]" and all(len(ln.split(",")) == 2 for ln in lines[1:]) and len(lines) == 41


def test_whole_number_labels_stored_as_floats_are_whole_numbers(tmp_path, capsys):
    # an .npy is one float array: its label column 0., 1., 7. gives the classes 0, 1, 7
    from deltaprop.cli import main

    rng = np.random.default_rng(0)
    A = np.column_stack([rng.random((30, 2)), rng.choice([0.0, 1.0, 7.0], 30)])
    np.save(tmp_path / "a.npy", A)
    ds = load_arrays(tmp_path / "a.npy", -1)
    assert ds.classes == [0, 1, 7] and all(type(c) is int for c in ds.classes)
    m = str(tmp_path / "m.npz")
    assert main(["train", "--data", str(tmp_path / "a.npy"), "--target", "-1", "--epochs", "2", "--out", m,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", m, "--data", str(tmp_path / "a.npy"), "--target", "-1"]) == 0
    assert set(capsys.readouterr().out.split()[1:]) <= {"0", "1", "7"}
    # a model saved with float classes (earlier releases) still reads such labels
    from deltaprop.data.dataset import encode_labels

    T, _, cls = encode_labels(np.array([1, 0, 7]), "classification", classes=[0.0, 1.0, 7.0])
    assert T.argmax(1).tolist() == [1, 0, 2] and cls == [0.0, 1.0, 7.0]


def test_partitions_for_prediction_keep_the_models_classes_and_may_lack_the_target(tmp_path, capsys):
    # prediction data usually lack the target; partitions holding some of the classes are read
    # with the model's classes, as one file of the same rows is
    from deltaprop.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    label = np.array(["a", "b", "c"])[(X[:, 0] > -0.4).astype(int) + (X[:, 0] > 0.4).astype(int)]
    for folder in ("all", "two", "none"):
        (tmp_path / folder).mkdir()

    def write(path, rows, with_label=True):
        with open(path, "w") as f:
            f.write("x0,x1" + (",label" if with_label else "") + "\n")
            for i in rows:
                f.write(f"{X[i, 0]},{X[i, 1]}" + (f",{label[i]}" if with_label else "") + "\n")

    write(tmp_path / "all" / "p0.csv", range(45))
    write(tmp_path / "all" / "p1.csv", range(45, 90))
    ab = [i for i in range(90) if label[i] != "c"]
    write(tmp_path / "two" / "p0.csv", ab[:20])
    write(tmp_path / "two" / "p1.csv", ab[20:])
    write(tmp_path / "two.csv", ab)
    write(tmp_path / "none" / "p0.csv", range(45), with_label=False)
    write(tmp_path / "none" / "p1.csv", range(45, 90), with_label=False)
    m = str(tmp_path / "m.npz")
    assert main(["train", "--data", str(tmp_path / "all"), "--target", "label", "--epochs", "5", "--out", m,
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", m, "--data", str(tmp_path / "two")]) == 0
    parts = capsys.readouterr().out
    assert main(["evaluate", m, "--data", str(tmp_path / "two.csv")]) == 0
    assert parts == capsys.readouterr().out and parts.startswith(f"{len(ab)} samples")
    assert main(["predict", m, "--data", str(tmp_path / "none")]) == 0
    assert len(capsys.readouterr().out.split()) == 91
    assert main(["evaluate", m, "--data", str(tmp_path / "two.csv"), "--target", "lable"]) == 2
    assert "two.csv: no target column 'lable'; columns are: x0, x1, label" in capsys.readouterr().err
