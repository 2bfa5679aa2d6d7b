"""Jobs whose deployments name environments: built once with uv, workers started in them. Offline: the
`bcprobe` releases come from the test's wheel folder (conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from .conftest import batchctl_proc, read_job
from .wheels import write_wheel

pytestmark = pytest.mark.slow


def test_host_does_not_have_the_probe_package():
    assert importlib.util.find_spec("bcprobe") is None


def test_a_job_scores_in_the_environment_its_deployment_names(world):
    world.deploy("one", ["bcprobe==1.0.0"])
    result = world.invoke("one")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "Completed"
    rows = world.rows(record)
    assert sorted(r[0] for r in rows) == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
    assert {r[1] for r in rows} == {"bcprobe-1.0.0"}
    env = record["environment"]
    assert (env["used"], env["built"], env["requirements"]) == ("isolated", True, ["bcprobe==1.0.0"])
    assert {r[2] for r in rows} == {str(Path(env["path"]) / "venv" / "bin" / "python")}
    assert {r[3] for r in rows} == {"False"}  # the scoring code sees the environment's packages only
    assert Path(env["lock_file"]).read_text() == "bcprobe==1.0.0\n"
    shown = world.cli("job", "show", "-n", record["name"], "--query", "environment.key", "-o", "tsv")
    assert shown.stdout.strip() == env["key"]


def test_two_deployments_pinning_different_releases_run_at_the_same_time(world):
    world.deploy("one", ["bcprobe==1.0.0"], env_vars={"SLEEP": "0.4"})
    world.deploy("two", ["bcprobe==2.0.0"], env_vars={"SLEEP": "0.4"})
    procs = {
        name: batchctl_proc(
            "endpoint",
            "invoke",
            "-n",
            "probe",
            "-d",
            name,
            "--input",
            str(world.data),
            "--job-name",
            f"job-{name}",
            "-o",
            "json",
        )  # fmt: skip
        for name in ("one", "two")
    }
    for proc in procs.values():
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    records = {name: read_job(world.home, f"job-{name}") for name in procs}
    for name, release in (("one", "bcprobe-1.0.0"), ("two", "bcprobe-2.0.0")):
        record = records[name]
        assert record["status"] == "Completed"
        assert {r[1] for r in world.rows(record)} == {release}
    # the two jobs overlapped in time
    starts = [r["start_time"] for r in records.values()]
    ends = [r["end_time"] for r in records.values()]
    assert max(starts) < min(ends)
    assert records["one"]["environment"]["key"] != records["two"]["environment"]["key"]
    # the same environment again: reused, no build
    again = world.invoke("one")
    assert again.exit_code == 0, again.stderr
    env = json.loads(again.stdout)["environment"]
    assert (env["built"], env["key"]) == (False, records["one"]["environment"]["key"])
    assert len(world.builds()) == 2


def test_four_concurrent_jobs_needing_one_new_environment_cause_one_build(world):
    world.deploy("one", ["bcprobe==2.0.0"])
    procs = [
        batchctl_proc(
            "endpoint",
            "invoke",
            "-n",
            "probe",
            "-d",
            "one",
            "--input",
            str(world.data),
            "--job-name",
            f"j{i}",
            "-o",
            "json",
        )  # fmt: skip
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    envs = [read_job(world.home, f"j{i}")["environment"] for i in range(4)]
    assert sorted(e["built"] for e in envs) == [False, False, False, True]
    assert len({e["key"] for e in envs}) == 1
    assert len(world.builds()) == 1


def test_a_build_killed_midway_leaves_nothing_a_later_job_uses(world, tmp_path, monkeypatch):
    from batchctl.envs.build import uv_binary

    slow = tmp_path / "slow-uv"
    slow.write_text(f'#!/bin/sh\ncase "$*" in *"pip install"*) sleep 60;; esac\nexec {uv_binary()} "$@"\n')
    slow.chmod(0o755)
    world.deploy("one", ["bcprobe==1.0.0"])
    proc = batchctl_proc(
        "endpoint", "invoke", "-n", "probe", "-d", "one", "--input", str(world.data), "--job-name", "killed",
        env_extra={"BATCHCTL_UV": str(slow)}, start_new_session=True,
    )  # fmt: skip
    root = world.home / "envs"
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".tmp-") for p in (root.iterdir() if root.is_dir() else [])):
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert world.builds() == []  # nothing under a key: a job cannot pick up the half-built folder
    result = world.invoke("one")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["status"], record["environment"]["built"]) == ("Completed", True)
    assert {r[1] for r in world.rows(record)} == {"bcprobe-1.0.0"}
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]  # the killed build's folder is gone
    assert world.ok("job", "show", "-n", "killed")["status"] == "Failed"  # its runner died


def test_an_unresolvable_requirement_fails_the_job_before_any_worker_starts(world):
    world.deploy("bad", ["bcprobe==9.9.9"])
    result = world.invoke("bad", "--job-name", "bad1")
    assert result.exit_code == 13
    lines = result.stderr.splitlines()
    error = [ln for ln in lines if ln.startswith("Error:")]
    assert error and "cannot install bcprobe==9.9.9" in error[0], result.stderr
    hint = [ln for ln in lines if ln.startswith("Hint:")]
    assert hint and "full log: " in hint[0]
    log = Path(hint[0].split("full log: ")[1].split("; then ")[0].strip())  # then: the resume command
    assert "bcprobe==9.9.9" in log.read_text()
    record = read_job(world.home, "bad1")
    assert record["status"] == "Failed" and record["error"]["exit_code"] == 13
    # no worker started: none wrote its log
    assert list((world.home / "jobs" / "bad1" / "logs").rglob("worker-*")) == []
    assert world.builds() == []


def test_auto_with_satisfied_requirements_builds_nothing(world):
    world.deploy("host", ["pyyaml>=5", "packaging"], env_vars={"NEEDS_PROBE": "0"})
    (world.code / "score.py").write_text("def init():\n    pass\n\n\ndef run(mb):\n    return [str(len(mb))]\n")
    world.deploy("host", ["pyyaml>=5", "packaging"])
    result = world.invoke("host")
    assert result.exit_code == 0, result.stderr
    env = json.loads(result.stdout)["environment"]
    assert env["used"] == "local" and "key" in env and "path" not in env
    assert not (world.home / "envs").exists()


def test_a_pin_without_an_installable_release_is_relaxed_within_its_series_and_strict_refuses(
    world, tmp_path, monkeypatch
):
    only_patch = tmp_path / "only-1.0.1"
    write_wheel(only_patch, "bcprobe", "1.0.1")
    write_wheel(only_patch, "bcprobe", "1.1.0")  # never chosen: another minor version
    monkeypatch.setenv("PIP_FIND_LINKS", str(only_patch))
    world.deploy("old", ["bcprobe==1.0.0"])
    result = world.invoke("old")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert {r[1] for r in world.rows(record)} == {"bcprobe-1.0.1"}
    assert record["environment"]["substitutions"] == [
        {
            "kind": "relaxed",
            "requested": "bcprobe==1.0.0",
            "used": "bcprobe==1.0.1",
            "reason": f"no installable bcprobe 1.0.0 for Python {record['environment']['python']}",
        }
    ]
    assert "Warning: environment " in result.stderr and "bcprobe==1.0.0 -> bcprobe==1.0.1" in result.stderr
    # recorded in the lineage manifest with the lock file's sha256, which `job verify` checks
    shown = world.ok("job", "show", "-n", record["name"])
    isolated = shown["lineage"]["environment"]["isolated"]
    assert isolated["lock_sha256"] == record["environment"]["lock_sha256"]
    assert isolated["substitutions"] == record["environment"]["substitutions"]
    assert world.ok("job", "verify", "-n", record["name"])["environment"]["match"] is True
    Path(record["environment"]["lock_file"]).write_text("bcprobe==9\n")
    tampered = world.cli("job", "verify", "-n", record["name"])
    assert (tampered.exit_code, tampered.stderr.splitlines()[0]) == (
        14,
        f"Error: job '{record['name']}': the environment's lock file differs from the lineage manifest",
    )
    strict = world.invoke("old", "--env-strict")
    assert strict.exit_code == 13
    assert [ln for ln in strict.stderr.splitlines() if ln.startswith("Error:")][0].endswith(
        "--env-strict: the environment would need bcprobe==1.0.0 -> bcprobe==1.0.1: "
        f"no installable bcprobe 1.0.0 for Python {record['environment']['python']}"
    )


@pytest.fixture
def ray_here(request, tmp_path, monkeypatch):
    """A compute address of a Ray instance on this machine: `local` (the job starts its own), or the
    host:port of one started beside the test (tests/ray's helper), as `ray start --head` would."""
    if request.param == "local":
        yield "local"
        return
    helpers = sys.modules.get("ray_helpers")
    if helpers is None:  # tests/ray is not on sys.path when only tests/envs runs
        path = Path(__file__).resolve().parents[1] / "ray" / "ray_helpers.py"
        module_spec = importlib.util.spec_from_file_location("ray_helpers", path)
        assert module_spec is not None and module_spec.loader is not None
        helpers = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(helpers)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # a driver connecting by address sends the token
    head = helpers.RayHead(tmp_path / "head.log")
    try:
        yield head.address
    finally:
        head.stop()


@pytest.mark.ray
@pytest.mark.network
@pytest.mark.timeout(900)
@pytest.mark.parametrize("ray_here", ["local", "head"], indirect=True)
def test_a_ray_job_runs_in_its_isolated_environment_on_a_ray_instance_on_this_machine(world, monkeypatch, ray_here):
    """The actors start with the environment's interpreter (Ray's py_executable), which has the driver's
    own ray release installed beside the pinned bcprobe. ray and its dependencies come from PyPI (or uv's
    warm cache on this machine), bcprobe from the test's wheel folder."""
    from importlib import metadata

    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("UV_CACHE_DIR")  # uv's own cache: ray's wheels are large
    world.ok("compute", "create", "-n", "ray-local", "--type", "ray", "--address", ray_here)
    world.deploy("onray", ["bcprobe==1.0.0"], compute="ray-local")
    result = world.invoke("onray", "--job-name", "r1")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["status"], record["compute_type"]) == ("Completed", "ray")
    env = record["environment"]
    assert env["used"] == "isolated"
    assert env["worker_packages"] == [f"ray=={metadata.version('ray')}"]
    assert f"ray=={metadata.version('ray')}\n" in Path(env["lock_file"]).read_text()
    rows = world.rows(record)
    assert sorted(r[0] for r in rows) == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
    assert {r[1] for r in rows} == {"bcprobe-1.0.0"}  # the host has no bcprobe at all
    assert {r[2] for r in rows} == {str(Path(env["path"]) / "venv" / "bin" / "python")}
    assert {r[3] for r in rows} == {"False"}  # batchctl's own dependencies are not visible to the scoring code


