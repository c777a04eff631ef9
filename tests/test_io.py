import json
import pickle
import zipfile

import numpy as np
import pytest

from deltaprop import Network, load_model, save_model
from deltaprop.errors import ModelFileError
from deltaprop.io import FORMAT_VERSION, read_npz, write_npz_atomic


@pytest.fixture
def net(rng):
    n = Network([4, 6, 3], "relu", "softmax", "cross_entropy", dtype="float32", train_bias=False, seed=rng)
    n.layers[0].b[...] = rng.normal(size=6)
    return n


def test_round_trip_predicts_exactly(net, rng, tmp_path):
    path = tmp_path / "m.npz"
    save_model(path, net, info={"classes": ["a", "b", "c"]})
    loaded, info = load_model(path)
    X = rng.normal(size=(9, 4))
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert loaded.dtype == np.float32 and info["classes"] == ["a", "b", "c"]
    assert loaded.to_config() == net.to_config()
    assert not loaded.layers[0].train_bias


def test_never_overwrites_unless_asked(net, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"precious")
    with pytest.raises(ModelFileError, match="already exists; use --force to overwrite it"):
        save_model(path, net)
    assert path.read_bytes() == b"precious"
    save_model(path, net, overwrite=True)
    assert load_model(path)[0].n_params == net.n_params
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def test_truncated_file(net, tmp_path):
    path = tmp_path / "m.npz"
    save_model(path, net)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(path)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_model(tmp_path / "empty.npz")
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "nope.npz")


def test_pickle_is_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    path = tmp_path / "evil.npz"
    np.savez(path, params=np.array([Boom()], dtype=object), __meta__=np.frombuffer(b"{}", np.uint8))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelFileError):
        load_model(raw)


def test_newer_format_version_is_refused(net, tmp_path):
    path = tmp_path / "m.npz"
    meta = {"format": "deltaprop-model", "version": FORMAT_VERSION + 1, "network": net.to_config()}
    write_npz_atomic(path, {"params": net.flat}, meta)
    with pytest.raises(ModelFileError, match="newer deltaprop .*format version 2"):
        load_model(path)


def test_hand_edited_metadata_and_wrong_shapes(net, tmp_path):
    path = tmp_path / "m.npz"
    meta = {"format": "deltaprop-model", "version": 1, "network": net.to_config()}
    write_npz_atomic(path, {"params": net.flat[:-1]}, meta)
    with pytest.raises(ModelFileError, match="parameters have shape"):
        load_model(path)
    bad = json.loads(json.dumps(meta))
    bad["network"]["layers"][0]["activation"] = {"name": "swish"}
    write_npz_atomic(path, {"params": net.flat}, bad, overwrite=True)
    with pytest.raises(ModelFileError, match="unknown activation 'swish'"):
        load_model(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__meta__.npy", b"garbage")
    with pytest.raises(ModelFileError):
        read_npz(path)


def test_saved_files_get_the_ordinary_mode(net, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        save_model(tmp_path / "m.npz", net)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o644


def test_network_pickles_with_its_views_intact(net, rng):
    import copy
    import pickle

    net.init = "he_uniform"
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), net.copy()):
        assert clone.flat.tobytes() == net.flat.tobytes() and clone.init == "he_uniform"
        clone.layers[0].W[0, 0] += 1.0  # the layer's weights are still views into clone.flat
        assert clone.flat[0] == net.flat[0] + 1.0
        X = rng.normal(size=(3, 4)).astype(np.float32)
        clone.layers[0].W[0, 0] -= 1.0
        assert np.array_equal(clone.predict(X), net.predict(X))


