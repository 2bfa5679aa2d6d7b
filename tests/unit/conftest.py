"""Helpers for the unit tests: load a spec dict through the real YAML loader and get its one-line error."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from batchctl.errors import SpecError
from batchctl.specs.load import load_spec


def _model(kind: str) -> Any:
    from batchctl.specs.assets import ComputeSpec, DataSpec, DatastoreSpec, ModelSpec
    from batchctl.specs.deployment import DeploymentSpec
    from batchctl.specs.endpoint import EndpointSpec
    from batchctl.specs.job import InvocationSpec

    return {
        "endpoint": EndpointSpec,
        "deployment": DeploymentSpec,
        "model": ModelSpec,
        "data": DataSpec,
        "datastore": DatastoreSpec,
        "compute": ComputeSpec,
        "job": InvocationSpec,
    }[kind]


@pytest.fixture
def load(write_spec: Callable[[str, dict[str, Any]], Path]) -> Callable[..., Any]:
    """load(kind, data, sets=(), file="spec.yml") -> the validated model."""

    def _load(kind: str, data: dict[str, Any], sets: Iterable[str] = (), file: str = "spec.yml") -> Any:
        return load_spec(kind, _model(kind), write_spec(file, data), list(sets))

    return _load


@pytest.fixture
def reject(load: Callable[..., Any]) -> Callable[..., str]:
    """reject(kind, data, sets=()) -> the SpecError's whole message (the test fails if it loads)."""

    def _reject(kind: str, data: dict[str, Any], sets: Iterable[str] = (), file: str = "spec.yml") -> str:
        with pytest.raises(SpecError) as info:
            load(kind, data, sets, file)
        assert "\n" not in info.value.message
        return info.value.message

    return _reject
