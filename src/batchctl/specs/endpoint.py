from __future__ import annotations

from typing import Literal

from pydantic import Field

from batchctl.specs._base import AssetName, EndpointName, StrictModel, Tags


class EndpointDefaults(StrictModel):
    deployment_name: AssetName | None = Field(
        None, description="The deployment that receives invocations that name no deployment."
    )


class EndpointSpec(StrictModel):
    """batchEndpoint.schema.json."""

    name: EndpointName
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: Tags = Field(default_factory=dict)
    auth_mode: Literal["aad_token"] = Field("aad_token", description="Only aad_token, as in Azure.")
    defaults: EndpointDefaults = Field(default_factory=EndpointDefaults)
