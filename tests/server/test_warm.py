"""Warm worker pools: a worker's init() runs once for many jobs of one deployment version; outputs and
counts are byte-identical to a cold run; a worker that dies is replaced as in a cold job; a changed
deployment, the idle timeout and shutdown stop the pool's workers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from server_helpers import body, heart_folder, wait_for, wait_job

from batchctl import api
from batchctl.execution.pool import WarmPools, pool_key
from batchctl.scoring.base import ScorerRef

pytestmark = pytest.mark.slow


def run(ws: Any, data: Path, out: Path, deployment: str, pools: WarmPools | None) -> dict[str, Any]:
    record = api.submit_job(
        ws.ws, api.JobRequest(endpoint="heart", deployment=deployment, input=str(data), output_path=str(out))
    )
    return api.run_job(ws.ws, record["name"], pools=pools)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def same_counts(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["status"] == b["status"] == "Completed", (a.get("error"), b.get("error"))
    assert a["counts"] == b["counts"]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_pool_key_covers_what_changes_results_and_not_the_job_folder():
    ref = ScorerRef("script", "/m", "/m/w", "/c", "score.py", "append_row", "/jobs/a/output", "info", {"A": "1"})
    key = pool_key(ref, "azureml:m:1", "hash1", "spec1")
    assert pool_key(dataclasses.replace(ref, output_dir="/jobs/b/output"), "azureml:m:1", "hash1", "spec1") == key
    changed = [
        pool_key(dataclasses.replace(ref, environment_variables={"A": "2"}), "azureml:m:1", "hash1", "spec1"),
        pool_key(dataclasses.replace(ref, code_dir="/c2"), "azureml:m:1", "hash1", "spec1"),
        pool_key(dataclasses.replace(ref, model_path="/m/v2"), "azureml:m:1", "hash1", "spec1"),
        pool_key(dataclasses.replace(ref, logging_level="debug"), "azureml:m:1", "hash1", "spec1"),
        pool_key(ref, "azureml:m:2", "hash1", "spec1"),
        pool_key(ref, "azureml:m:1", "hash2", "spec1"),
        pool_key(ref, "azureml:m:1", "hash1", "spec2"),
        # an isolated environment (issue 22): another interpreter, another pool
        pool_key(
            dataclasses.replace(ref, python="/e/k1/venv/bin/python", env_key="k1"), "azureml:m:1", "hash1", "spec1"
        ),
        pool_key(
            dataclasses.replace(ref, python="/e/k2/venv/bin/python", env_key="k2"), "azureml:m:1", "hash1", "spec1"
        ),
    ]
    assert key not in changed and len(set(changed)) == len(changed)


def test_warm_mlflow_jobs_are_byte_identical_to_a_cold_one(workspace, tmp_path):
    data = heart_folder(workspace.allowed / "data", files=5, rows=9)
    cold = run(workspace, data, tmp_path / "cold", "blue", None)
    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    try:
        first = run(workspace, data, tmp_path / "first", "blue", pools)
        second = run(workspace, data, tmp_path / "second", "blue", pools)
        stats = pools.stats()
    finally:
        pools.close()
    assert (stats["workers_started"], stats["workers_reused"]) == (1, 1)
    for warm in (first, second):
        same_counts(cold, warm)
    assert tree(tmp_path / "first") == tree(tmp_path / "cold") == tree(tmp_path / "second")
    assert (tmp_path / "cold" / "predictions.csv").read_bytes().count(b"\n") == 45


def test_a_warm_script_runs_init_once_and_writes_into_each_jobs_output(workspace, tmp_path):
    data = workspace.commands("cmds", {f"f{i}.txt": f"item {i}" for i in range(5)})
    cold = run(workspace, data, tmp_path / "cold", "script", None)
    cold_inits = set(workspace.inits())
    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    try:
        jobs = [run(workspace, data, tmp_path / f"warm{i}", "script", pools) for i in range(3)]
    finally:
        pools.close()
    warm_inits = workspace.inits() - cold_inits
    assert len(warm_inits) == 1  # one init() for three jobs
    for i, job in enumerate(jobs):
        same_counts(cold, job)
        # the script kept AZUREML_BI_OUTPUT_PATH from init(); each job still gets its own files
        assert tree(tmp_path / f"warm{i}") == tree(tmp_path / "cold")
    assert sorted(tree(tmp_path / "cold")) == [*(f"f{i}.txt.out" for i in range(5)), "predictions.csv"]
    # each job's prints went to its own log, though one process printed them all
    for job in jobs:
        (log,) = (Path(job["log_dir"]) / "user" / "stdout").iterdir()
        assert sorted(line for line in log.read_text().splitlines() if line.startswith("scored")) == [
            f"scored f{i}.txt" for i in range(5)
        ]


def test_a_worker_that_dies_in_a_warm_job_is_replaced_as_in_a_cold_one(workspace, tmp_path):
    data = workspace.commands("dying", {"a.txt": "dieonce", "b.txt": "ok", "c.txt": "ok"})

    def forget_deaths() -> None:
        for marker in workspace.state.glob("died-*"):
            marker.unlink()

    cold = run(workspace, data, tmp_path / "cold", "script", None)
    forget_deaths()
    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    try:
        before_warmup = set(workspace.inits())
        run(workspace, workspace.commands("warmup", {"x.txt": "ok"}), tmp_path / "warmup", "script", pools)
        (warm_pid,) = workspace.inits() - before_warmup
        before = set(workspace.inits())
        warm = run(workspace, data, tmp_path / "warm", "script", pools)
    finally:
        pools.close()
    same_counts(cold, warm)
    assert warm["counts"]["worker_restarts"] == cold["counts"]["worker_restarts"] == 1
    assert warm["counts"]["retries"] == cold["counts"]["retries"] == 1
    assert tree(tmp_path / "warm") == tree(tmp_path / "cold")
    assert len(workspace.inits() - before) == 1  # the warm worker died and one new worker replaced it
    assert not _alive(warm_pid)


def test_a_changed_deployment_and_the_idle_timeout_stop_the_pools_workers(workspace, tmp_path):
    data = workspace.commands("cmds2", {"a.txt": "ok"})
    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    pools.start_reaper(every=0.1)
    try:
        run(workspace, data, tmp_path / "v1", "script", pools)
        (v1,) = workspace.inits()
        assert _alive(v1)
        workspace.deploy(
            {"name": "script", **_script_spec(workspace)},
            {"environment_variables": {"STATE_DIR": str(workspace.state), "NEW": "1"}},
        )
        run(workspace, data, tmp_path / "v2", "script", pools)
        (v2,) = workspace.inits() - {v1}
        wait_for(lambda: not _alive(v1), 10, "the old version's worker to stop")
        assert _alive(v2) and pools.stats()["idle_workers"] == 1
        pools.idle_timeout = 0.5  # (a short timeout from the start could expire on a slow machine mid-test)
        wait_for(lambda: not _alive(v2), 15, "the idle worker to stop after the idle timeout")
        assert pools.stats()["idle_workers"] == 0
    finally:
        pools.close()


def _script_spec(workspace: Any) -> dict[str, Any]:
    return {
        "model": {"path": str(workspace.tmp / "weights"), "type": "custom_model", "name": "weights"},
        "code_configuration": {"code": str(workspace.tmp / "code"), "scoring_script": "score.py"},
    }


def test_the_server_reuses_workers_and_idle_timeout_0_turns_pools_off(workspace, start_server):
    data = workspace.commands("srv", {"a.txt": "ok", "b.txt": "ok"})
    headers = {"azureml-model-deployment": "script"}
    server = start_server(workspace)
    with server.client() as client:
        for _ in range(3):
            name = client.post("/endpoints/heart/jobs", json=body(str(data)), headers=headers).json()["name"]
            assert wait_job(client, name)["properties"]["status"] == "Completed"
        pools = client.get("/health").json()["pools"]
    assert (pools["workers_started"], pools["workers_reused"], pools["idle_workers"]) == (1, 2, 1)
    assert len(workspace.inits()) == 1
    (warm,) = workspace.inits()
    assert server.stop() == 0
    wait_for(lambda: not _alive(warm), 10, "the pool's worker to stop with the server")
    cold = start_server(workspace, "--idle-timeout", "0")
    with cold.client() as client:
        for _ in range(2):
            name = client.post("/endpoints/heart/jobs", json=body(str(data)), headers=headers).json()["name"]
            assert wait_job(client, name)["properties"]["status"] == "Completed"
    assert len(workspace.inits()) == 3  # one init() per job without pools


# init() reads the model's one file; run() writes it in every row: which model a worker loaded shows
MODEL_SCRIPT = """
import glob
import os

