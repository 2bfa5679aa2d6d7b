"""Batch deployments: the typed `type: model` shape with `settings:` and the legacy flat shape,
both normalised to one model."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator

from batchctl.secrets import reference_problem
from batchctl.specs._base import AssetName, EndpointName, Int, StrictModel, Tags, Version, strip_azureml
from batchctl.specs.names import control_character_problem

SETTINGS_KEYS = (
    "max_concurrency_per_instance",
    "mini_batch_size",
    "output_action",
    "output_file_name",
    "retry_settings",
    "error_threshold",
    "logging_level",
    "environment_variables",
)
DEFAULT_OUTPUT_FILE_NAME = "predictions.csv"

_MODEL_REF_RE = re.compile(
    r"^(azureml:[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}(:[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}|@latest)"
    r"|models:/.+|runs:/.+)$"
)


def _check_env_value(value: str) -> str:
    problem = reference_problem(value)
    if problem:
        raise ValueError(problem)
    return value


EnvValue = Annotated[str, AfterValidator(_check_env_value)]


def check_file_name(value: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value:
        raise ValueError(f"'{value}' must be a plain file name, without folders")
    return check_no_control_characters(value)


def check_no_control_characters(value: str) -> str:
    problem = control_character_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class RetrySettings(StrictModel):
    max_retries: Int = Field(3, ge=0, description="Retries of a failed mini-batch after its first try.")
    timeout: Int = Field(30, gt=0, le=259200, description="Seconds allowed for one run() of a mini-batch.")


class BatchSettings(StrictModel):
    max_concurrency_per_instance: Int = Field(
        1, ge=1, le=256, description="Worker processes per instance.", strict=True
    )
    mini_batch_size: Int = Field(10, gt=0, description="Files per run() call.")
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str | None = Field(None, description="Results file name; predictions.csv by default.")
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    error_threshold: Int = Field(-1, ge=-1, description="-1 ignores failures; N fails the job past N.")
    logging_level: Literal["warning", "info", "debug"] = "info"
    environment_variables: dict[str, EnvValue] = Field(
        default_factory=dict, description="Set in every worker; ${env:NAME} is read from the environment at job start."
    )
    instance_count: Int | None = Field(None, ge=1, description="SDK alias of resources.instance_count.")

    @field_validator("logging_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _env_to_str(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (str(v) if isinstance(v, int | float | bool) else v) for k, v in value.items()}
        return value

    @field_validator("output_file_name")
    @classmethod
    def _plain_file_name(cls, value: str | None) -> str | None:
        return None if value is None else check_file_name(value)

    @model_validator(mode="after")
    def _summary_only_has_no_file(self) -> BatchSettings:
        if self.output_action == "summary_only" and self.output_file_name is not None:
            raise ValueError(
                "When output_action is set to summary_only, the output_file_name need not to be specified."
            )
        return self

    @property
    def effective_output_file_name(self) -> str | None:
        if self.output_action == "summary_only":
            return None
        return self.output_file_name or DEFAULT_OUTPUT_FILE_NAME


class InlineModel(StrictModel):
    path: str = Field(description="Local folder or file of the model, relative to the spec file.")
    name: AssetName | None = None
    version: Version | None = None
    type: Literal["mlflow_model", "custom_model"] = "custom_model"
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: Tags = Field(default_factory=dict)


def _model_kind(value: Any) -> str:
    return "reference" if isinstance(value, str) else "inline"


def _check_model_ref(value: str) -> str:
    if not _MODEL_REF_RE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a model reference: use azureml:<name>:<version>, azureml:<name>@latest, "
            "models:/<name>/<version>, runs:/<run-id>/<path>, or an inline {path, type}"
        )
    return value


ModelRefStr = Annotated[str, Field(min_length=1)]
ModelField = Annotated[
    Annotated[ModelRefStr, Tag("reference")] | Annotated[InlineModel, Tag("inline")],
    Discriminator(_model_kind),
]


class CodeConfiguration(StrictModel):
    code: str = Field(description="Folder with the scoring script, relative to the spec file.")
    scoring_script: str = Field(min_length=1, description="File inside `code` with init() and run().")

    @field_validator("scoring_script")
    @classmethod
    def _inside_code(cls, value: str) -> str:
        if value.startswith(("/", "\\")) or ".." in value.replace("\\", "/").split("/"):
            raise ValueError("must be a path inside the code folder")
        return check_no_control_characters(value)


class InlineEnvironment(StrictModel):
    name: str | None = None
    version: Version | None = None
    image: str | None = None
    conda_file: str | None = None
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: Tags = Field(default_factory=dict)
    os_type: str | None = None
    build: dict[str, Any] | None = None
    inference_config: dict[str, Any] | None = None


class Resources(StrictModel):
    instance_count: Int = Field(1, ge=1, le=1024)
    properties: dict[str, Any] = Field(default_factory=dict)


class DeploymentSpec(StrictModel):
    """modelBatchDeployment.schema.json and the legacy batchDeployment.schema.json, normalised."""

    name: AssetName
    endpoint_name: EndpointName
    type: Literal["model"] = "model"
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: Tags = Field(default_factory=dict)
    model: ModelField
    code_configuration: CodeConfiguration | None = None
    environment: str | InlineEnvironment | None = None
    compute: str = Field("local", description="azureml:<name> or <name>; `local` by default.")
    resources: Resources = Field(default_factory=Resources)
    settings: BatchSettings = Field(default_factory=BatchSettings)

    @model_validator(mode="before")
    @classmethod
    def _normalise_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind = data.get("type")
        if kind == "pipeline":
            # read with PipelineDeploymentSpec (deployment_spec_class); only a model deployment's path gets here
            raise ValueError("type: pipeline: this is a pipeline deployment, not a model deployment")
        flat = [k for k in (*SETTINGS_KEYS, "instance_count") if k in data]
        if kind is None and flat:
            # legacy shape: run settings at the top level
            if "instance_count" in data and "resources" in data:
                raise ValueError("Can't set instance_count when resources is provided.")
            settings = data.get("settings") or {}
            if not isinstance(settings, dict):  # a scalar `settings:` beside top-level run settings
                raise ValueError("settings: Input should be a valid dictionary")
            settings = dict(settings)
            for key in flat:
                settings[key] = data.pop(key)
            data["settings"] = settings
        return data

    @field_validator("model", mode="after")
    @classmethod
    def _model_ref(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _check_model_ref(value)
        return value

    @field_validator("compute", mode="before")
    @classmethod
    def _compute_name(cls, value: Any) -> Any:
        return strip_azureml(value) if isinstance(value, str) else value

    @field_validator("environment", mode="after")
    @classmethod
    def _env_ref(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("azureml:"):
            raise ValueError("must be azureml:<name>[:<version>|@latest] or an inline {image, conda_file}")
        return value

    @model_validator(mode="after")
    def _instance_count_alias(self) -> DeploymentSpec:
        if self.settings.instance_count is not None:
            if "instance_count" in self.resources.model_fields_set:
                if self.resources.instance_count != self.settings.instance_count:
                    raise ValueError("settings.instance_count and resources.instance_count disagree")
            self.resources.instance_count = self.settings.instance_count
            self.settings.instance_count = None
        if isinstance(self.model, InlineModel) and self.model.type != "mlflow_model":
            if self.code_configuration is None:
                raise ValueError(
                    "code_configuration is required unless the model is an MLflow model (type: mlflow_model)"
                )
        return self

    @property
    def workers(self) -> int:
        return self.resources.instance_count * self.settings.max_concurrency_per_instance


class PipelineDeploymentSettings(StrictModel):
    """pipelineComponentBatchDeployment.schema.json `settings`."""

    continue_on_step_failure: bool = Field(False, description="Independent branches go on after a step fails.")
    default_compute: str | None = Field(None, description="The compute the steps run on (azureml:<name> or <name>).")
    default_datastore: str | None = Field(None, description="Where promoted outputs go by default.")

    @field_validator("default_compute", "default_datastore", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return strip_azureml(value) if isinstance(value, str) else value


class PipelineDeploymentSpec(StrictModel):
    """pipelineComponentBatchDeployment.schema.json: a pipeline component (`component:` a file, an
    `azureml:` reference, or inline) or a pipeline job (`job_definition: azureml:<job name>`)."""

    name: AssetName
    endpoint_name: EndpointName
    type: Literal["pipeline"]
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: Tags = Field(default_factory=dict)
    component: str | dict[str, Any] | None = None
    job_definition: str | None = None
    settings: PipelineDeploymentSettings = Field(default_factory=PipelineDeploymentSettings)

    @field_validator("job_definition")
    @classmethod
    def _job_ref(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("azureml:") or value.startswith("azureml://")):
            raise ValueError("must be azureml:<pipeline job name>")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PipelineDeploymentSpec:
        if (self.component is None) == (self.job_definition is None):
            raise ValueError("give either component (a pipeline component) or job_definition (a pipeline job)")
        return self


def deployment_spec_class(data: Any) -> type[DeploymentSpec] | type[PipelineDeploymentSpec]:
    """The model a deployment's YAML is read with: `type: pipeline` or the model shapes."""
    return PipelineDeploymentSpec if isinstance(data, dict) and data.get("type") == "pipeline" else DeploymentSpec
