"""Jobs whose deployments name environments: built once with uv, workers started in them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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
