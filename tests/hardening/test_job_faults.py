"""Jobs under faults not covered in tests/jobs: a worker that segfaults, SIGKILL to the CLI running a
foreground job, and SIGINT/SIGTERM checked against every child PID and the registry lock."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from .hardening_helpers import (
    alive,
    batchctl_proc,
    batchctl_run,
    kill_quietly,
    read_job,
    wait_for,
    write_inputs,
)

pytestmark = pytest.mark.slow

SLOW = {"a.txt": "ok", **{f"s{i}.txt": "sleep" for i in range(4)}}


def test_a_segfaulting_worker_is_replaced_and_its_mini_batch_retried(bench, tmp_path):
    bench.deploy(retry_settings={"max_retries": 1, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "segvonce", "c.txt": "ok"})
    out = tmp_path / "out"
    job = bench.ok("endpoint", "invoke", "-n", "hard", "--input", str(data), "--output-path", str(out),
                   "--job-name", "segv")  # fmt: skip
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["retries"], c["worker_restarts"]) == (3, 0, 1, 1)
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "b.txt,segvonce", "c.txt,ok"]
    master = (bench.home / "jobs" / "segv" / "logs" / "sys" / "master_role.txt").read_text()
    assert "killed by SIGSEGV" in master
    assert len(bench.pids()) == 2  # the retry ran in a fresh worker (a second init())


def test_a_worker_that_always_segfaults_fails_only_its_items(bench, tmp_path):
    bench.deploy(retry_settings={"max_retries": 1, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "segv", "c.txt": "ok"})
    out = tmp_path / "out"
    job = bench.ok("endpoint", "invoke", "-n", "hard", "--input", str(data), "--output-path", str(out))
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (2, 1)
    assert "worker exited unexpectedly: killed by SIGSEGV" in job["error"]["message"]
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "c.txt,ok"]


def _start_foreground(bench, tmp_path, job: str):
    bench.deploy(max_concurrency_per_instance=2)
    data = write_inputs(tmp_path / "in", SLOW)
    out = tmp_path / "out"
    proc = batchctl_proc("endpoint", "invoke", "-n", "hard", "--input", str(data), "--output-path", str(out),
                         "--job-name", job)  # fmt: skip
    master = bench.home / "jobs" / job / "logs" / "sys" / "master_role.txt"
    wait_for(lambda: len(bench.pids()) >= 2, 90, "2 workers to run init()")
    wait_for(lambda: master.is_file() and master.read_text().count(" -> worker ") >= 2, 60, "dispatch")
    workers = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    assert bench.pids() <= workers
    return proc, out, workers


def test_sigkill_to_the_foreground_cli_leaves_a_failed_job_and_no_orphans(bench, tmp_path):
    proc, out, workers = _start_foreground(bench, tmp_path, "fg-kill")
    try:
        # a running job never holds the registry lock: other commands go on meanwhile
        quick = batchctl_run("endpoint", "create", "-n", "other", env={"BATCHCTL_LOCK_TIMEOUT": "0"})
        assert quick.returncode == 0, quick.stderr
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        for pid in workers:  # orphans notice their parent is gone and exit on their own
            wait_for(lambda pid=pid: not alive(pid), 10, f"orphaned worker {pid} to exit")
        show = batchctl_run("job", "show", "-n", "fg-kill", "-o", "json")
        job = json.loads(show.stdout)
        assert (job["status"], job["error"]["message"]) == ("Failed", "runner exited unexpectedly")
        assert not out.exists() or os.listdir(out) == []
        after = batchctl_run("endpoint", "create", "-n", "third", env={"BATCHCTL_LOCK_TIMEOUT": "0"})
        assert after.returncode == 0, after.stderr
    finally:
        for pid in workers | {proc.pid}:
            kill_quietly(pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_or_sigterm_stops_every_child_releases_the_lock_and_publishes_nothing(bench, tmp_path, sig):
    proc, out, workers = _start_foreground(bench, tmp_path, "fg-sig")
    try:
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "job fg-sig was canceled; nothing was published" in stderr
        for pid in workers:  # every child process, checked by PID, not only the ones that ran init()
            wait_for(lambda pid=pid: not alive(pid), 10, f"worker {pid} to exit")
        assert read_job(bench.home, "fg-sig")["status"] == "Canceled"
        assert not out.exists() or os.listdir(out) == []
        assert not (bench.home / "jobs" / "fg-sig" / "parts").exists()
        # the registry lock is free at once
        quick = batchctl_run("endpoint", "create", "-n", "after", env={"BATCHCTL_LOCK_TIMEOUT": "0"})
        assert quick.returncode == 0, quick.stderr
    finally:
        for pid in workers | {proc.pid}:
            kill_quietly(pid)
