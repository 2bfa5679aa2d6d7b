"""Helpers of the Ray executor tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from support.scripts import script_text
from support.waiting import wait_for  # noqa: F401 - re-exported for the tests that import it from here


def heart_frame(n: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(30, 80, n).astype("int64"),
            "chol": rng.uniform(120, 400, n).round(2),
            "thal": rng.choice(["normal", "fixed", "reversible"], n),
        }
    )


# Each input file holds one command. State that must survive an actor lives in $STATE_DIR; every file
# run() reaches leaves $STATE_DIR/ran-<name>.
SCRIPT = script_text("ray_score")


def write_inputs(folder: Path, commands: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, command in commands.items():
        (folder / name).write_text(command + "\n")
    return folder


def ok_json(result: Any) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    return json.loads(result.stdout)


class Pair:
    """One endpoint with the same deployment twice: on the built-in local compute and on a ray compute."""

    def __init__(self, cli: Any, tmp: Path, address: str, max_workers: int | None = None) -> None:
        self.cli = cli
        self.tmp = tmp
        self.home = Path(os.environ["BATCHCTL_HOME"])
        self.state = tmp / "state"
        self.state.mkdir(exist_ok=True)
        ok_json(self.cli("endpoint", "create", "-n", "rayep", "-o", "json"))
        args = ["compute", "create", "-n", "my-ray", "--type", "ray", "--address", address, "-o", "json"]
        if max_workers:
            args += ["--max-workers", str(max_workers)]
        ok_json(self.cli(*args))

    def deploy(self, body: dict[str, Any], **settings: Any) -> None:
        import yaml

        for name, compute in (("on-local", None), ("on-ray", "azureml:my-ray")):
            data = {"name": name, "endpoint_name": "rayep", "type": "model", **body}
            data["settings"] = {"max_concurrency_per_instance": 2, **settings}
            if compute:
                data["compute"] = compute
            spec = self.tmp / f"{name}.yml"
            spec.write_text(yaml.safe_dump(data, sort_keys=False))
            ok_json(self.cli("deployment", "create", "-f", str(spec), "-o", "json"))

    def mlflow(self, model: Path, **settings: Any) -> None:
        self.deploy({"model": {"path": str(model), "type": "mlflow_model", "name": "heart"}}, **settings)

    def script(self, **settings: Any) -> None:
        code = self.tmp / "code"
        code.mkdir(exist_ok=True)
        (code / "score.py").write_text(SCRIPT)
        model = self.tmp / "weights"
        model.mkdir(exist_ok=True)
        (model / "weight.txt").write_text("2.5\n")
        env = {"STATE_DIR": str(self.state), **settings.pop("environment_variables", {})}
        self.deploy(
            {
                "model": {"path": str(model), "type": "custom_model", "name": "weights"},
                "code_configuration": {"code": str(code), "scoring_script": "score.py"},
            },
            environment_variables=env,
            **settings,
        )

    def invoke(self, deployment: str, data: Path, out: Path, *extra: str) -> Any:
        return self.cli(
            "endpoint",
            "invoke",
            "-n",
            "rayep",
            "-d",
            deployment,
            "--input",
            str(data),
            "--output-path",
            str(out),
            "-o",
            "json",
            *extra,
        )

    def show(self, job: str) -> dict[str, Any]:
        return ok_json(self.cli("job", "show", "-n", job, "-o", "json"))

    def job_dir(self, job: str) -> Path:
        return self.home / "jobs" / job

    def pids(self) -> set[int]:
        return {int(p.name.split("-", 1)[1]) for p in self.state.glob("pid-*")}

    def ran(self) -> set[str]:
        """The input files run() reached, on any worker or actor."""
        return {p.name.split("-", 1)[1] for p in self.state.glob("ran-*")}

    def stdout(self, job: str) -> str:
        folder = self.job_dir(job) / "logs" / "user" / "stdout"
        return "".join(p.read_text() for p in sorted(folder.glob("worker-*.txt")))


# A helper process: starts a local instance, prints its GCS address, stops it when stdin closes.
HEAD = textwrap.dedent(
    """
    import logging, sys
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.read()
    ray.shutdown()
    """
)


class RayHead:
    """A 2-CPU local Ray instance in a helper process of its own process group (GCS, raylet and workers
    are ended with it): stop() shuts it down cleanly, kill() makes the cluster vanish as a crash would."""

    def __init__(self, log: Path, start_timeout: float = 120) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHCTL_", "RAY_ADDRESS", "AZURE_"))}
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", HEAD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
                start_new_session=True,
            )
        self.address = _read_line(self.proc, start_timeout)
        if not self.address:
            self.kill()
            raise RuntimeError(f"the Ray head did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        _wait_group_gone(self.proc.pid, 30)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        _wait_group_gone(self.proc.pid, 30)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return ""
    return proc.stdout.readline().strip()


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Ray's processes of the helper's group must be gone (kill stragglers of our group only)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in psutil.process_iter() if _pgid(p.pid) == pgid]
        if not left:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
