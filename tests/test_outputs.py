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
