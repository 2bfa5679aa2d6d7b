"""Retries, timeouts, worker death, init() failure and error_threshold (SPEC section 4), end to end: one
representative of each rule through real worker processes. The rules themselves, each case and boundary,
are pinned in milliseconds by tests/unit/execution/test_supervisor.py (a scripted FakeBackend, a fake
clock): extend those first."""

from __future__ import annotations

import time

import pytest

from .conftest import alive, ok_json, wait_for, write_inputs

# each job here takes seconds: a job that stops progressing (a dead worker never replaced, a gate never
# opened) fails by timeout, with the traceback of where it hung
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _invoke(env, tmp_path, inputs, *args, job="j"):
    data = write_inputs(tmp_path / "in", inputs)
    out = tmp_path / "out"
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", job, *args)
    return result, out


# --------------------------------------------------------------------------------- error_threshold

# five files, one per mini-batch; "skip" makes run() return no row for the file: one failed item each,
# without retries. Two failing items.
INPUTS = {"a.txt": "ok", "b.txt": "skip", "c.txt": "ok", "d.txt": "skip", "e.txt": "ok"}


@pytest.mark.parametrize(
    "threshold, status",
    [(2, "Completed"), (1, "Failed")],
    ids=["exact-boundary", "one-past"],  # -1 and 0: test_supervisor.py
)
def test_error_threshold(env, tmp_path, threshold, status):
    env.endpoint()
    env.script(mini_batch_size=1)
    result, out = _invoke(env, tmp_path, INPUTS, "--set", f"error_threshold={threshold}")
    job = env.show("j")
    assert job["status"] == status
    assert job["settings"]["error_threshold"] == threshold
    if status == "Completed":
        assert result.exit_code == 0
        assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "c.txt,ok", "e.txt,ok"]
        assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (3, 2)
    else:
        assert result.exit_code == 1
        assert f"error_threshold {threshold}" in job["error"]["message"]
        assert job["counts"]["items_failed"] == threshold + 1
        assert not (out / "predictions.csv").exists()


def test_error_threshold_stops_the_job_at_once(env, tmp_path):
    """An early failure past error_threshold ends the job there: the later mini-batches are never
    dispatched (each file run() reaches leaves a marker) and nothing is published. The other worker holds
    at most one later mini-batch (its gate never opens), and the job does not wait for it. (One worker,
    nothing dispatched after the failure: test_supervisor.py.)"""
    workers = 2
    later = {f"z{i:02d}.txt": "gate never-opened" for i in range(20)}
    env.endpoint()
    env.script(mini_batch_size=1, max_concurrency_per_instance=workers, error_threshold=0)
    result, out = _invoke(env, tmp_path, {"a.txt": "skip", **later})
    ran = env.ran()
    assert "a.txt" in ran
    assert ran <= {"a.txt", "z00.txt"} and len(ran) <= workers, sorted(ran)
    master = (env.job_dir("j") / "logs" / "sys" / "master_role.txt").read_text()
    assert master.count(" -> worker ") <= workers, master
    assert result.exit_code == 1, result.stderr
    job = env.show("j")
    assert job["status"] == "Failed"
    assert "error_threshold exceeded: 1 failed items > error_threshold 0" in job["error"]["message"]
    assert (job["counts"]["items_failed"], job["counts"]["items_succeeded"]) == (1, 0)
    assert not (out / "predictions.csv").exists()
    for pid in env.pids():
        wait_for(lambda pid=pid: not alive(pid), 10, f"worker {pid} to exit")


def test_no_item_succeeded_fails_the_job(env, tmp_path):
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 30})
    result, out = _invoke(env, tmp_path, {"a.txt": "skip", "b.txt": "skip"})
    assert result.exit_code == 1
    job = env.show("j")
    assert job["status"] == "Failed"
    assert "There is no succeeded mini batch item returned from run()" in job["error"]["message"]
    assert not (out / "predictions.csv").exists()


# --------------------------------------------------------------------------------- retries


def test_flaky_item_succeeds_on_retry(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1, retry_settings={"max_retries": 1, "timeout": 30})
    result, out = _invoke(env, tmp_path, {"a.txt": "ok", "b.txt": "flaky", "c.txt": "ok"})
    job = ok_json(result)
    assert job["status"] == "Completed"
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["retries"]) == (3, 0, 1)
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "b.txt,flaky", "c.txt,ok"]
    assert "flaky failure on b.txt" in (env.job_dir("j") / "logs" / "user" / "error.txt").read_text()


