"""Jobs that lose nothing when they fail (issue 11): committed results, `job resume`, a rerun that
refuses to lose data, crash consistency under SIGKILL / SIGINT / `job cancel`, and deletes refused
while a job uses what they would delete.

Every job here uses the behaviour script of conftest.py: each input file holds one command ("ok",
"raise", "sleep S", "gate NAME"...) and run() writes one row `name,command` per file, so the expected
results file of any input folder is known exactly."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    BEHAVIOUR_SCRIPT,
    alive,
    batchctl_run,
    kill_quietly,
    ok_json,
    read_job,
    start_detached,
    wait_for,
    write_inputs,
)

pytestmark = pytest.mark.slow

SIX = {f"{n}.csv": "ok" for n in "abcdef"}


# ------------------------------------------------------------------------------ helpers


def expected_rows(inputs: dict[str, str]) -> bytes:
    """The results file of an uninterrupted run of the behaviour script over `inputs`."""
    return "".join(f"{name},{inputs[name].split()[0]}\n" for name in sorted(inputs)).encode()


def commit_records(env: Any, job: str) -> list[dict[str, Any]]:
    """The commits in force under jobs/<job>/results/ (the commit line is what counts, not the part file):
    the lines of commits.jsonl, a later line for a mini-batch replacing an earlier one, a discard line
    withdrawing it; a line torn by the kill (no newline yet) is not a commit."""
    log = env.job_dir(job) / "results" / "commits.jsonl"
    latest: dict[int, dict[str, Any]] = {}
    try:
        lines = log.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return []
    for line in lines:
        if not line.endswith(b"\n") or not line.strip():
            continue
        entry = json.loads(line)
        if "discard" in entry:
            latest.pop(entry["discard"], None)
        else:
            latest[entry["batch"]] = entry
    return [latest[batch] for batch in sorted(latest)]


def n_commits(env: Any, job: str) -> int:
    return len(commit_records(env, job))


def check_commits(env: Any, job: str, batches: list[list[str]], inputs: dict[str, str]) -> list[dict[str, Any]]:
    """Every commit record names an existing part that holds exactly its mini-batch's rows."""
    records = commit_records(env, job)
    for record in records:
        files = batches[record["batch"]]
        assert len(record["fingerprint"]) == 64, record
        assert (record["succeeded"], record["failed"]) == (len(files), 0), record
        part = env.job_dir(job) / "results" / record["part"]
        assert part.read_bytes() == expected_rows({f: inputs[f] for f in files}), (record, part.read_bytes())
        assert record["size"] == part.stat().st_size, record
    return records


def clear_ran(env: Any) -> None:
    """Forget which files run() reached (the behaviour script marks each file once)."""
    folder = env.state / "ran"
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink()


def workers_gone(env: Any) -> None:
    for pid in env.pids():
        wait_for(lambda pid=pid: not alive(pid), 20, f"worker {pid} to exit")


def spawn(tmp_path: Path, tag: str, *args: str) -> subprocess.Popen[bytes]:
    """`python -m batchctl ARGS` with its output in files (a pipe nobody reads could fill and block it)."""
    logs = tmp_path / "proc-logs"
    logs.mkdir(exist_ok=True)
    with open(logs / f"{tag}.out", "wb") as out, open(logs / f"{tag}.err", "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "batchctl", *args], stdout=out, stderr=err, env={**os.environ})


def proc_stderr(tmp_path: Path, tag: str) -> str:
    return (tmp_path / "proc-logs" / f"{tag}.err").read_text(errors="replace")


def record_or_none(env: Any, job: str) -> dict[str, Any] | None:
    try:
        return read_job(env.home, job)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def failed_job(env: Any, tmp_path: Path, job: str = "j", bad: str = "c.csv") -> tuple[Path, Path]:
    """Six files, one mini-batch each, one worker, error_threshold 0 and `bad` raising in run(): the job
    ends Failed after the files before `bad` succeeded (the issue's reproduction)."""
    data = write_inputs(tmp_path / "in", {**SIX, bad: "raise"})
    out = tmp_path / "out"
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", job)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    job_record = env.show(job)
    assert job_record["status"] == "Failed"
    assert "error_threshold exceeded" in job_record["error"]["message"]
    assert (job_record["counts"]["items_succeeded"], job_record["counts"]["items_failed"]) == (2, 1)
    assert not (out / "predictions.csv").exists()
    return data, out


def script_deployment(env: Any, **settings: Any) -> None:
    env.endpoint()
    env.script(
        mini_batch_size=1,
        error_threshold=0,
        retry_settings={"max_retries": 0, "timeout": 120},
        **settings,
    )


# ------------------------------------------------------------------------------ 1. the reproduction


def test_failed_job_is_resumed_not_rerun_and_loses_nothing(env, tmp_path):
    script_deployment(env)
    data, out = failed_job(env, tmp_path)
    # the rerun that used to publish 4 of 6 files is refused, pointing to resume
    rerun = env.cli("job", "rerun", "-n", "j", "--failed-only", "--output-path", str(tmp_path / "rerun-out"))
    assert rerun.exit_code == 5, (rerun.stdout, rerun.stderr)
    assert "batchctl job resume -n j" in rerun.stderr
    assert sorted(os.listdir(env.home / "jobs")) == ["j"], "the refused rerun created no job"
    assert not (tmp_path / "rerun-out").exists()
    # fix the file, resume: only the mini-batches without a committed result are scored
    (data / "c.csv").write_text("ok\n")
    clear_ran(env)
    resumed = ok_json(env.cli("job", "resume", "-n", "j"))
    assert (resumed["name"], resumed["status"], resumed["attempts"]) == ("j", "Completed", 2)
    assert env.ran() == {"c.csv", "d.csv", "e.csv", "f.csv"}, "a.csv and b.csv were committed: not scored again"
    job = env.show("j")
    assert (job["status"], job["attempts"]) == ("Completed", 2)
    assert [h["status"] for h in job["history"]] == ["Failed"]
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (6, 0)
    assert sorted(os.listdir(env.home / "jobs")) == ["j"], "the same job continued"
    # byte-identical to an uninterrupted run of the fixed data
    reference = tmp_path / "reference"
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(reference), "--job-name", "ref"))
    published = (out / "predictions.csv").read_bytes()
    assert published == (reference / "predictions.csv").read_bytes() == expected_rows(SIX)


