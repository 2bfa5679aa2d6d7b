"""`${env:NAME}` with a server running: a job the CLI hands over reads the CALLER's value (sent with the
start request, never written to a file), as it would run in-process; a REST job reads the server's own
environment. The server and the caller hold different values, so each case shows whose was read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from server_helpers import Workspace, body, wait_job

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import os

    def init():
        pass

    def run(mini_batch):
        return [os.path.basename(p) + " " + os.environ["SEEN"] for p in mini_batch]
    """
)


def _deploy_envy(ws: Workspace) -> None:
    code = ws.tmp / "envy-code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(SCRIPT)
    ws.deploy(
        {
            "name": "envy",
            "model": {"path": str(ws.tmp / "weights"), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        },
        {"environment_variables": {"SEEN": "${env:MY_SECRET}"}, "retry_settings": {"max_retries": 0}},
    )


def _invoke(ws: Workspace, data: Any, out: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATCHCTL_HOME": str(ws.root)}
    env.pop("BATCHCTL_NO_SERVER", None)
    env.pop("MY_SECRET", None)
    if secret is not None:
        env["MY_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "batchctl", "endpoint", "invoke", "-n", "heart", "-d", "envy", "--input", str(data),
         "--output-path", out],
        capture_output=True, text=True, env=env, timeout=300, cwd=ws.tmp,
    )  # fmt: skip


def test_a_handed_over_job_reads_the_callers_value_and_a_rest_job_the_servers(workspace, start_server):
    _deploy_envy(workspace)
    server = start_server(workspace, env={"MY_SECRET": "server-value"})
    data = workspace.commands("envy-in", {"a.txt": "x"})

    handed = _invoke(workspace, data, "out-caller", "caller-value")
    assert handed.returncode == 0, handed.stderr
    assert "Warning" not in handed.stderr, handed.stderr
    record = json.loads(handed.stdout)
    assert record["runner"]["pid"] == server.pid  # the server ran it, warm path kept
    assert (workspace.tmp / "out-caller" / "predictions.csv").read_text() == "a.txt caller-value\n"

    # a caller without the variable: the job fails naming it, as it would in-process (not the server's value)
    missing = _invoke(workspace, data, "out-missing", None)
    assert missing.returncode == 1, missing.stderr
    failed = json.loads(missing.stdout)
    assert failed["runner"]["pid"] == server.pid
    assert "MY_SECRET is not set" in failed["error"]["message"]
    assert not (workspace.tmp / "out-missing").exists()

    # nothing of the caller's value reached a file of the workspace
    for path in workspace.root.rglob("*"):
        if path.is_file():
            assert b"caller-value" not in path.read_bytes(), path

    # REST (and the Studio, through the same queue) read the server's environment
    with server.client() as client:
        response = client.post(
            "/endpoints/heart/jobs",
            json=body(str(data), output=str(workspace.allowed / "out-rest")),
            headers={"azureml-model-deployment": "envy"},
        )
        assert response.status_code == 200, response.text
        final = wait_job(client, response.json()["name"])
    assert final["properties"]["status"] == "Completed", final["properties"]["error"]
    assert (workspace.allowed / "out-rest" / "predictions.csv").read_text() == "a.txt server-value\n"


def test_values_are_sent_only_over_loopback_or_tls():
    from batchctl.cli import _server_client

    assert _server_client._private("http://127.0.0.1:8765")
    assert _server_client._private("http://[::1]:8765")
    assert _server_client._private("https://10.0.0.5:8765")
    assert not _server_client._private("http://10.0.0.5:8765")
