"""Shared pieces of every spec model: strict models and the name rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from batchctl.specs.names import (  # noqa: E402,F401 - re-exported for the spec models
    ASSET_NAME_RE,
    ENDPOINT_CHARS_MESSAGE,
    ENDPOINT_LENGTH_MESSAGE,
    ENDPOINT_NAME_RE,
    VERSION_RE,
    asset_name_problem,
    endpoint_name_problem,
    version_problem,
)


def _check_endpoint_name(value: str) -> str:
    problem = endpoint_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value.lower()


def _check_asset_name(value: str) -> str:
    problem = asset_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_version(value: str) -> str:
    problem = version_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads `mini_batch_size: true` as 1: a boolean is never a number in a spec
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
EndpointName = Annotated[str, AfterValidator(_check_endpoint_name)]
AssetName = Annotated[str, AfterValidator(_check_asset_name)]
Version = Annotated[str, BeforeValidator(_to_str), AfterValidator(_check_version)]
Tags = dict[str, Annotated[str, BeforeValidator(_to_str)]]


class StrictModel(BaseModel):
    """Unknown keys are errors (Azure's UNKNOWN_FIELD); `$schema` is accepted and dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_schema(cls, data: Any) -> Any:
        if isinstance(data, dict) and "$schema" in data:
            data = {k: v for k, v in data.items() if k != "$schema"}
        return data


def strip_azureml(value: str) -> str:
    return value[len("azureml:") :] if value.startswith("azureml:") else value
