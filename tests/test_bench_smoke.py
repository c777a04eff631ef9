"""bench/run.py --quick runs end to end (no peer needs to be installed) and reports every
kind of result; bench/cost_page.py writes the gradient-cost page and its plot. Speed is never
asserted: it lives in the benchmark, not in tests."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deltaprop.gradcheck_report import CostTable
from deltaprop.machine import machine_facts
from test_cli_gradcheck import _synthetic_rows  # made-up timings, the same as the text table's test

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, hide=""):
    env = dict(os.environ, DELTAPROP_BENCH_HIDE=hide)
    return subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def _bench_module(name):
    """A module of bench/ (no package; this leaves sys.path as it was)."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def test_quick_json_run_reports_results_skips_memory_and_import():
    # cells whose compiled kernels the engine tests compile too (a first run compiles each
    # kernel and dtype for seconds): float32 batches, the float64 worked example
    cells = ("W1a-32", "W1b-256", "W3-worked")
    # hiding torch hides torch_compile too, as when PyTorch is not installed
    out = _run("--json", "--systems", "deltaprop,numpy,torch,torch_compile", "--cells", ",".join(cells),
               hide="torch")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    results = [r for r in rows if "samples_per_s" in r]
    assert {(r["cell"], r["system"]) for r in results} == {
        (c, "deltaprop") for c in cells} | {(c, "numpy") for c in cells[:2]}
    assert all(r["samples_per_s"] > 0 for r in results)
    for peer in ("torch", "torch_compile"):
        assert any(r.get("system") == peer and "hidden" in r.get("skipped", "") for r in rows), peer
    summary = [r for r in rows if "gemm_gflops" in r]
    assert summary and summary[0]["gemm_limit_samples_per_s"] > 0
    memory = [r["memory"] for r in rows if "memory" in r]
    # Linux reads a process's RSS from counters updated in batches (per thread, every 64 page
    # events; per CPU since 6.2), so with the epoch's threads the peak above the RSS before can
    # read a few hundred KB below zero (measured: -0.04 MB)
    assert len(memory) == 2 and all(m.get("extra_mb", -2) > -1 for m in memory), memory
    imported = [r for r in rows if "import" in r][0]["import"]
    assert imported["import_ms_median"] > 0 and imported["first_use_ms_median"] > 0
    startup = [r["startup"] for r in rows if "startup" in r][0]
    assert startup["command"] == "deltaprop train --epochs 2" and startup["repeats"] == 2, startup
    assert startup["defaults_s_median"] > 0 and startup["numpy_s_median"] > 0
    targets = _bench_module("report").targets(rows)
    assert "| import deltaprop <= 100 ms |" in targets
    assert "| `deltaprop train` with defaults no slower than `--engine numpy` |" in targets


def test_quick_new_cells_defaults_and_their_targets():
    # the cells of the performance issue's "what users get" list, each beside its defaults
    # cell (deltaprop_defaults: the library's defaults through build_training), at tiny sizes
    cells = ("W1b-256", "W4-adam-32", "W4-adam-256", "W5-wide", "W6-tabular", "W7-irprop-")
    out = _run("--json", "--systems", "deltaprop,deltaprop_defaults,numpy,torch", "--cells", ",".join(cells),
               "--skip-extras", hide="torch")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    results = {(r["cell"], r["system"]): r for r in rows if "samples_per_s" in r}
    # the NumPy loop has Adam and momentum but no RPROP rule: a note, not a row
    assert set(results) == {(c, s) for c in cells for s in ("deltaprop", "deltaprop_defaults")} | {
        (c, "numpy") for c in cells[:-1]}
    assert all(r["samples_per_s"] > 0 for r in results.values())
    assert any(r.get("cell") == "W7-irprop-" and r.get("system") == "numpy" and "no irprop-" in r.get("skipped", "")
               for r in rows)
    from deltaprop.config import DEFAULTS

    for c in cells:
        named, defaults = results[(c, "deltaprop")]["info"], results[(c, "deltaprop_defaults")]["info"]
        assert named["eval_every"] == 0 and named["dtype"] == "float32"
        assert defaults["eval_every"] == DEFAULTS.eval_every and defaults["dtype"] == DEFAULTS.dtype
        assert np.isfinite(named["final_loss"]) and np.isfinite(defaults["final_loss"])
    assert [r for r in rows if "gemm_gflops" in r][0]["products_samples_per_s"] > 0
    text = _bench_module("report").render(rows)
    assert "| W4-adam-256 defaults |" in text and "| W6-tabular |" in text
    for row in ("| W4-adam-32 defaults >= 1.1x the best peer, 1 thread | ",
                "| W7-irprop- >= 1.1x the best peer, 1 thread | no peer measured | - |",
                "| W4-adam-256 defaults >= 1.2x PyTorch, 1 thread | torch not measured | - |",
                "| W1b-256 evaluation off >= 92% of the products-alone ceiling, 1 thread | ",
                "| W5-wide defaults within 10% of evaluation off, 1 thread | "):
        assert row in text, row


