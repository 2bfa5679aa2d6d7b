"""Errors you can act on (issue 11): each failed item says its exception type, its whole message, the
user-code frame and the log that holds the traceback; `job show` prints the first error; `job errors`
groups the failures; BaseExceptions are named; a hanging init() shows its deadline; a link loop is one
failed item; a worker's captured output is capped."""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import alive, ok_json, wait_for, write_inputs

pytestmark = pytest.mark.slow

# One command per input file, as the behaviour script of conftest.py, with the failures these tests need.
# Lines tagged `# LINE:<tag>` are where the exceptions are raised: the tests find their numbers.
DRIVER = textwrap.dedent(
    """
    import os
    import sys
    import time

    from lib import checks

    STATE = os.environ.get("STATE_DIR", ".")


    def init():
        os.makedirs(os.path.join(STATE, "pids"), exist_ok=True)
        open(os.path.join(STATE, "pids", str(os.getpid())), "w").close()
        if os.environ.get("INIT_FAILS"):
            raise RuntimeError("no weights found")  # LINE:init
        if os.environ.get("INIT_HANGS"):
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # never returns within the job's init() deadline
                time.sleep(0.1)


    def run(mini_batch):
        rows = []
        for path in mini_batch:
            name = os.path.basename(path)
            with open(path) as handle:
                cmd, _, arg = handle.read().strip().partition(" ")
            if cmd == "value":
                raise ValueError(f"bad value {arg}")  # LINE:value
            if cmd == "key":
                checks.require_column(arg)
            if cmd == "interrupt":
                raise KeyboardInterrupt("user pressed stop")  # LINE:interrupt
            if cmd == "exit":
                sys.exit(int(arg))  # LINE:exit
            if cmd == "skip":
                continue
            if cmd == "print":
                for i in range(int(arg)):
                    print(f"line {i:07d} " + "x" * 86)
                print("THE LAST LINE")
            rows.append(f"{name},{cmd}")
        return rows
    """
)

CHECKS = textwrap.dedent(
    """
    def require_column(name):
        columns = {"age": 1}
        return columns[name]  # LINE:key
    """
)


def line_of(source: str, tag: str) -> int:
    (number,) = [i for i, line in enumerate(source.splitlines(), 1) if line.rstrip().endswith(f"# LINE:{tag}")]
    return number


VALUE_LINE = line_of(DRIVER, "value")
INIT_LINE = line_of(DRIVER, "init")
KEY_LINE = line_of(CHECKS, "key")


def deploy_driver(env: Any, env_vars: dict[str, str] | None = None, **settings: Any) -> dict[str, Any]:
    """A deployment whose scoring script is `batch_driver.py`, with a helper module `lib/checks.py`."""
    code = env.tmp / "code-driver"
    (code / "lib").mkdir(parents=True, exist_ok=True)
    (code / "batch_driver.py").write_text(DRIVER)
    (code / "lib" / "__init__.py").write_text("")
    (code / "lib" / "checks.py").write_text(CHECKS)
    model = env.tmp / "driver-model"
    model.mkdir(exist_ok=True)
    (model / "weights.txt").write_text("w=1\n")
    env.endpoint()
    return env._deploy(
        {
            "name": "driver",
            "endpoint_name": "heart",
            "type": "model",
            "model": {"path": str(model), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(code), "scoring_script": "batch_driver.py"},
            "settings": {
                "max_concurrency_per_instance": 1,
                "environment_variables": {"STATE_DIR": str(env.state), **(env_vars or {})},
                **settings,
            },
        }
    )


def invoke(env: Any, tmp_path: Path, data: Path, job: str, *args: str) -> Any:
    return env.invoke(
        "heart", "--input", str(data), "--output-path", str(tmp_path / f"out-{job}"), "--job-name", job, *args
    )


def failed_items(env: Any, job: str) -> list[dict[str, Any]]:
    text = (env.job_dir(job) / "failed_items.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def error_line(stderr: str) -> str:
    """The `Error: ...` line a failed command ends with (progress lines come before it)."""
    (line,) = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    return line


def workers_gone(env: Any) -> None:
    pids = env.pids()
    assert pids, "init() ran"
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), 20, f"worker {pid} to exit")


# ------------------------------------------------------------------------------ 1. a custom run() exception


