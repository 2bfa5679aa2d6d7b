"""The import-linter contract in pyproject.toml holds, and it fails on an import that points up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_layers_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Layers only point down KEPT" in result.stdout
    assert "No cycles between the modules of a package KEPT" in result.stdout


def test_an_api_import_inside_jobs_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    submit = copy / "src" / "batchctl" / "jobs" / "submit.py"
    submit.write_text(submit.read_text() + "\n\ndef _planted():\n    from batchctl import api  # noqa\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "Layers only point down BROKEN" in result.stdout
    assert "batchctl.jobs.submit -> batchctl.api" in result.stdout
