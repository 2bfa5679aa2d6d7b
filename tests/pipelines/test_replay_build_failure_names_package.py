"""Replay of Azure's training-with-components example: its environment pins `pandas==1.4`, which has no
wheel for this Python, and building it from source fails. The step failed with "cannot install 8
requirements: The build backend returned an error", naming no package; uv's `error:` line names it
("Failed to build `pandas==1.4.0`"), and now the step's error does too. Here: an sdist written by the test
whose in-tree build backend fails, served offline beside a good wheel."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from envs.wheels import isolate_pip, write_wheel

BACKEND = """\
def get_requires_for_build_wheel(config_settings=None):
    raise RuntimeError("Cannot install on this Python version")

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("Cannot install on this Python version")
"""
PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "bcbroken"
version = "1.4.0"
"""


def _sdist(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"pyproject.toml": PYPROJECT, "backend.py": BACKEND, "PKG-INFO": "Metadata-Version: 2.1\nName: bcbroken\n"}
    with tarfile.open(folder / "bcbroken-1.4.0.tar.gz", "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"bcbroken-1.4.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    wheels = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(wheels, "bcprobe", "1.0.0")
    _sdist(wheels)
    isolate_pip(monkeypatch, tmp_path_factory.mktemp("uv-cache"), find_links=wheels)


@pytest.mark.timeout(600)
def test_a_package_that_fails_to_build_is_named(cli: Any, tmp_path: Path, offline: None) -> None:
    root = tmp_path / "training"
    (root / "src").mkdir(parents=True)
    (root / "src" / "prep.py").write_text("print('never runs')\n")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    pins = ["bcprobe==1.0.0", "bcbroken==1.4", "bcprobe", "bcprobe>=1"]  # more than 3: "4 requirements" before
    conda = {"dependencies": [f"python={python}", "pip", {"pip": pins}]}
    step = {
        "type": "command",
        "component": {"code": "src", "environment": {"conda_file": conda}, "command": "python prep.py"},
    }
    job_file = root / "pipeline-job.yml"
    job_file.write_text(yaml.safe_dump({"type": "pipeline", "jobs": {"preprocess_job": step}}))
    result = cli("job", "create", "-f", str(job_file), "--query", "name", "-o", "tsv")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    job = result.stdout.strip()
    (child,) = json.loads(cli("job", "list", "--parent-job-name", job, "-o", "json").stdout)
    assert child["status"] == "Failed", child
    error = str(child["error"])
    assert "cannot install bcbroken==1.4: Failed to build `bcbroken==1.4.0`" in error, error
    # the hint names the build's full log, on the step's record, the pipeline's, and the CLI's Hint line
    log = Path(str(child["error"]["hint"]).rsplit("full log: ", 1)[1])
    assert log.is_file() and "bcbroken" in log.read_text(), log
    assert f"full log: {log}" in result.stderr, result.stderr