def test_run_exception_is_recorded_with_type_message_frame_and_log(env, tmp_path):
    deploy_driver(env, mini_batch_size=1, error_threshold=-1, retry_settings={"max_retries": 1, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "value 42", "c.txt": "ok"})
    first_error = f"ValueError: bad value 42 (batch_driver.py:{VALUE_LINE})"
    job = ok_json(invoke(env, tmp_path, data, "tolerant"))
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (2, 1)
    (entry,) = failed_items(env, "tolerant")
    assert entry["item"] == "b.txt"
    assert entry["batch"] == 1
    assert entry["attempts"] == 2
    assert entry["type"] == "ValueError"
    assert entry["message"] == "bad value 42"
    assert entry["frame"] == f"batch_driver.py:{VALUE_LINE}"
    log = env.job_dir("tolerant") / entry["log"]
    assert log.is_file(), entry
    traceback = log.read_text()
    assert "Traceback (most recent call last)" in traceback
    assert f'batch_driver.py", line {VALUE_LINE}, in run' in traceback
    assert "ValueError: bad value 42" in traceback
    assert job["error"]["summary"] == first_error
    assert env.show("tolerant")["error"]["summary"] == first_error
    # the same failure past error_threshold: the job fails, and says what its first item error was
    failed = invoke(env, tmp_path, data, "strict", "--set", "error_threshold=0")
    assert failed.exit_code == 1
    strict = env.show("strict")
    assert strict["status"] == "Failed"
    assert strict["error"]["first_item_error"] == first_error
    assert f"first error: {first_error}" in error_line(failed.stderr)
    assert "batchctl job errors -n strict" in failed.stderr


ERROR_KEYS = ("type", "message", "frame", "summary")


def test_job_error_has_one_shape_in_every_state(env, tmp_path):
    """`job show --query error` (issue 28, item 16): type, message and frame in every state (null when
    unknown), and `summary`, the README's `ExceptionType: message (file:line)`."""
    deploy_driver(env, mini_batch_size=1, error_threshold=-1, retry_settings={"max_retries": 0, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "value 42"})
    frame = f"batch_driver.py:{VALUE_LINE}"
    summary = f"ValueError: bad value 42 ({frame})"
    completed = ok_json(invoke(env, tmp_path, data, "tolerant"))["error"]
    assert {k: completed[k] for k in ERROR_KEYS} == {
        "type": "ValueError",
        "message": "bad value 42",
        "frame": frame,
        "summary": summary,
    }
    shown = env.cli("job", "show", "-n", "tolerant", "--query", "error.summary", "-o", "tsv")
    assert (shown.exit_code, shown.stdout) == (0, summary + "\n")
    # failed past error_threshold: the job's own error, and its first failed item's
    assert invoke(env, tmp_path, data, "strict", "--set", "error_threshold=0").exit_code == 1
    failed = env.show("strict")["error"]
    assert (failed["type"], failed["frame"], failed["first_item_error"]) == (None, None, summary)
    assert failed["message"].startswith("error_threshold exceeded") and failed["summary"] == failed["message"]
    # init() failed: the exception and where it was raised
    deploy_driver(env, env_vars={"INIT_FAILS": "1"}, mini_batch_size=1)
    assert invoke(env, tmp_path, data, "no-init").exit_code == 1
    init = env.show("no-init")["error"]
    assert (init["type"], init["frame"]) == ("RuntimeError", f"batch_driver.py:{INIT_LINE}")
    assert init["message"].startswith("init() failed in worker ") and "no weights found" in init["message"]
    assert init["summary"] == f"{init['message']} (batch_driver.py:{INIT_LINE})"
    assert set(ERROR_KEYS) <= set(completed) and set(ERROR_KEYS) <= set(failed) and set(ERROR_KEYS) <= set(init)


