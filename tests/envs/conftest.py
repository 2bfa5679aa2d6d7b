"""Isolated environments, offline: `bcprobe` releases written in the test and served from a wheel folder
through pip's own settings (PIP_FIND_LINKS + PIP_NO_INDEX, which batchctl hands to uv), pip's and uv's
configuration files turned off, and a uv cache of the session's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .wheels import isolate_pip, write_wheel

ROOT = Path(__file__).resolve().parents[2]
SCORE = """import importlib.util
import os
import sys
import time

import bcprobe


def init():
    pass


def run(mini_batch):
    time.sleep(float(os.environ.get("SLEEP", "0")))
    host_only = importlib.util.find_spec("typer") is not None  # batchctl's own dependency, not the env's
    return [f"{os.path.basename(f)},{bcprobe.probe()},{sys.executable},{host_only}" for f in mini_batch]
"""


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(folder, "bcprobe", "1.0.0")
    write_wheel(folder, "bcprobe", "2.0.0")
    return folder


@pytest.fixture(autouse=True)
def offline_index(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path, uv_cache: Path) -> Path:
    isolate_pip(monkeypatch, uv_cache, find_links=wheelhouse)
    return wheelhouse


class EnvWorld:
    """An endpoint `probe` with script deployments whose conda files pin bcprobe releases."""

    def __init__(self, cli: Any, tmp: Path, home: Path) -> None:
        self.cli = cli
        self.tmp = tmp
        self.home = home
        self.code = tmp / "code"
        self.code.mkdir()
        (self.code / "score.py").write_text(SCORE)
        self.model = tmp / "model"
        self.model.mkdir()
        (self.model / "weights.txt").write_text("w")
        self.data = tmp / "data"
        self.data.mkdir()
        for i in range(4):
            (self.data / f"f{i}.txt").write_text(str(i))
        self.ok("endpoint", "create", "-n", "probe")

    def ok(self, *args: str) -> dict[str, Any]:
        result = self.cli(*args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def conda(self, name: str, pip: list[str], python: str | None = None, conda: tuple[str, ...] = ()) -> Path:
        path = self.tmp / f"{name}.conda.yml"
        deps: list[Any] = [f"python={python}"] if python else []
        deps += ["pip", *conda, {"pip": pip}]
        path.write_text(yaml.safe_dump({"name": name, "dependencies": deps}))
        return path

    def deploy(
        self,
        name: str,
        pip: list[str] | None = None,
        properties: dict[str, str] | None = None,
        env_vars: dict[str, str] | None = None,
        compute: str = "local",
        **kw: Any,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": name,
            "endpoint_name": "probe",
            "type": "model",
            "model": {"path": str(self.model), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(self.code), "scoring_script": "score.py"},
            "settings": {
                "max_concurrency_per_instance": 1,
                "mini_batch_size": 1,
                "output_action": "append_row",
                "environment_variables": env_vars or {},
            },
            "properties": properties or {},
            "compute": compute,
        }
        if pip is not None:
            spec["environment"] = {"image": "python:3.11", "conda_file": str(self.conda(name, pip, **kw))}
        path = self.tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump(spec))
        return self.ok("deployment", "create", "-f", str(path))

    def invoke(self, deployment: str, *args: str) -> Any:
        return self.cli("endpoint", "invoke", "-n", "probe", "-d", deployment, "--input", str(self.data), *args,
                        "-o", "json")  # fmt: skip

    def rows(self, record: dict[str, Any]) -> list[list[str]]:
        return [line.split(",") for line in Path(record["output_file"]).read_text().splitlines()]

    def builds(self) -> list[Path]:
        root = self.home / "envs"
        return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


@pytest.fixture
def world(cli: Any, tmp_path: Path, isolation: Path) -> EnvWorld:
    return EnvWorld(cli, tmp_path, isolation)


def batchctl_proc(*args: str, env_extra: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "batchctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        **kw,
    )  # fmt: skip


def read_job(home: Path, name: str) -> dict[str, Any]:
    return json.loads((home / "jobs" / name / "job.json").read_text())


def wait_terminal(home: Path, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_job(home, name)
        if record["status"] in ("Completed", "Failed", "Canceled"):
            return record
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not end within {timeout} s")
