"""Each step runs in its own component's environment, built by the environments layer (uv, offline: the
`bcprobe` wheels of tests/envs): two steps pinning two releases each see their own, with `python` being
the environment's interpreter, not batchctl's."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envs.wheels import isolate_pip, write_wheel

STEP = """\
import sys, pathlib, bcprobe
out = pathlib.Path(sys.argv[1])
(out / "probe.json").write_text(__import__("json").dumps({"probe": bcprobe.probe(), "python": sys.executable}))
"""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    wheels = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(wheels, "bcprobe", "1.0.0")
    write_wheel(wheels, "bcprobe", "2.0.0")
    isolate_pip(monkeypatch, tmp_path_factory.mktemp("uv-cache"), find_links=wheels)


def step(release: str) -> dict[str, Any]:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return {
        "type": "command",
        "component": {
            "code": "src",
            "environment": {
                "conda_file": {"dependencies": [f"python={python}", "pip", {"pip": [f"bcprobe=={release}"]}]}
            },
            "outputs": {"out": {"type": "uri_folder"}},
            "command": "python step.py ${{outputs.out}}",
        },
    }


@pytest.mark.timeout(600)
def test_each_step_runs_in_its_own_environment(cli: Any, tmp_path: Path, offline: None) -> None:
    root = tmp_path / "envs-pipeline"
    (root / "src").mkdir(parents=True)
    (root / "src" / "step.py").write_text(STEP)
    job_file = root / "pipeline-job.yml"
    job_file.write_text(
        yaml.safe_dump({"type": "pipeline", "jobs": {"old": step("1.0.0"), "new": step("2.0.0")}}, sort_keys=False)
    )
    result = cli("job", "create", "-f", str(job_file), "--env-manager", "uv", "--query", "name", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    seen = {}
    for child in json.loads(cli("job", "list", "--parent-job-name", job).stdout):
        assert child["environment"]["used"] == "isolated", child["environment"]
        probe = json.loads((Path(child["outputs"]["out"]["path"]) / "probe.json").read_text())
        seen[child["display_name"]] = probe["probe"]
        assert probe["python"] != sys.executable
        assert Path(probe["python"]).is_relative_to(tmp_path)  # the workspace's envs/<key>/
    assert seen == {"old": "bcprobe-1.0.0", "new": "bcprobe-2.0.0"}