def test_model_rejects_text_and_nan_inputs_with_its_own_error(net):
    from deltaprop.data import Dataset
    from deltaprop.errors import DataError
    from deltaprop.model import Model

    model = Model(net, task="classification", classes=["a", "b", "c"])
    with pytest.raises(DataError, match="not numeric"):
        model.predict_outputs(np.array([["x", "y", "z", "w"]]))
    X = np.ones((3, 4))
    X[2, 1] = np.nan
    with pytest.raises(DataError, match=r"inputs contain NaN or inf \(1 cells; first at row 2, column 1\)"):
        model.predict_outputs(X)
    with pytest.raises(DataError, match="first at row 2, column 1"):
        model.evaluate(Dataset(X, np.eye(3), "classification"))


def test_save_model_takes_a_model_or_a_fitted_estimator_and_names_anything_else(tmp_path, rng):
    from deltaprop.data.dataset import Dataset
    from deltaprop.model import Model, fit_dataset

    X = rng.normal(size=(30, 3)) * 10 + 5
    ds = Dataset(X, (X[:, :1] > 5).astype(float), "classification", "d", classes=["no", "yes"])
    model, _ = fit_dataset(ds, hidden=(4,), epochs=2, batch_size=8, seed=0)
    save_model(tmp_path / "m.npz", model)
    back = Model.load(tmp_path / "m.npz")  # the standardisation and classes came with it
    assert back.classes == model.classes and back.standardizer is not None
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    with pytest.raises(TypeError, match="save_model saves a Network, a Model or a fitted deltaprop estimator, "
                                        "not dict"):
        save_model(tmp_path / "x.npz", {"W": 1})
    assert not (tmp_path / "x.npz").exists()
    sk = pytest.importorskip("deltaprop.sklearn")
    with pytest.warns(UserWarning, match="Maximum iterations"):  # (scikit-learn's ConvergenceWarning)
        est = sk.BackpropRegressor(hidden_layer_sizes=(4,), max_iter=3).fit(X, X[:, 0])
    save_model(tmp_path / "e.npz", est)
    np.testing.assert_allclose(Model.load(tmp_path / "e.npz").predict(X).ravel(), est.predict(X), rtol=1e-12)


def test_outputs_written_together_are_all_there_or_none(tmp_path, monkeypatch):
    import os

    from deltaprop.io import all_or_nothing, write_bytes_atomic, write_text_atomic

    old = tmp_path / "b.txt"
    old.write_text("the user's")
    with pytest.raises(ModelFileError, match="c.txt: cannot be written"):
        with all_or_nothing():
            write_text_atomic(tmp_path / "a.txt", "new a")
            write_text_atomic(old, "new b")
            assert not (tmp_path / "a.txt").exists() and old.read_text() == "the user's"  # nothing renamed yet
            real = os.fsync

            def full(fd):  # the third file meets a full disk
                raise OSError(28, "No space left on device")
            monkeypatch.setattr(os, "fsync", full)
            write_bytes_atomic(tmp_path / "c.txt", b"c")
    monkeypatch.setattr(os, "fsync", real)
    assert sorted(os.listdir(tmp_path)) == ["b.txt"] and old.read_text() == "the user's"  # no temporary left
    with all_or_nothing():
        write_text_atomic(tmp_path / "a.txt", "a")
        with all_or_nothing():  # an inner block commits with the outer one
            write_text_atomic(tmp_path / "d.txt", "d")
        assert not (tmp_path / "d.txt").exists()
    assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "d.txt").read_text() == "d"


def test_a_refused_rename_at_the_blocks_end_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os

    from deltaprop.io import all_or_nothing, write_text_atomic

    (tmp_path / "b.txt").write_text("old b")
    real, calls = os.replace, []

    def busy_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(16, "Device or resource busy")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", busy_second)
    with pytest.raises(ModelFileError, match="b.txt: cannot be written \\(Device or resource busy\\)"):
        with all_or_nothing():
            for name in ("a.txt", "b.txt", "c.txt"):
                write_text_atomic(tmp_path / name, "new " + name)
    # the first rename is done and cannot be undone; the rest stay as they were, no temporaries
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"] and (tmp_path / "b.txt").read_text() == "old b"
