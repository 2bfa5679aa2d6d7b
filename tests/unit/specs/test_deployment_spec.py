from __future__ import annotations

import pytest

TYPED = {
    "$schema": "https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json",
    "name": "dep1",
    "endpoint_name": "ep1",
    "type": "model",
    "model": "azureml:heart:1",
    "code_configuration": {"code": "code", "scoring_script": "score.py"},
}
SETTINGS = {
    "max_concurrency_per_instance": 2,
    "mini_batch_size": 5,
    "output_action": "append_row",
    "output_file_name": "out.csv",
    "retry_settings": {"max_retries": 1, "timeout": 60},
    "error_threshold": 4,
    "logging_level": "DEBUG",
    "environment_variables": {"A": 1, "B": "x"},
}


def test_defaults(load, tmp_path):
    spec = load("deployment", TYPED)
    assert spec.model_dump() == {
        "name": "dep1",
        "endpoint_name": "ep1",
        "type": "model",
        "description": None,
        "tags": {},
        "properties": {},
        "model": "azureml:heart:1",
        "code_configuration": {"code": str(tmp_path / "code"), "scoring_script": "score.py"},
        "environment": None,
        "compute": "local",
        "resources": {"instance_count": 1, "properties": {}},
        "settings": {
            "max_concurrency_per_instance": 1,
            "mini_batch_size": 10,
            "output_action": "append_row",
            "output_file_name": None,
            "retry_settings": {"max_retries": 3, "timeout": 30},
            "error_threshold": -1,
            "logging_level": "info",
            "environment_variables": {},
            "instance_count": None,
        },
    }
    assert spec.settings.effective_output_file_name == "predictions.csv"
    assert spec.workers == 1


def test_no_type_defaults_to_model(load):
    data = {k: v for k, v in TYPED.items() if k != "type"}
    assert load("deployment", data).type == "model"


def test_typed_settings(load):
    spec = load("deployment", {**TYPED, "settings": SETTINGS, "resources": {"instance_count": 3}})
    s = spec.settings
    assert (s.max_concurrency_per_instance, s.mini_batch_size, s.output_file_name) == (2, 5, "out.csv")
    assert (s.retry_settings.max_retries, s.retry_settings.timeout, s.error_threshold) == (1, 60, 4)
    assert s.logging_level == "debug"
    assert s.environment_variables == {"A": "1", "B": "x"}
    assert spec.workers == 6


def test_legacy_flat_shape_normalised_to_the_typed_model(load):
    typed = load("deployment", {**TYPED, "settings": SETTINGS, "resources": {"instance_count": 3}}, file="a.yml")
    legacy_data = {k: v for k, v in TYPED.items() if k != "type"}
    legacy_data["$schema"] = "https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json"
    legacy = load("deployment", {**legacy_data, **SETTINGS, "instance_count": 3}, file="b.yml")
    assert legacy == typed


def test_legacy_instance_count_and_resources_conflict(reject):
    data = {k: v for k, v in TYPED.items() if k != "type"}
    assert reject("deployment", {**data, "mini_batch_size": 2, "instance_count": 2, "resources": {}}) == (
        "spec.yml: Can't set instance_count when resources is provided."
    )


def test_flat_settings_rejected_in_the_typed_shape(reject):
    assert reject("deployment", {**TYPED, "mini_batch_size": 2}) == (
        "spec.yml: mini_batch_size: unknown field (not part of the schema)"
    )


def test_settings_instance_count_alias(load):
    spec = load("deployment", {**TYPED, "settings": {"instance_count": 2}})
    assert (spec.resources.instance_count, spec.settings.instance_count) == (2, None)


def test_summary_only_has_no_output_file(load):
    spec = load("deployment", {**TYPED, "settings": {"output_action": "summary_only"}})
    assert spec.settings.effective_output_file_name is None


def test_compute_prefix_stripped(load):
    assert load("deployment", {**TYPED, "compute": "azureml:batch-cluster"}).compute == "batch-cluster"


@pytest.mark.parametrize(
    "model",
    [
        "azureml:heart:1",
        "azureml:heart@latest",
        "azureml:heart:1.0.2",
        "models:/heart/3",
        "runs:/abc123/model",
    ],
)
def test_model_references(load, model):
    assert load("deployment", {**TYPED, "model": model}).model == model


def test_inline_mlflow_model_needs_no_code(load, tmp_path):
    data = {k: v for k, v in TYPED.items() if k != "code_configuration"}
    spec = load("deployment", {**data, "model": {"path": "../model", "type": "mlflow_model"}})
    assert spec.model.path == str((tmp_path / "../model").resolve())
    assert spec.model.type == "mlflow_model"
    assert spec.code_configuration is None


def test_inline_model_defaults_to_custom(load):
    spec = load("deployment", {**TYPED, "model": {"path": "m"}})
    assert (spec.model.type, spec.model.name, spec.model.version) == ("custom_model", None, None)


def test_environment_inline_and_reference(load, tmp_path):
    spec = load("deployment", {**TYPED, "environment": {"image": "img", "conda_file": "env/conda.yaml"}})
    assert spec.environment.conda_file == str(tmp_path / "env" / "conda.yaml")
    assert load("deployment", {**TYPED, "environment": "azureml:sklearn-env:2"}).environment == (
        "azureml:sklearn-env:2"
    )


