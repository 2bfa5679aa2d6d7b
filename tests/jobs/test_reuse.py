"""Incremental re-scoring (`--reuse`, issue 26): a job reuses an earlier Completed job's per-file rows
when nothing that decides them changed, publishes complete results byte for byte those of a cold run,
counts what it reused, and names the jobs reused from. Each part of the key is changed on its own and
must make the cache miss."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from batchctl.jobs import reuse as reuse_mod
from testkit import train_heart_model

from .conftest import BEHAVIOUR_SCRIPT, heart_frame, ok_json, write_inputs

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "daily"
    for i in range(8):
        sub = root / ("2026-12-01" if i < 5 else "2026-12-02")
        sub.mkdir(parents=True, exist_ok=True)
        heart_frame(3 + i % 4, 500 + i).to_csv(sub / f"part-{i:02d}.csv", index=False)
    return root


class Runner:
    def __init__(self, env: Any, tmp_path: Path) -> None:
        self.env, self.tmp, self.n = env, tmp_path, 0

    def run(self, folder: Path, *args: str, name: str = "predictions.csv") -> tuple[dict[str, Any], bytes]:
        self.n += 1
        out = self.tmp / f"out-{self.n}"
        job = ok_json(self.env.invoke("heart", "--input", str(folder), "--output-path", str(out), *args))
        assert job["status"] == "Completed", job
        return job, (out / name).read_bytes()


@pytest.fixture
def jobs(mlenv: Any, tmp_path: Path) -> Runner:
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=3)
    return Runner(mlenv, tmp_path)


def reused(job: dict[str, Any]) -> int:
    return job["counts"].get("items_reused", 0)


def test_a_grown_folder_scores_only_what_is_new_and_gives_the_cold_bytes(jobs, folder):
    first, _ = jobs.run(folder, "--reuse", "stamp")
    assert reused(first) == 0 and first["settings"]["reuse"] == "stamp"
    # the folder gains files (one sorted between the old ones) and one file is rewritten
    heart_frame(4, 900).to_csv(folder / "2026-12-01" / "part-02b.csv", index=False)
    heart_frame(2, 901).to_csv(folder / "2026-12-03.csv", index=False)
    changed = folder / "2026-12-02" / "part-06.csv"
    heart_frame(5, 902).to_csv(changed, index=False)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    second, second_bytes = jobs.run(folder, "--reuse", "stamp")
    _cold, cold_bytes = jobs.run(folder)  # reuse off: every file scored
    assert second_bytes == cold_bytes
    assert reused(second) == 7  # 8 files before, one of them changed
    assert second["counts"]["items_succeeded"] == 10 and second["counts"]["files"] == 10
    assert second["lineage"]["reuse"]["reused_from"] == [first["name"]]
    assert second["lineage"]["reuse"]["items_reused"] == 7
    log = (jobs.env.job_dir(second["name"]) / "logs" / "sys" / "master_role.txt").read_text()
    assert f"job {first['name']}'s results are reused" in log
    # a third run over the same folder reuses everything, from both earlier jobs, and scores nothing
    third, third_bytes = jobs.run(folder, "--reuse", "stamp")
    assert third_bytes == cold_bytes
    assert reused(third) == 10 and third["counts"]["mini_batches"] == 0
    assert third["lineage"]["reuse"]["reused_from"] == sorted([first["name"], second["name"]])


def test_the_default_scores_everything(jobs, folder):
    jobs.run(folder, "--reuse", "stamp")
    again, _ = jobs.run(folder)
    assert reused(again) == 0 and "reuse" not in again["settings"]


def test_a_file_edited_with_the_same_size_and_mtime_is_caught_by_sha256(jobs, folder):
    jobs.run(folder, "--reuse", "sha256")
    victim = folder / "2026-12-01" / "part-01.csv"
    st = victim.stat()
    text = victim.read_text()
    lines = text.splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # same bytes, other order: same size
    victim.write_text("".join(lines))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    by_stamp, _ = jobs.run(folder, "--reuse", "stamp")
    by_sha, sha_bytes = jobs.run(folder, "--reuse", "sha256")
    _cold, cold_bytes = jobs.run(folder)
    assert reused(by_sha) == 7 and sha_bytes == cold_bytes  # the edited file was scored again
    # stamp mode cannot see this edit (the documented limit that sha256 mode is for): it reused all 8
    assert reused(by_stamp) == 8


@pytest.mark.parametrize(
    ("change", "args"),
    [
        ("output format", ("--set", "output_file_name=results.jsonl")),
        ("keep-columns", ("--keep-columns", "age")),
    ],
)
def test_an_output_setting_that_changes_makes_every_file_scored(jobs, folder, change, args):
    jobs.run(folder, "--reuse", "stamp")
    name = "results.jsonl" if "jsonl" in " ".join(args) else "predictions.csv"
    other, _ = jobs.run(folder, "--reuse", "stamp", *args, name=name)
    assert reused(other) == 0, change
    # and the same change again reuses what the job with that setting left
    same, _ = jobs.run(folder, "--reuse", "stamp", *args, name=name)
    assert reused(same) == 8, change


def test_another_model_makes_every_file_scored(jobs, folder, tmp_path):
    jobs.run(folder, "--reuse", "stamp")
    other_model = train_heart_model(tmp_path / "other-model", seed=7)
    jobs.env.heart_model = other_model
    jobs.env.mlflow(mini_batch_size=3)  # the same deployment, now with another model
    changed, _ = jobs.run(folder, "--reuse", "stamp")
    assert reused(changed) == 0


def test_another_environment_makes_every_file_scored(jobs, folder, monkeypatch):
    jobs.run(folder, "--reuse", "stamp")
    real = reuse_mod.environment_key()
    monkeypatch.setattr(reuse_mod, "environment_key", lambda env=None: {**real, "python": "3.99.0"})
    changed, _ = jobs.run(folder, "--reuse", "stamp")
    assert reused(changed) == 0


def test_the_environment_the_job_ran_in_is_part_of_the_key(jobs, folder, tmp_path):
    """Issue 22's environments: the key holds the environment recorded in the job. A deployment that names
    an environment, scored in this interpreter (--env-manager local: nothing is built); a constraint added
    for one job gives its environment another key, so nothing is reused; the same environment again is."""
    import yaml

    spec = tmp_path / "envspec"
    spec.mkdir()
    (spec / "conda.yml").write_text("name: sk\ndependencies:\n  - python=3.11\n  - pip:\n      - scikit-learn\n")
    image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    (spec / "env.yml").write_text(yaml.safe_dump({"name": "sk-env", "image": image, "conda_file": "conda.yml"}))
    ok_json(jobs.env.cli("environment", "create", "-f", str(spec / "env.yml")))
    jobs.env._deploy(
        {
            "name": "mlflow",
            "endpoint_name": "heart",
            "type": "model",
            "model": {"path": str(jobs.env.heart_model), "type": "mlflow_model", "name": "heart"},
            "environment": "azureml:sk-env@latest",
            "settings": {"max_concurrency_per_instance": 1, "mini_batch_size": 3},
        }
    )
    local = ("--reuse", "stamp", "--env-manager", "local")
    first, cold = jobs.run(folder, *local)
    assert first["environment"]["used"] == "local" and reused(first) == 0
    same, same_bytes = jobs.run(folder, *local)
    assert reused(same) == 8 and same_bytes == cold
    other, other_bytes = jobs.run(folder, *local, "--env-constraint", "numpy<99")
    assert other["environment"]["key"] != first["environment"]["key"]
    assert reused(other) == 0 and other_bytes == cold


def test_a_touched_file_is_scored_again_in_stamp_mode(jobs, folder):
    jobs.run(folder, "--reuse", "stamp")
    touched = folder / "2026-12-01" / "part-03.csv"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    again, _ = jobs.run(folder, "--reuse", "stamp")
    assert reused(again) == 7


def test_another_output_action_scores_everything(jobs, folder, tmp_path):
    jobs.run(folder, "--reuse", "stamp")
    jobs.env.mlflow(name="summary", mini_batch_size=3, output_action="summary_only")
    out = tmp_path / "summary-out"
    job = ok_json(
        jobs.env.invoke("heart", "-d", "summary", "--input", str(folder), "--output-path", str(out), "--reuse", "stamp")
    )
    assert job["status"] == "Completed" and reused(job) == 0
    log = (jobs.env.job_dir(job["name"]) / "logs" / "sys" / "master_role.txt").read_text()
    assert "reuse: every file is scored: summary_only jobs write no rows to reuse" in log


def test_a_changed_scoring_script_makes_every_file_scored(env, tmp_path):
    data = write_inputs(tmp_path / "in", {f"f{i}.txt": "ok" for i in range(4)})
    env.endpoint()
    env.script(mini_batch_size=1)
    runner = Runner(env, tmp_path)
    first, first_bytes = runner.run(data, "--reuse", "stamp")
    again, again_bytes = runner.run(data, "--reuse", "stamp")
    assert reused(again) == 4 and again_bytes == first_bytes
    env.script(mini_batch_size=1, source=BEHAVIOUR_SCRIPT + "\n# a new code snapshot\n")
    changed, changed_bytes = runner.run(data, "--reuse", "stamp")
    assert reused(changed) == 0 and changed_bytes == first_bytes
    assert json.loads(json.dumps(changed["lineage"]["reuse"]))["source_job"] is None


def test_a_small_remainder_is_scored_by_one_worker(mlenv, tmp_path):
    """Measured (docs/benchmarks.md, Scale): when a reuse job has at most a tenth of its files (and at most
    1,000) left to score, a second worker's start-up costs more than it shares, so one worker starts. A
    cold job of the same deployment still starts both; the bytes are the same."""
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=1, max_concurrency_per_instance=2)
    runs = Runner(mlenv, tmp_path)
    root = tmp_path / "grows"
    root.mkdir()
    for i in range(20):
        heart_frame(3, 700 + i).to_csv(root / f"part-{i:02d}.csv", index=False)
    runs.run(root, "--reuse", "stamp")
    for i in (20, 21):  # 2 new files of 22: two mini-batches, one worker
        heart_frame(3, 700 + i).to_csv(root / f"part-{i:02d}.csv", index=False)

    def started(job: dict[str, Any]) -> list[str]:
        log = (mlenv.job_dir(job["name"]) / "logs" / "sys" / "master_role.txt").read_text()
        return [line.split(" ", 2)[2] for line in log.splitlines() if line.endswith(" starting")]

    small, small_bytes = runs.run(root, "--reuse", "stamp")
    assert reused(small) == 20 and small["counts"]["mini_batches"] == 2
    assert started(small) == ["worker 0 starting"]
    cold, cold_bytes = runs.run(root)
    assert started(cold) == ["worker 0 starting", "worker 1 starting"]
    assert small_bytes == cold_bytes


def test_warm_workers_all_score_a_small_remainder(mlenv, tmp_path):
    """The one-worker rule saves a second worker's start-up; a server's warm pool has none to save, so a
    reuse job with a small remainder takes every warm worker (and writes the bytes the cold job writes)."""
    from batchctl import api
    from batchctl.execution.pool import WarmPools
    from batchctl.specs.job import RunOverrides
    from batchctl.workspace import Workspace

    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=1, max_concurrency_per_instance=2)
    ws = Workspace.open(mlenv.home)
    root = tmp_path / "grows"
    root.mkdir()
    for i in range(20):
        heart_frame(3, 700 + i).to_csv(root / f"part-{i:02d}.csv", index=False)

    def run(pools: WarmPools | None, out: str, reuse: str = "stamp") -> tuple[dict[str, Any], bytes, list[str]]:
        request = api.JobRequest(
            endpoint="heart", input=str(root), output_path=str(tmp_path / out), overrides=RunOverrides(reuse=reuse)
        )
        job = api.run_job(ws, api.submit_job(ws, request)["name"], pools=pools)
        assert job["status"] == "Completed", job.get("error")
        log = (mlenv.job_dir(job["name"]) / "logs" / "sys" / "master_role.txt").read_text()
        starts = [line.split(" ", 2)[2] for line in log.splitlines() if line.endswith(" starting")]
        return job, (tmp_path / out / "predictions.csv").read_bytes(), starts

    pools = WarmPools(600, scratch=str(tmp_path / "pools"))
    try:
        run(pools, "first")
        for i in (20, 21):  # 2 new files of 22: a small remainder
            heart_frame(3, 700 + i).to_csv(root / f"part-{i:02d}.csv", index=False)
        small, small_bytes, starts = run(pools, "small")
    finally:
        pools.close()
    assert reused(small) == 20 and small["counts"]["mini_batches"] == 2
    assert starts == ["worker 0 starting", "worker 1 starting"]
    _cold, cold_bytes, _ = run(None, "cold", reuse="never")
    assert small_bytes == cold_bytes