def test_timeout_kills_and_retries_within_bounded_time(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1)
    started = time.monotonic()
    result, out = _invoke(
        env,
        tmp_path,
        {"a.txt": "ok", "b.txt": "sleep 600"},
        "--set",
        "retry_settings.timeout=2",
        "--set",
        "retry_settings.max_retries=1",
    )
    elapsed = time.monotonic() - started
    job = ok_json(result)
    assert job["status"] == "Completed"
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["retries"], c["mini_batches_failed"]) == (1, 1, 1, 1)
    assert c["worker_restarts"] >= 2
    assert elapsed < (1 + 1) * 2 + 40, elapsed  # (max_retries + 1) x timeout + slack for spawns on a busy box
    master = (env.job_dir("j") / "logs" / "sys" / "master_role.txt").read_text()
    assert "mini-batch 1 attempt 1 timed out; worker 0 killed" in master
    assert "mini-batch 1 attempt 2 timed out; worker 0 killed" in master
    errors = (env.job_dir("j") / "logs" / "user" / "error.txt").read_text()
    assert errors.count("No progress update in 2 seconds") == 2, errors  # both attempts, in the summary
    assert "No progress update in 2 seconds" in job["error"]["message"]
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok"]
    # every worker that was started is gone
    for pid in env.pids():
        wait_for(lambda pid=pid: not alive(pid), 10, f"worker {pid} to exit")


def test_dead_worker_is_replaced_and_its_mini_batch_retried(env, tmp_path):
    """SIGKILL (the out-of-memory killer's way). Any other death, a worker that always dies, and the
    replacement's retry order: test_supervisor.py; how an exit code reads: test_local_backend.py."""
    command = "killonce"
    env.endpoint()
    env.script(mini_batch_size=1, retry_settings={"max_retries": 1, "timeout": 60})
    result, out = _invoke(env, tmp_path, {"a.txt": "ok", "b.txt": command, "c.txt": "ok"})
    job = ok_json(result)
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["retries"], c["worker_restarts"]) == (3, 0, 1, 1)
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", f"b.txt,{command}", "c.txt,ok"]
    master = (env.job_dir("j") / "logs" / "sys" / "master_role.txt").read_text()
    assert "killed by SIGKILL" in master
    assert len(env.pids()) == 2  # the first worker and its replacement each ran init() once


# --------------------------------------------------------------------------------- init()


def test_init_failure_fails_fast_with_its_traceback(env, tmp_path):
    env.endpoint()
    env.script(env={"INIT_FAIL": "1"}, max_concurrency_per_instance=2, mini_batch_size=1)
    started = time.monotonic()
    result, out = _invoke(env, tmp_path, {f"{i}.txt": "ok" for i in range(6)})
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "init() failed" in result.stderr and "init exploded" in result.stderr
    job = env.show("j")
    assert job["status"] == "Failed"
    assert "init exploded: the weights are corrupt" in job["error"]["message"]
    details = job["error"]["details"]
    assert "Traceback (most recent call last)" in details and 'score.py", line' in details
    assert job["counts"]["retries"] == 0 and job["counts"]["worker_restarts"] == 0
    assert len(env.pids()) <= 2, "no retry storm: at most one init() per worker"
    logs = env.job_dir("j") / "logs"
    assert "init exploded" in (logs / "user" / "error.txt").read_text()
    tracebacks = "".join(p.read_text() for p in (logs / "user" / "error").iterdir())
    assert "Traceback (most recent call last)" in tracebacks and "init exploded" in tracebacks
    assert "init exploded" in (logs / "job_result.txt").read_text()
    assert not (out / "predictions.csv").exists()
    assert elapsed < 60


def test_a_replacement_whose_init_fails_after_the_last_mini_batch_is_reported_in_the_log(env, tmp_path):
    """A worker dies on its first file; its replacement's init() fails only once every file has run (the
    other worker did them all; the last file waits until the replacement is in init()): the job completes,
    and the master log says what became of the replacement."""
    env.endpoint()
    env.script(env={"LATE_INIT_FAIL": "3:3"}, max_concurrency_per_instance=2, mini_batch_size=1)
    result, out = _invoke(env, tmp_path, {"a.txt": "exitonce", "b.txt": "ok", "c.txt": "gate late-init"})
    assert result.exit_code == 0, result.stderr
    rows = ["a.txt,exitonce", "b.txt,ok", "c.txt,gate"]
    assert (out / "predictions.csv").read_text().splitlines() == rows
    master = (env.job_dir("j") / "logs" / "sys" / "master_role.txt").read_text().splitlines()
    stopped = [line.split(" ", 2)[2] for line in master if "(a replacement)" in line]
    assert len(stopped) == 1, master
    assert stopped[0].endswith(
        " (a replacement) failed init() after every mini-batch had ended: RuntimeError: late init exploded"
    ), stopped