def test_report_writes_between_the_markers_only(tmp_path, capsys):
    report = _bench_module("report")
    rows = [{"machine": {"cpu": "Test CPU", "logical_cpus": 2, "loadavg": [0.1, 0.2, 0.3], "env": {}},
             "command": "python bench/run.py --threads 1 --json"},
            {"threads": 1, "cell": "W6-tabular", "system": "deltaprop", "samples_per_s": 3000.0},
            {"threads": 1, "cell": "W6-tabular", "system": "deltaprop_defaults", "samples_per_s": 2000.0},
            {"threads": 1, "cell": "W6-tabular", "system": "numpy", "samples_per_s": 1000.0},
            {"loadavg_end": [0.4, 0.5, 0.6]}]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = tmp_path / "page.md"
    page.write_text(f"before\n{report.BEGIN}\nold results\n{report.END}\nafter\n")
    assert report.main([str(results), "--write", str(page)]) == 0
    text = page.read_text()
    assert text.startswith(f"before\n{report.BEGIN}\n") and text.endswith(f"{report.END}\nafter\n")
    assert "old results" not in text and "python bench/run.py --threads 1 --json" in text
    assert "Test CPU" in text and "0.4, 0.5, 0.6" in text
    # an unfinished thread pass (no summary line) still has its table and targets
    assert "| W6-tabular defaults | 2.0k | 1.0k |" in text
    assert "| W6-tabular defaults within 10% of evaluation off, 1 thread | +50% time per sample" in text
    assert report.main([str(results), "--write", str(page)]) == 0 and page.read_text() == text
    page.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one line"):
        report.main([str(results), "--write", str(page)])


def test_quick_table():
    out = _run("--systems", "deltaprop,deltaprop_defaults,numpy", "--cells", "W1a-256,W3-worked", "--skip-extras")
    assert out.returncode == 0, out.stderr
    assert "| W1a-256 |" in out.stdout and "| W1a-256 defaults |" in out.stdout and "| W3-worked |" in out.stdout
    assert "| W3-worked defaults |" not in out.stdout  # fixed weights and frozen biases: no defaults cell
    assert "of GEMM limit" in out.stdout and "| target | measured | met |" in out.stdout
    assert "| W1a-256 defaults >= 1.1x the best peer, 1 thread | " in out.stdout


# --------------------------------------------------------------------------- bench/cost_page.py
def _cost_page():
    return _bench_module("cost_page")


def _synthetic_table():
    return CostTable(_synthetic_rows(), seconds=7.0, machine=machine_facts(), repeats=7)


