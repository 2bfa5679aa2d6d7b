"""Input listing, deterministic output order, the log layout of SPEC section 4, and rerun --failed-only."""

from __future__ import annotations

import json

import pytest

from .conftest import ok_json, write_inputs

pytestmark = pytest.mark.slow


def test_output_order_is_deterministic_whatever_order_workers_finish(env, tmp_path):
    # mini-batch 0 (a.txt) holds its worker until the last mini-batch (c5.txt) has started on the other
    # worker: every later mini-batch but the last ends first, however slow the machine (no sleeps)
    inputs = {"a.txt": "gate c5", "b.txt": "ok", **{f"c{i}.txt": "ok" for i in range(5)}, "c5.txt": "open c5"}
    data = write_inputs(tmp_path / "in", inputs)
    env.endpoint()
    env.script(mini_batch_size=1, max_concurrency_per_instance=2, retry_settings={"max_retries": 0, "timeout": 300})
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "ord"))
    assert job["status"] == "Completed"
    assert (job["counts"]["items_succeeded"], job["counts"]["retries"]) == (8, 0)
    names = [line.split(",")[0] for line in (out / "predictions.csv").read_text().splitlines()]
    assert names == sorted(inputs)
    # the workers really did finish out of order: mini-batch 0 ended after mini-batches 1 to 6
    batches = (env.job_dir("ord") / "batches.jsonl").read_text().splitlines()
    finished = [json.loads(line)["batch"] for line in batches]
    assert sorted(finished) == list(range(8)), finished
    assert finished.index(0) > max(finished.index(b) for b in range(1, 7)), finished


def test_hidden_files_skipped_and_folders_listed_recursively_sorted(env, tmp_path):
    data = write_inputs(
        tmp_path / "in",
        {
            "b.txt": "ok",
            "a/z.txt": "ok",
            "a/b/c.txt": "ok",
            "A.txt": "ok",
            ".hidden.txt": "raise",
            ".git/config": "raise",
            "a/.secret": "raise",
        },
    )
    env.endpoint()
    env.script(mini_batch_size=2, env={"INPUT_ROOT": str(data)})
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out)))
    assert job["counts"]["files"] == 4
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (4, 0)
    names = [line.split(",")[0] for line in (out / "predictions.csv").read_text().splitlines()]
    assert names == ["A.txt", "a/b/c.txt", "a/z.txt", "b.txt"]


def test_log_layout(env, tmp_path):
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "raise", "c.txt": "skip", "d.txt": "ok"})
    env.endpoint()
    env.script(mini_batch_size=1, max_concurrency_per_instance=2, retry_settings={"max_retries": 1, "timeout": 30})
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "out"), "--job-name", "lg"))
    logs = env.job_dir("lg") / "logs"
    assert (logs / "readme.txt").is_file()
    overview = (logs / "job_progress_overview.txt").read_text()
    assert "Total mini-batches: 4" in overview
    assert "Items succeeded: 2" in overview and "Items failed: 2" in overview
    assert "Status: Completed" in overview
    result = (logs / "job_result.txt").read_text()
    assert result.startswith("Completed: 2 items succeeded, 2 failed, 4 mini-batches")
    master = (logs / "sys" / "master_role.txt").read_text()
    assert "job lg: 4 files -> 4 mini-batches of up to 1; 2 workers on local" in master
    assert "mini-batch 1 attempt 1 failed" in master and "retrying" in master
    assert "published" in master
    workers = sorted(p.name for p in (logs / "sys" / "worker").iterdir())
    assert workers and all(name.startswith("worker-") and name.endswith(".txt") for name in workers)
    per_batch = "".join(p.read_text() for p in (logs / "sys" / "worker").iterdir())
    assert "mini-batch 0 attempt 1: items 1, succeeded 1, failed 0" in per_batch
    assert "duration" in per_batch
    errors = (logs / "user" / "error.txt").read_text()
    assert "ValueError: cannot score b.txt" in errors
    assert "returned 0 results for 1 files" in errors
    tracebacks = "".join(p.read_text() for p in (logs / "user" / "error").iterdir())
    assert "Traceback (most recent call last)" in tracebacks
    assert all(p.name.startswith("worker-") for p in (logs / "user" / "error").iterdir())
    stdout = "".join(p.read_text() for p in (logs / "user" / "stdout").iterdir())
    assert "scored a.txt" in stdout
    assert "level=INFO" in stdout  # --logging_level reached the script's argv
    assert all(p.name.startswith("worker-") for p in (logs / "user" / "stdout").iterdir())