def test_job_errors_of_a_job_that_failed_before_any_item_says_what_failed(env, tmp_path):
    """Issue 28, item 8: init() failed, so no item failed; `job errors` says what failed instead of only
    printing [], and the failed invoke does not send the user there."""
    deploy_driver(env, env_vars={"INIT_FAILS": "1"}, mini_batch_size=1)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    failed = invoke(env, tmp_path, data, "no-init")
    assert failed.exit_code == 1
    assert "job errors" not in failed.stderr
    assert failed.stderr.splitlines()[-1] == "Hint: fix the cause, then `batchctl job resume -n no-init`"
    summary = env.show("no-init")["error"]["summary"]
    result = env.cli("job", "errors", "-n", "no-init", "-o", "json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    assert result.stderr == f"Warning: job no-init has no failed items: the job failed as a whole: {summary}\n"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"message": "job canceled"}, (None, "job canceled", None, "job canceled")),
        ({"message": "runner exited unexpectedly"}, (None, "runner exited unexpectedly", None, None)),
        (  # the shape a Completed job's error had before (the summary as its message)
            {"message": "KeyError: 'age' (score.py:3)", "type": "KeyError", "frame": "score.py:3"},
            ("KeyError", "KeyError: 'age' (score.py:3)", "score.py:3", "KeyError: 'age' (score.py:3)"),
        ),
    ],
)
def test_every_stored_error_reads_in_the_one_shape(stored, expected):
    """What cancel, a dead runner and earlier versions wrote to job.json is shown in the one shape."""
    from batchctl.jobs.model import JobRecord

    record = json.loads((Path(__file__).parent / "fixtures" / "job-v0.1.0" / "job.json").read_text())
    error = JobRecord.model_validate({**record, "error": stored}).public()["error"]
    got = tuple(error[k] for k in ERROR_KEYS)
    assert got[:3] == expected[:3]
    assert error["summary"] == (expected[3] or stored["message"])


# ------------------------------------------------------------------------------ 2. the MLflow schema error, whole


@pytest.mark.mlflow
def test_mlflow_schema_error_keeps_the_missing_column(mlenv, heart_data, tmp_path):
    from .conftest import heart_frame

    data = heart_data(2, rows=5)
    heart_frame(40, 9).drop(columns=["age"]).to_csv(data / "no-age.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow()
    out = tmp_path / "out"
    job = ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "schema"))
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (2, 1)
    (entry,) = failed_items(mlenv, "schema")
    assert entry["item"] == "no-age.csv"
    assert entry["type"] == "MlflowException"
    # the cause comes after a dump of the data that was cut at 500 characters before
    assert len(entry["message"]) > 500
    assert entry["message"].startswith("Failed to enforce schema of data")
    assert "Model is missing inputs ['age']" in entry["message"]
    assert "Model is missing inputs ['age']" in job["error"]["message"]
    assert job["error"]["type"] == "MlflowException"
    assert job["error"]["summary"].startswith("MlflowException: ")
    (group,) = ok_json(mlenv.cli("job", "errors", "-n", "schema", "-o", "json"))
    assert (group["type"], group["count"], group["samples"]) == ("MlflowException", 1, ["no-age.csv"])
    assert "missing inputs" in group["example"]


def test_cap_keeps_the_head_and_the_tail_and_redacts():
    from batchctl.scoring import failures

    short = "short message AccountKey=c2VjcmV0"
    assert failures.cap(short) == "short message AccountKey=***"
    head, tail = "HEAD-" + "h" * 100, "t" * 100 + " missing inputs ['age']"
    text = head + "d" * 50_000 + tail
    capped = failures.cap(text)
    assert len(capped) <= failures.MESSAGE_CAP + 100
    assert capped.startswith(head)
    assert capped.endswith(tail)
    assert "characters omitted" in capped
    omitted = int(re.search(r"\[(\d+) characters omitted\]", capped)[1])
    kept = len(capped.replace(f" … [{omitted} characters omitted] … ", ""))
    assert kept + omitted == len(text)
    assert failures.cap("x" * 100, limit=100) == "x" * 100


# ------------------------------------------------------------------------------ 3. fewer rows than files


def test_fewer_rows_than_files_writes_a_failed_item_line(env, tmp_path):
    deploy_driver(env, mini_batch_size=3, error_threshold=-1)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "skip", "c.txt": "ok"})
    job = ok_json(invoke(env, tmp_path, data, "short"))
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (2, 1)
    (entry,) = failed_items(env, "short")
    assert entry["item"] is None
    assert entry["batch"] == 0
    assert "run() returned 2 results for 3 files" in entry["message"]
    assert "cannot be told" in entry["message"]
    (group,) = ok_json(env.cli("job", "errors", "-n", "short", "-o", "json"))
    assert (group["count"], group["samples"]) == (1, ["mini-batch 0"])


# ------------------------------------------------------------------------------ 4. BaseException in run()


