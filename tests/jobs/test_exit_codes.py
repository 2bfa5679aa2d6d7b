"""The README's exit codes, one row at a time, for the job commands issue 11 changed: bad arguments (3),
output locations checked before any work (9, or 5 when the results exist), conflicts (5), and what
`job stream` and a foreground invoke end with (1, 5, 130)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import alive, kill_quietly, ok_json, start_detached, wait_for, write_inputs

pytestmark = pytest.mark.slow


def error_line(stderr: str) -> str:
    """The one `Error: ...` line of a command refused before any work (an optional `Hint: ...` after it)."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("Error: "), stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def no_job_ran(env: Any) -> None:
    jobs = env.home / "jobs"
    assert not jobs.exists() or os.listdir(jobs) == [], "no job folder was created"
    assert env.pids() == set(), "no worker started"
    assert env.ran() == set(), "nothing was scored"


@pytest.fixture
def data(env: Any, tmp_path: Path) -> Path:
    env.endpoint()
    env.script(mini_batch_size=1, retry_settings={"max_retries": 0, "timeout": 300})
    return write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok"})


# ------------------------------------------------------------------------------ 3: invalid arguments


@pytest.mark.parametrize(
    "flag, value, field",
    [("-m", "0", "mini_batch_size"), ("-c", "0", "instance_count"), ("-m", "-1", "mini_batch_size")],
)
def test_zero_or_negative_sizes_are_rejected(env, data, flag, value, field):
    result = env.invoke("heart", "--input", str(data), flag, value)
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert field in error_line(result.stderr)
    no_job_ran(env)


# ------------------------------------------------------------------------------ 9 / 5: the output, before any work


def test_output_path_that_is_a_file_is_refused_before_any_work(env, data, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("mine\n")
    result = env.invoke("heart", "--input", str(data), "--output-path", str(target), "--job-name", "f")
    assert result.exit_code == 9, (result.stdout, result.stderr)
    assert str(target) in error_line(result.stderr)
    assert target.read_text() == "mine\n"
    no_job_ran(env)


def test_output_path_under_a_file_is_refused(env, data, tmp_path):
    (tmp_path / "a-file").write_text("mine\n")
    result = env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "a-file" / "sub" / "out"))
    assert result.exit_code == 9, (result.stdout, result.stderr)
    assert "is a file" in error_line(result.stderr)
    assert (tmp_path / "a-file").read_text() == "mine\n"
    no_job_ran(env)


def test_output_path_where_nothing_can_be_written_is_refused(env, data):
    result = env.invoke("heart", "--input", str(data), "--output-path", "/proc/batchctl-cannot-write-here")
    assert result.exit_code == 9, (result.stdout, result.stderr)
    assert "/proc/batchctl-cannot-write-here" in error_line(result.stderr)
    no_job_ran(env)


def test_existing_results_file_is_a_conflict(env, data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("theirs\n")
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out))
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert "already exists" in error_line(result.stderr)
    assert (out / "predictions.csv").read_text() == "theirs\n"
    no_job_ran(env)


def test_summary_only_job_into_a_non_empty_folder_is_a_conflict(env, tmp_path):
    env.endpoint()
    env.script(output_action="summary_only")
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.txt").write_text("theirs\n")
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out))
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert "not empty" in error_line(result.stderr)
    no_job_ran(env)


# ------------------------------------------------------------------------------ 5: conflicts with a job's state


def test_no_failed_items_to_rerun_is_a_conflict(env, data, tmp_path):
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "out"), "--job-name", "clean"))
    result = env.cli("job", "rerun", "-n", "clean", "--failed-only", "--output-path", str(tmp_path / "again"))
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert "no failed items" in error_line(result.stderr)
    assert sorted(os.listdir(env.home / "jobs")) == ["clean"]


def test_download_of_a_failed_job_is_a_conflict(env, tmp_path):
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "skip"})
    assert env.invoke("heart", "--input", str(data), "--job-name", "bad").exit_code == 1
    result = env.cli("job", "download", "-n", "bad", "--download-path", str(tmp_path / "dl"))
    assert result.exit_code == 5, (result.stdout, result.stderr)
    assert "Failed" in error_line(result.stderr)
    assert not (tmp_path / "dl").exists()


# ------------------------------------------------------------------------------ job stream: 1 and 130


