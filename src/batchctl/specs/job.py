"""The invocation file of `endpoint invoke -f` / `job create -f` (Azure's inputs:/outputs: file)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from batchctl.specs._base import AssetName, EndpointName, Int, StrictModel, Tags
from batchctl.specs.deployment import check_file_name, check_no_control_characters


class JobInput(StrictModel):
    type: Literal["uri_folder", "uri_file"] | None = None
    path: str = Field(min_length=1)
    mode: str | None = None


class JobOutput(StrictModel):
    type: Literal["uri_folder", "uri_file"] = "uri_folder"
    path: str | None = None
    mode: str | None = None


class JobRetrySettings(StrictModel):
    max_retries: Int | None = Field(None, ge=0)
    timeout: Int | None = Field(None, gt=0, le=259200)


class RunOverrides(StrictModel):
    """The settings one job may override (Azure's overridable set): from the invocation file, `--set`
    or the `-m`/`-c` flags. None means "not overridden"."""

    mini_batch_size: Int | None = Field(None, gt=0)
    instance_count: Int | None = Field(None, ge=1)
    error_threshold: Int | None = Field(None, ge=-1)
    retry_settings: JobRetrySettings | None = None
    output_file_name: str | None = None
    # batchctl's own (Azure has no field for them; documented in README "Big files and output formats")
    split: Literal["auto", "always", "never"] | None = None
    keep_columns: list[str] | None = None
    reuse: Literal["never", "stamp", "sha256"] | None = None  # incremental re-scoring (jobs/reuse.py)

    @field_validator("keep_columns", mode="before")
    @classmethod
    def _columns(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list) and any(not isinstance(c, str) or not c.strip() for c in value):
            raise ValueError("keep_columns: give column names, e.g. id,region")
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("keep_columns: a column is named twice")
        return value

    @field_validator("output_file_name")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        return None if value is None else check_file_name(value)

    def over(self, base: RunOverrides) -> RunOverrides:
        """These overrides laid over `base`: a field set here wins, retry settings field by field."""
        merged = base.model_dump(exclude_none=True)
        mine = self.model_dump(exclude_none=True)
        retry = {**merged.get("retry_settings", {}), **mine.pop("retry_settings", {})}
        merged.update(mine)
        if retry:
            merged["retry_settings"] = retry
        return RunOverrides.model_validate(merged)


class InvocationSpec(RunOverrides):
    inputs: dict[str, JobInput] = Field(default_factory=dict)
    outputs: dict[str, JobOutput] = Field(default_factory=dict)
    endpoint: EndpointName | None = None
    deployment: AssetName | None = None
    name: AssetName | None = None
    experiment_name: AssetName | None = None
    display_name: str | None = None
    description: str | None = None
    tags: Tags = Field(default_factory=dict)

    @field_validator("display_name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        return None if value is None else check_no_control_characters(value)

    def overrides(self) -> RunOverrides:
        return RunOverrides.model_validate(self.model_dump(include=set(RunOverrides.model_fields), exclude_none=True))

    @model_validator(mode="after")
    def _one_input(self) -> InvocationSpec:
        if len(self.inputs) > 1:
            raise ValueError(f"model deployments take exactly one input; this file names {len(self.inputs)}")
        unknown = set(self.outputs) - {"score"}
        if unknown:
            raise ValueError(f"model deployments have one output named 'score', not {sorted(unknown)}")
        return self