def test_resume_after_the_input_changed_warns_rescores_changed_files_and_records_the_new_listing(env, tmp_path):
    """Issue 23, finding 10. Chosen: resume keeps the job's own file list (an added file is left out, as
    the warning says), and a file that changed since it was scored is scored again, so that the results
    and the lineage's listing describe the same input."""
    from batchctl.storage import Location
    from batchctl.tracking.lineage import listing_entries, listing_hash

    script_deployment(env)
    data, out = failed_job(env, tmp_path)
    (data / "a.csv").write_text("sleep 0.01\n")  # scored by the first attempt, edited since
    (data / "c.csv").write_text("ok\n")  # the file that failed, fixed
    (data / "g.csv").write_text("ok\n")  # new
    clear_ran(env)
    result = env.cli("job", "resume", "-n", "j")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "Warning: the input of job 'j' changed since its last attempt (added: g.csv; changed: a.csv, c.csv); "
        "resume scores the files the job listed when it was submitted: added files are left out, and files "
        "changed or removed since they were scored are scored again (see the job's lineage); `batchctl job "
        "rerun` scores the input as it is now"
    )
    assert env.ran() == {"a.csv", "c.csv", "d.csv", "e.csv", "f.csv"}, "b.csv unchanged: its commit is kept"
    job = env.show("j")
    assert (job["status"], job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == ("Completed", 6, 0)
    assert (out / "predictions.csv").read_bytes() == expected_rows({**SIX, "a.csv": "sleep 0.01"})
    lineage = job["lineage"]["input"]
    assert lineage["changed_since_last_attempt"] == {"changed": ["a.csv", "c.csv"], "removed": []}
    _basis, entries = listing_entries(Location(str(data), "file"), sorted(SIX))
    assert lineage["listing_sha256"] == listing_hash(entries)
    master = (env.job_dir("j") / "logs" / "sys" / "master_role.txt").read_text()
    assert "Warning: the input changed since the last attempt (changed: a.csv, c.csv)" in master


def test_a_second_resume_compares_with_the_listing_the_first_resume_recorded_in_the_plan(env, tmp_path):
    """Issue 26 with issue 23: plan.jsonl is the one record of the listing. A resume that finds changed files
    appends their new entries to the plan (an amendment line); the next resume compares with those, so a
    file scored again by the first resume is not scored a third time."""
    from batchctl.jobs import plan as plan_io

    script_deployment(env)
    data, out = failed_job(env, tmp_path)
    (data / "a.csv").write_text("sleep 0.01\n")  # changed; c.csv still fails
    clear_ran(env)
    again = env.cli("job", "resume", "-n", "j")
    assert again.exit_code != 0 and env.show("j")["status"] == "Failed"
    assert "a.csv" in env.ran(), "the changed file was scored again"
    folder = env.job_dir("j")
    assert not (folder / "input_listing.json").exists(), "the plan holds the listing: no second file"
    amended = plan_io.amendments(folder)
    assert list(amended) == ["a.csv"] and amended["a.csv"][1] == len("sleep 0.01\n")
    (data / "c.csv").write_text("ok\n")
    clear_ran(env)
    result = env.cli("job", "resume", "-n", "j")
    assert result.exit_code == 0, result.stderr
    assert "changed: c.csv)" in result.stderr.splitlines()[0], result.stderr
    assert env.ran() == {"c.csv", "d.csv", "e.csv", "f.csv"}, "a.csv was scored by the last attempt, unchanged since"
    job = env.show("j")
    assert (job["status"], job["counts"]["items_succeeded"]) == ("Completed", 6)
    assert job["lineage"]["input"]["changed_since_last_attempt"] == {"changed": ["c.csv"], "removed": []}
    assert (out / "predictions.csv").read_bytes() == expected_rows({**SIX, "a.csv": "sleep 0.01"})


def test_a_job_of_an_earlier_version_with_plan_json_and_input_listing_json_resumes_after_a_change(env, tmp_path):
    """A job written before plan.jsonl (plan.json + issue 23's input_listing.json) still resumes: the
    changed file is scored again, with the same warning, and input_listing.json gets its new entry."""
    from batchctl.storage import Location
    from batchctl.tracking.lineage import listing_entries

    script_deployment(env)
    data, out = failed_job(env, tmp_path)
    folder = env.job_dir("j")
    # the job as the earlier version left it: one plan document and the listing beside it
    header = json.loads((folder / "plan.jsonl").read_bytes().split(b"\n", 1)[0])
    files = sorted(SIX)
    plan = {"root_url": header["root_url"], "root_protocol": header["root_protocol"], "input_type": "uri_folder"}
    (folder / "plan.json").write_text(json.dumps({**plan, "files": files}))
    (folder / "plan.jsonl").unlink()
    basis, entries = listing_entries(Location(str(data), "file"), files)
    (folder / "input_listing.json").write_text(json.dumps({"root": str(data), "basis": basis, "entries": entries}))
    (data / "b.csv").write_text("sleep 0.01\n")
    (data / "c.csv").write_text("ok\n")
    clear_ran(env)
    result = env.cli("job", "resume", "-n", "j")
    assert result.exit_code == 0, result.stderr
    assert "(changed: b.csv, c.csv)" in result.stderr.splitlines()[0], result.stderr
    assert env.ran() == {"b.csv", "c.csv", "d.csv", "e.csv", "f.csv"}, "a.csv unchanged: its commit is kept"
    assert (out / "predictions.csv").read_bytes() == expected_rows({**SIX, "b.csv": "sleep 0.01"})
    kept = json.loads((folder / "input_listing.json").read_text())
    assert kept["entries"] == listing_entries(Location(str(data), "file"), files)[1]
    assert not (folder / "plan.jsonl").exists()


@pytest.mark.mlflow
def test_failed_mlflow_job_is_resumed_after_the_bad_file_is_fixed(mlenv, heart_data, tmp_path):
    from .conftest import heart_frame

    data = heart_data(6, rows=5)
    good = (data / "part-002.csv").read_bytes()
    heart_frame(5, 102).drop(columns=["age"]).to_csv(data / "part-002.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=1, error_threshold=0)
    out = tmp_path / "out"
    failed = mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "mj")
    assert failed.exit_code == 1, failed.stderr
    job = mlenv.show("mj")
    assert job["status"] == "Failed"
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (2, 1)
    rerun = mlenv.cli("job", "rerun", "-n", "mj", "--failed-only")
    assert rerun.exit_code == 5
    assert "batchctl job resume -n mj" in rerun.stderr
    (data / "part-002.csv").write_bytes(good)
    resumed = ok_json(mlenv.cli("job", "resume", "-n", "mj"))
    assert (resumed["status"], resumed["attempts"]) == ("Completed", 2)
    assert (resumed["counts"]["items_succeeded"], resumed["counts"]["items_failed"]) == (6, 0)
    reference = tmp_path / "reference"
    ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(reference), "--job-name", "mref"))
    published = (out / "predictions.csv").read_bytes()
    assert published == (reference / "predictions.csv").read_bytes()
    assert [line.rsplit(",", 1)[1] for line in published.decode().splitlines()] == [
        f"part-{i:03d}.csv" for i in range(6) for _ in range(5)
    ]


