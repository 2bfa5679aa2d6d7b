from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def endpoint(cli, out) -> str:
    out(cli("endpoint", "create", "-n", "heart-classifier"))
    return "heart-classifier"


def _default(registry, endpoint: str = "heart-classifier") -> str | None:
    return registry.data()["endpoints"][endpoint]["defaults"]["deployment_name"]


def test_create_mlflow_deployment(cli, out, registry, endpoint, deployment_file, mlflow_model, home):
    record = out(cli("deployment", "create", "-f", str(deployment_file("classifier-mlflow", endpoint))))
    assert record["name"] == "classifier-mlflow"
    assert record["endpoint_name"] == endpoint
    assert record["model"] == "azureml:heart:1"
    assert record["model_type"] == "mlflow_model"
    assert (record["compute"], record["compute_type"]) == ("local", "local")
    assert record["settings"]["mini_batch_size"] == 10
    assert record["provisioning_state"] == "Succeeded"
    model = registry.data()["models"]["heart"]["1"]
    # stored relative to the workspace root (a workspace can be moved), shown absolute
    assert (model["path"], model["model_dir"]) == ("models/heart/1/model", "models/heart/1")
    assert (home / model["path"] / "MLmodel").read_bytes() == (mlflow_model / "MLmodel").read_bytes()
    assert registry.data()["deployments"][f"{endpoint}/classifier-mlflow"] == record


def test_first_deployment_becomes_the_default(cli, out, registry, endpoint, deployment_file):
    out(cli("deployment", "create", "-f", str(deployment_file("blue", endpoint))))
    assert _default(registry) == "blue"
    out(cli("deployment", "create", "-f", str(deployment_file("green", endpoint))))
    assert _default(registry) == "blue"
    out(cli("deployment", "create", "-f", str(deployment_file("red", endpoint)), "--set-default"))
    assert _default(registry) == "red"


def test_set_default_command_and_endpoint_update_are_the_same(cli, out, registry, endpoint, deployment_file):
    out(cli("deployment", "create", "-f", str(deployment_file("blue", endpoint))))
    out(cli("deployment", "create", "-f", str(deployment_file("green", endpoint))))
    record = out(cli("deployment", "set-default", "-e", endpoint, "-n", "green"))
    assert record["defaults"] == {"deployment_name": "green"}
    assert _default(registry) == "green"
    out(cli("endpoint", "update", "-n", endpoint, "--set", "defaults.deployment_name=blue"))
    assert _default(registry) == "blue"
    before = registry.bytes()
    missing = cli("deployment", "set-default", "-e", endpoint, "-n", "ghost")
    assert (missing.exit_code, missing.stderr) == (
        4,
        "Error: deployment 'ghost' not found in endpoint 'heart-classifier'; existing: blue, green\n",
    )
    assert registry.bytes() == before


def test_create_twice_is_a_no_op(cli, out, registry, endpoint, deployment_file):
    spec = deployment_file("blue", endpoint)
    first = out(cli("deployment", "create", "-f", str(spec)))
    before = registry.bytes()
    assert out(cli("deployment", "create", "-f", str(spec))) == first
    assert registry.bytes() == before
    assert list(registry.data()["models"]["heart"]) == ["1"]


def test_name_and_endpoint_overrides(cli, out, registry, deployment_file):
    out(cli("endpoint", "create", "-n", "other-ep"))
    spec = deployment_file("blue", "heart-classifier")
    record = out(cli("deployment", "create", "-f", str(spec), "-n", "green", "-e", "OTHER-EP"))
    assert (record["name"], record["endpoint_name"]) == ("green", "other-ep")
    assert list(registry.data()["deployments"]) == ["other-ep/green"]


