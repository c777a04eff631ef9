"""Every output is checked before the work that fills it; nothing of the user's is replaced
without --force; a file that cannot be written is one line and exit 2 (issue 13)."""

import hashlib
import os

import pytest

from deltaprop.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def model(tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert main(["train", "--data", "xor", "--epochs", "2", "--out", str(path), "--quiet"]) == 0
    capsys.readouterr()
    return path


UNWRITABLE = "/proc/deltaprop-test/x"  # no permission bit stops root; /proc refuses new files


@pytest.mark.parametrize("argv", [
    ["train", "--data", "xor", "--epochs", "2", "--out", "/proc/m.npz"],
    ["train", "--data", "xor", "--epochs", "2", "--checkpoint", "/proc/m.ckpt"],
    ["train", "--data", "xor", "--epochs", "2", "--out", "/nonexistent-folder/m.npz"],
    ["compare", "--problems", "xor", "--seeds", "1", "--out-dir", "/proc/cmp"],
])
def test_unwritable_or_missing_output_fails_before_training(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "epoch" not in out and "final" not in out  # refused before any work
    assert err.startswith("deltaprop: error: /") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("cmd", [
    lambda m, o: ["predict", str(m), "--data", "xor", "--out", o],
    lambda m, o: ["plot", "history", str(m), "--out", o],
    lambda m, o: ["export", str(m), o],
])
def test_other_commands_refuse_unwritable_outputs(capsys, model, cmd):
    pytest.importorskip("matplotlib")
    pytest.importorskip("onnx")
    code, _, err = run(capsys, *cmd(model, "/proc/out.file"))
    assert code == 2 and "/proc/out.file" in err and err.count("\n") == 1


def test_directory_as_output_with_force_is_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", str(tmp_path), "--force")
    assert code == 2 and f"{tmp_path}: is a directory" in err and "final" not in out


@pytest.mark.parametrize("side", [".config.toml", ".history.json"])
def test_side_files_are_not_replaced_without_force(capsys, tmp_path, side):
    out = tmp_path / "m.npz"
    mine = tmp_path / ("m.npz" + side)
    mine.write_text("mine")
    code, stdout, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", str(out))
    assert code == 2 and "already exists; use --force" in err and str(mine) in err
    assert mine.read_text() == "mine" and not out.exists() and "final" not in stdout
    assert run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", str(out), "--force")[0] == 0
    assert mine.read_text() != "mine"


def test_saved_config_comment_gives_a_command_that_works(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", "m.npz")[0] == 0
    with open("m.npz.config.toml") as f:
        text = f.read()
    assert "--force" in text.splitlines()[1]
    before = _digest("m.npz")
    code, _, err = run(capsys, "train", "--config", "m.npz.config.toml")
    assert code == 2 and "already exists" in err and _digest("m.npz") == before
    assert run(capsys, "train", "--config", "m.npz.config.toml", "--out", "other.npz")[0] == 0
    assert run(capsys, "train", "--config", "m.npz.config.toml", "--force")[0] == 0


def test_predict_refuses_to_replace_and_names_the_file(capsys, model, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("mine")
    code, _, err = run(capsys, "predict", str(model), "--data", "xor", "--out", str(out))
    assert code == 2 and f"{out} already exists" in err and out.read_text() == "mine"
    assert run(capsys, "predict", str(model), "--data", "xor", "--out", str(out), "--force")[0] == 0
    assert out.read_text().startswith("prediction")


def test_random_bytes_are_not_called_pickled(capsys, tmp_path):
    bad = tmp_path / "r.npz"
    bad.write_bytes(bytes(range(7, 250)) * 10)
    code, _, err = run(capsys, "predict", str(bad), "--data", "xor")
    assert code == 2 and "not a deltaprop model file" in err and "pickle" not in err


def test_misspelt_builtin_set_is_named(capsys):
    code, _, err = run(capsys, "train", "--data", "xorr")
    assert code == 2 and "xorr: no such file, and no built-in data set of that name (xor, " in err


def test_oserror_while_writing_is_one_line(capsys, tmp_path, monkeypatch):
    import deltaprop.io as io

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full_disk)
    code, _, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", str(tmp_path / "m.npz"))
    assert code == 2 and "m.npz: cannot be written (No space left on device)" in err
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary file left behind


def test_a_left_over_default_checkpoint_neither_blocks_a_run_nor_is_replaced(capsys, tmp_path, monkeypatch):
    # the default checkpoint is written only where a run is stopped early: a file an earlier
    # run left under that name stops only the runs that will certainly write it
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "train", "--data", "xor", "--epochs", "2", "--checkpoint-every", "1")[0] == 0
    before = _digest("deltaprop-checkpoint.npz")
    assert run(capsys, "train", "--data", "xor", "--epochs", "2")[0] == 0
    assert run(capsys, "train", "--data", "iris", "--epochs", "2", "--quiet")[0] == 0
    assert _digest("deltaprop-checkpoint.npz") == before and os.listdir() == ["deltaprop-checkpoint.npz"]
    code, _, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--checkpoint-every", "1")
    assert code == 2 and "already exists; resume from it with --resume deltaprop-checkpoint.npz" in err
    os.remove("deltaprop-checkpoint.npz")
    os.mkdir("deltaprop-checkpoint.npz")  # a folder of that name does not stop the run either
    assert run(capsys, "train", "--data", "xor", "--epochs", "2")[0] == 0
    os.mkfifo("fifo.npz")  # nor is a FIFO opened to see whether it is a checkpoint
    code, _, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--checkpoint", "fifo.npz")
    assert code == 2 and "fifo.npz already exists and is not a deltaprop checkpoint" in err


def test_a_stopped_run_keeps_the_file_under_its_checkpoint_name(tmp_path):
    import numpy as np

    from deltaprop import Network, Trainer
    from deltaprop.checkpoint import Checkpointer, load_checkpoint
    from deltaprop.training import Callback

    class StopAt(Callback):
        def on_epoch_end(self, trainer, logs):
            trainer.stop_training = logs["epoch"] == 2

    mine = tmp_path / "c.npz"
    mine.write_text("mine")
    (tmp_path / "c-2.npz").write_text("also mine")
    ck, other = Checkpointer(mine, every=0, keep_existing=True), Checkpointer(mine, every=0, keep_existing=True)
    X = np.random.default_rng(0).normal(size=(8, 2))
    Trainer(Network([2, 3, 1], seed=0), lr=0.1, mode="batch", callbacks=[StopAt(), ck]).fit(X, X[:, :1], 5)
    assert mine.read_text() == "mine" and (tmp_path / "c-2.npz").read_text() == "also mine"
    assert ck.path == str(tmp_path / "c-3.npz") and load_checkpoint(ck.path)[1]["epoch"] == 2
    # a second run stopped at the same moment takes the next name, never the same one
    Trainer(Network([2, 3, 1], seed=1), lr=0.1, mode="batch", callbacks=[StopAt(), other]).fit(X, X[:, :1], 5)
    assert other.path == str(tmp_path / "c-4.npz")
    assert load_checkpoint(ck.path)[1]["params"].tolist() != load_checkpoint(other.path)[1]["params"].tolist()


def test_the_training_data_are_never_an_output(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("d.csv", "w") as f:
        f.write("a,b,y\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(20)))
    before = _digest("d.csv")
    for flags in (["--out", "d.csv", "--force"], ["--out", "./d.csv"], ["--checkpoint", "d.csv", "--force"]):
        code, out, err = run(capsys, "train", "--data", "d.csv", "--target", "y", "--epochs", "2", *flags)
        assert code == 2 and "d.csv is the training data; give another output file name" in err, flags
    assert _digest("d.csv") == before
    # nor are the partitions of a folder or a glob
    import numpy as np

    os.makedirs("parts")
    rows = np.random.default_rng(0).random((20, 3))
    np.save("parts/p1.npy", rows[:10])
    np.save("parts/p2.npy", rows[10:])
    kept = [_digest("parts/p1.npy"), _digest("parts/p2.npy")]
    for data, flags in (("parts", ["--out", "parts/p1.npy", "--force"]),
                        ("parts/*.npy", ["--checkpoint", "parts/p2.npy", "--force"])):
        code, _, err = run(capsys, "train", "--data", data, "--target", "-1", "--epochs", "2", *flags)
        assert code == 2 and "is the training data" in err, (data, flags)
    assert [_digest("parts/p1.npy"), _digest("parts/p2.npy")] == kept
    # a file that is not a checkpoint is not offered for --resume
    with open("keep.csv", "w") as f:
        f.write("mine\n")
    code, _, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--checkpoint", "keep.csv")
    assert code == 2 and "keep.csv already exists and is not a deltaprop checkpoint" in err and "--resume" not in err


def _weights(path):
    from deltaprop import load_model

    return load_model(path)[0].flat.tobytes()


def test_a_saved_config_repeats_its_run_from_any_folder(capsys, tmp_path, monkeypatch):
    # the saved settings name no checkpoint the user did not name (repeating them twice must
    # not refuse on a checkpoint the first repeat would have named), and file names in them
    # are relative to the config's folder
    import shutil

    monkeypatch.chdir(tmp_path)
    os.makedirs("data")
    os.makedirs("models")
    with open("data/d.csv", "w") as f:
        f.write("a,b,y\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(20)))
    assert run(capsys, "train", "--data", "data/d.csv", "--target", "y", "--epochs", "3", "--seed", "1",
               "--out", "models/m.npz")[0] == 0
    with open("models/m.npz.config.toml") as f:
        text = f.read()
    assert "checkpoint" not in text and 'data = "../data/d.csv"' in text and 'out = "m.npz"' in text
    for i in (1, 2):
        assert run(capsys, "train", "--config", "models/m.npz.config.toml", "--out", f"again{i}.npz")[0] == 0
        assert _weights(f"again{i}.npz") == _weights("models/m.npz")
    assert not os.path.exists("models/m.npz.ckpt") and not os.path.exists("again1.npz.ckpt")
    os.makedirs("elsewhere")
    monkeypatch.chdir("elsewhere")
    assert run(capsys, "train", "--config", "../models/m.npz.config.toml", "--out", "m3.npz")[0] == 0
    assert _weights("m3.npz") == _weights("../models/m.npz")
    # a config of an earlier release: every path relative to the working folder, the default
    # checkpoint written out; it still repeats its run from there
    monkeypatch.chdir(tmp_path)
    with open("models/old.toml", "w") as f:
        f.write(text.replace('"../data/d.csv"', '"data/d.csv"').replace('"m.npz"', '"models/old.npz"')
                + 'checkpoint = "models/old.npz.ckpt"\n')
    assert run(capsys, "train", "--config", "models/old.toml")[0] == 0 and os.path.exists("models/old.npz")
    assert _weights("models/old.npz") == _weights("models/m.npz")
    assert run(capsys, "train", "--config", "models/old.toml", "--out", "models/old2.npz", "--checkpoint",
               "models/old2.ckpt")[0] == 0


def test_a_resumed_runs_saved_config_repeats_the_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "train", "--data", "xor", "--epochs", "3", "--checkpoint-every", "1")[0] == 0
    assert run(capsys, "train", "--resume", "deltaprop-checkpoint.npz", "--epochs", "5", "--out", "m.npz")[0] == 0
    with open("m.npz.config.toml") as f:
        assert "checkpoint =" not in f.read()
    before = _digest("deltaprop-checkpoint.npz")
    assert run(capsys, "train", "--config", "m.npz.config.toml", "--out", "again.npz")[0] == 0
    assert _weights("again.npz") == _weights("m.npz") and _digest("deltaprop-checkpoint.npz") == before


def test_resume_with_fewer_epochs_than_run_is_refused(capsys, tmp_path):
    ck = str(tmp_path / "c.npz")
    assert run(capsys, "train", "--data", "xor", "--epochs", "6", "--checkpoint", ck)[0] == 0
    code, out, err = run(capsys, "train", "--resume", ck, "--epochs", "3")
    assert code == 2 and "has already run 6 epochs; --epochs is the new total: give at least 6" in err
    assert "final" not in out
    assert run(capsys, "train", "--resume", ck, "--epochs", "7")[0] == 0


def test_a_model_that_cannot_be_saved_leaves_its_work_in_a_checkpoint(capsys, tmp_path, monkeypatch):
    # the disk fills during training: the model and its side files are written together or not
    # at all, and the trained weights go to a checkpoint that --resume turns into the model
    from deltaprop.errors import ModelFileError
    from deltaprop.runs import Run

    monkeypatch.chdir(tmp_path)
    real_save = Run.save

    def full_disk(self, path=None):
        raise ModelFileError("m.npz: cannot be written (No space left on device)")

    monkeypatch.setattr(Run, "save", full_disk)
    code, out, err = run(capsys, "train", "--data", "xor", "--epochs", "3", "--out", "m.npz")
    assert code == 2 and "final" not in out and err.count("\n") == 1
    assert ("m.npz: cannot be written (No space left on device); the checkpoint of epoch 3 is kept in "
            "m.npz.ckpt: make room, then resume with deltaprop train --resume m.npz.ckpt") in err
    assert sorted(os.listdir()) == ["m.npz.ckpt"]
    monkeypatch.setattr(Run, "save", real_save)
    assert run(capsys, "train", "--resume", "m.npz.ckpt")[0] == 0
    assert run(capsys, "train", "--data", "xor", "--epochs", "3", "--out", "whole.npz")[0] == 0
    assert _weights("m.npz") == _weights("whole.npz")
    # a run that early stopping ended is finished: resumed, it trains no further epoch
    flags = ["--data", "iris", "--epochs", "300", "--early-stopping", "2", "--seed", "5"]
    monkeypatch.setattr(Run, "save", full_disk)
    assert run(capsys, "train", *flags, "--out", "es.npz")[0] == 2
    monkeypatch.setattr(Run, "save", real_save)
    code, out, _ = run(capsys, "train", "--resume", "es.npz.ckpt")
    assert code == 0 and not [ln for ln in out.splitlines() if ln.startswith("epoch ")]  # no epoch ran
    code, out_whole, _ = run(capsys, "train", *flags, "--out", "es-whole.npz")
    assert code == 0 and _weights("es.npz") == _weights("es-whole.npz")
    assert out.splitlines()[-2] == out_whole.splitlines()[-2]  # the final lines: same epochs and updates
