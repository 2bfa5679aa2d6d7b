"""Shared helpers of the hardening suite (imported by path through tests/hardening/conftest.py fixtures, or
as `from .hardening_helpers import ...`; never `from conftest import ...`)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from support.scripts import script_text
from support.waiting import wait_for  # noqa: F401 - re-exported for the tests that import it from here


def tree(root: Path) -> dict[str, str]:
    """Every path under root (dirs, files, links, FIFOs) with a digest of its content: a snapshot."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                out[rel] = "link:" + os.readlink(full)
            elif stat.S_ISDIR(mode):
                out[rel] = "dir"
            elif stat.S_ISREG(mode):
                out[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
            else:
                out[rel] = f"special:{stat.S_IFMT(mode)}"
    return out


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_line_error(stderr: str) -> str:
    """The `Error: ...` line of a failed command, checking there is nothing else but an optional hint."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("Error: "), stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), stderr
    assert "Traceback" not in stderr, stderr
    return lines[0][len("Error: ") :]


def batchctl_run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchctl", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def batchctl_proc(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_job(home: Path, name: str) -> dict[str, Any]:
    return json.loads((home / "jobs" / name / "job.json").read_text())


# A scoring script driven by its input files (one command per file), as tests/jobs does it. State that must
# survive a worker (PIDs, "only once" marks) lives in $STATE_DIR.
SCRIPT = script_text("fault_score")


def write_inputs(folder: Path, commands: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, command in commands.items():
        (folder / rel).write_text(command + "\n")
    return folder


class Workbench:
    """An endpoint with a custom-script deployment, made through the CLI (in-process)."""

    def __init__(self, cli: Any, tmp_path: Path) -> None:
        self.cli = cli
        self.tmp = tmp_path
        self.home = Path(os.environ["BATCHCTL_HOME"])
        self.state = tmp_path / "state"
        self.state.mkdir(exist_ok=True)

    def ok(self, *args: str) -> Any:
        result = self.cli(*args)
        assert result.exit_code == 0, (args, result.exit_code, result.stderr)
        return json.loads(result.stdout) if result.stdout.strip() else None

    def deploy(self, endpoint: str = "hard", name: str = "blue", **settings: Any) -> Path:
        self.ok("endpoint", "create", "-n", endpoint)
        code = self.tmp / "code"
        code.mkdir(exist_ok=True)
        (code / "score.py").write_text(SCRIPT)
        model = self.tmp / "weights"
        model.mkdir(exist_ok=True)
        (model / "w.txt").write_text("w=1\n")
        spec = write_yaml(
            self.tmp / "specs" / f"{name}.yml",
            {
                "name": name,
                "endpoint_name": endpoint,
                "type": "model",
                "model": {"path": str(model), "type": "custom_model", "name": "weights"},
                "code_configuration": {"code": str(code), "scoring_script": "score.py"},
                "settings": {
                    "max_concurrency_per_instance": 1,
                    "mini_batch_size": 1,
                    "environment_variables": {"STATE_DIR": str(self.state)},
                    **settings,
                },
            },
        )
        self.ok("deployment", "create", "-f", str(spec))
        return spec

    def pids(self) -> set[int]:
        folder = self.state / "pids"
        return {int(p.name) for p in folder.iterdir()} if folder.is_dir() else set()
