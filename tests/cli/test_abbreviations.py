"""argparse-style abbreviated long options (issue 18), through `cli.main()`, what `python -m batchctl` runs:
CliRunner calls the typer app directly and would bypass the expansion in `main()`. main() runs in this
process (support.cli.run_main); one test goes through the real entry point in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from batchctl.cli import GROUPS, app, build_app
from batchctl.cli._abbrev import AmbiguousOption, convert, expand_args
from support.cli import run_main


def real_batchctl(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m batchctl ARGS` in a subprocess: the real entry point."""
    return subprocess.run([sys.executable, "-m", "batchctl", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def run_batchctl():
    """This module's tests run main() in-process (the session's run_batchctl starts a process)."""
    return run_main


@pytest.fixture
def endpoint(run_batchctl) -> str:
    result = run_batchctl("endpoint", "create", "--name", "heart")
    assert (result.returncode, result.stderr) == (0, "")
    return "heart"


def _deployment_yml(tmp_path: Path, mlflow_model: Path, name: str = "blue") -> Path:
    # the endpoint comes from the command line (`--endpoint`), as in Azure's pipeline examples
    spec = {"name": name, "type": "model", "model": {"path": str(mlflow_model), "type": "mlflow_model", "name": "m"}}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_endpoint_prefix_for_endpoint_name_as_azure_pipeline_scripts_write_it(
    tmp_path, home, endpoint, mlflow_model, run_batchctl, registry
):
    spec = _deployment_yml(tmp_path, mlflow_model)
    result = run_batchctl("deployment", "create", "--endpoint", endpoint, "-f", str(spec), "--set-default")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert json.loads(result.stdout)["endpoint_name"] == "heart"
    assert registry.data()["endpoints"]["heart"]["defaults"]["deployment_name"] == "blue"
    assert "heart/blue" in registry.data()["deployments"]


def test_f_prefix_for_file_on_invoke(tmp_path, endpoint, mlflow_model, run_batchctl):
    spec = _deployment_yml(tmp_path, mlflow_model)
    assert run_batchctl("deployment", "create", "--endpoint-name", endpoint, "-f", str(spec)).returncode == 0
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("age,chol,thal\n50,200,normal\n")
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(yaml.safe_dump({"inputs": {"heart_data": {"type": "uri_folder", "path": str(data)}}}))
    result = run_batchctl("endpoint", "invoke", "-n", endpoint, "--f", str(inputs), "--dry")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    plan = json.loads(result.stdout)
    assert (plan["dry_run"], plan["input"], plan["files"]) == (True, str(data), 1)


def test_equals_form_and_root_options_are_expanded(tmp_path, endpoint, run_batchctl):
    other = tmp_path / "other-ws"
    created = run_batchctl("--works", str(other), "endpoint", "create", "--na=elsewhere", "--desc", "x")
    assert (created.returncode, created.stderr) == (0, "")
    shown = run_batchctl("--workspace", str(other), "endpoint", "show", "--na", "elsewhere", "--que", "description")
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, '"x"\n', "")


def test_ambiguous_prefix_lists_the_candidates_and_exits_2(tmp_path, endpoint, mlflow_model, registry):
    spec = _deployment_yml(tmp_path, mlflow_model)
    before = registry.bytes()
    result = real_batchctl("deployment", "create", "-e", endpoint, "-f", str(spec), "--s")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: ambiguous option: --s could match --set, --set-default, --skip-script-validation, --subscription\n"
        "Hint: write more of the option's name\n"
    )
    assert registry.bytes() == before


def test_an_exact_name_wins_over_a_longer_option(tmp_path, endpoint, mlflow_model, run_batchctl, registry):
    # `--set` is also a prefix of `--set-default`: written in full it is `--set`, never ambiguous
    spec = _deployment_yml(tmp_path, mlflow_model)
    result = run_batchctl("deployment", "create", "-e", endpoint, "-f", str(spec), "--set", "description=exact")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert registry.data()["deployments"]["heart/blue"]["description"] == "exact"
    again = run_batchctl("deployment", "create", "-e", endpoint, "-f", str(spec), "--set-default")
    assert (again.returncode, again.stderr) == (0, "")


def test_unknown_option_is_still_a_usage_error(endpoint, run_batchctl):
    result = run_batchctl("endpoint", "show", "--nope", "heart")
    assert result.returncode == 2
    assert "No such option: --nope" in result.stderr


# expand_args on the real app, in-process: the rules one by one


def _expand(*argv: str) -> list[str]:
    return expand_args(convert(app), list(argv))


def test_expansion_rules_on_the_real_app():
    assert _expand("deployment", "create", "--endpoint", "E", "--f", "d.yml") == [
        "deployment",
        "create",
        "--endpoint-name",
        "E",
        "--file",
        "d.yml",
    ]
    # an option's value is never expanded, even when it looks like an option
    assert _expand("endpoint", "create", "--desc", "--na", "--na", "x") == [
        "endpoint",
        "create",
        "--description",
        "--na",
        "--name",
        "x",
    ]
    # two names of one parameter are not ambiguous: the shorter is taken
    assert _expand("job", "list", "--endp", "E") == ["job", "list", "--endpoint", "E"]
    # a short option's value is skipped too; `--` ends the options
    assert _expand("endpoint", "show", "-n", "--x", "--que", "q", "--", "--na") == [
        "endpoint",
        "show",
        "-n",
        "--x",
        "--query",
        "q",
        "--",
        "--na",
    ]
    assert _expand("--vers") == ["--version"]
    assert _expand("endpoint", "list", "--he") == ["endpoint", "list", "--help"]
    # unknown commands and unknown options are left for typer to report
    assert _expand("endpoint", "nope", "--na") == ["endpoint", "nope", "--na"]
    assert _expand("endpoint", "show", "--zz") == ["endpoint", "show", "--zz"]


def test_expansion_ambiguity_names_every_candidate():
    with pytest.raises(AmbiguousOption) as caught:
        _expand("endpoint", "invoke", "--in", "x")
    assert caught.value.candidates == ["--input", "--input-type", "--instance-count"]


def test_expansion_of_a_single_group_app_matches_the_full_app():
    # main() builds only the group named on the command line: the expansion must be the same
    argv = ["deployment", "create", "--endpoint", "E", "--f", "d.yml", "--set-def"]
    single = expand_args(convert(build_app({"deployment": GROUPS["deployment"]})), argv)
    assert (
        single == _expand(*argv) == ["deployment", "create", "--endpoint-name", "E", "--file", "d.yml", "--set-default"]
    )