# ------------------------------------------------------------------------------ 2. crash consistency

CRASH_FILES = 60
CRASH_BATCH = 2
CRASH_KILLS = 10
CRASH_SEED = 11


def crash_inputs(n_files: int, seed: int) -> dict[str, str]:
    """`n_files` files that sleep 20-50 ms each; the last one waits for the gate `final`, so the job can
    never complete while the test is still choosing where to stop it."""
    rng = random.Random(seed)
    inputs = {f"f{i:03d}.txt": f"sleep {rng.uniform(0.02, 0.05):.3f}" for i in range(n_files - 1)}
    inputs[f"f{n_files - 1:03d}.txt"] = "gate final"
    return inputs


def crash_deployment(env: Any) -> None:
    env.endpoint()
    env.script(
        mini_batch_size=CRASH_BATCH,
        max_concurrency_per_instance=2,
        error_threshold=0,
        retry_settings={"max_retries": 1, "timeout": 300},
    )


def wait_running(env: Any, job: str, proc: subprocess.Popen[bytes], attempt: int, commits: int, what: str) -> None:
    """Until attempt `attempt` of `job` runs in `proc` and at least `commits` results are committed."""

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the runner ended by itself (exit {proc.returncode})")
        record = record_or_none(env, job)
        return bool(
            record
            and record["status"] == "Running"
            and record["attempts"] == attempt
            and (record.get("runner") or {}).get("pid") == proc.pid
            and n_commits(env, job) >= commits
        )

    wait_for(ready, 180, what, interval=0.005)


