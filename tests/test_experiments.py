import json

import numpy as np
import pytest

from deltaprop.cli import main
from deltaprop.errors import ConfigError
from deltaprop.experiments import applicable, parse_success, run_grid, run_one, summarise
from deltaprop.experiments.runner import RunResult


def test_a_tiny_compare_twice_gives_identical_output(tmp_path, capsys):
    args = ["compare", "--problems", "xor", "--techniques", "gd,momentum,rprop-", "--seeds", "3", "--epochs", "300",
            "--jobs", "2", "--no-timing", "--no-plots"]
    assert main(args + ["--out-dir", str(tmp_path / "a")]) == 0
    out_a = capsys.readouterr().out
    assert main(args + ["--out-dir", str(tmp_path / "b")]) == 0
    out_b = capsys.readouterr().out
    strip = lambda text: "\n".join(line for line in text.splitlines() if not line.startswith("written:"))  # noqa: E731
    assert strip(out_a) == strip(out_b)
    for name in ("compare.md", "compare.csv", "compare.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    data = json.loads((tmp_path / "a" / "compare.json").read_text())
    assert data["settings"]["seeds"] == "0..2" and data["settings"]["epoch budget"] == 300
    cells = {(r["mode"], r["technique"]) for r in data["summary"]}
    assert ("batch", "rprop-") in cells and ("stochastic", "rprop-") not in cells  # batch-only
    assert len(data["runs"]) == 3 * (2 * 3 + 1)
    assert "not run (2 cells): batch-only rules" in out_a


def test_same_seed_same_start_in_every_mode_and_technique():
    runs = [run_one("xor", m, t, seed=4, epochs=1) for m, t in
            (("stochastic", "gd"), ("batch", "gd"), ("batch", "momentum"), ("batch", "rprop-"))]
    # after one epoch the losses differ, but they all start from the same weights: with a
    # single tiny epoch of batch GD vs batch momentum (first momentum step = GD step) equal
    assert runs[1].curve == runs[2].curve


def test_success_is_the_first_epoch_meeting_the_criterion():
    r = run_one("xor", "stochastic", "momentum", seed=1, epochs=3000)
    assert r.success and r.epochs == len(r.curve) and r.samples == 4 * r.epochs
    r2 = run_one("xor", "stochastic", "momentum", seed=1, epochs=r.epochs - 1)
    assert not r2.success and len(r2.curve) == r.epochs - 1


def test_summary_statistics():
    mk = lambda seed, ok, ep, loss: RunResult("xor", "batch", "gd", seed, ok, ep, ep * 4, 0.1 * ep, loss, None,  # noqa: E731
                                               [loss])
    rows = summarise([mk(0, True, 10, 0.01), mk(1, True, 30, 0.03), mk(2, False, 100, 0.2), mk(3, True, 20, 0.02)])
    (row,) = rows
    assert row["success_rate"] == 0.75 and row["median_epochs"] == 20 and row["median_samples"] == 80
    assert row["final_loss_mean"] == pytest.approx(0.065) and row["median_seconds"] == pytest.approx(2.0)


def test_batch_techniques_actually_rescue_batch_mode_on_a_few_seeds():
    # a smoke check of the claim the docs make at 50 seeds: momentum beats plain batch GD
    gd = run_grid(["xor"], ["batch"], ["gd", "momentum"], range(6), jobs=1, epochs=1500)
    rows = {r["technique"]: r for r in summarise(gd)}
    assert rows["momentum"]["success_rate"] > rows["gd"]["success_rate"]


def test_applicability_and_criteria():
    assert applicable("xor", "batch", "rprop-") and not applicable("xor", "stochastic", "quickprop")
    assert str(parse_success("loss <= 0.01")) == "loss<=0.01"
    assert str(parse_success("accuracy>=0.9")) == "accuracy>=0.9"
    with pytest.raises(ConfigError, match="not understood"):
        parse_success("fast")
    # criteria no run can meet would read as every technique failing
    for text in ("accuracy>=2", "accuracy>=95", "accuracy>=-0.1"):
        with pytest.raises(ConfigError, match="accuracy is a fraction from 0 to 1"):
            parse_success(text)
    with pytest.raises(ConfigError, match="the loss bound must be a finite number of at least 0"):
        parse_success("loss<=-1")
    assert str(parse_success("accuracy>=1")) == "accuracy>=1"


@pytest.mark.parametrize("args,msg", [
    (["--problems", "xorr"], "unknown problems 'xorr'"),
    (["--data", "mydata.csv"], "unknown problems 'mydata.csv'; valid: xor"),  # train's name for it
    (["--techniques", "gd,rprop"], "unknown techniques 'rprop'"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--lr", "fast"], "expected a number or mode=number pairs"),
    (["--lr", "online=1"], "unknown mode 'online'"),
    (["--success", "quick"], "not understood"),
])
def test_bad_compare_settings(capsys, args, msg):
    assert main(["compare", *args]) == 2
    assert msg in capsys.readouterr().err


def test_plots_render(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    assert main(["compare", "--techniques", "gd,rprop-", "--seeds", "2", "--epochs", "50", "--jobs", "1",
                 "--out-dir", str(tmp_path)]) == 0
    for name in ("curves-xor.png", "success-xor.png"):
        img = mpimg.imread(tmp_path / name)
        assert img.shape[0] > 200 and img.shape[1] > 400 and np.std(img) > 0.05


def test_curves_are_kept_on_a_shared_log_grid_and_carried_forward():
    from deltaprop.experiments import result_dicts

    mk = lambda seed, curve: RunResult("xor", "batch", "gd", seed, True, len(curve), 4 * len(curve), 0.0,  # noqa: E731
                                        curve[-1], None, curve)
    long, short = [1.0 / (e + 1) for e in range(1000)], [0.5, 0.25, 0.125]
    a, b = result_dicts([mk(0, long), mk(1, short)])
    assert a["curve_epochs"] == b["curve_epochs"] and a["curve_epochs"][0] == 1 and a["curve_epochs"][-1] == 1000
    assert len(a["curve_epochs"]) <= 120
    assert a["curve"] == [long[e - 1] for e in a["curve_epochs"]]
    assert b["curve"][:3] == [0.5, 0.25, 0.125] and set(b["curve"][3:]) == {0.125}


def test_loss_rises_measure_stability():
    mk = lambda seed, curve: RunResult("xor", "batch", "gd", seed, False, len(curve), 0, 0.0, curve[-1], None,  # noqa: E731
                                       curve)
    (row,) = summarise([mk(0, [4.0, 3.0, 2.0, 1.0]), mk(1, [4.0, 5.0, 3.0, 3.5, 2.0])])
    assert row["rises"] == pytest.approx(2 / 7)  # 0 of 3 steps rose, then 2 of 4