def test_set_overrides(cli, out, endpoint, deployment_file):
    spec = deployment_file("blue", endpoint, settings={"mini_batch_size": 2})
    record = out(
        cli(
            "deployment",
            "create",
            "-f",
            str(spec),
            "--set",
            "settings.mini_batch_size=7",
            "--set",
            "settings.retry_settings.max_retries=0",
        )
    )
    assert (record["settings"]["mini_batch_size"], record["settings"]["retry_settings"]["max_retries"]) == (
        7,
        0,
    )


def test_show_list(cli, out, endpoint, deployment_file):
    out(cli("deployment", "create", "-f", str(deployment_file("green", endpoint))))
    out(cli("deployment", "create", "-f", str(deployment_file("blue", endpoint))))
    assert out(cli("deployment", "show", "-n", "blue", "-e", endpoint))["name"] == "blue"
    assert [d["name"] for d in out(cli("deployment", "list", "-e", endpoint))] == ["blue", "green"]
    assert cli("deployment", "list", "-e", endpoint, "--query", "[].model", "-o", "tsv").stdout == (
        "azureml:heart:1\nazureml:heart:1\n"
    )
    table = cli("deployment", "list", "-e", endpoint, "-o", "table").stdout
    assert [c.strip() for c in table.splitlines()[1].split("┃")[1:-1]] == [
        "name",
        "endpoint_name",
        "model",
        "compute",
        "mini_batch_size",
        "provisioning_state",
    ]
    assert [c.strip() for c in table.splitlines()[3].split("│")[1:-1]] == [
        "blue",
        "heart-classifier",
        "azureml:heart:1",
        "local",
        "10",
        "Succeeded",
    ]


def test_update_with_set(cli, out, registry, endpoint, deployment_file):
    out(cli("deployment", "create", "-f", str(deployment_file("blue", endpoint))))
    record = out(cli("deployment", "update", "-n", "blue", "-e", endpoint, "--set", "settings.error_threshold=5"))
    assert record["settings"]["error_threshold"] == 5
    assert registry.data()["deployments"][f"{endpoint}/blue"]["settings"]["error_threshold"] == 5
    before = registry.bytes()
    bad = cli("deployment", "update", "-n", "blue", "-e", endpoint, "--set", "settings.error_threshold=-3")
    assert (bad.exit_code, bad.stderr) == (
        3,
        "Error: deployment update: settings.error_threshold: Input should be greater than or equal to -1\n",
    )
    assert registry.bytes() == before


def test_delete_rules(cli, out, registry, endpoint, deployment_file):
    out(cli("deployment", "create", "-f", str(deployment_file("blue", endpoint))))
    out(cli("deployment", "create", "-f", str(deployment_file("green", endpoint))))
    before = registry.bytes()
    refused = cli("deployment", "delete", "-n", "blue", "-e", endpoint, "--yes")
    assert (refused.exit_code, refused.stderr) == (
        5,
        "Error: deployment 'blue' is the default of endpoint 'heart-classifier' and other deployments exist\n"
        "Hint: make another one the default first: "
        "batchctl deployment set-default -e heart-classifier -n green\n",
    )
    assert registry.bytes() == before
    unconfirmed = cli("deployment", "delete", "-n", "green", "-e", endpoint, input="no\n")
    assert (unconfirmed.exit_code, unconfirmed.stderr) == (
        5,
        "Error: Delete deployment 'green' of endpoint 'heart-classifier'? Not confirmed.\n"
        "Hint: pass --yes to confirm without a prompt\n",
    )
    assert registry.bytes() == before
    assert out(cli("deployment", "delete", "-n", "green", "-e", endpoint, input="y\n")) == {
        "name": "green",
        "endpoint_name": endpoint,
        "deleted": True,
    }
    # the last deployment may go, default or not; the endpoint is left without a default
    out(cli("deployment", "delete", "-n", "blue", "-e", endpoint, "--yes"))
    assert _default(registry) is None
    assert registry.data()["deployments"] == {}


