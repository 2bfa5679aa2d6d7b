"""Helpers for the server tests: a REAL `batchctl serve --port 0` subprocess on 127.0.0.1 (stopped by its
PID), httpx clients with tokens from the workspace key, a real MLflow model and heart data."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from support.scripts import script_text
from support.servers import ServeProcess
from support.waiting import wait_for  # noqa: F401 - re-exported for the tests that import it from here

PY = sys.executable


def heart_csv(path: Path, rows: int, seed: int) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.uniform(30, 80, rows).round(2),
            "chol": rng.uniform(120, 400, rows).round(2),
            "thal": rng.choice(["normal", "fixed", "reversible"], rows),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def heart_folder(folder: Path, files: int = 3, rows: int = 6, seed: int = 0) -> Path:
    for i in range(files):
        heart_csv(folder / f"part-{i:03d}.csv", rows, seed + i)
    return folder


# A scoring script for lifecycle tests: init() records its pid; each input file says what to do.
SCRIPT = script_text("lifecycle_score")


class Workspace:
    """A workspace with endpoint `heart`: deployment `blue` (the MLflow model, default) and `script`.

    With `built=True`, `root` is a copy of one already built (support.workspaces): only the files beside
    it are written, and `script`'s STATE_DIR is pointed at this copy's state folder."""

    def __init__(self, root: Path, model: Path, *, built: bool = False) -> None:
        from batchctl.workspace import Workspace as Ws

        self.root = root
        self.ws = Ws(root)
        self.tmp = root.parent
        self.state = self.tmp / "state"
        self.state.mkdir(exist_ok=True)
        self.allowed = self.tmp / "allowed"
        self.allowed.mkdir(exist_ok=True)
        code = self.tmp / "code"
        code.mkdir(exist_ok=True)
        (code / "score.py").write_text(SCRIPT)
        weights = self.tmp / "weights"
        weights.mkdir(exist_ok=True)
        (weights / "w.txt").write_text("1\n")
        if built:
            from batchctl import api

            api.update_deployment(
                self.ws, "script", "heart", [f"settings.environment_variables.STATE_DIR={self.state}"]
            )
            return
        self._build(model, code, weights)

    def _build(self, model: Path, code: Path, weights: Path) -> None:
        from batchctl import api

        api.create_endpoint(self.ws, name="heart")
        self.deploy({"name": "blue", "model": {"path": str(model), "type": "mlflow_model", "name": "heart"}})
        self.deploy(
            {
                "name": "script",
                "model": {"path": str(weights), "type": "custom_model", "name": "weights"},
                "code_configuration": {"code": str(code), "scoring_script": "score.py"},
            },
            {"environment_variables": {"STATE_DIR": str(self.state)}, "retry_settings": {"timeout": 60}},
        )

    def deploy(self, spec: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, Any]:
        from batchctl import api

        data = {
            "endpoint_name": "heart",
            "type": "model",
            **spec,
            "settings": {"max_concurrency_per_instance": 1, "mini_batch_size": 2, **(settings or {})},
        }
        path = self.tmp / "specs" / f"{spec['name']}.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return api.create_deployment(self.ws, str(path))

    def inits(self) -> set[int]:
        folder = self.state / "inits"
        return {int(p.name) for p in folder.iterdir()} if folder.is_dir() else set()

    def commands(self, name: str, commands: dict[str, str]) -> Path:
        folder = self.allowed / name
        folder.mkdir(parents=True, exist_ok=True)
        for rel, text in commands.items():
            (folder / rel).write_text(text + "\n")
        return folder


class Server(ServeProcess):
    """`python -m batchctl serve --port 0 --allow-path <allowed>` for a test workspace (support.servers)."""

    def __init__(self, ws: Workspace, *args: str, env: dict[str, str] | None = None) -> None:
        self.ws = ws
        super().__init__(ws.root, ws.tmp / "server-logs", "--allow-path", str(ws.allowed), *args, env=env)

    def token(self, expires_in: int = 600) -> str:
        from batchctl.server.auth import load_key, mint

        return mint(load_key(self.ws.ws, create=False), expires_in)["accessToken"]

    def client(self, token: str | None = None) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)


def body(uri: str, kind: str = "UriFolder", output: str | None = None, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"InputData": {"heart_data": {"JobInputType": kind, "Uri": uri}}, **extra}
    if output is not None:
        properties["OutputData"] = {"score": {"JobOutputType": "UriFolder", "Uri": output}}
    return {"properties": properties}


def wait_job(client: Any, name: str, timeout: float = 180, states: tuple[str, ...] = ()) -> dict[str, Any]:
    """Poll GET /jobs/{name} until the job ends (or reaches one of `states`)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{name}").json()
        status = job["properties"]["status"]
        if status in ("Completed", "Failed", "Canceled") or status in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} still {status} after {timeout}s")
        time.sleep(0.05)


def read_record(ws: Workspace, name: str) -> dict[str, Any]:
    return json.loads((ws.root / "jobs" / name / "job.json").read_text())
