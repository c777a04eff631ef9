"""Checkpoints, interrupted runs resumed exactly, divergence handling."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from deltaprop import Network, Trainer, load_model
from deltaprop.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from deltaprop.errors import ConfigError, ModelFileError
from deltaprop.training import EarlyStopping

# Slow enough per epoch (NumPy engine, per-sample updates) that a signal lands mid-run.
RUN = ["train", "--data", "digits", "--mode", "stochastic", "--hidden", "32", "--lr", "0.02", "--epochs", "30",
       "--engine", "numpy", "--print-every", "1", "--checkpoint-every", "1"]


def _cli(args, cwd):
    return [sys.executable, "-m", "deltaprop", *args]


def _start(args, cwd):
    return subprocess.Popen(_cli(args, cwd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(proc, epoch: int) -> None:
    for line in proc.stdout:
        if line.startswith(f"epoch {epoch:>2}/"):
            return
    raise AssertionError(f"the run ended before epoch {epoch}: {proc.stderr.read()}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    res = subprocess.run(_cli([*RUN, "--out", "ref.npz"], d), cwd=d, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return (d / "ref.npz"), load_model(d / "ref.npz")[0].flat.tobytes()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_to_byte_identical_weights(tmp_path, reference, sig):
    proc = _start([*RUN, "--out", "m.npz"], tmp_path)
    _wait_for_epoch(proc, 5)
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=60)
    ckpt = tmp_path / "m.npz.ckpt"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig, err
        assert f"interrupted by {signal.Signals(sig).name} after epoch" in err
        assert f"Resume with: deltaprop train --resume {ckpt.name}" in err
        assert "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()  # nothing final was written by the interrupted run
    stopped_at = load_checkpoint(ckpt)[1]["epoch"]
    assert 4 <= stopped_at < 30  # the epoch line is printed just before its checkpoint is written
    res = subprocess.run(_cli(["train", "--resume", str(ckpt.name)], tmp_path), cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"resumed from {ckpt.name} after epoch {stopped_at}" in res.stdout
    assert "30 updates" not in res.stdout and "43140 updates in 30 epochs" in res.stdout
    assert load_model(tmp_path / "m.npz")[0].flat.tobytes() == reference[1]


def test_an_interrupted_run_does_not_replace_a_left_over_checkpoint(tmp_path):
    # no --out and no --checkpoint-every: the run writes a checkpoint only because it is
    # interrupted, and a file an earlier run left under the default name stays as it was
    (tmp_path / "deltaprop-checkpoint.npz").write_text("an earlier run's")
    proc = _start(RUN[:-2], tmp_path)  # RUN less its "--checkpoint-every 1"
    _wait_for_epoch(proc, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "checkpoint saved to deltaprop-checkpoint-2.npz" in err
    assert "Resume with: deltaprop train --resume deltaprop-checkpoint-2.npz" in err
    assert (tmp_path / "deltaprop-checkpoint.npz").read_text() == "an earlier run's"
    assert load_checkpoint(tmp_path / "deltaprop-checkpoint-2.npz")[1]["epoch"] >= 3


def test_no_leftover_temporary_files_after_a_kill(tmp_path):
    proc = _start([*RUN, "--out", "m.npz"], tmp_path)
    _wait_for_epoch(proc, 3)
    proc.kill()
    proc.communicate(timeout=60)
    names = sorted(os.listdir(tmp_path))
    assert "m.npz.ckpt" in names
    # a kill can land during a write: then one temporary file may remain, never a broken checkpoint
    assert all(n == "m.npz.ckpt" or n.startswith(".deltaprop-") for n in names)
    load_checkpoint(tmp_path / "m.npz.ckpt")


def _data(rng, n=64):
    X = rng.normal(size=(n, 4))
    return X, (X[:, :1] * X[:, 1:2] > 0).astype(float)


@pytest.mark.parametrize("mode", ["stochastic", "minibatch", "batch"])
def test_in_process_checkpoint_resume_is_bitwise(tmp_path, rng, mode):
    X, T = _data(rng)
    Xv, Tv = _data(rng, 20)

    def make():
        net = Network([4, 6, 1], "tanh", "sigmoid", "binary_cross_entropy", seed=1)
        return Trainer(net, "sgd", lr=0.3, mode=mode, batch_size=8, seed=2,
                       callbacks=[EarlyStopping(patience=50)])

    full = make()
    full.fit(X, T, 12, (Xv, Tv))
    part = make()
    part.fit(X, T, 5, (Xv, Tv))
    save_checkpoint(tmp_path / "c.npz", part, {"note": "x"})
    net, state, info = load_checkpoint(tmp_path / "c.npz")
    resumed = make()
    resumed.load_state_dict(state)
    resumed.fit(X, T, 7, (Xv, Tv))
    assert resumed.network.flat.tobytes() == full.network.flat.tobytes()
    assert resumed.optimizer.t == full.optimizer.t
    assert resumed.history.loss_running == full.history.loss_running
    assert info == {"note": "x"}
    assert resumed.callbacks[0].best == full.callbacks[0].best


def test_checkpoint_with_other_settings_is_refused(tmp_path, rng):
    X, T = _data(rng)
    tr = Trainer(Network([4, 3, 1], seed=0), lr=0.1, mode="minibatch", batch_size=8)
    tr.fit(X, T, 1)
    save_checkpoint(tmp_path / "c.npz", tr)
    _, state, _ = load_checkpoint(tmp_path / "c.npz")
    other = Trainer(Network([4, 3, 1], seed=0), lr=0.1, mode="minibatch", batch_size=16)
    with pytest.raises(ConfigError, match="batch_size 8 \\(now 16\\)"):
        other.load_state_dict(state)


def test_damaged_checkpoints(tmp_path, rng):
    X, T = _data(rng)
    tr = Trainer(Network([4, 3, 1], seed=0), lr=0.1)
    tr.fit(X, T, 1)
    path = tmp_path / "c.npz"
    save_checkpoint(path, tr)
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    with pytest.raises(ModelFileError):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_checkpoint(path)
    from deltaprop import save_model

    save_model(tmp_path / "model.npz", tr.network)
    with pytest.raises(ModelFileError, match="not a deltaprop-checkpoint file"):
        load_checkpoint(tmp_path / "model.npz")


def test_resume_refuses_changed_settings_and_data(tmp_path, capsys):
    from deltaprop.cli import main

    assert main(["train", "--data", "iris", "--epochs", "3", "--checkpoint-every", "1", "--checkpoint",
                 str(tmp_path / "c.npz")]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "c.npz"), "--lr", "0.5"]) == 2
    assert "these settings cannot change: --lr" in capsys.readouterr().err
    assert main(["train", "--data", "iris", "--epochs", "3", "--checkpoint", str(tmp_path / "c.npz")]) == 2
    assert "already exists; resume from it with --resume" in capsys.readouterr().err


def test_halve_lr_on_divergence_goes_on(rng):
    X = rng.normal(size=(40, 3))
    T = X @ np.array([[1.0], [-2.0], [0.5]])
    net = Network([3, 8, 1], "identity", "identity", "mse", seed=0)
    tr = Trainer(net, lr=10.0, mode="stochastic", on_divergence="halve-lr", seed=0)
    h = tr.fit(X, T, 30)
    halved = [e for e in h.events if e["event"] == "lr_halved"]
    assert len(halved) >= 3 and not tr.diverged
    assert tr.optimizer.lr == 10.0 / 2 ** len(halved)
    assert len(h) == 30 and np.all(np.isfinite(net.flat))
    assert h.loss[-1] < 1e-10  # the target is linear: a linear net fits it exactly
    # without the option the same run stops at the first divergence
    net2 = Network([3, 8, 1], "identity", "identity", "mse", seed=0)
    tr2 = Trainer(net2, lr=10.0, mode="stochastic", seed=0)
    tr2.fit(X, T, 30)
    assert tr2.diverged and [e["event"] for e in tr2.history.events] == ["divergence"]


def test_halvings_are_bounded(rng):
    X = rng.normal(size=(40, 3)) * 1e3
    T = rng.normal(size=(40, 1)) * 1e6
    net = Network([3, 4, 1], "relu", "identity", "mse", seed=0)
    tr = Trainer(net, lr=1e30, mode="batch", on_divergence="halve-lr", max_halvings=3)
    h = tr.fit(X, T, 10)
    assert [e["event"] for e in h.events] == ["lr_halved"] * 3 + ["divergence"]
    assert tr.diverged and np.all(np.isfinite(net.flat))


def test_checkpointer_callback_writes_every_n(tmp_path, rng):
    X, T = _data(rng)
    ck = Checkpointer(tmp_path / "c.npz", every=3)
    tr = Trainer(Network([4, 3, 1], seed=0), lr=0.1, callbacks=[ck])
    tr.fit(X, T, 7)
    assert ck.saved_epoch == 6
    assert load_checkpoint(tmp_path / "c.npz")[1]["epoch"] == 6


def test_named_checkpoint_is_written_at_the_end_and_resumes_exactly(tmp_path, capsys, monkeypatch):
    """A file named with --checkpoint exists after the run, and --resume continues it to the
    weights of one longer run; a run that names none leaves no file behind."""
    from deltaprop.cli import main

    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "c.npz"
    assert main(["train", "--data", "iris", "--epochs", "5", "--checkpoint", str(ck)]) == 0
    assert load_checkpoint(ck)[1]["epoch"] == 5
    assert main(["train", "--resume", str(ck), "--epochs", "8", "--out", "resumed.npz"]) == 0
    assert load_checkpoint(ck)[1]["epoch"] == 8
    assert main(["train", "--data", "iris", "--epochs", "8", "--out", "whole.npz"]) == 0
    capsys.readouterr()
    assert load_model(tmp_path / "resumed.npz")[0].flat.tobytes() == load_model(tmp_path / "whole.npz")[0].flat.tobytes()
    assert not (tmp_path / "whole.npz.ckpt").exists() and not (tmp_path / "deltaprop-checkpoint.npz").exists()
