"""The Makefile's two commands (issue 28, item 4): `make demo` needs Python only (no npm, only the extras
the demo uses), `make test` installs everything, Azurite through npm included. Checked with `make -n`
(print, run nothing) against a venv path that does not exist, so every install step is printed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, tmp_path: Path) -> list[str]:
    # run as a top-level make even under `make test` (CI): a sub-make prints "Entering/Leaving directory"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_make_demo_needs_python_only(tmp_path: Path) -> None:
    lines = dry_run("demo", tmp_path)
    assert not [line for line in lines if "npm" in line or "node" in line.split()]
    installs = [line for line in lines if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install -q -e '.[examples]'"]
    assert lines[-1].endswith("bash examples/endpoints/batch/run-demo.sh")


def test_make_test_installs_everything_and_azurite(tmp_path: Path) -> None:
    lines = dry_run("test", tmp_path)
    assert any(line.endswith("pip install -q -e '.[all,dev]'") for line in lines)
    assert "npm ci --no-audit --no-fund --loglevel=error" in lines


def test_the_examples_extra_is_what_the_demo_imports_beyond_the_core() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["examples"] == ["scikit-learn>=1.3"]
    train = (ROOT / "examples" / "endpoints" / "batch" / "train_model.py").read_text()
    assert "from sklearn" in train and "mlflow.sklearn" in train
    assert any(dep.startswith("mlflow-skinny") for dep in project["dependencies"])


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert [line for line in script.splitlines() if line.startswith("make ")] == ["make test"]


@pytest.mark.parametrize("target", ["lint", "test"])
def test_lint_and_test_run_mypy(target: str, tmp_path: Path) -> None:
    lines = dry_run(target, tmp_path)
    assert f"{tmp_path / 'venv'}/bin/mypy src" in lines


def test_make_test_names_the_slowest_tests(tmp_path: Path) -> None:
    pytest_line = [line for line in dry_run("test", tmp_path) if " -m pytest " in line]
    assert len(pytest_line) == 1 and "--durations=25" in pytest_line[0].split()
