"""A deployment's settings as the registry stores them, and JobSettings.merge over the typed records
they load as: the one fixture of the unit tests of a job's settings (tests/unit/jobs)."""

from __future__ import annotations

from typing import Any

from batchctl.jobs.model import JobSettings
from batchctl.resources.records import ComputeRecord, DeploymentRecord
from batchctl.specs.job import RunOverrides

DEPLOYMENT: dict[str, Any] = {
    "settings": {
        "mini_batch_size": 10,
        "max_concurrency_per_instance": 2,
        "output_action": "append_row",
        "output_file_name": None,
        "retry_settings": {"max_retries": 3, "timeout": 30},
        "error_threshold": -1,
        "logging_level": "info",
    },
    "resources": {"instance_count": 1},
}


def merge(deployment: dict[str, Any], compute: dict[str, Any], overrides: RunOverrides) -> JobSettings:
    """JobSettings.merge over the registry records these dicts would be."""
    return JobSettings.merge(
        DeploymentRecord.load({"name": "blue", "endpoint_name": "heart", **deployment}),
        ComputeRecord.load({"name": "local", "type": "local", **compute}),
        overrides,
    )
