"""L-BFGS (``optimizer="lbfgs"``): scipy's L-BFGS-B run by the Trainer, an epoch per iteration,
the one implementation behind ``deltaprop train --optimizer lbfgs``, ``deltaprop compare`` and
the estimators' ``solver="lbfgs"``."""

import json

import numpy as np
import pytest

pytest.importorskip("scipy", reason="lbfgs needs scipy (the 'lbfgs' extra)")

import scipy.optimize  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.checkpoint import load_checkpoint  # noqa: E402
from deltaprop.cli import main  # noqa: E402
from deltaprop.data import load_builtin  # noqa: E402
from deltaprop.errors import ConfigError  # noqa: E402
from deltaprop.optimizers import LBFGS, get_optimizer  # noqa: E402
from deltaprop.training import EarlyStopping, Trainer  # noqa: E402


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _net():
    return dp.Network([4, 5, 3], "tanh", "softmax", "cross_entropy", dtype="float64", seed=0)


def test_the_trainer_runs_scipys_minimisation_of_loss_plus_l2():
    """The Trainer's iterates are scipy's own on F = E + lambda/2 |m W|^2 (biases not decayed),
    E the mean loss over every row: the same loss curve and weights as calling
    scipy.optimize.minimize directly with the network's loss and gradient."""
    ds = load_builtin("iris")
    lam = 0.01
    net = _net()
    ref = _net()
    mask = ref.weight_mask()[:ref.params.size].astype(float)

    def f(theta):
        ref.params[...] = theta
        loss, grad = ref.loss_and_gradient(ds.X, ds.T)
        return loss + 0.5 * lam * float((theta * mask) @ (theta * mask)), grad + lam * theta * mask

    curve = []
    res = scipy.optimize.minimize(f, ref.params.copy(), method="L-BFGS-B", jac=True,
                                  callback=lambda intermediate_result: curve.append(intermediate_result.fun),
                                  options={"maxiter": 30, "gtol": 1e-5, "maxcor": 10, "maxfun": 15000})
    opt = get_optimizer("lbfgs", weight_decay=lam)
    tr = Trainer(net, opt, mode="batch", seed=0)
    hist = tr.fit(ds.X, ds.T, 30)
    assert tr.epoch == res.nit == opt.t == 30 and opt.n_fun == res.nfev
    np.testing.assert_allclose(opt.objective, curve, rtol=1e-12)
    np.testing.assert_allclose(net.params, res.x, rtol=1e-10, atol=1e-12)
    # the history records the data loss (without the penalty), before and after each iteration
    penalty = 0.5 * lam * float((res.x * mask) @ (res.x * mask))
    assert hist.loss[-1] == pytest.approx(res.fun - penalty, rel=1e-10)
    assert hist.loss_running[1] == pytest.approx(hist.loss[0], rel=1e-10)
    assert hist.samples[-1] == opt.n_fun * len(ds.X)


def test_convergence_and_limits_are_events():
    ds = load_builtin("xor")
    net = dp.Network([2, 3, 1], "sigmoid", loss="half_sse", dtype="float64", seed=1)
    tr = Trainer(net, "lbfgs", mode="batch", seed=0)
    tr.fit(ds.X, ds.T, 500)
    assert tr.epoch < 500 and tr.history.events[-1]["event"] == "converged"
    assert "CONVERGENCE" in tr.history.events[-1]["detail"]
    net = dp.Network([2, 3, 1], "sigmoid", loss="half_sse", dtype="float64", seed=1)
    tr = Trainer(net, LBFGS(max_fun=5), mode="batch", seed=0)
    tr.fit(ds.X, ds.T, 500)
    assert tr.optimizer.n_fun <= 6 and tr.history.events[-1]["event"] == "lbfgs_stopped"


def test_a_callback_stops_it_and_early_stopping_keeps_the_best_weights():
    ds = load_builtin("iris")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(ds.X))
    tr_idx, val_idx = idx[:100], idx[100:]
    stop = EarlyStopping(patience=2)
    net = dp.Network([4, 40, 3], "tanh", "softmax", "cross_entropy", dtype="float64", seed=0)
    tr = Trainer(net, "lbfgs", mode="batch", seed=0, callbacks=[stop])
    tr.fit(ds.X[tr_idx], ds.T[tr_idx], 500, validation_data=(ds.X[val_idx], ds.T[val_idx]))
    assert tr.history.events[-1]["event"] == "early_stopping" and tr.epoch < 500
    np.testing.assert_array_equal(net.flat, stop.best_params)


