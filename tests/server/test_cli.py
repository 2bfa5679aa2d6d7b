"""The CLI with a running server: `endpoint invoke` / `job create` hand the job to the server (its warm
workers run it), with the same stdout, exit codes and --query as the in-process path, which --no-server
and BATCHCTL_NO_SERVER=1 keep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Server, Workspace, heart_csv, heart_folder

pytestmark = pytest.mark.slow


def batchctl(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "BATCHCTL_HOME": str(ws.root), **(env or {})}
    full.pop("BATCHCTL_NO_SERVER", None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "batchctl", *args], capture_output=True, text=True, env=full, timeout=300
    )


def shape(record: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the path a job took: keys, state, counts, settings, outputs."""
    return {
        "keys": sorted(record),
        "status": record["status"],
        "counts": record["counts"],
        "settings": record["settings"],
        "deployment": record["deployment_name"],
    }


def test_invoke_goes_through_the_server_with_the_same_output_as_without(served, reference):
    ws, server = served
    data = heart_folder(ws.allowed / "cli-data", files=3, rows=5)
    runs = {
        "server": batchctl(ws, "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", "o-srv"),
        "flag": batchctl(
            ws, "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", "o-flag", "--no-server"
        ),
        "env": batchctl(
            ws,
            "endpoint",
            "invoke",
            "-n",
            "heart",
            "--input",
            str(data),
            "--output-path",
            "o-env",
            env={"BATCHCTL_NO_SERVER": "1"},
        ),
    }
    records = {}
    for path, result in runs.items():
        assert result.returncode == 0, (path, result.stderr)
        assert "Warning" not in result.stderr, result.stderr
        records[path] = json.loads(result.stdout)
    assert records["server"]["runner"]["pid"] == server.pid  # the server ran it
    assert records["flag"]["runner"]["pid"] != server.pid
    assert records["env"]["runner"]["pid"] != server.pid
    assert shape(records["server"]) == shape(records["flag"]) == shape(records["env"])
    expected = "\n".join(r for p in sorted(data.iterdir()) for r in reference(p)) + "\n"
    for out in ("o-srv", "o-flag", "o-env"):
        assert (Path.cwd() / out / "predictions.csv").read_text() == expected  # relative paths: the CLI's cwd


def test_query_tsv_and_job_create_through_the_server(served, tmp_path):
    ws, server = served
    data = heart_folder(ws.allowed / "cli-q", files=1, rows=3)
    result = batchctl(ws, "endpoint", "invoke", "-n", "heart", "--input", str(data), "--query", "name", "-o", "tsv")
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip()
    assert "\n" not in name
    assert json.loads(batchctl(ws, "job", "show", "-n", name).stdout)["runner"]["pid"] == server.pid
    spec = tmp_path / "job.yml"
    out = tmp_path / "o"
    spec.write_text(f"endpoint: heart\ninputs:\n  d: {{path: {data}}}\noutputs:\n  score: {{path: {out}}}\n")
    query = ("--query", "[name,status]", "-o", "tsv")
    created = batchctl(ws, "job", "create", "-f", str(spec), "-n", "from-file", *query)
    assert (created.returncode, created.stdout) == (0, "from-file\nCompleted\n"), created.stderr
    assert (tmp_path / "o" / "predictions.csv").is_file()


def test_failures_give_the_same_exit_code_and_message_either_way(served, tmp_path):
    ws, _ = served
    bad = ws.commands("failing", {"x.txt": "raise"})
    out = tmp_path / "exists"
    heart_csv(tmp_path / "one" / "a.csv", 2, 1)
    out.mkdir()
    (out / "predictions.csv").write_text("keep\n")
    for extra, env in (([], None), (["--no-server"], None), ([], {"BATCHCTL_NO_SERVER": "1"})):
        name = f"failing-{len(extra)}-{bool(env)}"
        args = ["-d", "script", "-i", str(bad), "--job-name", name, "--set", "retry_settings.max_retries=0", *extra]
        failed = batchctl(ws, "endpoint", "invoke", "-n", "heart", *args, env=env)
        assert failed.returncode == 1, failed.stderr
        first = failed.stderr.strip().splitlines()[-2]
        assert first.startswith(f"Error: job {name} failed: There is no succeeded mini batch item"), failed.stderr
        assert json.loads(failed.stdout)["status"] == "Failed"
        args = ["--input", str(tmp_path / "one"), "--output-path", str(out), *extra]
        exists = batchctl(ws, "endpoint", "invoke", "-n", "heart", *args, env=env)
        assert exists.returncode == 5
        assert exists.stderr.startswith(f"Error: output file {out / 'predictions.csv'} already exists"), exists.stderr
    assert (out / "predictions.csv").read_text() == "keep\n"


def test_no_wait_returns_at_once_and_the_server_runs_the_job(served):
    ws, server = served
    data = heart_folder(ws.allowed / "cli-nowait", files=2, rows=3)
    result = batchctl(ws, "endpoint", "invoke", "-n", "heart", "--input", str(data), "--no-wait")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] in ("Queued", "Running", "Completed")
    assert record["runner"]["pid"] == server.pid
    streamed = batchctl(ws, "job", "stream", "-n", record["name"])
    assert streamed.returncode == 0
    assert streamed.stdout.splitlines()[-1] == f"job {record['name']}: Completed - 2 items succeeded, 0 failed"


def test_a_dead_server_is_ignored(tmp_path, heart_model):
    ws = Workspace(tmp_path / "ws2", heart_model)
    server = Server(ws)
    server.kill()
    commands = str(ws.commands("c", {"a.txt": "ok"}))
    result = batchctl(ws, "endpoint", "invoke", "-n", "heart", "-d", "script", "--input", commands)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    assert json.loads(result.stdout)["runner"]["pid"] != server.pid


def test_sigterm_on_the_cli_cancels_the_servers_job_with_exit_130(served):
    import signal
    import time

    ws, server = served
    slow = ws.commands("cli-slow", {"a.txt": "sleep 60"})
    env = {k: v for k, v in os.environ.items() if k != "BATCHCTL_NO_SERVER"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "endpoint", "invoke", "-n", "heart", "-d", "script", "-i", str(slow)]
        + ["--job-name", "cli-term"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "BATCHCTL_HOME": str(ws.root)},
    )
    deadline = time.monotonic() + 120
    record = ws.root / "jobs" / "cli-term" / "job.json"
    while time.monotonic() < deadline:
        if record.is_file() and json.loads(record.read_text())["status"] == "Running":
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stderr
    assert "Error: job cli-term was canceled; nothing was published" in stderr
    final = json.loads(record.read_text())
    assert (final["status"], final["runner"]["pid"]) == ("Canceled", server.pid)
    assert json.loads(stdout)["status"] == "Canceled"
