"""Registered assets: models, data, environments, datastores and computes."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from batchctl.specs._base import AssetName, Float, Int, StrictModel, Tags, Version


class _Common(StrictModel):
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: Tags = Field(default_factory=dict)


class ModelSpec(_Common):
    name: AssetName
    version: Version | None = Field(None, description="Auto-incremented from 1 when omitted.")
    type: Literal["mlflow_model", "custom_model"] = "custom_model"
    path: str = Field(description="Local folder or file, relative to the spec file.")
    stage: str | None = None


class DataSpec(_Common):
    name: AssetName
    version: Version | None = Field(None, description="Auto-incremented from 1 when omitted.")
    type: Literal["uri_file", "uri_folder"] = "uri_folder"
    path: str = Field(min_length=1)

    @field_validator("type", mode="before")
    @classmethod
    def _no_mltable(cls, value: Any) -> Any:
        if value == "mltable":
            raise ValueError("mltable data assets are not supported by batch endpoints; use uri_folder")
        return value


class BuildContext(StrictModel):
    path: str = Field(min_length=1, description="Build context folder (relative to the spec file) or a URL.")
    dockerfile_path: str = Field("Dockerfile", min_length=1, description="The Dockerfile, inside the context.")


class EnvironmentSpec(_Common):
    """environment.schema.json. Recorded, with the conda file copied into the workspace; jobs still run in
    the current interpreter (README, "Decisions where Azure is vague")."""

    name: AssetName
    version: Version | None = Field(None, description="Auto-incremented from 1 when omitted.")
    image: str | None = Field(None, min_length=1)
    conda_file: str | dict[str, Any] | None = Field(
        None, description="A conda YAML file (relative to the spec file), or its content inline."
    )
    build: BuildContext | None = None
    os_type: Literal["linux", "windows"] = "linux"
    inference_config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _image_or_build(self) -> EnvironmentSpec:
        # Azure's rules: one of image or build; a conda file is built on top of an image
        if self.image is None and self.build is None:
            raise ValueError("one of image or build is required")
        if self.image is not None and self.build is not None:
            raise ValueError("image and build are mutually exclusive")
        if self.conda_file is not None and self.image is None:
            raise ValueError("conda_file needs image (with build, the Dockerfile installs the dependencies)")
        return self


class AzureBlobDatastore(_Common):
    name: AssetName
    type: Literal["azure_blob"]
    account_name: str = Field(min_length=3, max_length=24, pattern=r"^[a-z0-9]+$")
    container_name: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    endpoint: str = "core.windows.net"
    protocol: Literal["https", "http", "wasbs"] = "https"
    credentials: dict[str, Any] | None = Field(
        None,
        description="Accepted for Azure compatibility and never stored: credentials come from the environment.",
    )

    @model_validator(mode="after")
    def _endpoint(self) -> AzureBlobDatastore:
        _check_endpoint(self.account_name, self.endpoint, self.protocol)
        return self


class AdlsGen2Datastore(_Common):
    name: AssetName
    type: Literal["azure_data_lake_gen2"]
    account_name: str = Field(min_length=3, max_length=24, pattern=r"^[a-z0-9]+$")
    filesystem: str = Field(min_length=3, max_length=63)
    endpoint: str = "core.windows.net"
    protocol: Literal["https", "http", "abfss"] = "https"
    credentials: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _endpoint(self) -> AdlsGen2Datastore:
        _check_endpoint(self.account_name, self.endpoint, self.protocol)
        return self


def _check_endpoint(account_name: str, endpoint: str, protocol: str) -> None:
    """endpoint: a DNS suffix (core.windows.net) or an account URL such as Azurite's
    http://127.0.0.1:10000/devstoreaccount1 (docs/storage.md)."""
    from batchctl.errors import SpecError
    from batchctl.urls import account_url

    if "://" not in endpoint and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", endpoint):
        raise ValueError("must be a DNS suffix such as core.windows.net or an http(s):// account URL")
    try:
        account_url(account_name, endpoint, protocol)
    except SpecError as exc:
        raise ValueError(exc.message) from None


class LocalDatastore(_Common):
    name: AssetName
    type: Literal["local"]
    path: str = Field(min_length=1)


DatastoreSpec = Annotated[
    Annotated[AzureBlobDatastore, Tag("azure_blob")]
    | Annotated[AdlsGen2Datastore, Tag("azure_data_lake_gen2")]
    | Annotated[LocalDatastore, Tag("local")],
    Discriminator("type"),
]


class LocalCompute(_Common):
    name: AssetName
    type: Literal["local"]
    max_workers: Int | None = Field(None, ge=1, le=1024)


class RayCompute(_Common):
    name: AssetName
    type: Literal["ray"]
    address: str = Field(min_length=1, description="ray://host:10001, auto, or local.")
    max_workers: Int | None = Field(None, ge=1, le=1024)
    connect_timeout: Float | None = Field(
        None, gt=0, le=3600, description="Seconds to wait for the cluster's address to answer (default 30)."
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value in ("local", "auto") or value.startswith("ray://") or ":" in value:
            return value
        raise ValueError("must be ray://<host>:<port>, <host>:<port>, auto, or local")


class AmlCompute(_Common):
    """Azure's cluster type: accepted so Azure scripts port unchanged, run as `local`."""

    name: AssetName
    type: Literal["amlcompute"]
    size: str | None = None
    min_instances: Int = Field(0, ge=0)
    max_instances: Int = Field(1, ge=1)
    idle_time_before_scale_down: Int | None = None
    tier: str | None = None
    location: str | None = None
    identity: dict[str, Any] | None = None
    ssh_public_access_enabled: bool | None = None

    @model_validator(mode="after")
    def _range(self) -> AmlCompute:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances must not exceed max_instances")
        return self


ComputeSpec = Annotated[
    Annotated[LocalCompute, Tag("local")]
    | Annotated[RayCompute, Tag("ray")]
    | Annotated[AmlCompute, Tag("amlcompute")],
    Discriminator("type"),
]
