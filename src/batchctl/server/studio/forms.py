"""What the Studio forms send, as the YAML the CLI takes (the wizard) or the typed JobRequest that
`endpoint invoke` builds too (Create job), and the CLI's error messages mapped back to the form field they are about."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchctl.jobs.request import JobRequest
    from batchctl.specs.job import RunOverrides

DEPLOYMENT_SCHEMA = "https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json"
ENDPOINT_SCHEMA = "https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json"

# a SpecError's `field.path` -> the form field it is about
WIZARD_FIELDS = {
    "deployment.yml": {
        "name": "deployment_name",
        "endpoint_name": "endpoint_name",
        "description": "deployment_description",
        "model": "model",
        "model.path": "model_path",
        "code_configuration": "code_path",
        "code_configuration.code": "code_path",
        "code_configuration.scoring_script": "scoring_script",
        "environment": "environment",
        "environment.conda_file": "conda_file",
        "compute": "compute",
        "resources.instance_count": "instance_count",
        "settings.instance_count": "instance_count",
        "settings.max_concurrency_per_instance": "max_concurrency_per_instance",
        "settings.mini_batch_size": "mini_batch_size",
        "settings.output_action": "output_action",
        "settings.output_file_name": "output_file_name",
        "settings.retry_settings.max_retries": "max_retries",
        "settings.retry_settings.timeout": "timeout",
        "settings.error_threshold": "error_threshold",
        "settings.logging_level": "logging_level",
        "settings": "output_file_name",  # the summary_only / output_file_name rule
    },
    "endpoint.yml": {"name": "endpoint_name", "description": "endpoint_description"},
}

# the wizard's radio choices: the fields each option shows (the templates' .switch panels hide the others)
WIZARD_PANELS = {
    "model_kind": {
        "registered": ("model",),
        "custom": ("model_path", "code_path", "scoring_script", "environment", "conda_file"),
    },
    "env_kind": {"none": (), "registered": ("environment",), "conda": ("conda_file",)},
    "endpoint_mode": {"new": ("endpoint_name", "endpoint_description"), "existing": ("existing_endpoint",)},
}


def hidden_fields(form: dict[str, str], panels: dict[str, dict[str, tuple[str, ...]]]) -> set[str]:
    """The fields of the options not chosen in `form` (an error about one would not be seen there)."""
    hidden: set[str] = set()
    for choice, options in panels.items():
        chosen = form.get(choice)
        if chosen not in options:  # not a choice of this form (Add deployment fixes the endpoint)
            continue
        for option, fields in options.items():
            if option != chosen:
                hidden.update(fields)
    return hidden


# the Create job form's input kinds (its `input_kind` radio buttons); any other value is a 400
INPUT_KINDS = ("data", "datastore", "path")

# The Create job form's job settings (specs/job.RunOverrides fields): whole numbers checked on the form
# itself, then form field -> the field it sets (dotted: nested), then the settings the form does not offer.
# tests/unit/jobs/test_job_settings.py holds the form to RunOverrides.
JOB_NUMBERS = ("mini_batch_size", "instance_count")
JOB_OVERRIDES = {
    "error_threshold": "error_threshold",
    "max_retries": "retry_settings.max_retries",
    "timeout": "retry_settings.timeout",
    "output_file_name": "output_file_name",
    "max_concurrency_per_instance": "max_concurrency_per_instance",  # not per job: refused as --set refuses it
}
NOT_ON_FORM = ("split", "keep_columns", "reuse")
# an inline environment needs an image in Azure ML's YAML (batchctl reads only its conda file): Azure's base image
INLINE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
ENV_MANAGERS = ("auto", "local", "uv")
JOB_FIELDS = {
    "env_manager": "env_manager",
    "mini_batch_size": "mini_batch_size",
    "instance_count": "instance_count",
    "error_threshold": "error_threshold",
    "retry_settings.max_retries": "max_retries",
    "max_retries": "max_retries",
    "retry_settings.timeout": "timeout",
    "timeout": "timeout",
    "output_file_name": "output_file_name",
    "max_concurrency_per_instance": "max_concurrency_per_instance",
}


def _number(value: str) -> Any:
    """An integer when the text is one; the text otherwise, so that the spec's own rule names the problem."""
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        return text


