"""README's "Compatibility with `az ml`" table, checked by running it (issue 18).

Every row's `az ml` command is turned into batchctl's (`az ml batch-endpoint` -> `batchctl endpoint`, ...)
and run through the real entry point, in the table's order, against one workspace that the earlier
rows build (as Azure's deploy-and-run.sh scripts do). The outcome column is the assertion: `works` and
`accepted, ignored` exit 0; `refused (exit N)` exits N with an error (one `Error:` line; typer's usage
message for exit 2) and leaves the registry as it was. A foreground `invoke` exits 0 only when its job
Completed. A second test checks the table covers every command and flag that Azure's batch endpoint
examples pass to `az ml` (tallied from Azure/azureml-examples `cli/endpoints/batch/**/deploy-and-run.sh`)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Compatibility with `az ml`"
ROW = re.compile(r"^\| `(az ml [^`]+)` \| ([^|]+) \|([^|]*)\|$")
OUTCOME = re.compile(r"^(works|accepted, ignored|refused \(exit (\d+)\))$")

# every `az ml` command of the examples and the flags they pass to it
AZURE_EXAMPLES_TALLY: dict[str, set[str]] = {
    "model create": {"--name", "--type", "--path"},
    "model show": {"--name", "--label"},
    "data create": {"-f", "--name", "--type", "--path"},
    "compute create": {"-n", "--type", "--size", "--min-instances", "--max-instances"},
    "environment create": {"-f"},
    "component create": {"-f"},
    "batch-endpoint create": {"-n", "--name", "-f", "--file"},
    "batch-endpoint show": {"--name", "--query"},
    "batch-endpoint update": {"--name", "--set"},
    "batch-endpoint invoke": {
        "-n",
        "--name",
        "-d",
        "--deployment-name",
        "--input",
        "--input-type",
        "--output-path",
        "--set",
        "--mini-batch-size",
        "--instance-count",
        "--f",
        "--query",
        "-o",
    },
    "batch-endpoint delete": {"-n", "--name", "--yes"},
    "batch-deployment create": {"--file", "-f", "--endpoint-name", "--endpoint", "--set-default", "--set"},
    "batch-deployment show": {"--name", "--endpoint-name"},
    "batch-deployment list-jobs": {"--name", "--endpoint-name", "--query"},
    "batch-deployment delete": {"--name", "--endpoint-name", "--yes"},
    "job show": {"-n", "--web", "--query", "-o"},
    "job stream": {"-n"},
    "job download": {"--name", "--output-name", "--download-path"},
    "job list": {"--parent-job-name"},
    "job create": {"-f", "--set"},
}

# Azure's hello-batch pipeline component, with an optional input and a promoted output (so that the rows
# `job create --set inputs.input_data.path=...` and `job download --output-name scores` have them)
HELLO_COMPONENT = {
    "name": "hello",
    "version": 1,
    "type": "pipeline",
    "inputs": {"input_data": {"type": "uri_folder", "optional": True}},
    "outputs": {"scores": {"type": "uri_folder"}},
    "jobs": {
        "main_job": {
            "type": "command",
            "component": {
                "code": "src",
                "environment": "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
                "inputs": {"input_data": {"type": "uri_folder", "optional": True}},
                "outputs": {"scores": {"type": "uri_folder"}},
                "command": "python hello.py $[[--data ${{inputs.input_data}}]] --out ${{outputs.scores}}",
            },
            "inputs": {"input_data": "${{parent.inputs.input_data}}"},
            "outputs": {"scores": "${{parent.outputs.scores}}"},
        }
    },
}
HELLO_SCRIPT = """\
import argparse, os, pathlib
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out")
a = p.parse_args()
files = sorted(f.name for f in pathlib.Path(a.data).rglob("*") if f.is_file()) if a.data else []
(pathlib.Path(a.out) / "hello.txt").write_text(f"hello world! {files}\\n")
print("hello world!", os.environ["AZUREML_RUN_ID"])
"""

CONDA = "name: xgb\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - scikit-learn\n      - xgboost==2.0.3\n"


def table_rows() -> list[tuple[str, str, int]]:
    """(az command, outcome, expected exit code) for every row of the README's compatibility table."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        if not line.startswith("| `az ml "):
            continue
        match = ROW.match(line)
        assert match, f"a row the test cannot read: {line}"
        command, outcome = match.group(1), match.group(2).strip()
        kind = OUTCOME.match(outcome)
        assert kind, f"unknown outcome {outcome!r} in: {line}"
        rows.append((command, outcome, int(kind.group(2) or 0)))
    return rows


