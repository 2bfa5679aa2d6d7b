"""Replay of Azure's batch-scoring-with-preprocessing example: its components name a registered environment
(`environment: azureml:<env>@latest`) and its pipeline passes registered models (`path: azureml:<model>@latest`)
to the steps. The registry stores those assets' paths relative to the workspace root, so a step must be
given them resolved against the workspace, never against the folder the command runs from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

STEP = """\
import pathlib, sys
model, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
names = sorted(p.name for p in model.iterdir())
(out / "seen.json").write_text(__import__("json").dumps({"model": str(model), "files": names}))
"""


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _example(root: Path) -> Path:
    """An environment, a custom model folder, a component using both, run from a folder that is not the
    workspace's (as a user runs deploy-and-run.sh from the example's folder)."""
    _write(root / "environment" / "conda.yml", {"dependencies": ["python=3.11", "pip", {"pip": ["scikit-learn"]}]})
    _write(
        root / "environment" / "env.yml",
        {"name": "replay-env", "image": "mcr.microsoft.com/azureml/openmpi4.1.0", "conda_file": "conda.yml"},
    )
    (root / "transformations").mkdir()
    (root / "transformations" / "columns.json").write_text('{"categorical": ["thal"]}\n')
    (root / "components" / "src").mkdir(parents=True)
    (root / "components" / "src" / "step.py").write_text(STEP)
    _write(
        root / "components" / "step.yml",
        {
            "name": "replay_step",
            "type": "command",
            "inputs": {"transformations": {"type": "custom_model"}},
            "outputs": {"out": {"type": "uri_folder"}},
            "code": "src",
            "environment": "azureml:replay-env@latest",
            "command": "python step.py ${{inputs.transformations}} ${{outputs.out}}",
        },
    )
    return _write(
        root / "pipeline-job.yml",
        {
            "type": "pipeline",
            "jobs": {
                "step": {
                    "type": "command",
                    "component": "azureml:replay_step@latest",
                    "inputs": {"transformations": {"type": "custom_model", "path": "azureml:replay-transforms@latest"}},
                    "outputs": {"out": "${{parent.outputs.seen}}"},
                }
            },
            "outputs": {"seen": {"type": "uri_folder", "mode": "upload"}},
        },
    )


def test_registered_environment_and_model_resolve_against_the_workspace(
    cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    root = tmp_path / "example"
    job_file = _example(root)
    monkeypatch.chdir(root)
    for args in (
        ("environment", "create", "-f", "environment/env.yml"),
        ("model", "create", "--name", "replay-transforms", "--type", "custom_model", "--path", "transformations"),
        ("component", "create", "-f", "components/step.yml"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
    result = cli("job", "create", "-f", str(job_file), "--env-manager", "local", "--query", "name", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    (child,) = json.loads(cli("job", "list", "--parent-job-name", job, "-o", "json").stdout)
    assert child["status"] == "Completed", child
    out = root / "downloaded"
    result = cli("job", "download", "--name", job, "--output-name", "seen", "--download-path", str(out))
    assert result.exit_code == 0, result.stderr
    seen = json.loads(next(out.rglob("seen.json")).read_text())
    assert seen["files"] == ["columns.json"], seen
    assert Path(seen["model"]).is_relative_to(Path.cwd().parent / "ws"), seen
