"""What a person sees in a terminal: a job ends in a short summary, `job show` in sections, the progress
bar names the job by its short name. Each run is the real entry point on pseudo-terminals of 80
columns (testkit.run_in_terminal); scripts' bytes are pinned in test_script_outputs.py."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from testkit import run_in_terminal

from .conftest import heart_frame, read_job, write_inputs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(raw: bytes) -> list[str]:
    return ANSI.sub("", raw.decode()).splitlines()


def screen_lines(lines: list[str], columns: int = 80) -> int:
    """How many rows of a `columns`-wide terminal the lines take (a longer line wraps)."""
    return sum(max(1, math.ceil(len(line) / columns)) for line in lines)


def terminal(*args: str, stdout_tty: bool = True, stderr_tty: bool = True, colour: bool = True) -> Any:
    """batchctl ARGS on 80-column pseudo-terminals, in colour unless `colour` is False (NO_COLOR=1)."""
    return run_in_terminal(
        *args,
        env={"TERM": "xterm-256color"},
        unset=("NO_COLOR",) if colour else (),
        stdout_tty=stdout_tty,
        stderr_tty=stderr_tty,
        columns=80,
    )


@pytest.fixture
def jobs(mlenv: Any, tmp_path: Path) -> Any:
    """An endpoint `heart` with an MLflow deployment (default) and a script deployment `bad` that fails
    an item whose file says `raise`; `good` and `mixed` inputs."""
    mlenv.endpoint("heart")
    mlenv.mlflow("ok", mini_batch_size=1)
    mlenv.script("bad", mini_batch_size=1, error_threshold=0, retry_settings={"max_retries": 0, "timeout": 60})
    good = tmp_path / "good"
    good.mkdir()
    for i in range(2):
        heart_frame(5, i).to_csv(good / f"part-{i}.csv", index=False)
    mixed = write_inputs(tmp_path / "mixed", {"a.txt": "ok", "b.txt": "raise"})
    return mlenv, good, mixed


def _name_of(first_line: str) -> str:
    match = re.search(r"job (\S+)", first_line)
    assert match, first_line
    return match.group(1)


def test_a_completed_job_ends_in_a_summary_that_fits_80_columns(jobs):
    env, good, _ = jobs
    result = terminal("endpoint", "invoke", "-n", "heart", "--input", str(good), "--no-server")
    assert result.code == 0, result.stderr
    lines = plain(result.stdout)
    assert screen_lines(lines) <= 10, lines
    name = _name_of(lines[0])
    record = read_job(env.home, name)
    assert re.fullmatch(rf"Completed  job {name}  in (\d+\.\ds|\d+m\d\ds)", lines[0]), lines[0]
    # the status is coloured: bold green
    assert re.search(rb"\x1b\[[0-9;]*32m" + rb"Completed", result.stdout), result.stdout[:80]
    assert lines[1] == f"items    2 ok, 0 failed of 2 files · {record['counts']['rows']} rows"
    assert lines[2] == f"results  {record['output_file']}"
    assert Path(record["output_file"]).is_file()
    assert lines[3:] == [f"next     batchctl job download -n {name}"]
    # not the record: no settings, hashes or lineage
    assert "sha256" not in result.stdout.decode() and "lineage" not in result.stdout.decode()
    # the progress bar on stderr names the job by its UUID's first 8 characters, never a 24-character cut
    stderr = ANSI.sub("", result.stderr.decode())
    assert name[:8] in stderr and name[:24] not in stderr
    assert "Error" not in stderr


def test_a_failed_job_ends_in_its_first_error_and_the_next_commands(jobs):
    env, _, mixed = jobs
    result = terminal("endpoint", "invoke", "-n", "heart", "-d", "bad", "--input", str(mixed), "--no-server")
    assert result.code == 1
    lines = plain(result.stdout)
    assert screen_lines(lines) <= 10, lines
    name = _name_of(lines[0])
    record = read_job(env.home, name)
    frame = re.search(r"\((score\.py:\d+)\)", json.dumps(record["error"]))
    assert frame, record["error"]
    assert re.fullmatch(rf"Failed  job {name}  in (\d+\.\ds|\d+m\d\ds)", lines[0]), lines[0]
    assert re.search(rb"\x1b\[[0-9;]*31m" + rb"Failed", result.stdout), result.stdout[:80]
    assert lines[1:] == [
        "items    1 ok, 1 failed of 2 files · 1 row",
        "reason   error_threshold exceeded: 1 failed items > error_threshold 0",
        f"error    ValueError: cannot score b.txt ({frame.group(1)})",
        "results  none published; what was scored is kept for resume",
        f"next     batchctl job errors -n {name}",
        f"         batchctl job resume -n {name}",
    ]
    # stderr is the same terminal: the summary says it all, the Error:/Hint: lines are not repeated
    assert "Error:" not in ANSI.sub("", result.stderr.decode())


def test_with_stderr_not_a_terminal_the_error_line_is_kept(jobs):
    _, _, mixed = jobs
    result = terminal(
        "endpoint", "invoke", "-n", "heart", "-d", "bad", "--input", str(mixed), "--no-server", stderr_tty=False
    )
    assert result.code == 1
    assert plain(result.stdout)[0].startswith("Failed  job ")
    errors = [line for line in result.stderr.decode().splitlines() if line.startswith(("Error:", "Hint:"))]
    assert len(errors) == 2 and "error_threshold exceeded" in errors[0], result.stderr
    # plain progress lines on a pipe, the job named in full as before
    assert re.search(r"^job \S+: 2 files in 2 mini-batches$", result.stderr.decode(), re.MULTILINE)


def test_job_show_on_a_terminal_is_in_sections(jobs):
    env, good, mixed = jobs
    ok = terminal("endpoint", "invoke", "-n", "heart", "--input", str(good), "--job-name", "s-ok", "-m", "2",
                  "--no-server", "-o", "none")  # fmt: skip
    assert ok.code == 0
    bad = terminal("endpoint", "invoke", "-n", "heart", "-d", "bad", "--input", str(mixed), "--job-name", "s-bad",
                   "--no-server", "-o", "none")  # fmt: skip
    assert bad.code == 1

    shown = terminal("job", "show", "-n", "s-ok")
    assert shown.code == 0
    lines = plain(shown.stdout)
    record = read_job(env.home, "s-ok")
    for heading in ("Status and timing", "Counts", "Settings that differ from deployment ok", "Input and output",
                    "Tracking and environment"):  # fmt: skip
        assert heading in lines, lines
    assert lines[0] == "Job s-ok"
    assert "  endpoint      heart / deployment ok" in lines
    assert "  status        Completed" in lines
    assert f"  items         2 ok, 0 failed of 2 files · {record['counts']['rows']} rows" in lines
    assert "  mini_batch_size: 2   (deployment: 1)" in lines  # -m 2 over the deployment's 1
    assert f"  results       {record['output_file']}" in lines
    assert "  mlflow        not tracked (no tracking URI)" in lines
    assert "First error" not in lines
    assert re.search(rb"\x1b\[[0-9;]*32mCompleted", shown.stdout)
    assert not re.search(r"[0-9a-f]{64}", "\n".join(lines))  # hashes are cut, never whole

    shown = terminal("job", "show", "-n", "s-bad")
    assert shown.code == 0
    lines = plain(shown.stdout)
    assert "  status        Failed" in lines
    assert "First error" in lines
    assert "  reason        error_threshold exceeded: 1 failed items > error_threshold 0" in lines
    assert any(re.fullmatch(r"  error         ValueError: cannot score b\.txt \(score\.py:\d+\)", x) for x in lines)
    assert "  details       batchctl job errors -n s-bad" in lines
    assert "  continue      batchctl job resume -n s-bad" in lines
    assert "  none: the job ran with the deployment's settings" in lines

    # `-o table` is the table of every field, as before
    table = terminal("job", "show", "-n", "s-bad", "-o", "table")
    assert "first_item_error" in table.stdout.decode() and "Status and timing" not in table.stdout.decode()


def test_job_stream_on_a_terminal_ends_in_the_summary(jobs):
    _, _, mixed = jobs
    assert terminal("endpoint", "invoke", "-n", "heart", "-d", "bad", "--input", str(mixed), "--job-name",
                    "st", "--no-server", "-o", "none").code == 1  # fmt: skip
    result = terminal("job", "stream", "-n", "st")
    assert result.code == 1
    lines = plain(result.stdout)
    tail = lines[lines.index(next(x for x in lines if x.startswith("Failed  job st"))) :]
    assert tail[-2:] == ["next     batchctl job errors -n st", "         batchctl job resume -n st"]
    assert screen_lines(tail) <= 10
    # a pipe gets the one line it always got
    piped = terminal("job", "stream", "-n", "st", stdout_tty=False, stderr_tty=False, colour=False)
    assert piped.code == 1
    assert piped.stdout.decode().endswith("job st: Failed - 1 items succeeded, 1 failed\n")
    assert "Error: job st failed" in piped.stderr.decode()