def test_rerun_failed_only_scores_only_the_failed_items(env, tmp_path):
    inputs = {"a.txt": "ok", "b.txt": "flaky", "c.txt": "ok", "d.txt": "skip", "e.txt": "ok"}
    data = write_inputs(tmp_path / "in", inputs)
    env.endpoint()
    env.script(mini_batch_size=2, retry_settings={"max_retries": 0, "timeout": 30})
    first = ok_json(
        env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o1"), "--job-name", "j1")
    )
    # batch 0 (a, b) raised once: both failed; batch 1 (c, d) returned one row: one failed
    assert (first["counts"]["items_succeeded"], first["counts"]["items_failed"]) == (2, 3)
    assert (tmp_path / "o1" / "predictions.csv").read_text().splitlines() == ["c.txt,ok", "e.txt,ok"]
    (data / "d.txt").write_text("ok\n")  # fixed upstream
    rerun = ok_json(env.cli("job", "rerun", "-n", "j1", "--failed-only", "--output-path", str(tmp_path / "o2")))
    assert rerun["rerun_of"] == "j1"
    assert rerun["status"] == "Completed"
    assert rerun["counts"]["files"] == 4, "a, b (whole failed mini-batch) and c, d (which one failed is unknown)"
    lines = (tmp_path / "o2" / "predictions.csv").read_text().splitlines()
    assert lines == ["a.txt,ok", "b.txt,flaky", "c.txt,ok", "d.txt,ok"]
    assert "e.txt,ok" not in lines
    # a job without failures has nothing to rerun
    nothing = env.cli("job", "rerun", "-n", rerun["name"], "--failed-only")
    assert nothing.exit_code == 5
    assert "no failed items" in nothing.stderr
    whole = ok_json(env.cli("job", "rerun", "-n", "j1", "--output-path", str(tmp_path / "o3")))
    assert (whole["rerun_of"], whole["counts"]["files"]) == ("j1", 5)  # without --failed-only: the whole input


@pytest.mark.mlflow
def test_rerun_of_mlflow_item_failures_scores_just_those_files(mlenv, heart_data, tmp_path):
    data = heart_data(3, rows=3)
    (data / "notes.txt").write_text("x\n")
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=10)
    ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o1"), "--job-name", "m1"))
    plan = ok_json(mlenv.cli("job", "rerun", "-n", "m1", "--failed-only", "--dry-run"))
    assert (plan["files"], plan["first_files"]) == (1, ["notes.txt"])


def test_rerun_of_a_single_file_input(env, tmp_path):
    data = write_inputs(tmp_path / "in", {"one.txt": "flaky"})
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 30})
    first = env.invoke(
        "heart", "--input", str(data / "one.txt"), "--job-name", "f1", "--output-path", str(tmp_path / "o")
    )
    assert first.exit_code == 1
    # a job that did not complete is continued, not rerun: a rerun would lose what it scored
    refused = env.cli("job", "rerun", "-n", "f1", "--failed-only", "--output-path", str(tmp_path / "o2"))
    assert refused.exit_code == 5
    assert "batchctl job resume -n f1" in refused.stderr
    resumed = ok_json(env.cli("job", "resume", "-n", "f1"))
    assert resumed["inputs"]["input_data"]["type"] == "uri_file"
    assert (resumed["name"], resumed["status"], resumed["counts"]["files"], resumed["attempts"]) == (
        "f1",
        "Completed",
        1,
        2,
    )
    assert (tmp_path / "o" / "predictions.csv").read_text() == "one.txt,flaky\n"
