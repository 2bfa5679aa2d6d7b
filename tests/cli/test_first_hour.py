"""A newcomer's first hour (issue 28): messages that send the user the right way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def script_endpoint(cli: Any, tmp_path: Path, custom_model: Path, score_code: Path) -> Path:
    """Endpoint `heart` with a custom-script deployment `dep`; returns an input folder with two files."""
    assert cli("endpoint", "create", "-n", "heart", "-o", "json").exit_code == 0
    spec = tmp_path / "dep.yml"
    spec.write_text(yaml.safe_dump({
        "name": "dep", "endpoint_name": "heart", "model": {"path": str(custom_model)},
        "code_configuration": {"code": str(score_code), "scoring_script": "score.py"}, "settings": {},
    }))  # fmt: skip
    result = cli("deployment", "create", "-f", str(spec), "-o", "json")
    assert result.exit_code == 0, result.output
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("1\n")
    (data / "b.txt").write_text("2\n")
    return data


# ------------------------------------------------------------------------------ 9. job create -f without endpoint:


def test_job_create_without_an_endpoint_says_to_put_it_in_the_file(cli, script_endpoint, tmp_path, home):
    """`job create` has no endpoint option (its -n is the job's name): the message names the file's key."""
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(yaml.safe_dump({"inputs": {"heart_data": {"type": "uri_folder", "path": str(script_endpoint)}}}))
    result = cli("job", "create", "-f", str(inputs), "-n", "j1")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "Error: inputs.yml: no endpoint to invoke: add `endpoint: <endpoint-name>` to the file\n"
        f"Hint: or name it on the command line: `batchctl endpoint invoke -n <endpoint-name> -f {inputs}`\n"
    )
    assert not (home / "jobs" / "j1").exists()
    # what the message says works: `endpoint:` in the file
    inputs.write_text(yaml.safe_dump({"endpoint": "heart", **yaml.safe_load(inputs.read_text())}))
    done = cli("job", "create", "-f", str(inputs), "-n", "j1", "-o", "json", "--no-server")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["endpoint_name"] == "heart"


def test_endpoint_invoke_without_a_name(cli):
    result = cli("endpoint", "invoke", "--input", ".")
    assert (result.exit_code, result.stderr) == (
        3,
        "Error: no endpoint to invoke\nHint: name it: `batchctl endpoint invoke -n <endpoint-name>`\n",
    )


# ------------------------------------------------------------------------------ 11. resume of a Completed job


def test_resume_of_a_completed_job_names_it_and_points_to_rerun(cli, script_endpoint, tmp_path):
    job = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "--job-name", "done", "-o", "json")
    assert job.exit_code == 0, job.stderr
    result = cli("job", "resume", "-n", "done")
    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr == (
        "Error: job 'done' is Completed: it has nothing left to score, so it cannot be resumed\n"
        "Hint: score its input again, into a new output, with `batchctl job rerun -n done`\n"
    )


# ------------------------------------------------------------------------------ 12. component create


@pytest.mark.parametrize(
    "args", [("-f", "hello-component/hello.yml"), ("--file", "c.yml", "--name", "hello", "--version", "1")]
)
def test_component_create_of_a_missing_file_is_one_line(cli, registry, args):
    """Components are supported (issue 24; tests/pipelines): a file that is not there is one line, exit 3."""
    result = cli("component", "create", *args)
    assert (result.exit_code, result.stdout, registry.bytes()) == (3, "", None)
    assert result.stderr == f"Error: {args[1]}: file not found\n"


def test_component_create_through_the_entry_point(run_batchctl):
    """The real entry point builds only the group asked for: `component` must be one of them."""
    result = run_batchctl("component", "create", "-f", "hello.yml")
    assert (result.returncode, result.stderr.splitlines()[0]) == (3, "Error: hello.yml: file not found")


# ------------------------------------------------------------------------------ 15. one scoring_uri


@pytest.mark.parametrize("server", [False, True], ids=["no-server", "server-running"])
def test_scoring_uri_is_the_same_from_every_endpoint_command(cli, home, deployment_file, server):
    """create, update, show, list and set-default give the URI `batchctl serve` listens on (or would)."""
    import os

    url = "http://127.0.0.1:8765"
    if server:  # a server.json whose process lives (this one): the URIs are on its URL
        url = "http://127.0.0.1:45123"
        home.mkdir(parents=True, exist_ok=True)
        (home / "server.json").write_text(json.dumps({"url": url, "pid": os.getpid()}))

    def run(*args: str) -> Any:
        result = cli(*args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    expected = f"{url}/endpoints/heart/jobs"
    created = run("endpoint", "create", "-n", "heart")
    again = run("endpoint", "create", "-n", "heart")  # the same spec again: a no-op, same record
    updated = run("endpoint", "update", "-n", "heart", "--set", "description=scores")
    shown = run("endpoint", "show", "-n", "heart")
    (listed,) = run("endpoint", "list")
    run("deployment", "create", "-f", str(deployment_file("blue", "heart")))
    defaulted = run("deployment", "set-default", "-e", "heart", "-n", "blue")
    uris = [r["scoring_uri"] for r in (created, again, updated, shown, listed, defaulted)]
    assert uris == [expected] * 6
    assert {r["server"]["running"] for r in (created, updated, shown, listed, defaulted)} == {server}
    assert "scoring_uri" not in json.loads((home / "registry.json").read_text())["endpoints"]["heart"]


# ------------------------------------------------------------------------------ 19. tables and progress words


def test_deployment_create_shows_no_empty_settings_instance_count(cli, deployment_file):
    assert cli("endpoint", "create", "-n", "heart").exit_code == 0
    spec = deployment_file("blue", "heart", resources={"instance_count": 1})
    result = cli("deployment", "create", "-f", str(spec), "-o", "table")
    assert result.exit_code == 0, result.stderr
    # `resources │ instance_count=1`, and no empty `instance_count=` on the settings row
    assert result.stdout.count("instance_count=") == 1 and "instance_count=1 " in result.stdout
    shown = json.loads(cli("deployment", "show", "-n", "blue", "-e", "heart").stdout)
    assert "instance_count" not in shown["settings"] and shown["resources"]["instance_count"] == 1


def _heart_csv(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["age,chol,thal"] + [f"{40 + i % 40},{150 + i % 200},{('normal', 'fixed')[i % 2]}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_invoke_on_a_split_file_counts_row_ranges_in_words(cli, deployment_file, tmp_path):
    """`1 file in 4 row ranges`, then `4/4 row ranges` (it said `1 files in 1 mini-batches`, then `4/4
    mini-batches`); a job of whole files keeps `mini-batches`, singular when there is one."""
    assert cli("endpoint", "create", "-n", "heart").exit_code == 0
    spec = deployment_file("blue", "heart", settings={"max_concurrency_per_instance": 2, "mini_batch_size": 1})
    assert cli("deployment", "create", "-f", str(spec), "--set-default").exit_code == 0
    big = _heart_csv(tmp_path / "big" / "heart.csv", 4000)
    split = cli("endpoint", "invoke", "-n", "heart", "-i", str(big), "--split", "always", "--job-name", "cut")
    assert split.exit_code == 0, split.stderr
    record = json.loads(split.stdout)
    ranges = record["counts"]["mini_batches"]
    assert ranges == record["counts"]["row_ranges"] == 4
    lines = split.stderr.splitlines()
    assert lines[0] == "job cut: 1 file in 4 row ranges"
    assert "  4/4 row ranges, 1 item ok, 0 failed" in lines
    small = tmp_path / "small"
    _heart_csv(small / "a.csv", 5)
    whole = cli("endpoint", "invoke", "-n", "heart", "-i", str(small), "--split", "never", "--job-name", "whole")
    assert whole.exit_code == 0, whole.stderr
    assert whole.stderr.splitlines()[0] == "job whole: 1 file in 1 mini-batch"
    assert "  1/1 mini-batch, 1 item ok, 0 failed" in whole.stderr.splitlines()
    assert "row_ranges" not in json.loads(whole.stdout)["counts"]


@pytest.mark.parametrize(
    ("files", "units", "ranges", "text"),
    [
        (4, 2, 0, "4 files in 2 mini-batches"),
        (1, 4, 4, "1 file in 4 row ranges"),
        (3, 6, 4, "3 files in 2 mini-batches and 4 row ranges"),
        (1, 1, 0, "1 file in 1 mini-batch"),
    ],
)
def test_plan_summary_words(files, units, ranges, text):
    from batchctl.cli._progress import plan_summary

    assert plan_summary(files, units, ranges) == text


def test_a_long_example_message_keeps_its_head_and_its_tail_in_the_table():
    from batchctl.cli.job import EXAMPLE_CHARS, error_table_rows

    message = "Failed to enforce schema of data " + "x " * 400 + "Error: Model is missing inputs ['thal']."
    (row,) = error_table_rows([{"type": "MlflowException", "message": "…", "example": message, "count": 1}])
    assert len(row["example"]) <= EXAMPLE_CHARS
    assert row["example"].startswith("Failed to enforce schema of data")
    assert row["example"].endswith("Error: Model is missing inputs ['thal'].")


def test_the_readmes_invocation_files_are_valid_and_name_the_endpoint_key():
    """README documents `endpoint:` (and the other keys batchctl adds) in the invocation file (item 9)."""
    import re

    from batchctl.specs import load as spec_load
    from batchctl.specs.job import InvocationSpec

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
        if b.startswith(("# inputs.yml", "# job.yml"))
    ]
    assert len(blocks) == 2
    specs = [spec_load.validate_data(InvocationSpec, yaml.safe_load(b), "README") for b in blocks]
    assert specs[1].endpoint == "heart-classifier" and specs[1].name == "nightly-2024-06-01"