def test_relative_paths_resolve_against_the_spec_folder_not_the_cwd(load, tmp_path, monkeypatch: pytest.MonkeyPatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load("deployment", {**TYPED, "model": {"path": "model", "type": "mlflow_model"}}, file="specs/d.yml")
    assert spec.code_configuration.code == str(tmp_path / "specs" / "code")
    assert spec.model.path == str(tmp_path / "specs" / "model")


def test_absolute_paths_and_uris_kept(load, tmp_path):
    spec = load(
        "deployment",
        {**TYPED, "code_configuration": {"code": str(tmp_path / "abs"), "scoring_script": "s.py"}},
    )
    assert spec.code_configuration.code == str(tmp_path / "abs")


def test_set_overrides_nested_settings(load):
    spec = load(
        "deployment",
        TYPED,
        ["settings.mini_batch_size=3", "settings.retry_settings.timeout=90", "description=from cli"],
    )
    assert (spec.settings.mini_batch_size, spec.settings.retry_settings.timeout) == (3, 90)
    assert spec.description == "from cli"


def test_set_value_is_validated(reject):
    assert reject("deployment", TYPED, ["settings.mini_batch_size=0"]) == (
        "spec.yml: settings.mini_batch_size: Input should be greater than 0"
    )


BAD_NAME = "name '{}' is invalid: use 1-255 letters, digits, '-' or '_', starting with a letter or digit"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"color": "red"}, "color: unknown field (not part of the schema)"),
        ({"settings": {"batch_size": 2}}, "settings.batch_size: unknown field (not part of the schema)"),
        ({"settings": {"mini_batch_size": 0}}, "settings.mini_batch_size: Input should be greater than 0"),
        (
            {"settings": {"mini_batch_size": "many"}},
            "settings.mini_batch_size: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"settings": {"max_concurrency_per_instance": 0}},
            "settings.max_concurrency_per_instance: Input should be greater than or equal to 1",
        ),
        (
            {"settings": {"output_action": "append"}},
            "settings.output_action: Input should be 'append_row' or 'summary_only'",
        ),
        (
            {"settings": {"output_action": "summary_only", "output_file_name": "x.csv"}},
            "settings: When output_action is set to summary_only, the output_file_name need not to be specified.",
        ),
        (
            {"settings": {"output_file_name": "out/x.csv"}},
            "settings.output_file_name: 'out/x.csv' must be a plain file name, without folders",
        ),
        (
            {"settings": {"error_threshold": -2}},
            "settings.error_threshold: Input should be greater than or equal to -1",
        ),
        (
            {"settings": {"retry_settings": {"max_retries": -1}}},
            "settings.retry_settings.max_retries: Input should be greater than or equal to 0",
        ),
        (
            {"settings": {"retry_settings": {"timeout": 0}}},
            "settings.retry_settings.timeout: Input should be greater than 0",
        ),
        (
            {"settings": {"logging_level": "trace"}},
            "settings.logging_level: Input should be 'warning', 'info' or 'debug'",
        ),
        (
            {"resources": {"instance_count": 0}},
            "resources.instance_count: Input should be greater than or equal to 1",
        ),
        ({"type": "pipeline"}, "type: pipeline: this is a pipeline deployment, not a model deployment"),
        ({"name": "-dep"}, "name: " + BAD_NAME.format("-dep")),
        ({"name": "a/b"}, "name: " + BAD_NAME.format("a/b")),
        ({"name": "x" * 256}, "name: " + BAD_NAME.format("x" * 256)),
        (
            {"endpoint_name": "e1"},
            "endpoint_name: The name for an endpoint must be at least 3 and at most 32 characters long "
            "(inclusive of both limits).",
        ),
        (
            {"model": "heart"},
            "model: 'heart' is not a model reference: use azureml:<name>:<version>, azureml:<name>@latest, "
            "models:/<name>/<version>, runs:/<run-id>/<path>, or an inline {path, type}",
        ),
        (
            {"model": {"path": "m", "type": "triton_model"}},
            "model.type: Input should be 'mlflow_model' or 'custom_model'",
        ),
        ({"model": {"type": "mlflow_model"}}, "model.path: field required"),
        (
            {"environment": "sklearn-env"},
            "environment: must be azureml:<name>[:<version>|@latest] or an inline {image, conda_file}",
        ),
        (
            {"code_configuration": {"code": "code", "scoring_script": "../score.py"}},
            "code_configuration.scoring_script: must be a path inside the code folder",
        ),
        ({"code_configuration": {"code": "code"}}, "code_configuration.scoring_script: field required"),
    ],
)
def test_rejections(reject, change, message):
    assert reject("deployment", {**TYPED, **change}) == f"spec.yml: {message}"


def test_custom_inline_model_needs_code(reject):
    data = {k: v for k, v in TYPED.items() if k != "code_configuration"}
    assert reject("deployment", {**data, "model": {"path": "m", "type": "custom_model"}}) == (
        "spec.yml: code_configuration is required unless the model is an MLflow model (type: mlflow_model)"
    )


def test_missing_required_fields(reject):
    assert reject("deployment", {"name": "dep1", "endpoint_name": "ep1"}) == "spec.yml: model: field required"


def test_more_errors_are_counted_on_the_same_line(reject):
    assert reject("deployment", {**TYPED, "color": 1, "size": 2}) == (
        "spec.yml: color: unknown field (not part of the schema) (and 1 more)"
    )


def test_error_names_the_file(reject):
    assert reject("deployment", {**TYPED, "color": 1}, file="deployment.yml") == (
        "deployment.yml: color: unknown field (not part of the schema)"
    )


def test_legacy_flat_shape_with_a_scalar_settings_is_one_line(reject):
    # found by tests/hardening/test_spec_fuzz.py: `settings: true` beside top-level run settings crashed
    data = {k: v for k, v in TYPED.items() if k != "type"}
    assert reject("deployment", {**data, "settings": True, "retry_settings": {}}) == (
        "spec.yml: settings: Input should be a valid dictionary"
    )