def test_cost_page_markdown(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    table = _synthetic_table()
    md = _cost_page().cost_markdown(table, command="python bench/cost_page.py --markdown docs/x.md",
                                    plot="docs/x.png", markdown="docs/x.md")
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/cost_page.py --markdown docs/x.md" in md
    assert "![time of one gradient against the number of parameters, log-log](x.png)" in md
    assert "| 100000-1 | 100,000 |" in md and "has slope **1.00**" in md
    assert f"NumPy {np.__version__}" in md and table.machine["cpu"] in md


def test_cost_page_plot_renders_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "cost.png"
    _cost_page().plot_cost(_synthetic_table().rows, path, title="synthetic")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_cost_page_defaults_to_the_docs_page():
    opts, rest = _cost_page()._parser().parse_known_args(["--repeats", "1"])
    assert Path(opts.markdown) == ROOT / "docs" / "gradient-cost.md" and rest == ["--repeats", "1"]
    assert Path(opts.plot) == ROOT / "docs" / "gradient-cost.png" and not opts.force


def test_cost_page_writes_table_markdown_and_plot(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    # Only what the page reports: a thread setting found would be repeated in its command.
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    main = _cost_page().main
    md, png = tmp_path / "cost.md", tmp_path / "cost.png"
    argv = ["--table-sizes", "1,2;8,8,2", "--batch", "4", "--repeats", "1", "--budget", "0",
            "--plot", str(png), "--markdown", str(md)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].startswith("1-2 ") and "measured: all 4" in lines[1]
    assert lines[2].startswith("8-8-2 ") and "estimated: 50 of 90 parameters timed" in lines[2]
    assert "the ratio grows as P^" in out and f"wrote {png}" in out and f"wrote {md}" in out
    text = md.read_text(encoding="utf-8")
    assert (f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/cost_page.py --table-sizes '1,2;8,8,2' "
            f"--batch 4 --repeats 1 --budget 0 --plot {png} --markdown {md}\n") in text
    assert "| 8-8-2 | 90 |" in text and "(cost.png)" in text
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the files exist now: refused without --force, before anything is measured
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cost_page: error: ") and "already exists; use --force" in err
    assert main([*argv, "--force"]) == 0


@pytest.mark.parametrize("argv,fragment", [
    (["--markdown", "no-such-folder/x.md"], "does not exist"),
    (["--model", "m.npz"], "takes no --model"),
    (["--table-sizes", "3,x"], "--table-sizes must be comma-separated integers"),
    (["--order", "3"], "--order must be 2 or 4"),
])
def test_cost_page_bad_input_gives_one_line_and_exit_2(capsys, tmp_path, argv, fragment):
    code = _cost_page().main(["--plot", str(tmp_path / "x.png"), "--markdown", str(tmp_path / "x.md"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cost_page: error: ") and len(err.strip().splitlines()) == 1
    assert fragment in err


def test_mlp_same_args_writes_its_table_into_the_marked_block(tmp_path):
    """bench/mlp_same_args.py (issue 19's benchmark row) runs both estimators and rewrites only
    the block between its markers, with the ratio of this run's own times."""
    pytest.importorskip("sklearn")
    doc = tmp_path / "page.md"
    doc.write_text("before\n<!-- mlp_same_args:begin -->\nold\n<!-- mlp_same_args:end -->\nafter\n")
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "mlp_same_args.py"), "--tables", "digits",
                          "--solvers", "lbfgs,sgd", "--max-iter", "3", "--docs", str(doc)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    text = doc.read_text()
    assert text.startswith("before\n<!-- mlp_same_args:begin -->\n```\npython bench/mlp_same_args.py --tables digits")
    assert text.endswith("<!-- mlp_same_args:end -->\nafter\n") and "old" not in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| digits")]
    assert [r[1].strip() for r in rows] == ["lbfgs", "sgd"]
    for r in rows:
        ours_s, mlp_s, ratio = (float(x) for x in r[4:7])
        # the times are printed to 0.005 s and the ratio to 0.005: it is theirs within that rounding
        assert (mlp_s - 0.005) / (ours_s + 0.005) - 0.005 <= ratio <= (mlp_s + 0.005) / (ours_s - 0.005) + 0.005
    assert "load average" in text and "threads" in text