@pytest.mark.parametrize(
    "command, exc_type, message, line_tag",
    [
        ("interrupt", "KeyboardInterrupt", "user pressed stop", "interrupt"),
        ("exit 7", "SystemExit", "exit code 7", "exit"),
    ],
    ids=["KeyboardInterrupt", "SystemExit"],
)
@pytest.mark.parametrize("threshold, status", [(-1, "Completed"), (0, "Failed")], ids=["tolerated", "threshold"])
def test_base_exceptions_in_run_are_reported_by_type(
    env, tmp_path, command, exc_type, message, line_tag, threshold, status
):
    deploy_driver(env, mini_batch_size=1, error_threshold=threshold, retry_settings={"max_retries": 0, "timeout": 60})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": command, "c.txt": "ok"})
    result = invoke(env, tmp_path, data, "base")
    assert result.exit_code == (0 if status == "Completed" else 1), result.stderr
    job = env.show("base")
    assert job["status"] == status
    (entry,) = failed_items(env, "base")
    assert (entry["item"], entry["type"], entry["message"]) == ("b.txt", exc_type, message)
    assert entry["frame"] == f"batch_driver.py:{line_of(DRIVER, line_tag)}"
    assert "exit code 1" not in json.dumps(job["error"])
    summary = f"{exc_type}: {message} (batch_driver.py:{line_of(DRIVER, line_tag)})"
    assert summary in (job["error"]["summary"], job["error"].get("first_item_error"))
    assert job["counts"]["worker_restarts"] == 0, "the worker reported the exception and lived on"
    workers_gone(env)


# ------------------------------------------------------------------------------ 5. a hanging init()


@pytest.mark.timeout(120)
def test_hanging_init_shows_progress_lines_and_its_deadline(env, tmp_path, monkeypatch):
    from batchctl.execution import base

    # Azure's deadline is 3 x timeout + 30 s (tests/unit/execution/test_supervisor.py pins it with a fake
    # clock); here the 30 s grace and the 10 s between reports are shortened, so the real run waits 6 s
    monkeypatch.setattr(base, "INIT_GRACE_SECONDS", 3.0)
    monkeypatch.setattr(base, "INIT_REPORT_SECONDS", 2.0)
    deploy_driver(env, env_vars={"INIT_HANGS": "1"})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    started = time.monotonic()
    result = invoke(env, tmp_path, data, "hang", "--set", "retry_settings.timeout=1")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.stderr
    progress = re.findall(r"worker 0: init\(\) running for (\d+) s \(deadline 6 s\)", result.stderr)
    assert len(progress) >= 2, result.stderr
    assert [int(s) for s in progress] == sorted(int(s) for s in progress)
    deadline = "did not finish init() within its deadline of 6 seconds (3 x timeout + 3 s)"
    assert deadline in error_line(result.stderr)
    job = env.show("hang")
    assert job["status"] == "Failed"
    assert deadline in job["error"]["message"]
    assert 6 <= elapsed < 6 + 60, elapsed
    master = (env.job_dir("hang") / "logs" / "sys" / "master_role.txt").read_text()
    assert "init() running for" in master
    workers_gone(env)


# ------------------------------------------------------------------------------ 6. a symbolic link loop


def test_symlink_loop_in_the_input_is_one_failed_item(env, tmp_path):
    deploy_driver(env, mini_batch_size=2, error_threshold=-1)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok", "sub/c.txt": "ok"})
    os.symlink("loop.txt", data / "loop.txt")
    os.symlink("ping.txt", data / "sub" / "pong.txt")
    os.symlink("pong.txt", data / "sub" / "ping.txt")
    out = tmp_path / "out-loop"
    job = ok_json(invoke(env, tmp_path, data, "loop"))
    assert job["counts"]["files"] == 6
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (3, 3)
    entries = failed_items(env, "loop")
    assert sorted(e["item"] for e in entries) == ["loop.txt", "sub/ping.txt", "sub/pong.txt"]
    for entry in entries:
        assert "Too many levels of symbolic links" in entry["message"], entry
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "b.txt,ok", "c.txt,ok"]


# ------------------------------------------------------------------------------ 7. job errors


