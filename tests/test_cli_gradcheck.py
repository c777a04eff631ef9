"""`deltaprop gradcheck`: the check from the command line, and the cost table of backprop
against numerical differentiation (library function, text). The Markdown page and plot that
bench/cost_page.py writes are tested in test_bench_smoke. No test asserts a time: timings are
only checked for being positive and consistently derived."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deltaprop import Dense, Network
from deltaprop.cli import main
from deltaprop.gradcheck_report import CostTable, cost_table, format_cost_table, run_check
from deltaprop.gradcheck import (DEFAULT_COST_SIZES, CostRow, _time_call, cost_slope, gradcheck, gradient_cost,
                                 random_problem)
from deltaprop.data import Standardizer, load_builtin
from deltaprop.machine import machine_facts
from deltaprop.model import Model

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


_DENSE_BACKWARD = Dense.backward


def _broken_backward(self, da=None, *, delta=None, accumulate=False, input_grad=True):
    """Dense.backward with the classic bug of test_gradcheck's _BrokenDense: dW's rows reversed."""
    dX = _DENSE_BACKWARD(self, da, delta=delta, accumulate=accumulate, input_grad=input_grad)
    self.dW[...] = (self.X.T @ self.delta)[::-1]
    return dX


class _BrokenDense(Dense):
    backward = _broken_backward


# --------------------------------------------------------------------------- the check
def test_default_check_passes_and_reports_everything(capsys):
    code, out, err = run(capsys, "gradcheck")
    assert code == 0, err
    assert out.startswith("network: 4-8-3, tanh -> softmax, loss cross_entropy, float64, 67 parameters")
    assert "data: 16 random samples" in out and "(seed 0)" in out
    assert "checked: all 67 parameters; central differences of order 4" in out
    # the worst entry is named with both values
    worst = [line for line in out.splitlines() if line.startswith("max relative error:")][0]
    assert " at W" in worst or " at b" in worst
    assert "backprop " in worst and " vs numeric " in worst
    assert float(worst.split()[3]) < 1e-6
    for label in ("median relative error:", "max absolute error:", "backprop:", "finite differences:"):
        assert label in out
    assert "OK: max relative error" in out and err == ""


def test_broken_backward_pass_fails_through_the_cli_command(capsys, rng):
    """A planted bug (dW rows reversed in layer 1) gives exit 1 and a message naming W1;
    the same weights in correct layers pass, so it is the bug that is caught."""
    layers = [_BrokenDense(3, 4, "tanh"), Dense(4, 2, "sigmoid")]
    net = Network.from_layers(layers, "half_sse")
    net.reset_parameters(rng, "uniform:1")
    X, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    code = run_check(net, X, T, describe=["network: planted bug"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("deltaprop: gradcheck failed: max relative error ")
    assert "is not below --tol 1e-06; worst W1[" in err and len(err.strip().splitlines()) == 1
    assert "OK:" not in out and "network: planted bug" in out

    good = Network.from_layers([Dense(3, 4, "tanh"), Dense(4, 2, "sigmoid")], "half_sse")
    good.flat[...] = net.flat
    assert run_check(good, X, T) == 0


def test_broken_backward_pass_fails_through_main(capsys, monkeypatch):
    """End to end through argument parsing: every Dense layer gets the broken backward."""
    assert run(capsys, "gradcheck", "--sizes", "3,5,2")[0] == 0
    monkeypatch.setattr(Dense, "backward", _broken_backward)
    code, out, err = run(capsys, "gradcheck", "--sizes", "3,5,2")
    assert code == 1
    assert "deltaprop: gradcheck failed" in err and "worst W" in err


def test_tol_is_a_strict_bound(capsys):
    # The check is deterministic for a seed, so its own max error is an exact boundary.
    code, out, _ = run(capsys, "gradcheck", "--sizes", "3,4,2", "--seed", "3", "--json")
    res = json.loads(out)
    assert code == 0 and res["passed"] and res["checked"] == res["n_params"] == 3 * 4 + 4 + 4 * 2 + 2
    m = res["max_rel_error"]
    assert 0 < m < 1e-6
    assert run(capsys, "gradcheck", "--sizes", "3,4,2", "--seed", "3", "--tol", repr(m))[0] == 1
    assert run(capsys, "gradcheck", "--sizes", "3,4,2", "--seed", "3", "--tol",
               repr(float(np.nextafter(m, 1.0))))[0] == 0


def test_max_params_samples_and_says_so(capsys):
    code, out, err = run(capsys, "gradcheck", "--sizes", "10,20,3", "--max-params", "25")
    assert code == 0, err
    assert "checked: 25 of 283 parameters, drawn at random (seed 0) because of --max-params 25" in out
    assert "all 283 would take about" in out and "(estimated)" in out
    code, out, _ = run(capsys, "gradcheck", "--sizes", "10,20,3", "--max-params", "25", "--json")
    res = json.loads(out)
    assert res["sampled"] and res["checked"] == 25
    assert res["seconds_numeric_full"] == pytest.approx(res["seconds_numeric"] * 283 / 25, rel=1e-12)


def test_sampled_result_properties(rng):
    net, X, T = random_problem([4, 6, 3], samples=5, seed=rng)
    full = gradcheck(net, X, T)
    part = gradcheck(net, X, T, max_params=7)
    assert not full.sampled and part.sampled
    assert full.forward_passes == 4 * net.n_params and part.forward_passes == 4 * 7
    assert gradcheck(net, X, T, max_params=7, order=2).forward_passes == 2 * 7
    assert part.seconds_numeric_full == pytest.approx(part.seconds_numeric * net.n_params / 7, rel=1e-12)
    assert full.seconds_backprop > 0 and full.seconds_numeric > 0


def _model(ds, hidden, dtype="float64"):
    """What 'deltaprop train --out' saves, without the training: random weights suffice here."""
    net = Network([ds.n_features, hidden, ds.n_outputs], "tanh", "softmax" if ds.n_outputs > 1 else "sigmoid",
                  "cross_entropy" if ds.n_outputs > 1 else "binary_cross_entropy", dtype=dtype, seed=1)
    return Model(net, task=ds.task, classes=ds.classes, feature_names=ds.feature_names,
                 target_names=ds.target_names, standardizer=Standardizer().fit(ds.X))


def test_saved_model_is_checked_on_its_standardised_data(capsys, tmp_path):
    ds = load_builtin("iris")
    model = _model(ds, 5)
    path = tmp_path / "iris.npz"
    model.save(path)
    code, out, err = run(capsys, "gradcheck", "--model", path, "--data", "iris", "--samples", 20, "--seed", 4)
    assert code == 0, err
    assert f"network: 4-5-3, tanh -> softmax, loss cross_entropy, float64, 43 parameters (43 trainable) from {path}" in out
    assert "data: iris, 20 of 150 (drawn at random, seed 4) samples, standardised" in out
    # the same check by hand: seeded rows of the standardised inputs
    rows = np.sort(np.random.default_rng(4).choice(150, 20, replace=False))
    expected = gradcheck(model.network, model.prepare(ds.X)[rows], ds.T[rows])
    assert model.standardizer is not None and not np.allclose(model.prepare(ds.X), ds.X)
    res = json.loads(run(capsys, "gradcheck", "--model", path, "--data", "iris", "--samples", 20, "--seed", 4,
                         "--json")[1])
    assert res["worst"] == expected.worst and res["max_rel_error"] == expected.max_rel_error


def test_float32_model_is_checked_in_float64(capsys, tmp_path):
    model = _model(load_builtin("xor"), 3, dtype="float32")
    path = tmp_path / "xor32.npz"
    model.save(path)
    code, out, err = run(capsys, "gradcheck", "--model", path, "--data", "xor")
    assert code == 0, err
    assert "float64" in out.splitlines()[0] and "note: the float32 model is checked in a float64 copy" in out


@pytest.mark.parametrize("argv,fragment", [
    (["--activation", "foo"], "unknown activation 'foo'; valid:"),
    (["--output-activation", "identity", "--loss", "cross_entropy"], "needs outputs in (0, 1)"),
    (["--sizes", "4,x"], "--sizes must be comma-separated integers"),
    (["--sizes", "4"], "at least two positive widths"),
    (["--sizes", "4,0,3"], "at least two positive widths"),
    (["--samples", "0"], "--samples must be at least 1"),
    (["--max-params", "0"], "--max-params must be at least 1"),
    (["--order", "3"], "--order must be 2 or 4"),
    (["--tol", "0"], "--tol must be positive"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--batch", "8"], "--batch goes with --cost-table"),
    (["--cost-table", "--max-params", "5"], "not --sizes, --samples or --max-params"),
    (["--model", "no-such-model.npz", "--data", "iris"], "no-such-model.npz: no such file"),
    (["--model", "no-such-model.npz"], "--model needs --data"),
    (["--data", "iris"], "--data and --target go with --model"),
    (["--repeats", "3"], "--repeats goes with --cost-table"),
    (["--table-sizes", "2,2"], "--table-sizes goes with --cost-table"),
    (["--cost-table", "--table-sizes", "3,x"], "--table-sizes must be comma-separated integers"),
    (["--cost-table", "--model", "m.npz"], "takes no --model"),
    (["--cost-table", "--order", "3"], "--order must be 2 or 4"),
    (["--cost-table", "--batch", "0"], "--batch must be at least 1"),
])
def test_bad_input_gives_one_line_and_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, "gradcheck", *argv)
    assert code == 2
    assert err.startswith("deltaprop: error: ") and len(err.strip().splitlines()) == 1
    assert fragment in err and "Traceback" not in err


def test_model_with_random_network_flags_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "gradcheck", "--model", tmp_path / "m.npz", "--data", "iris", "--sizes", "4,3")
    assert code == 2 and "--sizes describes a random network" in err


# --------------------------------------------------------------------------- the cost table
def test_time_call_takes_the_median_of_batched_repeats():
    """With a clock that advances 1 ms per call, one call takes exactly 1 ms; repeats batch
    enough calls to last min_time, and the budget stops further repeats."""
    now = [0.0]
    calls = []

    def clock():
        return now[0]

    def fn():
        calls.append(1)
        now[0] += 1e-3

    assert _time_call(fn, 5, 4e-3, clock=clock) == pytest.approx(1e-3, rel=1e-9)
    assert len(calls) == 1 + 5 * 4  # warm-up, then 5 repeats of 4 calls
    calls.clear()
    assert _time_call(fn, 5, 0.0, budget=2.5e-3, warmup=False, clock=clock) == pytest.approx(1e-3, rel=1e-9)
    assert len(calls) == 3  # the first call counts; repeats stop once 2.5 ms are spent
    calls.clear()
    assert _time_call(fn, 1, 4e-3, warmup=False, clock=clock) == pytest.approx(1e-3, rel=1e-9)
    assert len(calls) == 1 + 4  # a first call shorter than min_time is only a warm-up after all


def test_gradient_cost_rows_full_sweeps():
    sizes = [(1, 2), (2, 3, 2), (3, 4, 2)]
    rows = gradient_cost(sizes, batch=4, repeats=2, min_time=0.0, numeric_budget=math.inf, order=4)
    assert [r.sizes for r in rows] == sizes
    assert [r.n_params for r in rows] == [Network(s).n_params for s in sizes] == [4, 17, 26]
    for r in rows:
        assert r.batch == 4 and r.order == 4 and r.passes_per_param == 4
        assert not r.estimated and r.numeric_timed == r.n_params
        assert r.forward_passes == 4 * r.n_params
        assert r.seconds_forward > 0 and r.seconds_backprop > 0 and r.seconds_numeric > 0
        assert r.ratio == r.seconds_numeric / r.seconds_backprop
        # the timed differences are also a gradient check: order 4, float64 (see test_gradcheck)
        assert r.max_rel_error < 1e-6
        d = r.to_dict()
        assert d["estimated"] is False and d["sizes"] == list(r.sizes) and d["ratio"] == r.ratio


def test_gradient_cost_estimates_from_a_sample_when_over_budget():
    # budget 0: every sweep is "too long", so k = max(min_sample, 0) parameters, at most P
    rows = gradient_cost([(1, 2), (3, 4, 2)], batch=3, repeats=1, min_time=0.0, numeric_budget=0.0,
                         min_sample=5, order=2)
    small, big = rows
    assert small.n_params == 4 and small.numeric_timed == 4 and not small.estimated
    assert big.n_params == 26 and big.numeric_timed == 5 and big.estimated
    assert big.forward_passes == 2 * 26 and big.passes_per_param == 2
    assert big.seconds_numeric > 0 and big.to_dict()["estimated"] is True


def test_cost_slope_of_exact_power_laws():
    def row(P, ratio):
        return CostRow(sizes=(1, 1), n_params=P, batch=1, order=2, h=2e-4, seconds_forward=1.0,
                       seconds_backprop=1.0, seconds_numeric=ratio, numeric_timed=P, max_rel_error=0.0)

    Ps = [10, 100, 1000, 10000]
    assert cost_slope([row(P, 3.0 * P) for P in Ps]) == pytest.approx(1.0, abs=1e-12)
    assert cost_slope([row(P, 0.5 * P ** 2) for P in Ps]) == pytest.approx(2.0, abs=1e-12)


def _synthetic_rows():
    # Timings made up (no clock involved): t_f = 1e-5 s * (1 + P / 1000), t_bp = 2.5 t_f, t_fd = 2 P t_f.
    rows = []
    for P, k in ((12, 12), (1000, 1000), (100000, 500)):
        tf = 1e-5 * (1 + P / 1000)
        rows.append(CostRow(sizes=(P, 1), n_params=P, batch=32, order=2, h=2e-4, seconds_forward=tf,
                            seconds_backprop=2.5 * tf, seconds_numeric=2 * P * tf, numeric_timed=k,
                            max_rel_error=1e-8))
    return rows


def test_text_rendering():
    rows = _synthetic_rows()
    text = format_cost_table(rows).splitlines()
    assert text[0].split()[:3] == ["network", "parameters", "P"] and len(text) == 4
    assert "measured: all 12" in text[1] and "estimated: 500 of 100,000 parameters timed" in text[3]
    table = CostTable(rows, seconds=1.5, machine=machine_facts(), repeats=3)
    assert table.slope == cost_slope(rows) and table.slope == pytest.approx(1.0, abs=0.01)
    out = table.text().splitlines()
    assert out[:4] == text and out[-1] == "measured in 1.5 s"
    assert "over 32 samples (float64), median of 3; numerical: central differences of order 2 = 2 " in out[4]
    assert CostTable(rows[:1], 1.0, {}, 1).slope is None and "the ratio grows" not in CostTable(rows[:1], 1.0, {}, 1).text()


def test_machine_facts_with_package_versions():
    facts = machine_facts(["numpy", "no_such_module_here"])
    assert facts["numpy"] == np.__version__ and facts["no_such_module_here"] is None
    assert facts["logical_cpus"] >= 1 and facts["python"] == sys.version.split()[0]
    assert set(facts["env"]) == {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}


def test_cost_table_library_function_times_and_records_the_machine():
    table = cost_table([(1, 2), (3, 4, 2)], batch=3, repeats=1, min_time=0.0, numeric_budget=0.0, min_sample=5)
    assert [r.n_params for r in table.rows] == [4, 26] and table.repeats == 1
    assert table.seconds > 0 and table.machine["numpy"] == np.__version__
    d = table.to_dict()
    assert list(d) == ["rows", "slope", "seconds", "machine"] and d["rows"][1]["estimated"] is True


def test_cost_table_command_prints_the_table_and_json(capsys):
    argv = ["gradcheck", "--cost-table", "--table-sizes", "1,2;8,8,2", "--repeats", "1", "--budget", "0",
            "--batch", "4"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].startswith("1-2 ") and "measured: all 4" in lines[1]
    assert lines[2].startswith("8-8-2 ") and "estimated: 50 of 90 parameters timed" in lines[2]
    assert "the ratio grows as P^" in out and lines[-1].startswith("measured in ")
    code, out, _ = run(capsys, *argv, "--json")
    res = json.loads(out)
    assert [r["estimated"] for r in res["rows"]] == [False, True] and res["machine"]["numpy"] == np.__version__


def test_matplotlib_is_not_imported_by_the_modules():
    code = ("import argparse, sys, deltaprop.gradcheck, deltaprop.gradcheck_report, deltaprop.machine, "
            "deltaprop.cli_gradcheck; "
            "deltaprop.cli_gradcheck.register(argparse.ArgumentParser().add_subparsers()); "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_docs_hold_the_table_for_the_default_sizes_and_the_command():
    text = (ROOT / "docs" / "gradient-cost.md").read_text(encoding="utf-8")
    command = [line for line in text.splitlines() if line.startswith("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ")]
    # bench/cost_page.py writes the page; without --markdown and --plot it writes these two files
    assert len(command) == 1 and command[0].endswith(" python bench/cost_page.py --force")
    assert "--plot" not in command[0] and "--markdown" not in command[0]
    for sizes in DEFAULT_COST_SIZES:
        assert f"| {'-'.join(map(str, sizes))} | {Network(sizes).n_params:,} |" in text
    assert "](gradient-cost.png)" in text
    assert (ROOT / "docs" / "gradient-cost.png").read_bytes()[:4] == b"\x89PNG"
