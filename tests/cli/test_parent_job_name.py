"""`job list --parent-job-name J` (issue 18): Azure lists a pipeline job's child jobs; a job that is not a
pipeline job has none, which is said on stderr (a pipeline job's steps: tests/pipelines/test_run_cli.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

OLD_JOB = Path(__file__).resolve().parents[1] / "jobs" / "fixtures" / "job-v0.1.0"


def test_parent_job_name_lists_nothing_and_says_why(cli, home):
    (home / "jobs").mkdir(parents=True)
    shutil.copytree(OLD_JOB, home / "jobs" / "old-job")
    assert [j["name"] for j in json.loads(cli("job", "list").stdout)] == ["old-job"]
    for flag in ("--parent-job-name", "-p"):
        result = cli("job", "list", flag, "old-job")
        assert (result.exit_code, json.loads(result.stdout)) == (0, [])
        assert result.stderr == "Warning: job old-job is not a pipeline job: it has no child jobs\n"
    # as Azure's pipeline scripts read it: `| jq -r ".[].name"` prints nothing
    assert cli("job", "list", "-p", "old-job", "--query", "[].name", "-o", "tsv").stdout == ""
