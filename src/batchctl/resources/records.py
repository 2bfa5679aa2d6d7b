"""The typed records `resources` returns for the registry's endpoints, deployments and computes.

A record is read from `registry.json` with `load()` and turned back into the dict the front ends print
with `dump()`: the same keys, values and key order as the stored record (plus a deployment's code folder
resolved against the workspace root), so `show` and the REST API print what they printed before the
records were typed. Unknown keys are kept (`extra="allow"`): a registry written by another version of
batchctl loads, and a kind of deployment added later (`type: pipeline`) keeps its own fields.

Only `resources/` writes the registry; these records are what the layers above read (`JobSettings.merge`
takes a `DeploymentRecord` and a `ComputeRecord`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


def _ordered_like(value: Any, original: Any) -> Any:
    """`value` (a dump) with its dict keys in the order `original` (the stored record) had them."""
    if isinstance(value, dict) and isinstance(original, Mapping):
        keys = [k for k in original if k in value] + [k for k in value if k not in original]
        return {k: _ordered_like(value[k], original.get(k)) for k in keys}
    if isinstance(value, list) and isinstance(original, list) and len(value) == len(original):
        return [_ordered_like(v, o) for v, o in zip(value, original, strict=True)]
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RegistryRecord(_Record):
    """A top-level record of a registry section."""

    _stored: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Self:
        record = cls.model_validate(dict(data))
        record._stored = dict(data)
        return record

    def dump(self) -> dict[str, Any]:
        """The record as a JSON-ready dict: the stored keys in their order, and only those (a field
        this version added and the stored record lacks is not printed)."""
        data: dict[str, Any] = _ordered_like(self.model_dump(mode="json", exclude_unset=True), self._stored)
        return data


class EndpointDefaults(_Record):
    deployment_name: str | None = None


class EndpointRecord(RegistryRecord):
    name: str
    description: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    auth_mode: str = "aad_token"
    defaults: EndpointDefaults = Field(default_factory=EndpointDefaults)
    provisioning_state: str | None = None
    spec_hash: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def default_deployment(self) -> str | None:
        return self.defaults.deployment_name


class RetryRecord(_Record):
    max_retries: int = 3
    timeout: int = 30


class SettingsRecord(_Record):
    """A deployment's `settings`, as the deployment spec validated and stored them (same defaults)."""

    max_concurrency_per_instance: int = 1
    mini_batch_size: int = 10
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str | None = None
    retry_settings: RetryRecord = Field(default_factory=RetryRecord)
    error_threshold: int = -1
    logging_level: str = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)


class ResourcesRecord(_Record):
    instance_count: int = 1
    properties: dict[str, Any] = Field(default_factory=dict)


class CodeRecord(_Record):
    code: str  # the code snapshot inside the workspace (resolved: a stored relative path is made absolute)
    scoring_script: str
    source_code: str | None = None  # the folder it was copied from


class DeploymentRecord(RegistryRecord):
    """A deployment. `type` is a plain string: kinds other than `model` keep their own fields as extras."""

    name: str
    endpoint_name: str
    type: str = "model"
    description: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None  # the registered model's id, azureml:<name>:<version>
    model_type: str | None = None
    code_configuration: CodeRecord | None = None
    environment: str | dict[str, Any] | None = None
    compute: str = "local"
    compute_type: str | None = None
    resources: ResourcesRecord = Field(default_factory=ResourcesRecord)
    settings: SettingsRecord = Field(default_factory=SettingsRecord)
    provisioning_state: str | None = None
    spec_hash: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_registry(cls, data: Mapping[str, Any], root: Path) -> Self:
        """A stored deployment, its code snapshot's path (a pipeline deployment's component file and folder)
        resolved against the workspace `root`."""
        data = dict(data)
        code = data.get("code_configuration")
        if isinstance(code, dict) and isinstance(code.get("code"), str):
            data["code_configuration"] = {**code, "code": str(root / code["code"])}
        if data.get("type") == "pipeline":  # its component file and an inline component's folder
            comp = data.get("component")
            if isinstance(comp, str) and not comp.startswith("azureml:"):
                data["component"] = str(root / comp)
            if isinstance(data.get("base"), str):
                data["base"] = str(root / data["base"])
        return cls.load(data)

    @property
    def code_dir(self) -> str | None:
        return self.code_configuration.code if self.code_configuration is not None else None


class ComputeRecord(RegistryRecord):
    name: str
    type: str
    description: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    max_workers: int | None = None
    address: str | None = None  # a Ray cluster's
    connect_timeout: int | float | None = None  # a Ray cluster's
    runs_as: str | None = None  # an amlcompute cluster runs as `local`
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def job_compute_type(self) -> str:
        """The compute type a job records: an amlcompute cluster runs its jobs locally."""
        return "local" if self.type == "amlcompute" else self.type