def init():
    global WEIGHT
    (path,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "**", "w.txt"), recursive=True)
    WEIGHT = open(path).read().strip()

def run(mini_batch):
    return [os.path.basename(p) + " w=" + WEIGHT for p in mini_batch]
"""


def _rows(out: Path) -> list[str]:
    return (out / "predictions.csv").read_text().splitlines()


def test_a_model_changed_in_place_is_never_scored_by_a_warm_worker_that_loaded_the_old_one(workspace, tmp_path):
    """Issue 23, finding 6: the pool is keyed by the model hash the job computes, so a warm worker that
    loaded the old files is not reused; the job scores what a cold job scores, and its lineage says so."""
    code = tmp_path / "model-code"
    code.mkdir()
    (code / "score.py").write_text(MODEL_SCRIPT)
    workspace.deploy(
        {
            "name": "weighted",
            "model": {"path": str(workspace.tmp / "weights"), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        }
    )
    data = workspace.commands("w", {"a.txt": "ok"})
    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    try:
        first = run(workspace, data, tmp_path / "first", "weighted", pools)
        assert _rows(tmp_path / "first") == ["a.txt w=1"]
        # the workspace's copy of the model is edited in place (the registry still has the old hash)
        raw = json.loads((workspace.ws.jobs_dir / first["name"] / "job.json").read_text())
        model_path = Path(raw["deployment_snapshot"]["model_path"])
        (model_path / "w.txt").write_text("2\n")
        second = run(workspace, data, tmp_path / "second", "weighted", pools)
        stats = pools.stats()
    finally:
        pools.close()
    assert run(workspace, data, tmp_path / "cold", "weighted", None)["status"] == "Completed"
    assert _rows(tmp_path / "second") == _rows(tmp_path / "cold") == ["a.txt w=2"]
    assert stats["workers_reused"] == 0, stats
    from batchctl.workspace import content_hash

    record = api.get_job(workspace.ws, second["name"])
    assert record["lineage"]["model"]["sha256"] == content_hash(model_path)
    master = (Path(record["log_dir"]) / "sys" / "master_role.txt").read_text()
    assert "Warning: the files of model azureml:weights:1 changed since it was registered" in master


def test_code_edited_then_redeployed_with_the_same_yaml_runs_the_new_script_warm(workspace, tmp_path):
    """Issue 23, missing test: score.py edited in place and the same YAML deployed again (same spec hash,
    a new code snapshot): the next warm job runs the new script, not the pool's old workers."""
    code = workspace.tmp / "code"
    spec = {"name": "script", **_script_spec(workspace)}
    settings = {"environment_variables": {"STATE_DIR": str(workspace.state)}, "retry_settings": {"timeout": 60}}
    data = workspace.commands("edited", {"a.txt": "ok"})
    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    try:
        run(workspace, data, tmp_path / "v1", "script", pools)
        before = workspace.deploy(spec, settings)
        (code / "score.py").write_text((code / "score.py").read_text().replace('f"{name} {text}"', 'f"{name} v2"'))
        after = workspace.deploy(spec, settings)
        assert after["spec_hash"] == before["spec_hash"]
        assert after["code_configuration"]["code"] != before["code_configuration"]["code"]
        run(workspace, data, tmp_path / "v2", "script", pools)
    finally:
        pools.close()
    assert _rows(tmp_path / "v1") == ["a.txt ok"]
    assert _rows(tmp_path / "v2") == ["a.txt v2"]