def reference_run(env: Any, data: Path, out: Path, inputs: dict[str, str]) -> bytes:
    env.open_gate("final")
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "reference"))
    reference = (out / "predictions.csv").read_bytes()
    assert reference == expected_rows(inputs), "the uninterrupted run itself has every row once"
    return reference


@pytest.mark.timeout(900)
def test_sigkill_of_the_driver_at_ten_random_points_then_resume(env, tmp_path):
    """The driver (a real foreground `endpoint invoke`, then each `job resume`) is SIGKILLed ten times,
    each once the number of committed results chosen by a seeded RNG exists: after each kill the job
    reads Failed, every commit holds exactly its mini-batch's rows, nothing is published and no worker is
    left; the last resume completes the same job, byte-identical to an uninterrupted run."""
    inputs = crash_inputs(CRASH_FILES, CRASH_SEED)
    names = sorted(inputs)
    batches = [names[i : i + CRASH_BATCH] for i in range(0, len(names), CRASH_BATCH)]
    n_batches = len(batches)
    data = write_inputs(tmp_path / "in", inputs)
    out = tmp_path / "out"
    crash_deployment(env)
    # ten distinct kill points; the last mini-batch is held by its gate, so n_batches - 1 commits is reachable
    points = sorted(random.Random(CRASH_SEED).sample(range(n_batches - 1), CRASH_KILLS))
    seen: list[int] = []
    proc = spawn(
        tmp_path, "attempt-1",
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out), "--job-name", "crash",
    )  # fmt: skip
    try:
        for i, point in enumerate(points):
            attempt = i + 1
            where = f"kill {attempt} (at >= {point} commits; kill points {points})"
            wait_running(env, "crash", proc, attempt, point, where)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(60) == -signal.SIGKILL
            seen.append(n_commits(env, "crash"))
            workers_gone(env)
            job = env.show("crash")
            assert (job["status"], job["error"]["message"]) == ("Failed", "runner exited unexpectedly"), where
            assert job["attempts"] == attempt
            records = check_commits(env, "crash", batches, inputs)
            assert len(records) >= point, where
            assert job["counts"]["items_succeeded"] <= CRASH_BATCH * len(records), "counted before committed"
            assert not (out / "predictions.csv").exists(), where
            if out.is_dir():
                assert os.listdir(out) == [], "nothing published, not even a temp file"
            proc = spawn(tmp_path, f"attempt-{attempt + 1}", "job", "resume", "-n", "crash")
        # the eleventh attempt is let through: the gate opens and it completes the same job
        env.open_gate("final")
        assert proc.wait(300) == 0, proc_stderr(tmp_path, f"attempt-{CRASH_KILLS + 1}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    job = env.show("crash")
    assert (job["status"], job["attempts"]) == ("Completed", CRASH_KILLS + 1), seen
    assert len(job["history"]) == CRASH_KILLS
    assert all(h["status"] == "Failed" for h in job["history"])
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (CRASH_FILES, 0)
    assert job["counts"]["mini_batches_completed"] == n_batches
    published = (out / "predictions.csv").read_bytes()
    assert not (env.job_dir("crash") / "results").exists(), "committed results are removed once published"
    assert not (env.job_dir("crash") / "parts").exists()
    reference = reference_run(env, data, tmp_path / "reference", inputs)
    assert published == reference, (seen, points)
    assert sorted(os.listdir(out)) == ["predictions.csv"]


GROUP_FILES = 160
GROUP_KILLS = 6


@pytest.mark.timeout(900)
def test_sigkill_at_random_instants_while_results_are_committed_in_groups_then_resume(env, tmp_path):
    """Group commit (jobs/results.py): one-file mini-batches that take no time, on two workers, arrive
    faster than commits of one each would go, so they are committed in groups: one log write and one
    fsync for the results of one wait. The driver is SIGKILLed six times at seeded random instants (once
    a random number of results is committed, plus a random 0-30 ms, so a kill lands anywhere in a group's
    staging, write or fsync). After each kill every commit in force holds exactly its mini-batch's rows,
    the job never counted more than it committed and nothing is published; the last resume completes the
    job byte-identical to an uninterrupted run."""
    rng = random.Random(CRASH_SEED + 26)
    inputs = {f"g{i:03d}.txt": "ok" for i in range(GROUP_FILES - 1)}
    inputs[f"g{GROUP_FILES - 1:03d}.txt"] = "gate final"
    batches = [[name] for name in sorted(inputs)]
    data = write_inputs(tmp_path / "in", inputs)
    out = tmp_path / "out"
    env.endpoint()
    env.script(
        mini_batch_size=1,
        max_concurrency_per_instance=2,
        error_threshold=0,
        retry_settings={"max_retries": 1, "timeout": 300},
    )
    points = sorted(rng.sample(range(1, GROUP_FILES - 1), GROUP_KILLS))
    proc = spawn(
        tmp_path, "group-1",
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out), "--job-name", "grp",
    )  # fmt: skip
    try:
        for i, point in enumerate(points):
            attempt = i + 1
            where = f"kill {attempt} (at >= {point} commits; kill points {points})"
            wait_running(env, "grp", proc, attempt, point, where)
            time.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(60) == -signal.SIGKILL
            workers_gone(env)
            job = env.show("grp")
            assert (job["status"], job["attempts"]) == ("Failed", attempt), where
            records = check_commits(env, "grp", batches, inputs)
            assert len(records) >= point, where
            assert job["counts"]["items_succeeded"] <= len(records), f"counted before committed: {where}"
            assert not (out / "predictions.csv").exists(), where
            proc = spawn(tmp_path, f"group-{attempt + 1}", "job", "resume", "-n", "grp")
        env.open_gate("final")
        assert proc.wait(300) == 0, proc_stderr(tmp_path, f"group-{GROUP_KILLS + 1}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    job = env.show("grp")
    assert (job["status"], job["attempts"]) == ("Completed", GROUP_KILLS + 1)
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (GROUP_FILES, 0)
    assert (out / "predictions.csv").read_bytes() == expected_rows(inputs)
    assert not (env.job_dir("grp") / "results").exists(), "committed results are removed once published"


def test_sigkill_after_the_publish_before_the_record_says_completed(env, tmp_path):
    """The one kill point the random ones above cannot reach on purpose: the results file is published,
    the record still says Running. The runner is held there by a FIFO at logs/job_result.txt (written
    after the publish, before the terminal record) and killed: the job must read Completed, its published
    results untouched, rather than Failed with nothing left to resume (a resume is then refused: exit 5)."""
    inputs = crash_inputs(10, CRASH_SEED + 2)
    data = write_inputs(tmp_path / "in", inputs)
    out = tmp_path / "out"
    crash_deployment(env)
    proc = spawn(
        tmp_path, "invoke",
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out), "--job-name", "late",
    )  # fmt: skip
    try:
        wait_running(env, "late", proc, 1, 4, "all but the gated mini-batch committed")
        fifo = env.job_dir("late") / "logs" / "job_result.txt"
        os.mkfifo(fifo)
        env.open_gate("final")

        def published() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the runner ended by itself (exit {proc.returncode})")
            record = json.loads((env.job_dir("late") / "job.json").read_text())
            return bool(record.get("publishing")) and (out / "predictions.csv").exists()

        wait_for(published, 180, "the publish")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    fifo.unlink()
    workers_gone(env)
    assert (out / "predictions.csv").read_bytes() == expected_rows(inputs)
    job = env.show("late")
    assert (job["status"], job["error"], job["published"]) == ("Completed", None, True)
    assert job["counts"]["items_succeeded"] == len(inputs)
    resumed = env.cli("job", "resume", "-n", "late")
    assert resumed.exit_code == 5, (resumed.stdout, resumed.stderr)  # nothing left to score
    assert (out / "predictions.csv").read_bytes() == expected_rows(inputs)


