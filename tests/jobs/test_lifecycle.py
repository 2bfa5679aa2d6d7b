"""Detached runs, stream, cancel, signals and a dead runner: real processes, checked with psutil."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from .conftest import (
    alive,
    batchctl_proc,
    batchctl_run,
    kill_quietly,
    read_job,
    start_detached,
    wait_for,
    write_inputs,
)

pytestmark = pytest.mark.slow

SLOW_INPUTS = {"a.txt": "ok", **{f"s{i}.txt": "sleep 60" for i in range(4)}}


def _start_detached(env, tmp_path, inputs, job="bg", *args):
    out = tmp_path / "out"
    record, pid = start_detached(env.home, write_inputs(tmp_path / "in", inputs), out, job, *args)
    assert record["name"] == job
    assert record["status"] in ("Queued", "Running", "Completed")
    return out, pid


def _busy_workers(env, job, n):
    """Wait until n workers have run init() and the job has dispatched work to them."""
    wait_for(lambda: len(env.pids()) >= n, 60, f"{n} workers to start")
    master = env.job_dir(job) / "logs" / "sys" / "master_role.txt"
    wait_for(lambda: master.is_file() and master.read_text().count(" -> worker ") >= n, 60, "dispatch")
    return env.pids()


def test_no_wait_returns_at_once_and_stream_follows_to_completed(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1, retry_settings={"max_retries": 0, "timeout": 300})
    started = time.monotonic()
    # a.txt waits for a gate only the test opens: the job cannot end before the checks below
    out, runner = _start_detached(env, tmp_path, {"a.txt": "gate go", "b.txt": "ok"})
    assert time.monotonic() - started < 60  # anti-hang bound: --no-wait did not wait for the job
    assert read_job(env.home, "bg")["status"] in ("Queued", "Running")  # returned before the job ended
    env.open_gate("go")
    stream = batchctl_run("job", "stream", "-n", "bg", timeout=120)
    assert stream.returncode == 0, stream.stderr
    assert "mini-batch 0 attempt 1 -> worker 0" in stream.stdout
    assert "job bg: Completed - 2 items succeeded, 0 failed" in stream.stdout
    assert read_job(env.home, "bg")["status"] == "Completed"
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,gate", "b.txt,ok"]
    wait_for(lambda: not alive(runner), 30, "the detached runner to exit")


def test_stream_exits_non_zero_when_the_job_fails(env, tmp_path):
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 30})
    out, _ = _start_detached(env, tmp_path, {"a.txt": "skip"})
    stream = batchctl_run("job", "stream", "-n", "bg", timeout=120)
    assert stream.returncode != 0
    assert "job bg: Failed" in stream.stdout
    assert "There is no succeeded mini batch item" in stream.stderr
    assert not (out / "predictions.csv").exists()


def test_cancel_a_detached_job_stops_workers_and_publishes_nothing(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1, max_concurrency_per_instance=2)
    out, runner = _start_detached(env, tmp_path, SLOW_INPUTS)
    try:
        workers = _busy_workers(env, "bg", 2)
        result = batchctl_run("job", "cancel", "-n", "bg", "-o", "json", timeout=120)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["status"] == "Canceled"
        for pid in workers:
            wait_for(lambda pid=pid: not alive(pid), 10, f"worker {pid} to exit")
        wait_for(lambda: not alive(runner), 15, "the runner to exit")
        job = read_job(env.home, "bg")
        assert job["status"] == "Canceled"
        assert not (out / "predictions.csv").exists()
        assert not out.exists() or os.listdir(out) == []
        assert not (env.job_dir("bg") / "parts").exists()
        show = batchctl_run("job", "show", "-n", "bg", "--query", "status", "-o", "tsv")
        assert (show.returncode, show.stdout, show.stderr) == (0, "Canceled\n", "")
    finally:
        kill_quietly(runner)


def test_runner_killed_leaves_no_results_and_reads_failed(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1, max_concurrency_per_instance=2)
    out, runner = _start_detached(env, tmp_path, SLOW_INPUTS)
    try:
        workers = _busy_workers(env, "bg", 2)
        os.kill(runner, signal.SIGKILL)
        wait_for(lambda: not alive(runner), 10, "the runner to die")
        for pid in workers:
            wait_for(lambda pid=pid: not alive(pid), 10, f"orphaned worker {pid} to exit")
        show = batchctl_run("job", "show", "-n", "bg", "-o", "json")
        assert show.returncode == 0, show.stderr
        job = json.loads(show.stdout)
        assert job["status"] == "Failed"
        assert job["error"]["message"] == "runner exited unexpectedly"
        assert not (out / "predictions.csv").exists()
        listed = batchctl_run("job", "list", "--status", "failed", "-o", "json")
        assert listed.returncode == 0, listed.stderr
        assert [j["name"] for j in json.loads(listed.stdout)] == ["bg"]
    finally:
        kill_quietly(runner)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_foreground_invoke_cancels_cleanly(env, tmp_path, sig):
    env.endpoint()
    env.script(mini_batch_size=1, max_concurrency_per_instance=2)
    data = write_inputs(tmp_path / "in", SLOW_INPUTS)
    out = tmp_path / "out"
    proc = batchctl_proc(
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out),
        "--job-name", "fg",
    )  # fmt: skip
    try:
        workers = _busy_workers(env, "fg", 2)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        for pid in workers:
            wait_for(lambda pid=pid: not alive(pid), 10, f"worker {pid} to exit")
        assert read_job(env.home, "fg")["status"] == "Canceled"
        assert not (out / "predictions.csv").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cancel_of_a_finished_job_changes_nothing(env, tmp_path):
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    out = tmp_path / "out"
    assert env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "done").exit_code == 0
    before = read_job(env.home, "done")
    published = (out / "predictions.csv").read_bytes()
    result = env.cli("job", "cancel", "-n", "done")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == env.show("done")
    assert read_job(env.home, "done") == before  # the record, its status, counts and end time unchanged
    assert before["status"] == "Completed" and before["counts"]["items_succeeded"] == 1
    assert (out / "predictions.csv").read_bytes() == published == b"a.txt,ok\n"


def test_a_queued_job_reads_queued_while_its_submitter_lives_and_failed_after(env, tmp_path):
    """No window where a fresh job (submitted, not yet taken by a runner) reads Failed."""
    import subprocess
    import sys

    from batchctl import api
    from batchctl.workspace import Workspace

    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    ws = Workspace.open(None)
    api.submit_job(ws, api.JobRequest(endpoint="heart", input=str(data), job_name="mine"))
    assert api.get_job(ws, "mine")["status"] == "Queued"
    assert [j["status"] for j in api.list_jobs(ws)] == ["Queued"]
    final = api.run_job(ws, "mine")
    assert final["status"] == "Completed"
    # a submitter that exits without running its job leaves it Failed, not Queued forever
    code = (
        "import sys; from batchctl import api; from batchctl.workspace import Workspace; "
        "api.submit_job(Workspace.open(None), api.JobRequest(endpoint='heart', input=sys.argv[1], job_name='orphan'))"
    )
    subprocess.run([sys.executable, "-c", code, str(data)], check=True, timeout=60)
    job = api.get_job(ws, "orphan")
    assert (job["status"], job["error"]["message"]) == ("Failed", "runner exited unexpectedly")
