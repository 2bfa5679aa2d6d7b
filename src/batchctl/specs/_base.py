"""Shared pieces of every spec model: strict models and the name rules."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
ASSET_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
VERSION_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")

ENDPOINT_LENGTH_MESSAGE = (
    "The name for an endpoint must be at least 3 and at most 32 characters long "
    "(inclusive of both limits)."
)
ENDPOINT_CHARS_MESSAGE = (
    "The name for an endpoint must start with an upper- or lowercase letter and only consist of "
    "'-'s and alphanumeric characters."
)


def _printable(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")


def endpoint_name_problem(value: str) -> str | None:
    if not 3 <= len(value) <= 32:
        return ENDPOINT_LENGTH_MESSAGE
    if not ENDPOINT_NAME_RE.fullmatch(value):
        return ENDPOINT_CHARS_MESSAGE
    return None


def asset_name_problem(value: str) -> str | None:
    if not ASSET_NAME_RE.fullmatch(value):
        return (
            f"name '{_printable(value)}' is invalid: use 1-255 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return None


def version_problem(value: str) -> str | None:
    if not VERSION_RE.fullmatch(value):
        return f"version '{_printable(value)}' is invalid: use letters, digits, '.', '-' or '_'"
    return None


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
