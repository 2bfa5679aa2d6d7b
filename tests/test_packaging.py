"""Packaging (issue 16, item 6): building the project from a clean copy prints no warning of its own, and
the licence is an SPDX expression."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what setuptools says about a project's own configuration (pip's notices about itself are not ours)
PROJECT_WARNINGS = ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "SetuptoolsWarning", "deprecated",
                    "license classifier")  # fmt: skip


@pytest.mark.slow
def test_building_from_a_clean_copy_prints_no_warning_of_the_projects_own(tmp_path: Path) -> None:
    src = tmp_path / "clone"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [name for name in listed.decode().split("\0") if name]
    assert "pyproject.toml" in files and "LICENSE" in files
    for name in files:  # the tracked files only, as a fresh clone has them (no build/ or *.egg-info)
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheels"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(out), "-v"],
        cwd=src, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    for marker in PROJECT_WARNINGS:
        assert marker.lower() not in output.lower(), [line for line in output.splitlines() if marker in line]
    [wheel] = out.glob("batchctl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
        assert "License-Expression: MIT" in text
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())
