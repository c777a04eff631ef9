"""bench/run.py --quick runs end to end (no peer needs to be installed) and reports every
kind of result. Speed is never asserted: it lives in the benchmark, not in tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, hide=""):
    env = dict(os.environ, DELTAPROP_BENCH_HIDE=hide)
    return subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


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
    assert len(memory) == 2 and all(m.get("extra_mb", -1) >= 0 for m in memory), memory
    assert [r for r in rows if "import" in r][0]["import"]["import_ms_median"] > 0


def test_quick_table():
    out = _run("--systems", "deltaprop,numpy", "--cells", "W1a-256,W3-worked", "--skip-extras")
    assert out.returncode == 0, out.stderr
    assert "| W1a-256 |" in out.stdout and "| W3-worked |" in out.stdout
    assert "of GEMM limit" in out.stdout