# The runner as `python -m batchctl`, except that it SIGKILLs itself the instant storage.publish() has
# created the results file: the kill point between the publish and the record's `published`.
KILL_AFTER_PUBLISH = """
import os, signal, sys
from batchctl import storage
real = storage.publish
def publish_then_die(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
storage.publish = publish_then_die
from batchctl.cli import main
sys.argv = ["batchctl", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("tamper", [False, True])
def test_sigkill_between_the_publish_and_the_record_is_recognised_by_its_hash(env, tmp_path, tamper):
    """Issue 23, finding 5: the runner dies after creating the results file, before the record says so.
    The hash recorded just before the publish lets the liveness check recognise the job's own file: the
    job reads Completed, `job verify` matches, `job download` works. A file at the final name that is not
    the job's (tampered before anyone looked) leaves the job Failed and the file untouched."""
    inputs = {f"f{i}.txt": "ok" for i in range(5)}
    data = write_inputs(tmp_path / "in", inputs)
    out = tmp_path / "out"
    crash_deployment(env)
    args = ["endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out), "--job-name", "k"]
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_PUBLISH, *args], capture_output=True, env={**os.environ}, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode(errors="replace")
    workers_gone(env)
    raw = read_job(env.home, "k")
    assert raw["status"] == "Running" and "published" not in raw, "killed before the record said published"
    assert raw["publishing"]["sha256"] and raw["lineage"]["output"]["sha256"] == raw["publishing"]["sha256"]
    if tamper:
        (out / "predictions.csv").write_bytes(b"not this job's results\n")
    job = env.show("k")
    if tamper:
        assert (job["status"], job["error"]["message"]) == ("Failed", "runner exited unexpectedly")
        assert (out / "predictions.csv").read_bytes() == b"not this job's results\n"
        resumed = env.cli("job", "resume", "-n", "k")
        assert resumed.exit_code == 5, (resumed.stdout, resumed.stderr)  # someone else's file: never overwritten
        return
    assert (job["status"], job["error"], job["published"]) == ("Completed", None, True)
    assert (out / "predictions.csv").read_bytes() == expected_rows(inputs)
    master = (env.job_dir("k") / "logs" / "sys" / "master_role.txt").read_text()
    assert "the runner exited after publishing" in master and "the job is Completed" in master
    verified = env.cli("job", "verify", "-n", "k", "-o", "json")
    assert verified.exit_code == 0, (verified.stdout, verified.stderr)
    assert json.loads(verified.stdout)["ok"] is True
    fetched = env.cli("job", "download", "-n", "k", "--download-path", str(tmp_path / "dl"))
    assert fetched.exit_code == 0, (fetched.stdout, fetched.stderr)
    assert [p.read_bytes() for p in (tmp_path / "dl").rglob("predictions.csv")] == [expected_rows(inputs)]


