"""Helpers for tests/storage (imported by name: every conftest.py in the tree is the module `conftest`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from support.waiting import wait_for  # noqa: F401 - re-exported for the tests that import it from here
from testkit import train_heart_model

ENDPOINT = "heart"
COLUMNS = "age,chol,thal\n"
ROWS = ["63,233,fixed\n", "41,204,normal\n", "57,354,reversible\n", "70,300,normal\n", "45,180,fixed\n"]


def train_model(target: Path) -> Path:
    """A real scikit-learn pipeline (one-hot, scaler, logistic regression) saved with mlflow."""
    return train_heart_model(target, rows=60, seed=1)


def csv_files(count: int = 4) -> dict[str, bytes]:
    """count small CSV files (nested one level for the folder tests) plus a hidden file that is skipped."""
    files = {}
    for i in range(count):
        rows = "".join(ROWS[(i + k) % len(ROWS)] for k in range(3))
        files[f"part{i // 2}/f{i:02d}.csv"] = (COLUMNS + rows).encode()
    files[".hidden.csv"] = b"not,a,csv\n"
    return files


class Batchctl:
    """The real CLI in a subprocess (`python -m batchctl`), in the test's workspace and environment."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.env: dict[str, str] = {}

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, "BATCHCTL_HOME": str(self.home), "NO_COLOR": "1", **self.env, **(extra or {})}
        return {k: v for k, v in env.items() if v is not None}

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "batchctl", *args],
            capture_output=True,
            text=True,
            env=self.environ(env),
            cwd=self.cwd,
            timeout=timeout,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Any:
        proc = self.run(*args, "-o", "json", env=env, timeout=timeout)
        assert proc.returncode == 0, f"batchctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "batchctl", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(env),
            cwd=self.cwd,
        )

    def invoke(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        return self.run("endpoint", "invoke", "-n", ENDPOINT, *args, "-o", "json", env=env, timeout=timeout)


def datastore_spec(tmp_path: Path, name: str, container: str, endpoint: str, **extra: Any) -> Path:
    spec = tmp_path / f"datastore-{name}.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "type": "azure_blob",
                "account_name": "devstoreaccount1",
                "container_name": container,
                "endpoint": endpoint,
                "protocol": "http",
                **extra,
            }
        )
    )
    return spec


SLOW_SCRIPT = """
import os, time

def init():
    pass

def run(mini_batch):
    time.sleep({sleep})
    return [os.path.basename(p) for p in mini_batch]
"""


def deploy_slow_script(bctl: Batchctl, tmp_path: Path, sleep: float, **settings: Any) -> None:
    """Endpoint `heart` whose default deployment `slow` sleeps per one-file mini-batch (1 worker)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("1\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SLOW_SCRIPT.format(sleep=sleep))
    bctl.ok("model", "create", "--name", "slow", "--path", str(model))
    bctl.ok("endpoint", "create", "-n", "heart")
    spec = {
        "name": "slow",
        "endpoint_name": "heart",
        "type": "model",
        "model": "azureml:slow@latest",
        "code_configuration": {"code": "code", "scoring_script": "score.py"},
        "settings": {"mini_batch_size": 1, "max_concurrency_per_instance": 1, **settings},
    }
    dep = tmp_path / "dep.yml"
    dep.write_text(yaml.safe_dump(spec))
    bctl.ok("deployment", "create", "-f", str(dep), "--set-default")