def to_batchctl(command: str, values: dict[str, str]) -> list[str]:
    for name, value in values.items():
        command = command.replace(f"${name}", value)
    assert "$" not in command, f"a placeholder the test does not know: {command}"
    words = shlex.split(command)
    assert words[:2] == ["az", "ml"]
    noun = {"batch-endpoint": "endpoint", "batch-deployment": "deployment"}.get(words[2], words[2])
    return [noun, *words[3:]]


def test_the_table_covers_every_command_and_flag_of_azures_batch_examples():
    seen: dict[str, set[str]] = {}
    for command, _, _ in table_rows():
        words = shlex.split(command.replace("$", ""))
        seen.setdefault(" ".join(words[2:4]), set()).update(w for w in words[4:] if w.startswith("-"))
    missing = {
        cmd: sorted(flags - seen.get(cmd, set()))
        for cmd, flags in AZURE_EXAMPLES_TALLY.items()
        if flags - seen.get(cmd, set())
    }
    assert missing == {}


@pytest.fixture
def public_folder(tmp_path: Path) -> Iterator[str]:
    """A folder of CSV files on a loopback http.server, standing in for the examples' public https folders."""
    root = tmp_path / "www"
    (root / "heart").mkdir(parents=True)
    for i in range(2):
        (root / "heart" / f"part{i}.csv").write_text("age,chol,thal\n61,250,normal\n45,180,fixed\n")

    from support.http import serve_folder

    with serve_folder(root) as url:
        yield f"{url}/heart/"


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def script_folder(
    tmp_path: Path, public_folder: str, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The files the rows name, laid out as in Azure's example folders (the model trained once per machine)."""
    import shutil

    from support.models import cached_heart_model

    folder = tmp_path / "example"
    shutil.copytree(cached_heart_model(pytestconfig, tmp_path_factory), folder / "model")
    _write(folder / "data" / "a.csv", "age,chol,thal\n50,200,normal\n70,300,reversible\n")
    _write(folder / "data" / "train" / "b.csv", "age,chol,thal\n40,150,fixed\n")
    _write(folder / "data" / "unlabeled" / "c.csv", "age,chol,thal\n40,150,fixed\n")
    _write(folder / "endpoint.yml", {"name": "heart-classifier", "description": "heart", "auth_mode": "aad_token"})
    _write(
        folder / "heart-dataset-unlabeled.yml",
        {"name": "heart-dataset-unlabeled", "type": "uri_folder", "path": "data"},
    )
    _write(folder / "environment" / "conda.yml", CONDA)
    _write(
        folder / "environment" / "xgboost-sklearn-py38.yml",
        {
            "name": "xgboost-sklearn-py38",
            "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
            "conda_file": "conda.yml",
        },
    )
    _write(
        folder / "deployment.yml",
        {
            "name": "classifier-mlflow",
            "endpoint_name": "heart-classifier",
            "type": "model",
            "model": "azureml:heart-classifier@latest",
            "environment": "azureml:xgboost-sklearn-py38@latest",
            "compute": "azureml:batch-cluster",
            "resources": {"instance_count": 1},
            "settings": {"max_concurrency_per_instance": 1, "mini_batch_size": 10, "output_action": "append_row"},
        },
    )
    pipeline = {
        "name": "hello",
        "endpoint_name": "heart-classifier",
        "type": "pipeline",
        "component": "azureml:hello@latest",
    }
    _write(folder / "deployment-pipeline.yml", pipeline)
    _write(
        folder / "deployment-from-job.yml",
        {**pipeline, "name": "hello-from-job", "component": None, "job_definition": "azureml:x"},
    )
    _write(folder / "hello-component" / "hello.yml", HELLO_COMPONENT)
    _write(folder / "hello-component" / "src" / "hello.py", HELLO_SCRIPT)
    _write(folder / "inputs.yml", {"inputs": {"heart_data": {"type": "uri_folder", "path": "data"}}})
    _write(
        folder / "pipeline-job.yml",
        {
            "type": "pipeline",
            "experiment_name": "hello-pipeline-batch",
            "component": "hello-component/hello.yml",
            "inputs": {"input_data": {"type": "uri_folder", "path": "data"}},
        },
    )
    return folder


def _run(args: list[str], cwd: Path) -> Any:
    """A row's command through batchctl's `main()` in this process (tests/support/cli.py: the argument
    handling of the real entry point, a Python start-up less per row), in `cwd`. A `--web` row starts a
    real process: webbrowser reads $BROWSER once per process, and the row is about starting a browser."""
    assert Path.cwd() == cwd
    if "--web" in args:
        return subprocess.run(
            [sys.executable, "-m", "batchctl", *args], capture_output=True, text=True, cwd=cwd, timeout=300
        )
    from support.cli import run_main

    return run_main(*args)


def _job_name(args: list[str], stdout: str) -> str | None:
    if "invoke" not in args and args[:2] != ["job", "create"]:
        return None
    return stdout.strip() if "tsv" in args else json.loads(stdout)["name"]


@pytest.mark.slow
def test_every_row_of_the_table_does_what_it_says(script_folder, public_folder, isolation, tmp_path, monkeypatch):
    rows = table_rows()
    assert len(rows) >= 40
    browser = tmp_path / "browser.sh"
    browser.write_text("#!/bin/sh\nexit 0\n")
    browser.chmod(0o755)
    for name, value in {"BROWSER": str(browser), "DISPLAY": "", "WAYLAND_DISPLAY": ""}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(script_folder)
    values = {
        "ENDPOINT_NAME": "heart-classifier",
        "DEPLOYMENT_NAME": "classifier-mlflow",
        "PIPELINE_DEPLOYMENT_NAME": "hello",
        "MODEL_NAME": "heart-classifier",
        "PUBLIC_URL": public_folder,
        "OUTPUT_FILE_NAME": "predictions_1234.csv",
        "OPENAI_API_BASE": "https://example.openai.azure.com/",
        "GROUP": "my-group",
        "WORKSPACE": "my-workspace",
        "SUBSCRIPTION": "00000000-0000-0000-0000-000000000000",
        "JOB_NAME": "no-job-yet",
    }
    registry = isolation / "registry.json"
    # the table is about az commands: its jobs score in this interpreter (the workspace's setting), not in
    # the environment its xgboost pin would have uv build (tests/envs covers that)
    isolation.mkdir(parents=True, exist_ok=True)
    (isolation / "settings.json").write_text('{"env_manager": "local"}')
    jobs_run = 0
    for command, outcome, code in rows:
        args = to_batchctl(command, values)
        before = registry.read_bytes() if registry.exists() else None
        result = _run(args, script_folder)
        where = f"{command}\n-> batchctl {shlex.join(args)}\nexit {result.returncode}\n{result.stderr}"
        assert result.returncode == code, where
        if outcome.startswith("refused"):
            assert result.stdout == "", where
            # a usage error (exit 2) is typer's usage message; every other refusal is one `Error:` line
            assert result.stderr.startswith("Usage: " if code == 2 else "Error: "), where
            assert "Error" in result.stderr and "Traceback" not in result.stderr, where
            assert (registry.read_bytes() if registry.exists() else None) == before, where
            continue
        name = _job_name(args, result.stdout)
        if name:
            values["JOB_NAME"] = name
            jobs_run += 1
    assert jobs_run == 11  # 9 model jobs, a pipeline deployment's job and a standalone pipeline job
    jobs = (isolation / "jobs").iterdir()
    top_level = [p.name for p in jobs if "parent_job_name" not in (p / "job.json").read_text()]  # not steps
    assert sorted(top_level) == sorted(
        json.loads(_run(["job", "list", "--status", "Completed", "--query", "[].name"], script_folder).stdout)
    )
    # what the rows left behind: the results downloaded by `job download`, the endpoint gone
    assert (script_folder / "named-outputs" / "score" / "predictions.csv").is_file()
    assert (script_folder / "named-outputs" / "scores" / "hello.txt").read_text() == "hello world! []\n"
    state = json.loads(registry.read_text())
    assert state["endpoints"] == {} and state["deployments"] == {}
    assert sorted(state["environments"]["xgboost-sklearn-py38"]) == ["1"]
    assert sorted(state["models"]["heart-classifier"]) == ["1", "2"]