def test_show_missing(cli, endpoint):
    result = cli("deployment", "show", "-n", "ghost", "-e", endpoint)
    assert (result.exit_code, result.stderr) == (
        4,
        "Error: deployment 'ghost' not found in endpoint 'heart-classifier'; it has no deployments\n"
        "Hint: create it with `batchctl deployment create -f deployment.yml -e heart-classifier`\n",
    )


def test_list_of_a_missing_endpoint(cli):
    result = cli("deployment", "list", "-e", "ghost-ep")
    assert (result.exit_code, result.stderr) == (
        4,
        "Error: endpoint 'ghost-ep' not found\nHint: create it with `batchctl endpoint create --name ghost-ep`\n",
    )


def _bad(cli, registry, args, code, stderr):
    before = registry.bytes()
    result = cli("deployment", "create", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", stderr)
    assert registry.bytes() == before


def test_create_for_a_missing_endpoint(cli, registry, deployment_file):
    _bad(
        cli,
        registry,
        ["-f", str(deployment_file("blue", "ghost-ep"))],
        4,
        "Error: endpoint 'ghost-ep' not found\nHint: create it with `batchctl endpoint create --name ghost-ep`\n",
    )


def test_create_with_a_missing_compute(cli, registry, endpoint, deployment_file):
    _bad(
        cli,
        registry,
        ["-f", str(deployment_file("blue", endpoint, compute="azureml:batch-cluster"))],
        4,
        "Error: compute 'batch-cluster' not found\n"
        "Hint: create it with `batchctl compute create -n batch-cluster --type local` "
        "(or --type ray --address ADDR)\n",
    )


def test_create_with_a_missing_registered_model(cli, registry, endpoint, write_spec):
    spec = write_spec("d.yml", {"name": "blue", "endpoint_name": endpoint, "model": "azureml:ghost@latest"})
    _bad(
        cli,
        registry,
        ["-f", str(spec)],
        4,
        "Error: model 'ghost' not found\nHint: register it with `batchctl model create --name ghost ...`\n",
    )


def test_create_with_a_missing_model_path(cli, registry, endpoint, write_spec, tmp_path):
    spec = write_spec(
        "specs/d.yml",
        {"name": "blue", "endpoint_name": endpoint, "model": {"path": "../no-model", "type": "mlflow_model"}},
    )
    _bad(
        cli,
        registry,
        ["-f", str(spec)],
        3,
        f"Error: d.yml: path: '{tmp_path / 'no-model'}' does not exist\n"
        "Hint: a relative path is resolved against the folder of d.yml\n",
    )


def test_create_with_a_folder_that_is_not_an_mlflow_model(cli, registry, endpoint, write_spec, custom_model):
    spec = write_spec(
        "d.yml",
        {
            "name": "blue",
            "endpoint_name": endpoint,
            "model": {"path": str(custom_model), "type": "mlflow_model"},
        },
    )
    _bad(
        cli,
        registry,
        ["-f", str(spec)],
        3,
        f"Error: d.yml: path: '{custom_model}' is not an MLflow model folder (no MLmodel file)\n",
    )


def _custom(write_spec, endpoint, code="code", script="score.py", model=None):
    return write_spec(
        "d.yml",
        {
            "name": "custom",
            "endpoint_name": endpoint,
            "model": model or {"path": "custom-model", "type": "custom_model"},
            "code_configuration": {"code": code, "scoring_script": script},
        },
    )


def test_custom_deployment_snapshots_the_code(cli, out, registry, endpoint, write_spec, custom_model, score_code, home):
    record = out(cli("deployment", "create", "-f", str(_custom(write_spec, endpoint))))
    code = Path(record["code_configuration"]["code"])
    assert code.parent.parent == home / "code"
    assert (code / "score.py").read_bytes() == (score_code / "score.py").read_bytes()
    assert record["code_configuration"]["source_code"] == str(score_code)
    assert record["model_type"] == "custom_model"
    model = registry.data()["models"]["heart-classifier-custom-model"]["1"]
    assert (home / model["path"] / "sub" / "vocab.txt").read_text() == "a\nb\n"
    stored = registry.data()["deployments"][f"{endpoint}/{record['name']}"]["code_configuration"]["code"]
    assert stored == str(code.relative_to(home))  # relative to the workspace root


def test_code_folder_missing(cli, registry, endpoint, write_spec, custom_model, tmp_path):
    _bad(
        cli,
        registry,
        ["-f", str(_custom(write_spec, endpoint, code="no-code"))],
        3,
        f"Error: d.yml: code_configuration.code: folder '{tmp_path / 'no-code'}' does not exist\n",
    )


def test_scoring_script_missing(cli, registry, endpoint, write_spec, custom_model, score_code):
    _bad(
        cli,
        registry,
        ["-f", str(_custom(write_spec, endpoint, script="nope.py"))],
        3,
        f"Error: d.yml: code_configuration.scoring_script: 'nope.py' not found in '{score_code}'\n",
    )


def test_scoring_script_that_does_not_parse(cli, out, registry, endpoint, write_spec, custom_model, score_code):
    (score_code / "score.py").write_text("def init():\n    pass\n\ndef run(mini_batch)\n    return mini_batch\n")
    spec = _custom(write_spec, endpoint)
    _bad(
        cli,
        registry,
        ["-f", str(spec)],
        3,
        "Error: d.yml: Failed to submit deployment custom due to syntax errors in scoring script score.py. "
        "Error on line 4: expected ':'\n"
        "Hint: fix the script, or pass --skip-script-validation\n",
    )
    assert out(cli("deployment", "create", "-f", str(spec), "--skip-script-validation"))["name"] == "custom"


def test_registered_custom_model_without_code_is_refused(cli, out, registry, endpoint, write_spec, custom_model):
    out(cli("model", "create", "-n", "heart", "--path", str(custom_model)))
    spec = write_spec("d.yml", {"name": "blue", "endpoint_name": endpoint, "model": "azureml:heart:1"})
    _bad(
        cli,
        registry,
        ["-f", str(spec)],
        3,
        "Error: d.yml: code_configuration: required because model azureml:heart:1 is not an MLflow model\n",
    )


def test_registered_model_references_resolve(cli, out, endpoint, write_spec, mlflow_model):
    out(cli("model", "create", "-n", "heart", "--type", "mlflow_model", "--path", str(mlflow_model)))
    out(cli("model", "create", "-n", "heart", "--type", "mlflow_model", "--path", str(mlflow_model), "-v", "7"))
    for ref, expected in (
        ("azureml:heart:1", "azureml:heart:1"),
        ("azureml:heart@latest", "azureml:heart:7"),
    ):
        spec = write_spec("d.yml", {"name": "blue", "endpoint_name": endpoint, "model": ref})
        assert out(cli("deployment", "create", "-f", str(spec)))["model"] == expected


def test_bad_spec_values(cli, registry, endpoint, deployment_file):
    spec = deployment_file("blue", endpoint, settings={"output_action": "summary_only", "output_file_name": "x.csv"})
    _bad(
        cli,
        registry,
        ["-f", str(spec)],
        3,
        f"Error: {spec.name}: settings: When output_action is set to summary_only, "
        "the output_file_name need not to be specified.\n",
    )


def test_bad_name_override(cli, registry, endpoint, deployment_file):
    _bad(
        cli,
        registry,
        ["-f", str(deployment_file("blue", endpoint)), "-n", "bad/name"],
        3,
        f"Error: {endpoint}-blue.yml: name: name 'bad/name' is invalid: "
        "use 1-255 letters, digits, '-' or '_', "
        "starting with a letter or digit\n",
    )


def test_missing_spec_file(cli, registry, tmp_path):
    _bad(cli, registry, ["-f", "nope.yml"], 3, "Error: nope.yml: file not found\n")


def test_file_option_is_required(cli):
    result = cli("deployment", "create")
    assert result.exit_code == 2
    assert "Missing option '--file' / '-f'." in result.stderr