def test_refused_where_it_cannot_run():
    ds = load_builtin("xor")
    with pytest.raises(ConfigError, match="use mode 'batch'"):
        Trainer(dp.Network([2, 2, 1]), "lbfgs", mode="minibatch")
    with pytest.raises(ConfigError, match="gradient noise"):
        get_optimizer("lbfgs", grad_noise=0.1)
    with pytest.raises(ConfigError, match="max_fun must be an integer >= 1"):
        LBFGS(max_fun=0)
    tr = Trainer(dp.Network([2, 2, 1]), "lbfgs", mode="batch", engine="numba")
    with pytest.raises(ConfigError, match="runs its own loop|engine 'numba' cannot run"):
        tr.fit(ds.X, ds.T, 3)
    with pytest.raises(ConfigError, match="runs its own loop"):
        get_optimizer("lbfgs").step(np.zeros(3), np.zeros(3))


def test_cli_train_lbfgs_converges_on_a_builtin_set(capsys, tmp_path):
    out_file = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", "iris", "--optimizer", "lbfgs", "--mode", "batch",
                         "--epochs", "300", "--out", str(out_file))
    assert code == 0, err
    assert "lbfgs" in out.splitlines()[1] and "engine numpy" in out.splitlines()[1].replace("auto: ", "")
    final = [line for line in out.splitlines() if line.startswith("final:")][0]
    assert float(final.split("train accuracy ")[1].split("%")[0]) >= 97.0, final
    hist = json.loads((tmp_path / "m.npz.history.json").read_text())
    events = hist["events"] if "events" in hist else hist["history"]["events"]
    assert events[-1]["event"] == "converged", events  # gtol 1e-5 met well before 300 iterations
    assert "max-fun = 15000" in (tmp_path / "m.npz.config.toml").read_text()


@pytest.mark.parametrize("mode", ["minibatch", "stochastic"])
def test_cli_lbfgs_in_another_mode_exits_2_naming_the_mode(capsys, mode):
    code, out, err = run(capsys, "train", "--data", "iris", "--optimizer", "lbfgs", "--mode", mode, "--epochs", "2")
    assert code == 2
    assert "optimizer 'lbfgs'" in err and "mode 'batch'" in err and "Traceback" not in err + out


def test_cli_max_fun_bounds_the_evaluations_and_a_bad_value_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--data", "iris", "--optimizer", "lbfgs", "--mode", "batch",
                         "--max-fun", "4", "--epochs", "100", "--quiet")
    assert code == 0, err
    assert "4 loss evaluations" in out or "5 loss evaluations" in out, out  # scipy may finish its line search
    code, out, err = run(capsys, "train", "--data", "iris", "--optimizer", "lbfgs", "--mode", "batch",
                         "--max-fun", "0")
    assert code == 2 and "--max-fun must be an integer >= 1, got 0" in err and "Traceback" not in err


def test_cli_resume_continues_the_iterations_and_the_evaluation_budget(capsys, tmp_path):
    """A checkpoint keeps the weights, the iteration count t and the evaluations n_fun; L-BFGS's
    curvature pairs stay inside scipy, so the resumed run restarts that memory (documented)."""
    out_file = tmp_path / "m.npz"
    code, _, err = run(capsys, "train", "--data", "iris", "--optimizer", "lbfgs", "--mode", "batch", "--epochs", "5",
                       "--checkpoint-every", "5", "--out", str(out_file), "--quiet")
    assert code == 0, err
    ckpt = tmp_path / "m.npz.ckpt"
    _, state, _ = load_checkpoint(ckpt)
    saved = state["optimizer"]
    assert saved["name"] == "lbfgs" and saved["t"] == 5 and saved["n_fun"] >= 5
    code, out, err = run(capsys, "train", "--resume", str(ckpt), "--epochs", "8", "--checkpoint-every", "8",
                         "--out", str(out_file), "--force", "--quiet")
    assert code == 0, err
    _, state, _ = load_checkpoint(ckpt)
    assert state["epoch"] == 8 and state["optimizer"]["t"] == 8 and state["optimizer"]["n_fun"] > saved["n_fun"]
    assert "8 updates in 8 epochs" in out


def test_compare_includes_lbfgs_in_batch_mode_only(capsys):
    code, out, err = run(capsys, "compare", "--problems", "xor", "--techniques", "gd,lbfgs", "--modes",
                         "batch,minibatch", "--seeds", "4", "--jobs", "1", "--no-timing")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.startswith("xor ")]
    assert ["xor", "batch", "lbfgs"] in [r[:3] for r in rows]
    assert ["xor", "minibatch", "lbfgs"] not in [r[:3] for r in rows]
    assert "lbfgs in minibatch" in out  # listed among the cells not run
    lbfgs = next(r for r in rows if r[:3] == ["xor", "batch", "lbfgs"])
    assert lbfgs[3] == "4"