INTERRUPT_FILES = 20


@pytest.mark.parametrize("how", ["sigint-foreground", "job-cancel-no-wait"])
def test_canceled_job_keeps_its_commits_and_resumes_to_identical_results(env, tmp_path, how):
    inputs = crash_inputs(INTERRUPT_FILES, CRASH_SEED + 1)
    names = sorted(inputs)
    batches = [names[i : i + CRASH_BATCH] for i in range(0, len(names), CRASH_BATCH)]
    data = write_inputs(tmp_path / "in", inputs)
    out = tmp_path / "out"
    crash_deployment(env)
    target = random.Random(CRASH_SEED).randrange(1, len(batches) - 1)
    args = ["endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out), "--job-name", "c"]
    if how == "sigint-foreground":
        proc = spawn(tmp_path, "invoke", *args)
    else:
        started = batchctl_run(*args, "--no-wait", "-o", "json")
        assert started.returncode == 0, started.stderr
        runner = read_job(env.home, "c")["runner"]["pid"]
        proc = None
    try:
        if proc is not None:
            wait_running(env, "c", proc, 1, target, f"{target} commits")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 130, proc_stderr(tmp_path, "invoke")
        else:
            wait_for(
                lambda: (r := record_or_none(env, "c")) and r["status"] == "Running" and n_commits(env, "c") >= target,
                180,
                f"{target} commits",
                interval=0.005,
            )
            canceled = ok_json(env.cli("job", "cancel", "-n", "c"))
            assert canceled["status"] == "Canceled"
            wait_for(lambda: not alive(runner), 30, "the detached runner to exit")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is None:
            kill_quietly(runner)
    workers_gone(env)
    job = env.show("c")
    assert job["status"] == "Canceled"
    assert not (out / "predictions.csv").exists()
    records = check_commits(env, "c", batches, inputs)
    assert len(records) >= target, "the commits made before the cancel survive it"
    # resume scores only what has no commit, and publishes every row exactly once
    committed_files = {f for r in records for f in batches[r["batch"]]}
    clear_ran(env)
    env.open_gate("final")
    resumed = ok_json(env.cli("job", "resume", "-n", "c"))
    assert (resumed["status"], resumed["attempts"]) == ("Completed", 2)
    assert [h["status"] for h in resumed["history"]] == ["Canceled"]
    assert env.ran().isdisjoint({f.replace("/", "_") for f in committed_files}), "committed files not rescored"
    published = (out / "predictions.csv").read_bytes()
    assert published == reference_run(env, data, tmp_path / "reference", inputs)


# ------------------------------------------------------------------------------ 3. resume refusals and overrides


def test_resume_refuses_what_would_change_the_partition_and_applies_the_rest(env, tmp_path):
    script_deployment(env)
    _, out = failed_job(env, tmp_path)
    for setting, why in [("mini_batch_size=5", "partition"), ("output_file_name=x.csv", "its own output")]:
        refused = env.cli("job", "resume", "-n", "j", "--set", setting)
        assert refused.exit_code == 3, (setting, refused.stderr)
        line = refused.stderr.splitlines()[0]
        assert setting.split("=")[0] in line and why in line, line
        job = env.show("j")
        assert (job["status"], job["attempts"]) == ("Failed", 1), "a refused resume changes nothing"
    # az-style pairs after one --set: the job tolerates the bad file now, and retries it twice
    resumed = ok_json(
        env.cli("job", "resume", "-n", "j", "--set", "error_threshold=-1", "retry_settings.max_retries=2")
    )
    assert (resumed["status"], resumed["attempts"]) == ("Completed", 2)
    assert resumed["settings"]["error_threshold"] == -1
    assert resumed["settings"]["retry_settings"]["max_retries"] == 2
    assert resumed["settings"]["mini_batch_size"] == 1
    assert (resumed["counts"]["items_succeeded"], resumed["counts"]["items_failed"]) == (5, 1)
    assert resumed["counts"]["retries"] == 2
    failed = [json.loads(line) for line in (env.job_dir("j") / "failed_items.jsonl").read_text().splitlines()]
    assert [(f["item"], f["attempts"]) for f in failed] == [("c.csv", 3)]
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows == [f"{n}.csv,ok" for n in "abdef"]
    # a Completed job has nothing left to score
    again = env.cli("job", "resume", "-n", "j")
    assert again.exit_code == 5, again.stderr
    assert "Completed" in again.stderr
    assert env.show("j")["attempts"] == 2


# ------------------------------------------------------------------------------ 4. the job's own deployment

V2_RETURN = 'return [f"{r[0]},{r[1]},v2" for r in rows]'


def test_resume_scores_with_the_jobs_snapshot_unless_told_to_use_the_current_deployment(env, tmp_path):
    script_deployment(env)
    data = write_inputs(tmp_path / "in", {**SIX, "c.csv": "raise"})
    for job in ("own", "current"):
        result = env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / job), "--job-name", job)
        assert result.exit_code == 1
    # the deployment gets new code that writes other rows
    v2 = BEHAVIOUR_SCRIPT.replace('return [f"{r[0]},{r[1]}" for r in rows]', V2_RETURN)
    assert v2 != BEHAVIOUR_SCRIPT
    env.script(
        source=v2,
        mini_batch_size=1,
        error_threshold=0,
        retry_settings={"max_retries": 0, "timeout": 120},
    )
    (data / "c.csv").write_text("ok\n")
    ok_json(env.cli("job", "resume", "-n", "own"))
    assert (tmp_path / "own" / "predictions.csv").read_bytes() == expected_rows(SIX), "the job's own code"
    resumed = ok_json(env.cli("job", "resume", "-n", "current", "--use-current-deployment"))
    assert resumed["status"] == "Completed"
    rows = (tmp_path / "current" / "predictions.csv").read_text().splitlines()
    assert rows == ["a.csv,ok", "b.csv,ok", "c.csv,ok,v2", "d.csv,ok,v2", "e.csv,ok,v2", "f.csv,ok,v2"]


