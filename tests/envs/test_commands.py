"""`batchctl environment build | show | builds | prune`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_build_ahead_then_a_job_reuses_it_show_lists_it_and_prune_frees_it(world):
    conda = world.conda("probe-env", ["bcprobe==2.0.0"], python="3.11", conda=("numpy",))
    world.ok("environment", "create", "-n", "probe-env", "--image", "python:3.11", "--conda-file", str(conda))
    built = world.cli("environment", "build", "-n", "probe-env", "-o", "json")
    assert built.exit_code == 0, built.stderr
    (entry,) = json.loads(built.stdout)
    assert (entry["environment"], entry["for"], entry["built"]) == ("azureml:probe-env:1", "script", True)
    assert entry["skipped"][0]["requested"] == "numpy"
    assert "building (environment azureml:probe-env:1)" in built.stderr
    # a deployment naming it: its job finds the build ready
    spec = world.tmp / "dep.yml"
    spec.write_text(
        json.dumps(
            {
                "name": "reg",
                "endpoint_name": "probe",
                "model": {"path": str(world.model), "type": "custom_model", "name": "weights"},
                "code_configuration": {"code": str(world.code), "scoring_script": "score.py"},
                "environment": "azureml:probe-env@latest",
                "settings": {"mini_batch_size": 2},
            }
        )
    )
    world.ok("deployment", "create", "-f", str(spec))
    result = world.invoke("reg")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["environment"]["built"], record["environment"]["key"]) == (False, entry["key"])
    assert {r[1] for r in world.rows(record)} == {"bcprobe-2.0.0"}
    # show: each build's key, Python, size, last use, lock file
    shown = world.ok("environment", "show", "-n", "probe-env")
    (b,) = shown["builds"]
    assert (b["key"], b["python"], b["lock_file"]) == (entry["key"], entry["python"], entry["lock_file"])
    assert b["size_bytes"] > 0 and b["last_used"].endswith("Z")
    assert Path(b["lock_file"]).read_text() == "bcprobe==2.0.0\n"
    assert [x["key"] for x in world.ok("environment", "builds")] == [entry["key"]]
    # prune: a recent build stays; one unused for 40 days goes, and the freed size is said
    assert world.ok("environment", "prune")["removed"] == []
    old = time.time() - 40 * 86400
    for name in (".last-used", "batchctl-env.json"):
        os.utime(Path(entry["path"]) / name, (old, old))
    pruned = world.ok("environment", "prune", "--unused-days", "30")
    assert pruned["removed"] == [entry["key"]] and pruned["freed_bytes"] >= b["size_bytes"] * 0.9
    assert not Path(entry["path"]).exists() and world.ok("environment", "show", "-n", "probe-env")["builds"] == []


@pytest.mark.network
@pytest.mark.timeout(900)
def test_build_ahead_for_a_deployment_on_a_ray_compute_builds_what_its_jobs_use(world, monkeypatch):
    """A Ray job's environment also holds the driver's ray (from PyPI or uv's cache on this machine), so
    `environment build` makes that build for a deployment on a Ray compute of this machine."""
    from importlib import metadata

    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("UV_CACHE_DIR")
    conda = world.conda("probe-env", ["bcprobe==2.0.0"])
    world.ok("environment", "create", "-n", "probe-env", "--image", "python:3.11", "--conda-file", str(conda))
    world.ok("compute", "create", "-n", "ray-local", "--type", "ray", "--address", "local")
    spec = world.tmp / "dep.yml"
    spec.write_text(
        json.dumps(
            {
                "name": "reg",
                "endpoint_name": "probe",
                "model": {"path": str(world.model), "type": "custom_model", "name": "weights"},
                "code_configuration": {"code": str(world.code), "scoring_script": "score.py"},
                "environment": "azureml:probe-env@latest",
                "compute": "ray-local",
            }
        )
    )
    world.ok("deployment", "create", "-f", str(spec))
    (entry,) = world.ok("environment", "build", "-n", "probe-env")
    assert (entry["for"], entry["built"]) == ("script on ray", True)
    assert f"ray=={metadata.version('ray')}\n" in Path(entry["lock_file"]).read_text()
    planned = world.ok("endpoint", "invoke", "-n", "probe", "-d", "reg", "--input", str(world.data), "--dry-run")
    assert planned["environment"]["key"] == entry["key"]
    assert planned["environment"]["worker_packages"] == [f"ray=={metadata.version('ray')}"]
