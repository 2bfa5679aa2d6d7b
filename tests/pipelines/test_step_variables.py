"""The variables a step sees, as scripts run on Azure read them: AZURE_ML_INPUT_<name> for each data or model
input and AZURE_ML_OUTPUT_<name> for each output (the local path; the name as the component declares it),
AZUREML_RUN_ID (the step's job) and AZUREML_PARENT_RUN_ID / AZUREML_ROOT_RUN_ID (the pipeline's). A literal
input gets no variable: nothing shows Azure exporting one (docs/pipelines.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

SCRIPT = """\
import json, os, pathlib, sys
seen = {k: v for k, v in os.environ.items() if k.startswith(("AZURE_ML_", "AZUREML_"))}
pathlib.Path(sys.argv[1], "env.json").write_text(json.dumps(seen))
"""


def test_a_step_sees_its_inputs_and_outputs_paths_but_no_literal(cli: Any, tmp_path: Path) -> None:
    root = tmp_path / "example"
    (root / "src").mkdir(parents=True)
    (root / "src" / "show.py").write_text(SCRIPT)
    (root / "data").mkdir()
    (root / "data" / "rows.csv").write_text("a\n1\n")
    component = {
        "name": "show_env",
        "type": "command",
        "code": "src",
        "inputs": {"Data_In": {"type": "uri_folder"}, "rows": {"type": "integer"}},
        "outputs": {"Result": {"type": "uri_folder"}},
        "command": "python show.py ${{outputs.Result}} ${{inputs.Data_In}} ${{inputs.rows}}",
    }
    job = {
        "type": "pipeline",
        "inputs": {"data": {"type": "uri_folder", "path": "data"}},
        "outputs": {"result": {"type": "uri_folder"}},
        "jobs": {
            "show": {
                "type": "command",
                "component": component,
                "inputs": {"Data_In": "${{parent.inputs.data}}", "rows": 3},
                "outputs": {"Result": "${{parent.outputs.result}}"},
            }
        },
    }
    (root / "job.yml").write_text(yaml.safe_dump(job))
    result = cli("job", "create", "-f", str(root / "job.yml"), "--env-manager", "local", "--query", "name", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    name = result.stdout.strip()
    step = json.loads(cli("job", "show", "-n", f"{name}-show").stdout)
    out = Path(step["outputs"]["Result"]["path"])
    seen = json.loads((out / "env.json").read_text())
    assert seen["AZURE_ML_OUTPUT_Result"] == str(out)
    assert Path(seen["AZURE_ML_INPUT_Data_In"]).resolve() == (root / "data").resolve()
    assert "AZURE_ML_INPUT_rows" not in seen, seen
    assert seen["AZUREML_RUN_ID"] == f"{name}-show"
    assert seen["AZUREML_PARENT_RUN_ID"] == seen["AZUREML_ROOT_RUN_ID"] == name