def test_a_ray_cluster_on_another_machine_refuses_a_job_that_needs_an_isolated_environment(world):
    world.ok("compute", "create", "-n", "ray-far", "--type", "ray", "--address", "198.51.100.7:6379")
    world.deploy("onray", ["bcprobe==1.0.0"], compute="ray-far")
    result = world.invoke("onray", "--job-name", "r1")
    assert result.exit_code == 13
    assert [ln for ln in result.stderr.splitlines() if ln.startswith(("Error:", "Hint:"))] == [
        "Error: job r1 failed: the Ray cluster at '198.51.100.7:6379' is not on this machine, so its workers "
        "cannot start in the isolated environment this job needs for inline environment (inline) "
        f"{world.tmp / 'onray.conda.yml'} (it is built here, on this machine)",
        "Hint: use --env-manager local to score in batchctl's interpreter, or a compute whose Ray instance "
        "runs on this machine (--address local); then `batchctl job resume -n r1`",
    ]
    assert world.builds() == []


def test_a_ray_pin_other_than_the_drivers_release_is_refused(world):
    from importlib import metadata

    version = metadata.version("ray")
    world.ok("compute", "create", "-n", "ray-local", "--type", "ray", "--address", "local")
    world.deploy("onray", ["bcprobe==1.0.0", "ray==2.9.0"], compute="ray-local")
    result = world.invoke("onray", "--job-name", "r1")
    assert (result.exit_code, result.stderr.splitlines()) == (
        13,
        [
            f"Error: inline environment (inline) {world.tmp / 'onray.conda.yml'} requires ray==2.9.0, but this "
            f"job's Ray workers need ray {version} (the release of the driver, batchctl's own interpreter)",
            f"Hint: pin ray=={version} in the environment, or run the job with --env-manager local",
        ],
    )
    assert world.builds() == []


