"""Settings checked in the library with the valid range in the message, memory checked before
it is spent, and a loss that explodes counted as diverging (issue 13)."""

import json

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.cli import main
from deltaprop.errors import ConfigError, DataError
from deltaprop.memory import MemoryCheckError, require_memory

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
T = np.array([[0], [1], [1], [0]], float)


@pytest.mark.parametrize("sizes,message", [
    (["a", 2, 1], "layer sizes must be positive integers, got ['a', 2, 1]"),
    ([2.5, 2, 1], "layer sizes must be positive integers, got [2.5, 2, 1]"),
    ([2, True, 1], "layer sizes must be positive integers"),
    (5, "layer sizes must be a sequence of positive integers, got 5"),
    ([2, 0, 1], "layer sizes must be positive, got [2, 0, 1]"),
])
def test_network_sizes_are_checked(sizes, message):
    with pytest.raises(ConfigError) as exc:
        dp.Network(sizes)
    assert message in str(exc.value)


def test_numpy_integer_sizes_still_work():
    assert dp.Network(np.array([2, 3, 1])).flat.size == 13


@pytest.mark.parametrize("seed", [-1, True, 1.5, "x"])
def test_bad_seeds_are_config_errors(seed):
    net = dp.Network([2, 2, 1], seed=0)
    for call in (lambda: dp.train(net, X, T, seed=seed), lambda: dp.Trainer(net, seed=seed),
                 lambda: net.reset_parameters(seed)):
        with pytest.raises(ConfigError, match="seed must be a non-negative integer or a numpy Generator"):
            call()


def test_gradcheck_names_the_shape_mismatch():
    net = dp.Network([2, 2, 1], seed=0)
    with pytest.raises(DataError, match=r"targets have shape \(2, 1\), expected \(4, 1\)"):
        dp.gradcheck(net, X, T[:2])


def test_a_network_too_big_for_memory_is_refused_before_allocation(capsys):
    code = main(["train", "--hidden", "100000000"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("deltaprop: error: a network of 7,500,000,010 parameters (64-100000000-10, float32) "
                          "needs 90.0 GB; ") and err.rstrip().endswith("available")


def test_memory_limit_is_taken_from_the_environment(monkeypatch):
    monkeypatch.setenv("DELTAPROP_MEMORY_LIMIT", "1000000")
    with pytest.raises(MemoryCheckError, match=r"^thing needs 2.0 MB; 1.0 MB available$"):
        require_memory(2e6, "thing")
    require_memory(5e5, "thing")
    net = dp.Network([2, 400, 1], seed=0)  # 3 x 1601 x 8 bytes fit
    monkeypatch.setenv("DELTAPROP_MEMORY_LIMIT", "20000")
    with pytest.raises(MemoryCheckError, match="training this 1,601-parameter network"):
        dp.train(net, X, T, optimizer="adam", mode="batch", epochs=1, seed=0)  # Adam's two moments and snapshots do not


def test_memory_error_anywhere_is_one_line(capsys, monkeypatch):
    import deltaprop.runs as runs

    def boom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(runs, "load_config_data", boom)
    assert main(["train", "--data", "xor"]) == 2
    assert capsys.readouterr().err == ("deltaprop: error: out of memory; use a smaller network, --batch-size "
                                       "or data set\n")


def _diverging_regression(tmp_path):
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(100, 3)) * 50
    y = Xr @ [3.0, -2.0, 1.0] + 500
    path = tmp_path / "r.csv"
    np.savetxt(path, np.c_[Xr, y], delimiter=",", header="a,b,c,y", comments="")
    return path


def test_a_loss_that_explodes_counts_as_diverging():
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(64, 3)) * 30
    Tr = Xr @ np.array([[3.0], [-2.0], [1.0]]) + 500
    net = dp.Network([3, 8, 1], "tanh", "identity", "mse", seed=0)
    trainer = dp.Trainer(net, "sgd", lr=0.5, mode="minibatch", batch_size=8, seed=0)
    trainer.fit(Xr, Tr, 20)
    assert trainer.diverged and np.isfinite(net.flat).all()
    ev = trainer.history.events[-1]
    assert ev["event"] == "divergence" and "the loss grew from" in ev["detail"] and "at the start" in ev["detail"]
    assert max(trainer.history.loss_running or [0]) < 1e6 * trainer.initial_loss


def test_halve_lr_that_runs_out_of_halvings_exits_1(capsys, tmp_path):
    path = _diverging_regression(tmp_path)
    code = main(["train", "--data", str(path), "--target", "y", "--no-standardize", "--lr", "1e6",
                 "--on-divergence", "halve-lr", "--epochs", "5", "--json"])
    cap = capsys.readouterr()
    assert code == 1 and "training diverged" in cap.err
    final = json.loads(cap.out.strip().splitlines()[-1])["final"]
    assert final["train_loss"] < 1e30  # the weights kept are the last good ones


def test_initial_loss_survives_a_checkpoint():
    net = dp.Network([2, 2, 1], seed=0)
    a = dp.Trainer(net, mode="batch", seed=0)
    a.fit(X, T, 2)
    b = dp.Trainer(net.copy(), mode="batch", seed=0)
    b.load_state_dict(a.state_dict())
    assert b.initial_loss == a.initial_loss is not None
    state = a.state_dict()
    del state["initial_loss"]  # a first-release checkpoint
    b.load_state_dict(state)
    assert b.initial_loss is None


def test_values_near_the_float64_limit_are_standardised_without_overflow(recwarn):
    from deltaprop.data.dataset import Standardizer

    X = np.array([[1.7e308, 2.0], [-1.7e308, 4.0], [1.7e308, 6.0]])
    std = Standardizer().fit(X)
    Z = std.transform(X)
    assert np.isfinite(Z).all() and not recwarn.list
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 1], (X[:, 1] - 4.0) / np.std([2.0, 4.0, 6.0]))  # other columns: as before


def test_csv_with_huge_values_trains_without_numpy_warnings(capsys, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b,t\n1e308,2,0\n-1e308,4,1\n3,4,1\n1,1,0\n")
    assert main(["train", "--data", str(path), "--target", "t", "--epochs", "2", "--val-split", "0",
                 "--mode", "batch"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_small_amounts_do_not_ask_the_machine_but_the_environment_cap_still_holds(monkeypatch):
    import deltaprop.memory as memory

    asked = []
    monkeypatch.setattr(memory, "available_bytes", lambda: asked.append(1) or 10)
    monkeypatch.delenv("DELTAPROP_MEMORY_LIMIT", raising=False)
    require_memory(memory.UNCHECKED_BYTES - 1, "thing")  # a small fit: /proc is not read
    assert asked == []
    with pytest.raises(MemoryCheckError, match="^thing needs"):
        require_memory(memory.UNCHECKED_BYTES, "thing")
    assert asked == [1]
    monkeypatch.setenv("DELTAPROP_MEMORY_LIMIT", "1000")
    with pytest.raises(MemoryCheckError, match="^thing needs 2.0 kB"):
        require_memory(2000, "thing")
