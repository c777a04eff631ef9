"""The documentation builds offline and strictly (no broken links, every page in the nav)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    html = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "loss_and_gradient" in html  # the reference is generated from the docstrings
    shutil.rmtree(tmp_path / "site")


def test_readme_commands_name_real_commands():
    from deltaprop.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    readme = (ROOT / "README.md").read_text()
    used = {line.split()[1] for line in readme.splitlines() if line.startswith("deltaprop ")}
    assert used and used <= commands, used - commands