def wizard_specs(form: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the endpoint YAML when the wizard makes a new endpoint, else None; the deployment YAML)."""
    new_endpoint = form.get("endpoint_mode", "new") == "new"
    endpoint_name = (form.get("endpoint_name") if new_endpoint else form.get("existing_endpoint")) or ""
    endpoint = None
    if new_endpoint:
        endpoint = {"$schema": ENDPOINT_SCHEMA, "name": endpoint_name.strip()}
        if form.get("endpoint_description", "").strip():
            endpoint["description"] = form["endpoint_description"].strip()
        endpoint["auth_mode"] = "aad_token"
    deployment: dict[str, Any] = {
        "$schema": DEPLOYMENT_SCHEMA,
        "name": form.get("deployment_name", "").strip(),
        "endpoint_name": endpoint_name.strip(),
        "type": "model",
    }
    if form.get("deployment_description", "").strip():
        deployment["description"] = form["deployment_description"].strip()
    if form.get("model_kind", "registered") == "custom":
        deployment["model"] = {"path": form.get("model_path", "").strip(), "type": "custom_model"}
        deployment["code_configuration"] = {
            "code": form.get("code_path", "").strip(),
            "scoring_script": form.get("scoring_script", "").strip(),
        }
        kind = form.get("env_kind", "none")
        if kind == "registered":  # Studio's "code and environment" step: a registered environment
            deployment["environment"] = form.get("environment", "").strip()
        elif kind == "conda":  # or a conda file, as an inline environment
            deployment["environment"] = {"image": INLINE_IMAGE, "conda_file": form.get("conda_file", "").strip()}
    else:
        deployment["model"] = form.get("model", "").strip()
    compute = form.get("compute", "").strip() or "local"
    deployment["compute"] = compute if compute == "local" else f"azureml:{compute}"
    deployment["resources"] = {"instance_count": _number(form.get("instance_count", "1") or "1")}
    settings: dict[str, Any] = {
        "max_concurrency_per_instance": _number(form.get("max_concurrency_per_instance", "1") or "1"),
        "mini_batch_size": _number(form.get("mini_batch_size", "10") or "10"),
        "output_action": form.get("output_action", "append_row") or "append_row",
    }
    if form.get("output_file_name", "").strip():
        settings["output_file_name"] = form["output_file_name"].strip()
    settings["retry_settings"] = {
        "max_retries": _number(form.get("max_retries", "3") or "3"),
        "timeout": _number(form.get("timeout", "30") or "30"),
    }
    settings["error_threshold"] = _number(form.get("error_threshold", "-1") or "-1")
    settings["logging_level"] = form.get("logging_level", "info") or "info"
    deployment["settings"] = settings
    return endpoint, deployment


def field_of(message: str, fields: dict[str, dict[str, str]] | dict[str, str]) -> str | None:
    """The form field a CLI error message is about: `source: field.path: rule` for spec errors, or a
    message that starts with the option's name."""
    source, _, rest = message.partition(": ")
    found = fields.get(source)
    table = found if isinstance(found, dict) else None
    if table is not None:
        path = rest.partition(": ")[0]
        while path:
            if path in table:
                return table[path]
            path = path.rpartition(".")[0]
        return None
    flat = {k: v for k, v in fields.items() if isinstance(v, str)}
    for key in sorted(flat, key=len, reverse=True):
        if source.strip("-").replace("-", "_") == key or source.endswith(key) or rest.startswith(f"{key}"):
            return flat[key]
    return None


def job_options(form: dict[str, str], endpoint: str) -> tuple[JobRequest, dict[str, str]]:
    """The Create job form as the typed request `api.submit_job` takes (its settings are read by
    `job_overrides`, once the path is confined), and errors found on the form itself."""
    from batchctl import api

    errors: dict[str, str] = {}
    source = _job_input(form, errors)
    request = api.JobRequest(
        endpoint=endpoint,
        deployment=form.get("deployment") or None,
        input=source,
        input_type="uri_file" if form.get("input_type") == "uri_file" else "uri_folder",
    )
    out_store, out_path = form.get("output_datastore", "").strip(), form.get("output_path", "").strip().lstrip("/")
    if out_path and not out_store:
        errors["output_datastore"] = "choose the datastore of the output path"
    elif out_store and out_path:
        request.output_path = f"azureml://datastores/{out_store}/paths/{out_path}"
    elif out_store:
        errors["output_path"] = "give a path inside the output datastore"
    for field in JOB_NUMBERS:
        text = form.get(field, "").strip()
        if text and not _whole(text):
            errors[field] = f"'{text}' is not a whole number"
    manager = form.get("env_manager", "").strip()  # empty: the deployment's, settings.json's, else auto
    if manager and manager not in ENV_MANAGERS:
        errors["env_manager"] = f"--env-manager: '{manager}' is not one of {', '.join(ENV_MANAGERS)}"
    elif manager:
        request.env_manager = manager
    return request, errors


def job_overrides(form: dict[str, str]) -> RunOverrides:
    """The form's job settings, typed; a bad value is a SpecError that `field_of` puts by its field."""
    from batchctl.jobs.request import typed_overrides
    from batchctl.specs.load import parse_set_value

    numbers = {field: int(form[field].strip()) for field in JOB_NUMBERS if _whole(form.get(field, "").strip())}
    nested: dict[str, Any] = {}
    for field, path in JOB_OVERRIDES.items():
        text = form.get(field, "").strip()
        if text:
            *parents, leaf = path.split(".")
            node = nested
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = parse_set_value(text)  # read as `--set` reads a value
    return typed_overrides(numbers, nested)


def _whole(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _job_input(form: dict[str, str], errors: dict[str, str]) -> str:
    """The input the form names (a data asset, a datastore path or a public path), as `--input` takes it."""
    kind = form.get("input_kind", "data")
    if kind == "data":
        name, version = form.get("data_asset", "").strip(), form.get("data_version", "").strip() or "latest"
        if not name:
            errors["data_asset"] = "choose a registered dataset"
        return f"azureml:{name}@latest" if version == "latest" else f"azureml:{name}:{version}"
    if kind == "datastore":
        store, path = form.get("datastore", "").strip(), form.get("datastore_path", "").strip().lstrip("/")
        if not store:
            errors["datastore"] = "choose a datastore"
        if not path:
            errors["datastore_path"] = "give a path inside the datastore"
        return f"azureml://datastores/{store}/paths/{path}"
    if kind == "path":
        source = form.get("public_path", "").strip()
        if not source:
            errors["public_path"] = "give a public path or URL"
        return source
    errors["input_kind"] = f"input_kind: '{kind}' is not one of {', '.join(INPUT_KINDS)}"
    return ""
