"""Invoke: routing, the output rule, default output, per-job overrides, the invocation file, dry-run."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from .conftest import batchctl_run, ok_json, read_job, wait_for, write_inputs

pytestmark = pytest.mark.slow

INPUTS = {f"f{i}.txt": "ok" for i in range(5)}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_inputs(tmp_path / "in", INPUTS)


# --------------------------------------------------------------------------------- routing


def test_no_default_deployment_gives_the_spec_message(env, data):
    env.endpoint()
    env.endpoint("empty")
    result = env.invoke("empty", "--input", str(data))
    assert result.exit_code == 4
    assert result.stderr.splitlines()[0] == (
        "Error: endpoint empty has no default deployment; pass --deployment-name or run "
        "`batchctl deployment set-default`"
    )
    assert not (env.home / "jobs").exists() or not os.listdir(env.home / "jobs")


def test_unknown_deployment_is_named_with_the_existing_ones(env, data):
    env.endpoint()
    env.script("blue")
    env.script("green")
    result = env.invoke("heart", "-d", "ghost", "--input", str(data))
    assert result.exit_code == 4
    line = result.stderr.splitlines()[0]
    assert "'ghost'" in line and "blue, green" in line


def test_default_and_named_deployment_routing(env, data, tmp_path):
    env.endpoint()
    env.script("blue")
    env.script("green", env={"RETURN": "frame"})
    first = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o1")))
    second = ok_json(env.invoke("heart", "-d", "green", "--input", str(data), "--output-path", str(tmp_path / "o2")))
    assert (first["deployment_name"], second["deployment_name"]) == ("blue", "green")
    listed = ok_json(env.cli("deployment", "list-jobs", "-n", "green", "-e", "heart"))
    assert [j["name"] for j in listed] == [second["name"]]
    by_endpoint = ok_json(env.cli("endpoint", "list-jobs", "-n", "heart"))
    assert [j["name"] for j in by_endpoint] == [second["name"], first["name"]]  # newest first
    by_filter = ok_json(env.cli("job", "list", "--endpoint", "heart", "--deployment", "blue"))
    assert [j["name"] for j in by_filter] == [first["name"]]


def test_job_invoke_is_the_same_command(env, data, tmp_path):
    env.endpoint()
    env.script()
    job = ok_json(
        env.cli("job", "invoke", "--endpoint", "heart", "--input", str(data), "--query", "name", "-o", "json")
    )
    assert isinstance(job, str) and re.fullmatch(r"[0-9a-f-]{36}", job)


# --------------------------------------------------------------------------------- outputs


def test_existing_output_is_refused_before_anything_runs(env, data, tmp_path):
    env.endpoint()
    env.script()
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "predictions.csv"
    existing.write_text("precious\n")
    before = existing.stat()
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "late")
    assert result.exit_code == 5
    assert str(existing) in result.stderr
    assert existing.read_text() == "precious\n"
    assert existing.stat().st_mtime_ns == before.st_mtime_ns
    assert not (env.home / "jobs" / "late").exists()
    assert env.pids() == set(), "no worker started"
    # another output_file_name in the same folder is fine
    ok = ok_json(
        env.invoke("heart", "--input", str(data), "--output-path", str(out), "--set", "output_file_name=b.csv")
    )
    assert ok["status"] == "Completed"
    assert existing.read_text() == "precious\n"


def test_output_created_between_submit_and_run_is_refused_by_the_runner(env, data, tmp_path):
    from batchctl import api
    from batchctl.workspace import Workspace

    env.endpoint()
    env.script()
    out = tmp_path / "out"
    ws = Workspace.open(None)
    record = api.submit_job(
        ws, api.JobRequest(endpoint="heart", input=str(data), output_path=str(out), job_name="race")
    )
    out.mkdir()
    (out / "predictions.csv").write_text("theirs\n")
    final = api.run_job(ws, record["name"])
    assert final["status"] == "Failed"
    assert "already exists" in final["error"]["message"]
    assert (out / "predictions.csv").read_text() == "theirs\n"
    assert env.pids() == set()


def test_output_appearing_during_the_run_is_never_overwritten(env, tmp_path):
    """The publish is create-only: a file that appears at the final name while the job runs wins."""
    env.endpoint()
    env.script(retry_settings={"max_retries": 0, "timeout": 300})
    data = write_inputs(tmp_path / "in", {"a.txt": "gate theirs-written"})  # scores once the file is there
    out = tmp_path / "out"
    result = batchctl_run(
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out),
        "--job-name", "slow", "--no-wait",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    master = env.job_dir("slow") / "logs" / "sys" / "master_role.txt"
    wait_for(lambda: master.is_file() and "-> worker" in master.read_text(), 60, "dispatch")
    out.mkdir(exist_ok=True)
    (out / "predictions.csv").write_text("theirs\n")
    env.open_gate("theirs-written")
    job = wait_for(
        lambda: (r := read_job(env.home, "slow"))["status"] in ("Completed", "Failed", "Canceled") and r,
        60,
        "end",
    )
    assert job["status"] == "Failed"
    assert str(out / "predictions.csv") in job["error"]["message"]
    assert "not overwritten" in job["error"]["message"]
    assert (out / "predictions.csv").read_text() == "theirs\n"
    assert sorted(os.listdir(out)) == ["predictions.csv"], "no staging leftovers beside the target"
    assert env.ran() == {"a.txt"}  # the job had scored its input: it failed at the publish


@pytest.mark.mlflow
@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_results_appearing_during_the_run_are_never_overwritten_in_any_format(mlenv, heart_data, tmp_path, ext):
    """Issue 23, missing test: the create-only publish holds for every results format, not only the CSV of
    script deployments. The runner is held by the job's lock (it records the results' hash under that lock
    just before it publishes) while the test writes a file at the final name; the publish must lose."""
    from batchctl.jobs.records import job_lock

    mlenv.endpoint()
    mlenv.mlflow()
    data = heart_data(2, rows=5)
    out = tmp_path / "out"
    name = f"results.{ext}"
    result = batchctl_run(
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out),
        "--job-name", "slow", "--no-wait", "--set", f"output_file_name={name}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    master = mlenv.job_dir("slow") / "logs" / "sys" / "master_role.txt"
    # planned: past the runner's pre-flight check of the output (runner._plan), before any worker is even
    # started (the Supervisor logs the plan, then starts them): the workers' start and model load, a second
    # or more, separate this from the publish. (Waiting for "-> worker" left only the scoring of two tiny
    # files, milliseconds: a dispatch comes after the worker is ready, and the test lost that race in CI.)
    wait_for(lambda: master.is_file() and "job slow: 2 files -> " in master.read_text(), 60, "plan", interval=0.005)
    with job_lock(mlenv.job_dir("slow")):
        assert "publishing" not in read_job(mlenv.home, "slow"), "the runner got to its publish before the test"
        out.mkdir(exist_ok=True)
        (out / name).write_bytes(b"theirs\n")
    job = wait_for(
        lambda: (r := read_job(mlenv.home, "slow"))["status"] in ("Completed", "Failed", "Canceled") and r,
        120,
        "end",
    )
    assert job["status"] == "Failed", job
    assert f"{out / name} appeared while the job ran; it was not overwritten" in job["error"]["message"]
    assert (out / name).read_bytes() == b"theirs\n"
    assert sorted(os.listdir(out)) == [name], "no staging leftovers beside the target"


def test_default_output_location_and_download(env, data, tmp_path):
    env.endpoint()
    env.script()
    job = ok_json(env.invoke("heart", "--input", str(data)))
    name = job["name"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", name)
    assert job["experiment_name"] == "heart"
    assert job["outputs"]["score"]["path"] == f"azureml://datastores/workspaceblobstore/paths/heart/{name}/"
    results = env.home / "datastores" / "workspaceblobstore" / "heart" / name / "predictions.csv"
    assert results.read_text().splitlines() == [f"f{i}.txt,ok" for i in range(5)]
    dl = ok_json(
        env.cli("job", "download", "-n", name, "--output-name", "score", "--download-path", str(tmp_path / "dl"))
    )
    target = tmp_path / "dl" / "named-outputs" / "score" / "predictions.csv"
    assert dl["files"] == [str(target)]
    assert target.read_bytes() == results.read_bytes()
    # the same job name twice is a conflict; the first job's results are untouched
    again = env.invoke("heart", "--input", str(data), "--job-name", name)
    assert again.exit_code == 5
    assert results.read_text().splitlines()[0] == "f0.txt,ok"


def test_download_of_a_failed_job_is_refused(env, tmp_path):
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "skip"})
    assert env.invoke("heart", "--input", str(data), "--job-name", "bad").exit_code == 1
    result = env.cli("job", "download", "-n", "bad", "--download-path", str(tmp_path / "dl"))
    assert result.exit_code != 0
    assert "Failed" in result.stderr
    assert not (tmp_path / "dl" / "named-outputs").exists()


# --------------------------------------------------------------------------------- overrides


def test_per_job_overrides(env, data, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=10, error_threshold=-1, retry_settings={"max_retries": 3, "timeout": 30})
    out = tmp_path / "out"
    job = ok_json(
        env.invoke(
            "heart", "--input", str(data), "--output-path", str(out), "-m", "2", "-c", "2",
            "--set", "output_file_name=scores.csv", "--set", "error_threshold=4",
            "--set", "retry_settings.max_retries=0", "--set", "retry_settings.timeout=7",
            "--experiment-name", "nightly", "--job-name", "ovr",
        )
    )  # fmt: skip
    s = job["settings"]
    assert (s["mini_batch_size"], s["instance_count"], s["workers"]) == (2, 2, 2)
    assert (s["output_file_name"], s["error_threshold"]) == ("scores.csv", 4)
    assert s["retry_settings"] == {"max_retries": 0, "timeout": 7}
    assert job["counts"]["mini_batches"] == 3
    assert job["experiment_name"] == "nightly"
    assert (out / "scores.csv").read_text().splitlines() == [f"f{i}.txt,ok" for i in range(5)]
    assert not (out / "predictions.csv").exists()
    # the deployment itself is unchanged
    dep = ok_json(env.cli("deployment", "show", "-n", "custom", "-e", "heart"))
    assert dep["settings"]["mini_batch_size"] == 10
    assert dep["settings"]["retry_settings"] == {"max_retries": 3, "timeout": 30}


def test_set_takes_several_pairs_as_az_does(env, data, tmp_path):
    """az ml: `--set output_file_name=x.csv error_threshold=3` (several key=value after one --set)."""
    env.endpoint()
    env.script()
    plan = ok_json(
        env.invoke(
            "heart", "--input", str(data), "--dry-run",
            "--set", "output_file_name=x.csv", "error_threshold=3", "retry_settings.timeout=9",
        )
    )  # fmt: skip
    assert plan["settings"]["output_file_name"] == "x.csv"
    assert plan["settings"]["error_threshold"] == 3
    assert plan["settings"]["retry_settings"]["timeout"] == 9


@pytest.mark.parametrize(
    "setting, message",
    [
        ("error_threshold=-2", "error_threshold"),
        ("retry_settings.timeout=0", "timeout"),
        ("output_file_name=../x.csv", "output_file_name"),
        ("max_concurrency_per_instance=4", "max_concurrency_per_instance"),
    ],
)
def test_bad_overrides_are_refused(env, data, setting, message):
    env.endpoint()
    env.script()
    result = env.invoke("heart", "--input", str(data), "--set", setting)
    assert result.exit_code == 3
    assert message in result.stderr
    assert not (env.home / "jobs").exists() or not os.listdir(env.home / "jobs")


def test_invocation_file_with_azure_inputs_and_outputs(env, data, tmp_path):
    env.endpoint()
    env.script()
    out = tmp_path / "from-file"
    spec = tmp_path / "inputs.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "inputs": {"heart_dataset": {"type": "uri_folder", "path": str(data)}},
                "outputs": {"score": {"type": "uri_folder", "path": str(out)}},
                "mini_batch_size": 2,
                "error_threshold": 1,
                "retry_settings": {"max_retries": 1},
                "output_file_name": "file.csv",
            }
        )
    )
    job = ok_json(env.invoke("heart", "-f", str(spec), "--set", "error_threshold=2"))
    assert job["status"] == "Completed"
    assert job["settings"]["mini_batch_size"] == 2
    assert job["settings"]["error_threshold"] == 2, "--set wins over the file"
    assert job["settings"]["retry_settings"] == {"max_retries": 1, "timeout": 30}
    assert (out / "file.csv").read_text().splitlines() == [f"f{i}.txt,ok" for i in range(5)]
    # `job create -f` takes the same file, with endpoint: in it
    spec2 = tmp_path / "job.yml"
    spec2.write_text(
        yaml.safe_dump(
            {
                "endpoint": "heart",
                "deployment": "custom",
                "inputs": {"d": {"path": str(data / "f3.txt")}},
                "outputs": {"score": {"path": str(tmp_path / "o2")}},
            }
        )
    )
    created = ok_json(env.cli("job", "create", "-f", str(spec2), "--name", "created"))
    assert created["name"] == "created"
    assert created["inputs"]["input_data"]["type"] == "uri_file"
    assert (tmp_path / "o2" / "predictions.csv").read_text() == "f3.txt,ok\n"


def test_registered_data_asset_input(env, data, tmp_path):
    env.endpoint()
    env.script()
    spec = tmp_path / "data.yml"
    spec.write_text(yaml.safe_dump({"name": "things", "type": "uri_folder", "path": str(data)}))
    ok_json(env.cli("data", "create", "-f", str(spec)))
    job = ok_json(env.invoke("heart", "--input", "azureml:things@latest", "--output-path", str(tmp_path / "o")))
    assert job["counts"]["files"] == 5
    job2 = ok_json(env.invoke("heart", "--input", "azureml:things:1", "--output-path", str(tmp_path / "o2")))
    assert job2["counts"]["files"] == 5
    uri = ok_json(env.invoke("heart", "--input", f"file://{data}", "--output-path", str(tmp_path / "o3")))
    assert uri["counts"]["files"] == 5


def test_missing_or_empty_input_fails_before_any_work(env, tmp_path):
    env.endpoint()
    env.script()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")
    missing = env.invoke("heart", "--input", str(tmp_path / "nope"))
    empty = env.invoke("heart", "--input", str(tmp_path / "empty"))
    assert missing.exit_code == empty.exit_code == 9
    assert "does not exist" in missing.stderr and "no files" in empty.stderr
    assert not (env.home / "jobs").exists() or not os.listdir(env.home / "jobs")


def test_dry_run_scores_nothing(env, data, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=2, max_concurrency_per_instance=2)
    out = tmp_path / "out"
    plan = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--dry-run"))
    assert plan["dry_run"] is True
    assert (plan["files"], plan["mini_batches"], plan["workers"]) == (5, 3, 2)
    assert plan["first_files"] == [f"f{i}.txt" for i in range(5)]
    assert plan["output_file"] == str(out / "predictions.csv")
    time.sleep(0.2)
    assert not out.exists()
    assert env.pids() == set()
    assert not (env.home / "jobs").exists() or not os.listdir(env.home / "jobs")
    assert ok_json(env.cli("job", "list")) == []


def test_job_show_gives_state_settings_counts_timings(env, data, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=2)
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o"), "--job-name", "s"))
    job = env.show("s")
    for key in ("status", "endpoint_name", "deployment_name", "inputs", "outputs", "settings", "counts",
                "created_at", "start_time", "end_time", "duration_seconds", "error"):  # fmt: skip
        assert key in job, key
    assert job["inputs"]["input_data"] == {"type": "uri_folder", "path": str(data)}
    assert job["counts"]["mini_batches_completed"] == 3
    assert "deployment_snapshot" not in job
    tsv = env.cli("job", "show", "-n", "s", "--query", "status", "-o", "tsv")
    assert tsv.stdout == "Completed\n"
    record = json.loads((env.job_dir("s") / "job.json").read_text())
    assert record["status"] == "Completed"