def test_stream_of_a_failed_job_exits_1(env, tmp_path):
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "skip"})
    assert env.invoke("heart", "--input", str(data), "--job-name", "bad").exit_code == 1
    stream = env.cli("job", "stream", "-n", "bad")
    assert stream.exit_code == 1, (stream.stdout, stream.stderr)
    assert "job bad: Failed" in stream.stdout


def test_stream_of_a_canceled_job_exits_130(env, data, tmp_path):
    gated = write_inputs(tmp_path / "gated", {"a.txt": "gate never"})
    _, runner = start_detached(env.home, gated, tmp_path / "out", "stop")
    try:
        canceled = env.cli("job", "cancel", "-n", "stop")
        assert canceled.exit_code == 0, (canceled.stderr, (env.job_dir("stop") / "logs" / "runner.txt").read_text())
        assert json.loads(canceled.stdout)["status"] == "Canceled"
        wait_for(lambda: not alive(runner), 30, "the runner to exit")
    finally:
        kill_quietly(runner)
    stream = env.cli("job", "stream", "-n", "stop")
    assert stream.exit_code == 130, (stream.stdout, stream.stderr)
    assert "job stop: Canceled" in stream.stdout
    assert "canceled" in stream.stderr


# ------------------------------------------------------------------------------ 5 from a foreground invoke


def test_race_loser_whose_output_appears_while_it_runs_exits_5(env, tmp_path):
    """The results file appears while the job runs (the job's only file waits for the test to write it):
    the create-only publish loses, nothing is overwritten, and the foreground invoke exits 5."""
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 300})
    data = write_inputs(tmp_path / "in", {"a.txt": "gate theirs-written"})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "endpoint", "invoke", "-n", "heart", "--input", str(data),
         "--output-path", str(out), "--job-name", "slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
    )  # fmt: skip
    try:
        master = env.job_dir("slow") / "logs" / "sys" / "master_role.txt"

        def dispatched() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"invoke ended before the test wrote the output: {proc.communicate()}")
            return master.is_file() and "-> worker" in master.read_text()

        wait_for(dispatched, 180, "dispatch")
        out.mkdir(exist_ok=True)
        (out / "predictions.csv").write_text("theirs\n")
        env.open_gate("theirs-written")
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 5, (stdout, stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "appeared while the job ran" in errors[0], stderr
    assert json.loads(stdout)["status"] == "Failed"
    assert (out / "predictions.csv").read_text() == "theirs\n"
    assert env.ran() == {"a.txt"}, "it lost at the publish, after scoring"
    # every hint is a command that works: resume as it is is refused (the file is still there) and points
    # to --output-path, which publishes the committed results elsewhere without scoring them again
    hint = (
        "Hint: move that file away and run `batchctl job resume -n slow`, or publish to another folder with "
        "`batchctl job resume -n slow --output-path <folder>`"
    )
    assert stderr.splitlines()[-1] == hint
    again = env.cli("job", "resume", "-n", "slow")
    assert (again.exit_code, again.stderr.splitlines()) == (
        5,
        [f"Error: output file {out / 'predictions.csv'} already exists; batchctl never overwrites results", hint],
    )
    (env.state / "ran" / "a.txt").unlink()
    resumed = ok_json(env.cli("job", "resume", "-n", "slow", "--output-path", str(tmp_path / "out2")))
    assert resumed["status"] == "Completed"
    assert resumed["outputs"]["score"]["path"] == str(tmp_path / "out2")
    assert resumed["history"][-1]["resumed_with"] == f"output folder {tmp_path / 'out2'} (was {out})"
    assert (tmp_path / "out2" / "predictions.csv").read_text() == "a.txt,gate\n"
    assert (out / "predictions.csv").read_text() == "theirs\n"
    assert env.ran() == set(), "the committed mini-batch was published, not scored again"
    taken = env.cli("job", "resume", "-n", "slow", "--output-path", str(tmp_path / "out2"))
    assert taken.exit_code == 5, taken.stderr  # a Completed job is not resumed


# ------------------------------------------------------------------------------ 2 and 4


def test_usage_error_and_not_found(env):
    usage = env.cli("job", "resume")
    assert usage.exit_code == 2, usage.stderr
    missing = env.cli("job", "resume", "-n", "ghost")
    assert missing.exit_code == 4, missing.stderr
    assert "ghost" in error_line(missing.stderr)
