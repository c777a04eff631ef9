"""The one table of settings (deltaprop.config): everything that names a setting derives from it,
and files the first release wrote still load and give the same results."""

import dataclasses
import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.cli import build_parser, main
from deltaprop.config import DEFAULTS, SETTINGS, TrainConfig, read_toml, resolve, resume_config
from deltaprop.errors import ConfigError
from deltaprop.model import build_training
from deltaprop.runs import data_fingerprint, load_resume, prepare_run
from deltaprop.training import Trainer, train

LEGACY = Path(__file__).parent / "legacy"


def test_defaults_record_is_a_checked_config():
    assert TrainConfig() == DEFAULTS
    for name in SETTINGS:  # every default passes its own check
        TrainConfig.from_dict({name: DEFAULTS.to_dict()[name]})


def _train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def test_every_setting_has_a_flag_and_help_shows_each_default():
    parser = _train_parser()
    dests = {a.dest for a in parser._actions}
    assert set(SETTINGS) <= dests
    help_text = " ".join(parser.format_help().split())
    for name in ("hidden", "epochs", "lr", "mode", "batch_size", "activation", "seed", "val_split", "init",
                 "dtype"):
        assert f"(default: {DEFAULTS.to_dict()[name]})" in help_text, name


def test_negated_flags_read_as_sentences():
    # a flag that turns a setting off is helped by "do not " + the setting's help: each such
    # help starts with a verb in lower case, not a label ("regression: ...")
    negated = [name for name, s in SETTINGS.items() if s.flag == "negate"]
    assert negated
    help_text = " ".join(_train_parser().format_help().split())
    for name in negated:
        first = SETTINGS[name].help.split()[0]
        assert first.islower() and not first.endswith(":"), (name, SETTINGS[name].help)
        assert f"do not {SETTINGS[name].help.split('(')[0].strip()}" in help_text, name
    assert "do not train a regression on standardised targets" in help_text


def test_library_defaults_come_from_the_table():
    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    for fn, names in ((Trainer.__init__, ("lr", "mode", "batch_size", "shuffle", "eval_every", "eval_rows",
                                          "engine", "on_divergence")),
                      (train, ("lr", "mode", "batch_size", "optimizer")),
                      (build_training, ("activation", "mode", "batch_size", "lr", "optimizer", "seed", "init",
                                        "dtype", "standardize", "eval_every", "eval_rows", "shuffle", "engine"))):
        d = defaults(fn)
        for name in names:
            assert d[name] == getattr(DEFAULTS, name), (fn, name)
    assert tuple(defaults(build_training)["hidden"]) == DEFAULTS.hidden
    pytest.importorskip("sklearn")
    from deltaprop.sklearn import ESTIMATOR_DEFAULTS, BackpropClassifier

    d = defaults(BackpropClassifier.__init__)
    # the estimators' measured exceptions live in one table (deltaprop.sklearn.ESTIMATOR_DEFAULTS)
    assert tuple(d["hidden_layer_sizes"]) == ESTIMATOR_DEFAULTS["hidden_layer_sizes"]
    for name in ("activation", "engine", "shuffle"):
        assert d[name] == getattr(DEFAULTS, name), name
    assert d["init"] == ESTIMATOR_DEFAULTS["init"] == "sklearn"  # scikit-learn's initial weights: a drop-in
    # scikit-learn's names for the library's lr and optimizer, with the library's values
    from deltaprop.sklearn import SOLVER_LR

    assert d["learning_rate_init"] is None and d["solver"] == DEFAULTS.optimizer
    assert SOLVER_LR[DEFAULTS.optimizer] == DEFAULTS.lr  # None: the library's rate for its solver
    assert d["mode"] == "auto"  # mini-batch, or batch for the rules that need it
    assert d["dtype"] is None  # the input's, as scikit-learn's MLP computes (the documented exception)


@pytest.mark.parametrize("name,value,range_text", [
    ("lr", -1.0, "a number > 0"), ("seed", -1, "an integer >= 0"), ("epochs", 0, "an integer >= 1"),
    ("print_every", -1, "an integer >= 0"), ("early_stopping", -1, "an integer >= 0"),
    ("val_split", 1.0, "a number in [0, 1)"), ("momentum", 1.0, "a number in [0, 1)"),
    ("mode", "online", "one of stochastic, minibatch, batch"),
])
def test_one_message_for_a_bad_value_from_python_toml_and_cli(tmp_path, capsys, name, value, range_text):
    """(argparse itself refuses a bad choice on the command line, with its own words.)"""
    tail = f"must be {range_text}, got {value!r}"
    with pytest.raises(ConfigError) as py:
        TrainConfig(**{name: value})
    assert str(py.value) == f"{name} {tail}"
    toml = tmp_path / "run.toml"
    toml.write_text(f"{name} = {value!r}\n".replace("'", '"'))
    with pytest.raises(ConfigError) as file:
        read_toml(toml)
    assert str(file.value) == f"{toml}: key {name!r} {tail}"
    if SETTINGS[name].kind == "choice":
        return
    flag = "--" + name.replace("_", "-")
    assert main(["train", flag, str(value)]) == 2
    assert capsys.readouterr().err == f"deltaprop: error: {flag} {tail}\n"


def test_unknown_and_mistyped_settings_are_refused():
    with pytest.raises(ConfigError, match="unknown setting 'lrate'; valid keys: "):
        TrainConfig.from_dict({"lrate": 0.1})
    with pytest.raises(ConfigError, match=r"hidden must be positive integers separated by commas"):
        TrainConfig(hidden="4,x")
    with pytest.raises(ConfigError, match="hidden widths must be positive"):
        TrainConfig(hidden=(4, 0))
    with pytest.raises(ConfigError, match="shuffle must be true or false, got 1"):
        TrainConfig(shuffle=1)
    with pytest.raises(ConfigError, match="schedule_param needs schedule"):
        TrainConfig(schedule_param=("gamma=0.5",))


