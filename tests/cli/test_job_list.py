"""`job list` (issue 16, item 5): newest first, created time, duration and items ok/failed in the table;
--endpoint, --deployment, --status and --max-results as `az ml job list` takes them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

FAILING = "def init():\n    raise RuntimeError('no model')\n\n\ndef run(mini_batch):\n    return []\n"


JOBS = ["a1", "b2", "c3", "d4"]


def build_jobs(root: Path) -> None:
    """Four jobs, oldest first: a1 (heart/dep), b2 (other/dep), c3 (heart/broken, Failed), d4 (heart/dep)."""
    from testkit import Cli

    cli = Cli()
    ws = ("--workspace", str(root))
    src = root.parent / "src"
    for folder, script in (("code", "def init():\n    pass\n\n\ndef run(mini_batch):\n    return list(mini_batch)\n"),
                           ("broken", FAILING), ("model", None)):  # fmt: skip
        (src / folder).mkdir(parents=True)
        (src / folder / ("score.py" if script else "weights.json")).write_text(script or "[1]\n")
    for endpoint in ("heart", "other"):
        assert cli(*ws, "endpoint", "create", "-n", endpoint, "-o", "json").exit_code == 0
    for endpoint, name, code in (("heart", "dep", "code"), ("other", "dep", "code"), ("heart", "broken", "broken")):
        spec = src / f"{endpoint}-{name}.yml"
        spec.write_text(yaml.safe_dump({
            "name": name, "endpoint_name": endpoint, "model": {"path": str(src / "model")},
            "code_configuration": {"code": str(src / code), "scoring_script": "score.py"},
            "settings": {"retry_settings": {"max_retries": 0}},
        }))  # fmt: skip
        assert cli(*ws, "deployment", "create", "-f", str(spec), "-o", "json").exit_code == 0
    data = src / "data"
    data.mkdir()
    for i in range(3):
        (data / f"f{i}.txt").write_text("1\n")
    routes = (("heart", "dep"), ("other", "dep"), ("heart", "broken"), ("heart", "dep"))
    for job, (endpoint, deployment) in zip(JOBS, routes, strict=True):
        cli(*ws, "endpoint", "invoke", "-n", endpoint, "-d", deployment, "-i", str(data), "--job-name", job,
            "--output-path", str(src / "out" / job), "-o", "json")  # fmt: skip


@pytest.fixture
def jobs(workspace_templates: Any) -> list[str]:
    """A copy of the session's four-job workspace (built once: support.workspaces), at BATCHCTL_HOME."""
    workspace_templates.copy("job-list", build_jobs, Path(os.environ["BATCHCTL_HOME"]))
    return JOBS


def _names(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return [job["name"] for job in json.loads(result.stdout)]


@pytest.mark.slow
def test_newest_first_filters_and_max_results(cli: Any, jobs: list[str]) -> None:
    assert _names(cli("job", "list", "-o", "json")) == ["d4", "c3", "b2", "a1"]
    assert _names(cli("job", "list", "--max-results", "2", "-o", "json")) == ["d4", "c3"]
    assert _names(cli("job", "list", "-r", "1", "-o", "json")) == ["d4"]
    assert _names(cli("job", "list", "--endpoint", "heart", "-o", "json")) == ["d4", "c3", "a1"]
    assert _names(cli("job", "list", "--endpoint", "heart", "--deployment", "dep", "-o", "json")) == ["d4", "a1"]
    assert _names(cli("job", "list", "--deployment", "dep", "--max-results", "2", "-o", "json")) == ["d4", "b2"]
    assert _names(cli("job", "list", "--status", "failed", "-o", "json")) == ["c3"]
    assert _names(cli("job", "list", "--status", "Completed", "-r", "5", "-o", "json")) == ["d4", "b2", "a1"]
    # the JSON keeps whole records
    first = json.loads(cli("job", "list", "-r", "1", "-o", "json").stdout)[0]
    assert first["counts"]["items_succeeded"] == 3 and first["duration_seconds"] > 0 and first["created_at"]
    # endpoint list-jobs is newest first too
    assert _names(cli("endpoint", "list-jobs", "-n", "heart", "-o", "json")) == ["d4", "c3", "a1"]


@pytest.mark.slow
def test_table_shows_created_duration_and_items(cli: Any, jobs: list[str]) -> None:
    result = cli("job", "list", "-o", "table")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "name" in line and "status" in line)
    for column in ("created", "duration", "items_ok", "items_failed"):
        assert column in header, header
    rows = [line for line in lines if any(f" {n} " in line for n in jobs)]
    assert [next(n for n in jobs if f" {n} " in row) for row in rows] == ["d4", "c3", "b2", "a1"]
    failed = next(row for row in rows if " c3 " in row)
    cells = [c.strip() for c in failed.strip("│ ").split("│")]
    assert cells[1] == "Failed"
    completed = next(row for row in rows if " d4 " in row)
    cells = [c.strip() for c in completed.strip("│ ").split("│")]
    assert cells[-2:] == ["3", "0"]  # items ok, items failed
    assert cells[5].endswith("s")  # a duration such as 1.2s


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_results_must_be_positive(cli: Any, value: str) -> None:
    result = cli("job", "list", "--max-results", value)
    assert result.exit_code == 3
    assert "--max-results" in result.stderr
