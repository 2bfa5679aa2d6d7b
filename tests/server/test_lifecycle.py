"""The server's life: --port 0 prints the port and records server.json; SIGTERM during a job lets it finish
within the grace period, or cancels it cleanly after; SIGKILL leaves its jobs reading Failed and a restart
serves again; a second server on the same workspace is refused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from server_helpers import body, heart_folder, read_record, wait_for, wait_job

pytestmark = pytest.mark.slow


def test_port_0_prints_the_port_and_server_json_follows_the_server(workspace, start_server):
    from batchctl import api

    server = start_server(workspace)
    stdout, _ = server.output()
    assert stdout.startswith(f"batchctl serve: listening on {server.url} (workspace {workspace.root})")
    port = int(server.url.rsplit(":", 1)[1])
    assert port not in (0, 8765)
    info = json.loads((workspace.root / "server.json").read_text())
    assert (info["url"], info["pid"], info["workspace"]) == (server.url, server.pid, str(workspace.root))
    assert api.server_info(workspace.ws)["pid"] == server.pid
    again = subprocess.run(
        [sys.executable, "-m", "batchctl", "--workspace", str(workspace.root), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 5
    assert again.stderr.startswith(f"Error: a server already serves {workspace.root} at {server.url}")
    assert server.stop(signal.SIGTERM) == 0
    stdout, _ = server.output()
    assert stdout.splitlines()[-1] == "batchctl serve: stopped"
    assert not (workspace.root / "server.json").exists()
    assert api.server_info(workspace.ws) is None
    assert api.get_endpoint(workspace.ws, "heart")["server"]["running"] is False


def test_sigterm_lets_a_running_job_finish_within_the_grace_period(workspace, start_server):
    server = start_server(workspace, "--shutdown-timeout", "60")
    slow = workspace.commands("slow-finish", {"a.txt": "sleep 4", "b.txt": "ok"})
    with server.client() as client:
        name = client.post(
            "/endpoints/heart/jobs", json=body(str(slow)), headers={"azureml-model-deployment": "script"}
        ).json()["name"]
        wait_for(lambda: workspace.inits(), 60, "the worker's init()")
        queued = client.post(
            "/endpoints/heart/jobs", json=body(str(slow)), headers={"azureml-model-deployment": "script"}
        ).json()["name"]
    started = time.monotonic()
    assert server.stop(signal.SIGTERM, timeout=90) == 0
    first, second = read_record(workspace, name), read_record(workspace, queued)
    assert first["status"] == "Completed", first.get("error")
    assert second["status"] == "Canceled"  # never started: canceled, not left Queued
    assert time.monotonic() - started < 60
    stdout, _ = server.output()
    assert stdout.splitlines()[-1] == f"batchctl serve: stopped; canceled {queued}"


def test_sigterm_cancels_a_job_still_running_after_the_grace_period(workspace, start_server):
    server = start_server(workspace, "--shutdown-timeout", "1")
    slow = workspace.commands("slow-cancel", {"a.txt": "sleep 60", "b.txt": "ok"})
    out = workspace.allowed / "out-sigterm"
    with server.client() as client:
        name = client.post(
            "/endpoints/heart/jobs",
            json=body(str(slow), output=str(out)),
            headers={"azureml-model-deployment": "script"},
        ).json()["name"]
        wait_job(client, name, states=("Running",))
        wait_for(lambda: workspace.inits(), 60, "the worker's init()")
    started = time.monotonic()
    assert server.stop(signal.SIGTERM, timeout=60) == 0
    assert time.monotonic() - started < 30
    record = read_record(workspace, name)
    assert record["status"] == "Canceled"
    assert not out.exists()  # nothing published
    for pid in workspace.inits():  # no worker left behind
        wait_for(lambda pid=pid: not _alive(pid), 10, f"worker {pid} to exit")


def test_sigkill_leaves_jobs_failed_and_a_restart_serves_again(workspace, start_server, reference):
    server = start_server(workspace)
    slow = workspace.commands("slow-kill", {"a.txt": "sleep 60"})
    with server.client() as client:
        running = client.post(
            "/endpoints/heart/jobs", json=body(str(slow)), headers={"azureml-model-deployment": "script"}
        ).json()["name"]
        queued = client.post("/endpoints/heart/jobs", json=body(str(slow))).json()["name"]
        wait_job(client, running, states=("Running",))
    server.kill()
    from batchctl import api

    assert api.server_info(workspace.ws) is None  # server.json names a dead process: ignored
    for name in (running, queued):
        record = api.get_job(workspace.ws, name)
        assert record["status"] == "Failed"
        assert record["error"]["message"] == "runner exited unexpectedly"
    for pid in workspace.inits():
        wait_for(lambda pid=pid: not _alive(pid), 10, f"worker {pid} to exit with its server")
    again = start_server(workspace)
    data = heart_folder(workspace.allowed / "after-restart", files=2, rows=4)
    with again.client() as client:
        name = client.post("/endpoints/heart/jobs", json=body(str(data))).json()["name"]
        assert wait_job(client, name)["properties"]["status"] == "Completed"


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_servers_started_at_the_same_moment_on_one_workspace_leave_exactly_one_running(workspace, tmp_path):
    import os

    env = {**os.environ, "BATCHCTL_HOME": str(workspace.root)}
    procs = []
    for i in range(3):
        out, err = open(tmp_path / f"s{i}.out", "wb"), open(tmp_path / f"s{i}.err", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchctl", "serve", "--port", "0"], stdout=out, stderr=err, env=env
        )
        procs.append((proc, tmp_path / f"s{i}.out", tmp_path / f"s{i}.err", out, err))
    try:
        # each one either listens or exits; a loser exits within its start-up time
        def settled():
            return all(p.poll() is not None or "listening on " in o.read_text() for p, o, *_ in procs)

        wait_for(settled, 120, "every server to listen or exit")
        time.sleep(1.0)  # a late loser still exiting
        running = [p for p, *_ in procs if p.poll() is None]
        assert len(running) == 1, [(p.poll(), e.read_text()) for p, _, e, *_ in procs]
        for proc, _, err, *_ in procs:
            if proc is not running[0]:
                assert proc.returncode == 5, err.read_text()
                assert err.read_text().startswith(f"Error: a server already serves {workspace.root}")
        info = json.loads((workspace.root / "server.json").read_text())
        assert info["pid"] == running[0].pid
    finally:
        for proc, _, _, out, err in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            out.close()
            err.close()