def test_job_errors_groups_three_kinds_of_failure(env, tmp_path):
    deploy_driver(env, mini_batch_size=1, error_threshold=-1, retry_settings={"max_retries": 0, "timeout": 60})
    inputs = {
        "ok-1.txt": "ok",
        "ok-2.txt": "ok",
        "v-1.txt": "value 1",
        "v-2.txt": "value 2",
        **{f"k-{i}.txt": f"key column_{i}" for i in range(1, 5)},
    }
    data = write_inputs(tmp_path / "in", inputs)
    os.mkfifo(data / "pipe.txt")
    job = ok_json(invoke(env, tmp_path, data, "three"))
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (2, 7)
    groups = ok_json(env.cli("job", "errors", "-n", "three", "-o", "json"))
    assert [g["count"] for g in groups] == [4, 2, 1], groups
    keys, values, fifo = groups
    assert keys["type"] == "KeyError"
    assert len(keys["samples"]) == 3
    assert set(keys["samples"]) <= {f"k-{i}.txt" for i in range(1, 5)}
    assert keys["frame"] == f"lib/checks.py:{KEY_LINE}"
    assert keys["example"].startswith("'column_")
    assert (values["type"], sorted(values["samples"])) == ("ValueError", ["v-1.txt", "v-2.txt"])
    assert values["frame"] == f"batch_driver.py:{VALUE_LINE}"
    assert "bad value" in values["example"]
    assert fifo["samples"] == ["pipe.txt"]
    assert "not a regular file" in fifo["example"]
    assert fifo["type"] not in ("KeyError", "ValueError")
    queried = ok_json(env.cli("job", "errors", "-n", "three", "--query", "[?count > `1`].[type, count]", "-o", "json"))
    assert queried == [["KeyError", 4], ["ValueError", 2]]
    table = env.cli("job", "errors", "-n", "three", "-o", "table")
    assert table.exit_code == 0, table.stderr
    assert "KeyError" in table.stdout and "ValueError" in table.stdout and "pipe.txt" in table.stdout
    # the table shows one real message per group (issue 28, item 7), not the normalised form
    assert keys["message"] == "'…'" and keys["message"] not in table.stdout
    assert keys["example"] in table.stdout and values["example"] in table.stdout
    assert re.search(r"'column_\d'", table.stdout) and "bad value" in table.stdout
    missing = env.cli("job", "errors", "-n", "nope")
    assert missing.exit_code == 4


# ------------------------------------------------------------------------------ 8. the worker log cap

LOG_CAP = 200_000


def test_worker_stdout_is_capped(env, tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHCTL_WORKER_LOG_CAP", str(LOG_CAP))
    deploy_driver(env, mini_batch_size=1)
    lines = 30_000  # 100 bytes each: 3 MB printed, 15 times the cap
    data = write_inputs(tmp_path / "in", {"a.txt": f"print {lines}", "b.txt": "ok"})
    job = ok_json(invoke(env, tmp_path, data, "chatty"))
    assert job["status"] == "Completed"
    assert (tmp_path / "out-chatty" / "predictions.csv").read_text().splitlines() == [
        "a.txt,print",
        "b.txt,ok",
    ]
    workers_gone(env)
    log = env.job_dir("chatty") / "logs" / "user" / "stdout" / "worker-0.txt"
    size = log.stat().st_size
    assert LOG_CAP <= size <= LOG_CAP + 300, size
    text = log.read_text()
    assert "line 0000000 " in text
    assert "THE LAST LINE" not in text
    tail = text.splitlines()[-2:]
    assert tail[0] == f"[batchctl] output truncated at {LOG_CAP} bytes", tail
    dropped = re.fullmatch(r"\[batchctl\] (\d+) bytes of output were dropped", tail[1])
    assert dropped, tail
    assert int(dropped[1]) >= lines * 100 - LOG_CAP
    assert text.count("output truncated") == 1


# What a worker does with its output (CappedOutput on fds 1 and 2), in a process of its own. The first
# write fills the cap exactly; the test's process waits for the pump to have written it before the next.
CAP_BOUNDARY = textwrap.dedent(
    """
    import os
    import sys
    import time

    from batchctl.execution.worker import CappedOutput

    log = sys.argv[1]
    capture = CappedOutput(log, 10)
    os.write(1, b"0123456789")
    deadline = time.monotonic() + 60
    while os.path.getsize(log) < 10:  # a state gate: the pump has written the first chunk
        if time.monotonic() > deadline:
            raise SystemExit("the pump never wrote the first chunk")
        time.sleep(0.01)
    os.write(1, b"more output\\n")
    capture.close()
    """
)


def test_worker_log_cap_reached_exactly_still_says_truncated(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "cap_boundary.py"
    script.write_text(CAP_BOUNDARY)
    log = tmp_path / "worker-0.txt"
    done = subprocess.run([sys.executable, str(script), str(log)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [
        "0123456789",
        "[batchctl] output truncated at 10 bytes",
        "[batchctl] 12 bytes of output were dropped",
    ]