# ------------------------------------------------------------------------------ 5. what is kept, what is published


def test_commits_survive_a_failure_and_only_valid_ones_are_published(env, tmp_path):
    from batchctl.jobs.results import fingerprint

    script_deployment(env)
    data, out = failed_job(env, tmp_path)
    folder = env.job_dir("j")
    results = folder / "results"
    records = commit_records(env, "j")
    assert [(r["batch"], r["succeeded"], r["failed"]) for r in records] == [(0, 1, 0), (1, 1, 0)]
    assert len({r["fingerprint"] for r in records}) == 2
    assert [(results / r["part"]).read_text() for r in records] == ["a.csv,ok\n", "b.csv,ok\n"]
    assert not (folder / "parts").exists(), "uncommitted attempts are not kept"
    # what a crash or another job could leave behind: none of it may reach the results file
    (folder / "parts").mkdir()
    (folder / "parts" / "00000003.a1.part").write_text("BOGUS from parts/\n")
    (results / "00000002.part").write_text("BOGUS part without a record\n")  # moved in, record never written

    def forged(batch: int, fp: str, part: str | None, text: str | None, legacy: bool = False) -> None:
        """A commit line in the log, or (legacy) the per-mini-batch record of earlier versions."""
        record = {"batch": batch, "fingerprint": fp, "attempt": 1, "succeeded": 1, "failed": 0, "rows": 1, "part": part}
        if legacy:
            (results / f"{batch:08d}.json").write_text(json.dumps(record))
        else:
            with open(results / "commits.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
        if part and text:
            (results / part).write_text(text)

    forged(3, fingerprint("another-job", 3, ["d.csv"]), "00000003.part", "BOGUS from another job\n", legacy=True)
    forged(4, "0" * 64, "00000004.part", "BOGUS with a wrong fingerprint\n")
    forged(5, fingerprint("j", 5, ["f.csv"]), "00000005.part", None)  # its part file is missing
    forged(9, fingerprint("j", 9, ["z.csv"]), "00000009.part", "BOGUS past the last mini-batch\n", legacy=True)
    # a part of another size than its line says (a power cut lost its bytes): its mini-batch is scored again
    (results / "00000001.part").write_bytes(b"")
    # the start of a line a killed driver never finished
    with open(results / "commits.jsonl", "a") as log:
        log.write(json.dumps({"batch": 4, "fingerprint": fingerprint("j", 4, ["e.csv"])})[:40])
    (data / "c.csv").write_text("ok\n")
    clear_ran(env)
    ok_json(env.cli("job", "resume", "-n", "j"))
    assert env.ran() == {"b.csv", "c.csv", "d.csv", "e.csv", "f.csv"}
    assert (out / "predictions.csv").read_bytes() == expected_rows(SIX)
    assert not results.exists(), "committed results are removed once the job has Completed"
    assert not (folder / "parts").exists()


def test_a_job_whose_commits_an_earlier_version_wrote_resumes_from_them(env, tmp_path):
    """tests/jobs/fixtures/results-v1/ is the results/ folder the per-mini-batch commit records of earlier
    versions left for this very job (written by that code: one NNNNNNNN.json per commit): the resume keeps
    those two mini-batches, scores the four others and appends its own commits to the log beside them."""
    script_deployment(env)
    data, out = failed_job(env, tmp_path)
    results = env.job_dir("j") / "results"
    shutil.rmtree(results)
    shutil.copytree(Path(__file__).parent / "fixtures" / "results-v1", results)
    (data / "c.csv").write_text("ok\n")
    clear_ran(env)
    resumed = ok_json(env.cli("job", "resume", "-n", "j"))
    assert (resumed["status"], resumed["counts"]["items_succeeded"]) == ("Completed", 6)
    assert env.ran() == {"c.csv", "d.csv", "e.csv", "f.csv"}, "the earlier version's commits were not kept"
    assert (out / "predictions.csv").read_bytes() == expected_rows(SIX)


# ------------------------------------------------------------------------------ 6. deletes refused while in use


def test_deletes_are_refused_while_a_running_job_uses_the_resource(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1, retry_settings={"max_retries": 0, "timeout": 300})
    data = write_inputs(tmp_path / "in", {"a.txt": "gate go"})
    _, runner = start_detached(env.home, data, tmp_path / "out", "busy")
    try:
        master = env.job_dir("busy") / "logs" / "sys" / "master_role.txt"
        wait_for(lambda: master.is_file() and "-> worker" in master.read_text(), 120, "dispatch")
        assert env.show("busy")["status"] == "Running"
        # the deployment moves to model version 2: version 1 is now used by the running job only
        weights2 = tmp_path / "weights-2"
        weights2.mkdir()
        (weights2 / "weights.txt").write_text("w=2\n")
        moved = env.script(
            model={"path": str(weights2), "type": "custom_model", "name": "weights"},
            mini_batch_size=1,
            retry_settings={"max_retries": 0, "timeout": 300},
        )
        assert moved["model"] == "azureml:weights:2"
        assert read_job(env.home, "busy")["model"] == "azureml:weights:1"
        attempts = [
            ("model", "delete", "-n", "weights", "-v", "1", "--yes"),
            ("deployment", "delete", "-n", "custom", "-e", "heart", "--yes"),
            ("endpoint", "delete", "-n", "heart", "--yes"),
        ]
        for args in attempts:
            refused = env.cli(*args)
            assert refused.exit_code == 5, (args, refused.stdout, refused.stderr)
            assert "busy" in refused.stderr.splitlines()[0], (args, refused.stderr)
        ok_json(env.cli("model", "show", "-n", "weights", "-v", "1"))
        ok_json(env.cli("deployment", "show", "-n", "custom", "-e", "heart"))
        ok_json(env.cli("endpoint", "show", "-n", "heart"))
        running = env.cli("job", "resume", "-n", "busy")
        assert running.exit_code == 5, running.stderr
        # --force deletes
        for args in attempts:
            forced = env.cli(*args, "--force")
            assert forced.exit_code == 0, (args, forced.stderr)
        assert env.cli("model", "show", "-n", "weights", "-v", "1").exit_code == 4
        assert env.cli("endpoint", "show", "-n", "heart").exit_code == 4
        env.open_gate("go")
        wait_for(lambda: read_job(env.home, "busy")["status"] != "Running", 120, "the job to end")
        wait_for(lambda: not alive(runner), 30, "the runner to exit")
    finally:
        kill_quietly(runner)
