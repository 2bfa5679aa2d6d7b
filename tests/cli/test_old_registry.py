"""A workspace written before registry records were typed and paths stored relative still loads, shows,
lists and scores (tests/fixtures/registry-0.1.0: made by make_fixture.sh with main d7804d1's code; its
registry holds absolute paths under /tmp/batchctl-registry-fixture/ws)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry-0.1.0"
WRITTEN_AT = "/tmp/batchctl-registry-fixture"  # where make_fixture.sh built it

# each command and the file in expected/ holding what main d7804d1 printed for it
SHOWN = [
    (("endpoint", "list"), "endpoint-list"),
    (("endpoint", "show", "-n", "heart"), "endpoint-show-heart"),
    (("deployment", "list", "-e", "heart"), "deployment-list-heart"),
    (("deployment", "show", "-e", "heart", "-n", "mlflow-nocode"), "deployment-show-mlflow-nocode"),
    (("deployment", "show", "-e", "heart", "-n", "custom-script"), "deployment-show-custom-script"),
    (("deployment", "show", "-e", "heart", "-n", "inline-model"), "deployment-show-inline-model"),
    (("compute", "list"), "compute-list"),
    (("compute", "show", "-n", "aml-cluster"), "compute-show-aml-cluster"),
    (("model", "list"), "model-list"),
    (("model", "show", "-n", "heart-classifier"), "model-show-heart-classifier"),
    (("environment", "list"), "environment-list"),
    (("data", "list"), "data-list"),
]


def install(home: Path) -> Path:
    """The fixture's workspace at `home`, its files where its absolute paths say they are: the old registry
    as it would be read in place (only the folder it was written in differs)."""
    root = home.parent
    shutil.copytree(FIXTURE / "ws", home)
    (root / "src" / "data").mkdir(parents=True)
    registry = home / "registry.json"
    registry.write_text(registry.read_text().replace(WRITTEN_AT, str(root)))
    return root


@pytest.mark.parametrize(("args", "expected"), SHOWN, ids=[e for _, e in SHOWN])
def test_show_and_list_print_what_they_printed_before(cli, isolation: Path, args: tuple[str, ...], expected: str):
    root = install(isolation)
    result = cli(*args, "-o", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    want = (FIXTURE / "expected" / f"{expected}.json").read_text()
    assert result.stdout.replace(str(root), WRITTEN_AT) == want


def heart_inputs(folder: Path) -> Path:
    """Two CSV files of the columns the fixture's model takes (float ages: the scoring script does not cast)."""
    folder.mkdir()
    (folder / "a.csv").write_text("age,chol,thal\n61.5,250.0,normal\n42.0,310.5,fixed\n")
    (folder / "b.csv").write_text("age,chol,thal\n70.25,199.0,reversible\n")
    return folder


def test_the_old_registry_scores_with_each_local_kind_of_deployment(cli, isolation: Path, tmp_path: Path):
    install(isolation)
    data = heart_inputs(tmp_path / "data")
    before = (isolation / "registry.json").read_bytes()
    for deployment, results in (("mlflow-nocode", "predictions.csv"), ("custom-script", "scores.csv")):
        out = tmp_path / f"out-{deployment}"
        job = cli(
            "endpoint", "invoke", "-n", "heart", "-d", deployment, "--input", str(data),
            "--output-path", str(out), "--env-manager", "local", "-o", "json",
        )  # fmt: skip
        assert job.exit_code == 0, job.output
        record = json.loads(job.stdout)
        assert record["status"] == "Completed", record
        with open(out / results, newline="") as handle:
            rows = list(csv.reader(handle))
        assert len(rows) == 3, rows  # one row per input row, from both files
        assert sorted(name for row in rows for name in row if name.endswith(".csv")) == ["a.csv", "a.csv", "b.csv"]
    assert (isolation / "registry.json").read_bytes() == before  # reading and scoring change no record


def test_a_record_of_the_old_registry_loads_typed_with_its_paths_absolute(isolation: Path):
    from batchctl.resources.computes import get_compute
    from batchctl.resources.deployments import resolve_deployment
    from batchctl.workspace import Workspace

    root = install(isolation)
    ws = Workspace(isolation)
    endpoint, deployment = resolve_deployment(ws, "heart", "custom-script")
    assert endpoint.default_deployment == "mlflow-nocode"
    assert deployment.code_dir == f"{root}/ws/code/0f3984e928cf28153181/src"
    assert Path(deployment.code_dir, "batch_driver.py").is_file()
    assert (deployment.settings.mini_batch_size, deployment.settings.retry_settings.timeout) == (3, 30)
    assert get_compute(ws, deployment.compute).job_compute_type == "local"  # an amlcompute cluster


def test_a_change_writes_the_current_schema_and_keeps_the_old_absolute_paths_working(cli, isolation: Path):
    from batchctl.settings import SCHEMA_VERSION

    root = install(isolation)
    changed = cli("endpoint", "update", "-n", "heart", "--set", "description=changed", "-o", "json")
    assert changed.exit_code == 0, changed.output
    data = json.loads((isolation / "registry.json").read_text())
    # an older batchctl refuses the registry now, instead of reading relative paths against its own folder
    assert data["schema_version"] == SCHEMA_VERSION == 2
    shown = cli("deployment", "show", "-e", "heart", "-n", "custom-script", "-o", "json")
    want = (FIXTURE / "expected" / "deployment-show-custom-script.json").read_text()
    assert shown.stdout.replace(str(root), WRITTEN_AT) == want