def test_toml_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data="my.csv", target="t", hidden=(3, 2), categorical=("a", "b"), opt_param=("beta1=0.8",),
                      optimizer="adam", schedule="step", schedule_param=("step_size=3",), momentum=0.5,
                      flat_spot=0.1, out="m.npz", checkpoint="c.npz", force=True)
    with open("run.toml", "w") as f:
        f.write(cfg.to_toml())
    assert "force" not in read_toml("run.toml")  # a repeated run never replaces files silently
    assert resolve({}, read_toml("run.toml")) == cfg.replace(force=False)
    # in another folder, the file names are written relative to it and read back as the same files
    (tmp_path / "sub").mkdir()
    with open("sub/run.toml", "w") as f:
        f.write(cfg.to_toml("sub"))
    back = read_toml("sub/run.toml")
    assert 'data = "../my.csv"' in (tmp_path / "sub/run.toml").read_text()
    assert [back[k] for k in ("data", "out", "checkpoint")] == ["my.csv", "m.npz", "c.npz"]
    # a built-in set's name and absolute paths are left as they are
    other = cfg.replace(data="iris", out=str(tmp_path / "abs.npz"))
    with open("sub/b.toml", "w") as f:
        f.write(other.to_toml("sub"))
    assert read_toml("sub/b.toml")["data"] == "iris" and read_toml("sub/b.toml")["out"] == str(tmp_path / "abs.npz")


def test_precedence_flags_file_builtin_defaults():
    assert resolve({"data": "my.csv"}).hidden == DEFAULTS.hidden
    assert resolve({}).data == DEFAULTS.data
    assert resolve({"data": "xor"}).hidden == (2,)  # the built-in set's recommendation
    assert resolve({"data": "xor"}, {"hidden": "5"}).hidden == (5,)
    assert resolve({"data": "xor", "hidden": "7"}, {"hidden": "5"}).hidden == (7,)


def test_resume_rules():
    saved = TrainConfig(data="xor", epochs=5).to_dict()
    assert resume_config(saved, {"epochs": 9, "quiet": True}).epochs == 9
    assert resume_config(saved, {"hidden": "16"}).hidden == (16,)  # the same value is no change
    with pytest.raises(ConfigError, match="these settings cannot change: --lr, --hidden"):
        resume_config(saved, {"lr": 0.3, "hidden": "8"})


# The legacy files were written on a machine whose OpenBLAS ran its SkylakeX kernel. Another
# kernel (Haswell, say) orders a product's additions differently, so the weights agree to
# rounding, not bit for bit (docs/reliability.md, "Determinism"): 1 ulp per product, grown over
# the run's 48 updates to at most 2e-14 relative where this was measured; 1e-12 leaves room for
# other kernels, while a real change of the run is far outside it (one epoch fewer moves a
# weight by 0.11). Bitwise equality is checked where it must hold: on one machine.
LEGACY_RTOL = 1e-12


def test_first_release_config_file_repeats_its_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(LEGACY / "full.npz.config.toml", "run.toml")
    assert main(["train", "--config", "run.toml", "--out", "again.npz", "--checkpoint", "again.ckpt"]) == 0
    assert main(["train", "--config", "run.toml", "--out", "twice.npz", "--checkpoint", "twice.ckpt"]) == 0
    old, _ = dp.load_model(LEGACY / "full.npz")
    new, _ = dp.load_model("again.npz")
    assert old.to_config() == new.to_config()
    np.testing.assert_allclose(new.flat, old.flat, rtol=LEGACY_RTOL, atol=1e-13)
    np.testing.assert_array_equal(dp.load_model("twice.npz")[0].flat, new.flat)


def test_first_release_checkpoint_resumes_to_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(LEGACY / "iris-epoch3.ckpt", "r.ckpt")
    assert main(["train", "--resume", "r.ckpt", "--epochs", "6", "--out", "resumed.npz", "--quiet"]) == 0
    old, info = dp.load_model(LEGACY / "full.npz")
    new, _ = dp.load_model("resumed.npz")
    np.testing.assert_allclose(new.flat, old.flat, rtol=LEGACY_RTOL, atol=1e-13)
    # and through the library alone, to the CLI's bits
    cfg, resume = load_resume("r.ckpt", {"epochs": 6})
    run = prepare_run(cfg, checkpoint="r2.ckpt", resume=resume)
    run.fit()
    np.testing.assert_array_equal(run.model.network.flat, new.flat)
    assert info["training"]["seed"] == cfg.seed == 3


def test_first_release_model_file_predicts_the_same():
    model = dp.Model.load(LEGACY / "full.npz")
    X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    assert list(model.predict(X)) == ["setosa", "virginica"]


def test_prepare_run_matches_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = resolve({"data": "iris", "hidden": "4", "epochs": 3, "seed": 1})  # the CLI's precedence
    assert cfg.batch_size == 16  # iris's recommendation
    run = prepare_run(cfg)
    run.fit()
    assert main(["train", "--data", "iris", "--hidden", "4", "--epochs", "3", "--seed", "1", "--out", "m.npz",
                 "--quiet"]) == 0
    net, info = dp.load_model("m.npz")
    np.testing.assert_array_equal(net.flat, run.model.network.flat)
    assert TrainConfig.from_dict({k: v for k, v in info["training"].items() if k != "epochs_run"}) \
        == cfg.replace(out="m.npz", quiet=True)  # no checkpoint: the run named none
    assert run.fingerprint == data_fingerprint(run.train.X, run.train.T)


def test_record_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.lr = 1.0
