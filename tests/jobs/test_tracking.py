"""Every job an MLflow run: a real sqlite tracking store, a real `mlflow server` on 127.0.0.1, a stopped
server, and no tracking URI at all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import batchctl_run, ok_json, read_job, wait_for, write_inputs

pytestmark = pytest.mark.slow


def _logged(home: Path, job: str, timeout: float = 180) -> dict:
    """The record once the tracking agent has finished (state logged or failed)."""
    return wait_for(
        lambda: (
            (read_job(home, job).get("tracking") or {}).get("state") in ("logged", "failed") and read_job(home, job)
        ),
        timeout,
        f"the tracking agent of {job}",
        interval=0.3,
    )


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out.add(item.path)
        if item.is_dir:
            out |= _artifacts(client, run_id, item.path)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.mlflow
def test_completed_failed_and_canceled_jobs_are_runs_with_status_params_metrics_tags_artifacts(
    mlenv, heart_data, tmp_path, monkeypatch
):
    import mlflow

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("BATCHCTL_TRACKING_DELAY", "0")  # stream as the job goes (the default waits 10 s)
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=2)
    mlenv.script(name="custom", mini_batch_size=1, retry_settings={"max_retries": 0, "timeout": 30})
    ok = ok_json(
        mlenv.invoke(
            "heart", "-d", "mlflow", "--input", str(heart_data(5, rows=4)), "--output-path", str(tmp_path / "o1"),
            "--job-name", "done", "--tags", "team=risk", "ticket=42", "--log-predictions",
        )
    )  # fmt: skip
    assert ok["status"] == "Completed" and ok["tags"] == {"team": "risk", "ticket": "42"}
    bad_in = write_inputs(tmp_path / "bad", {"a.txt": "raise", "b.txt": "raise"})
    failed = mlenv.invoke("heart", "-d", "custom", "--input", str(bad_in), "--job-name", "broken")
    assert failed.exit_code == 1
    slow_in = write_inputs(tmp_path / "slow", {"a.txt": "ok", **{f"s{i}.txt": "sleep 60" for i in range(3)}})
    started = batchctl_run(
        "endpoint", "invoke", "-n", "heart", "-d", "custom", "--input", str(slow_in), "--job-name", "stopped",
        "--no-wait", "-o", "json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    master = mlenv.job_dir("stopped") / "logs" / "sys" / "master_role.txt"
    wait_for(lambda: master.is_file() and " -> worker " in master.read_text(), 120, "the slow job to start")
    assert batchctl_run("job", "cancel", "-n", "stopped", "-o", "json", timeout=120).returncode == 0

    records = {job: _logged(mlenv.home, job) for job in ("done", "broken", "stopped")}
    runs = mlflow.search_runs(experiment_names=["heart"], output_format="list")
    by_name = {run.info.run_name: run for run in runs}
    assert sorted(by_name) == ["broken", "done", "stopped"], "one run per job, named after it"
    expected_status = {"done": "FINISHED", "broken": "FAILED", "stopped": "KILLED"}
    client = _client(uri)
    for job, record in records.items():
        run = by_name[job]
        assert record["tracking"]["state"] == "logged"
        assert record["tracking"]["run_id"] == run.info.run_id
        assert record["tracking"]["url"] is None  # sqlite: no server to link to
        assert run.info.status == expected_status[job]
        tags = run.data.tags
        assert tags["batchctl.job"] == job and tags["batchctl.endpoint"] == "heart"
        assert tags["batchctl.deployment"] == record["deployment_name"]
        assert tags["batchctl.model"] == record["model"].removeprefix("azureml:")
        assert tags["batchctl.compute"] == record["compute"]
        assert tags["batchctl.input"] == record["inputs"]["input_data"]["path"]
        assert tags["batchctl.output"] == record["output_file"]
        params = run.data.params
        settings = record["settings"]
        assert params["mini_batch_size"] == str(settings["mini_batch_size"])
        assert params["max_retries"] == str(settings["retry_settings"]["max_retries"])
        assert params["timeout"] == str(settings["retry_settings"]["timeout"])
        assert params["output_action"] == "append_row" and params["output_file_name"] == "predictions.csv"
        assert {"instance_count", "max_concurrency_per_instance", "error_threshold"} <= set(params)
        metrics = run.data.metrics
        assert metrics["items_succeeded"] == record["counts"]["items_succeeded"]
        assert metrics["items_failed"] == record["counts"]["items_failed"]
        assert metrics["rows"] == record["counts"].get("rows", 0)  # left out of job.json while 0
        assert metrics["retries"] == record["counts"]["retries"]
        assert metrics["duration_s"] == pytest.approx(record["duration_seconds"], abs=0.01)
        assert "rows_per_s" in metrics and "mini_batches" in metrics
        artifacts = _artifacts(client, run.info.run_id)
        assert {"logs/sys/master_role.txt", "logs/job_result.txt", "lineage.json"} <= artifacts
        lineage = json.loads(
            Path(client.download_artifacts(run.info.run_id, "lineage.json", str(tmp_path))).read_text()
        )
        assert lineage == record["lineage"]
    done = by_name["done"]
    assert done.data.tags["team"] == "risk" and done.data.tags["ticket"] == "42"
    assert done.data.metrics["items_succeeded"] == 5 and done.data.metrics["rows"] == 20
    assert "predictions/predictions.csv" in _artifacts(client, done.info.run_id)
    assert "failed_items.jsonl" in _artifacts(client, by_name["broken"].info.run_id)
    # the counts were logged as the job went, not only at the end: a history, with steps
    assert len(client.get_metric_history(done.info.run_id, "items_succeeded")) >= 1
    # artifacts beside the database, never ./mlruns where the job ran
    assert not (tmp_path / "mlruns").exists() and (db.parent / "mlartifacts" / "heart").is_dir()
    show = ok_json(mlenv.cli("job", "show", "-n", "done"))
    assert show["tracking"]["run_id"] == done.info.run_id


def test_a_real_mlflow_server_gets_the_run_and_show_gives_its_url(env, tmp_path):
    port = _free_port()
    store = tmp_path / "server"
    store.mkdir()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "art"),
            "--workers", "1",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, 120, "mlflow server", interval=0.5)
        env.endpoint()
        env.script()
        data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok"})
        record = ok_json(env.invoke("heart", "--input", str(data), "--job-name", "served", "--tracking-uri", uri))
        assert record["status"] == "Completed" and record["tracking"]["uri"] == uri
        logged = _logged(env.home, "served")
        tracking = logged["tracking"]
        assert tracking["state"] == "logged"
        assert tracking["url"] == f"{uri}/#/experiments/{tracking['experiment_id']}/runs/{tracking['run_id']}"
        run = _client(uri).get_run(tracking["run_id"])
        assert run.info.status == "FINISHED" and run.info.run_name == "served"
        assert run.data.metrics["items_succeeded"] == 2
        assert "lineage.json" in _artifacts(_client(uri), run.info.run_id)
        shown = ok_json(env.cli("job", "show", "-n", "served"))
        assert shown["tracking"]["url"] == tracking["url"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def test_a_stopped_tracking_server_does_not_fail_the_job(env, tmp_path, monkeypatch):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("BATCHCTL_TRACKING_ATTEMPTS", "2")
    monkeypatch.setenv("BATCHCTL_TRACKING_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok"})
    out = tmp_path / "out"
    started = time.monotonic()
    record = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "j"))
    assert record["status"] == "Completed"
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "b.txt,ok"]
    logged = _logged(env.home, "j", timeout=120)
    assert time.monotonic() - started < 120
    assert logged["status"] == "Completed"
    assert logged["tracking"]["state"] == "failed" and logged["tracking"]["run_id"] is None
    assert "did not answer" in logged["tracking"]["error"]
    master = (env.job_dir("j") / "logs" / "sys" / "master_role.txt").read_text()
    assert "Warning: tracking store http://127.0.0.1" in master and "after 2 attempts" in master
    assert "attempt 1/2" in master


def test_without_a_tracking_uri_nothing_is_created(env, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    record = ok_json(env.invoke("heart", "--input", str(data), "--job-name", "plain"))
    assert record["status"] == "Completed"
    assert "tracking" not in record  # no URI: no tracking key at all
    assert record["lineage"]["output"]["sha256"]  # the manifest is kept with or without tracking
    assert not (env.job_dir("plain") / "logs" / "sys" / "tracking_agent.txt").exists()
    found = [p for p in tmp_path.rglob("*") if p.name in ("mlruns", "mlartifacts", "mlflow.db")]
    assert found == []


def test_the_workspace_setting_and_the_flag_choose_the_store(env, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    (env.home / "settings.json").write_text(json.dumps({"tracking_uri": "http://127.0.0.1:9/from-settings"}))
    plan = ok_json(env.invoke("heart", "--input", str(data), "--dry-run"))
    assert plan["tracking_uri"] == "http://127.0.0.1:9/from-settings"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/from-env")
    assert ok_json(env.invoke("heart", "--input", str(data), "--dry-run"))["tracking_uri"].endswith("from-env")
    flag = ok_json(env.invoke("heart", "--input", str(data), "--dry-run", "--tracking-uri", "sqlite:///x.db"))
    assert flag["tracking_uri"] == "sqlite:///x.db"
    (env.home / "settings.json").write_text("[1]")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    bad = env.invoke("heart", "--input", str(data), "--dry-run")
    assert bad.exit_code == 3 and "settings.json" in bad.stderr


@pytest.mark.mlflow
def test_three_agents_opening_a_new_sqlite_store_at_once_all_succeed_and_leave_it_usable(tmp_path):
    """MlflowClient() creates and migrates a new sqlite store in its constructor: three jobs' agents doing
    it at once failed ("table ... already exists", "Online migration expected to match one row") and left
    the database half-migrated, so every later job's run failed too. They now open it one at a time."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    code = (
        "import sys; from batchctl.tracking.tracker import RunLogger; "
        "RunLogger(sys.argv[1], {}, print)._mlflow(); print('opened')"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outcomes = [(p.communicate(timeout=180), p.returncode) for p in procs]
    for (stdout, stderr), code in outcomes:
        assert (code, stdout.strip()) == (0, "opened"), stderr[-2000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    assert client.create_experiment("after") and client.get_experiment_by_name("after") is not None