@pytest.mark.mlflow
def test_the_mlflow_run_records_the_environment_and_its_substitutions(world, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    world.deploy("one", ["bcprobe==1.0.0", "azureml-core"])
    record = world.ok("endpoint", "invoke", "-n", "probe", "-d", "one", "--input", str(world.data),
                      "--tracking-uri", uri, "--job-name", "tracked")  # fmt: skip
    deadline = time.monotonic() + 180
    while (read_job(world.home, "tracked").get("tracking") or {}).get("state") not in ("logged", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    run = MlflowClient(tracking_uri=uri).get_run(read_job(world.home, "tracked")["tracking"]["run_id"])
    env = record["environment"]
    assert {k: v for k, v in run.data.params.items() if k.startswith("env_")} == {
        "env_manager": "auto",
        "env_used": "isolated",
        "env_key": env["key"],
        "env_python": env["python"],
        "env_lock_sha256": env["lock_sha256"],
    }
    assert run.data.tags["batchctl.env_substitutions"] == "skipped azureml-core"


def test_a_python_that_is_not_here_and_conda_only_packages_are_substituted_and_strict_refuses(world):
    world.deploy("py38", ["bcprobe==2.0.0"], python="3.8.5", conda=("numpy=1.21",))
    strict = world.invoke("py38", "--env-strict")
    assert (strict.exit_code, strict.stderr.splitlines()) == (
        13,
        [
            "Error: --env-strict: the environment would need skipped numpy=1.21: conda package (no conda here); "
            "list it under pip: to install",
            "Hint: drop --env-strict to skip them, or list the packages under pip: in the conda file",
        ],
    )
    result = world.invoke("py38")
    assert result.exit_code == 0, result.stderr
    env = json.loads(result.stdout)["environment"]
    assert [c["requested"] for c in env["skipped"]] == ["numpy=1.21"]
    assert [(c["kind"], c["requested"]) for c in env["substitutions"]] == [("python", "python 3.8.5")]
    assert env["substitutions"][0]["reason"] == "batchctl's worker needs Python 3.11 or newer"
    assert f"python 3.8.5 -> python {env['python']}" in result.stderr


def test_resume_can_change_the_env_manager_of_a_job_whose_environment_failed(world):
    (world.code / "score.py").write_text("def init():\n    pass\n\n\ndef run(mb):\n    return [str(len(mb))]\n")
    world.deploy("broken", ["bcprobe==9.9.9"])
    failed = world.invoke("broken", "--job-name", "res1")
    assert failed.exit_code == 13
    resumed = world.cli("job", "resume", "-n", "res1", "--env-manager", "local", "-o", "json")
    assert resumed.exit_code == 0, resumed.stderr
    record = json.loads(resumed.stdout)
    assert (record["status"], record["environment"]["manager"], record["environment"]["used"]) == (
        "Completed",
        "local",
        "local",
    )


def test_the_studio_job_page_shows_the_environment_and_its_substitutions(world, tmp_path, monkeypatch):
    import re
    import subprocess
    import sys

    import httpx

    only_patch = tmp_path / "patch-only"
    write_wheel(only_patch, "bcprobe", "1.0.1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(only_patch))
    world.deploy("old", ["bcprobe==1.0.0", "azureml-defaults"])
    record = world.ok("endpoint", "invoke", "-n", "probe", "-d", "old", "--input", str(world.data), "--job-name", "pg")
    # the same deployment in batchctl's interpreter (which lacks bcprobe: the job fails in init(), after the choice)
    world.invoke("old", "--job-name", "pl", "--env-manager", "local")
    out = tmp_path / "serve.out"
    with open(out, "wb") as handle:
        env = {**os.environ, "BATCHCTL_HOME": str(world.home)}
        serve = [sys.executable, "-m", "batchctl", "serve", "--port", "0"]
        proc = subprocess.Popen(serve, stdout=handle, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while "login link): " not in out.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            time.sleep(0.05)
        text = out.read_text()
        url = text.split("listening on ", 1)[1].split()[0]
        login = text.split("login link): ", 1)[1].split()[0]
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get(login.replace(url, "")).status_code == 303
            html = client.get("/studio/jobs/pg").text
            local = client.get("/studio/jobs/pl")
    finally:
        proc.terminate()
        proc.wait(30)
    section = re.search(r'<section aria-labelledby="env-h">(.*?)</section>', html, re.S).group(1)
    used = re.search(r'<dd id="env-used">(.*?)</dd>', section).group(1)
    assert (
        used == f"isolated environment {record['environment']['key'][:12]} (Python {record['environment']['python']})"
    )
    changes = re.findall(r"<li>(.*?)</li>", section)
    assert local.status_code == 200
    assert re.search(r'<dd id="env-used">(.*?)</dd>', local.text).group(1) == "batchctl's interpreter"
    python = record["environment"]["python"]
    assert changes == [
        "skipped azureml-defaults: Azure-only package, it does nothing locally",
        f"bcprobe==1.0.0 &rarr; bcprobe==1.0.1: no installable bcprobe 1.0.0 for Python {python}",
    ]


def test_a_rerun_keeps_the_env_manager_strictness_and_constraints_of_the_job_it_reruns(world):
    world.deploy("one", ["bcprobe==1.0.0"])
    first = world.invoke("one", "--job-name", "orig", "--env-manager", "uv", "--env-strict", "--env-constraint",
                         "bcprobe<2")  # fmt: skip
    assert first.exit_code == 0, first.stderr
    env = json.loads(first.stdout)["environment"]
    assert (env["manager"], env["strict"], env["constraints"], env["built"]) == ("uv", True, ["bcprobe<2"], True)
    rerun = world.cli("job", "rerun", "-n", "orig", "--job-name", "again", "-o", "json")
    assert rerun.exit_code == 0, rerun.stderr
    again = json.loads(rerun.stdout)
    assert again["status"] == "Completed"
    kept = again["environment"]
    # the same key (the constraint is part of it), so the build is reused, not redone without the constraint
    assert (kept["manager"], kept["strict"], kept["constraints"]) == ("uv", True, ["bcprobe<2"])
    assert (kept["key"], kept["built"], kept["used"]) == (env["key"], False, "isolated")
    assert len(world.builds()) == 1


def test_a_failed_only_rerun_keeps_them_too(world):
    (world.code / "score.py").write_text(
        "import os\n\nimport bcprobe\n\n\ndef init():\n    pass\n\n\ndef run(mini_batch):\n"
        "    if any(os.path.basename(f) == 'f0.txt' for f in mini_batch):\n        raise ValueError('f0 fails')\n"
        "    return [f'{os.path.basename(f)},{bcprobe.probe()}' for f in mini_batch]\n"
    )
    world.deploy("one", ["bcprobe==1.0.0"])
    first = world.invoke("one", "--job-name", "partial", "--env-manager", "uv", "--env-constraint", "bcprobe<2",
                         "--set", "retry_settings.max_retries=0")  # fmt: skip
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["environment"]["built"] is True
    rerun = world.cli("job", "rerun", "-n", "partial", "--failed-only", "--job-name", "again", "-o", "json")
    again = json.loads(rerun.stdout)
    kept = again["environment"]
    assert (kept["manager"], kept["constraints"], kept["built"], kept["used"]) == (
        "uv",
        ["bcprobe<2"],
        False,
        "isolated",
    )
    assert len(world.builds()) == 1
