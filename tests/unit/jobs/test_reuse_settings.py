"""The reuse setting: never by default (Azure scores everything), the deployment's `batchctl.reuse`
property, a job's flag over it, and a bad property value refused with one line."""

from __future__ import annotations

import copy

import pytest

from batchctl.errors import SpecError
from batchctl.specs.job import RunOverrides
from support.settings import DEPLOYMENT, merge


def with_property(value: str) -> dict:
    deployment = copy.deepcopy(DEPLOYMENT)
    deployment["properties"] = {"batchctl.reuse": value}
    return deployment


def test_the_default_is_never_and_is_not_written() -> None:
    settings = merge(DEPLOYMENT, {}, RunOverrides())
    assert settings.reuse == "never"
    assert "reuse" not in settings.model_dump(mode="json")


@pytest.mark.parametrize(("value", "expected"), [("stamp", "stamp"), ("sha256", "sha256"), ("true", "stamp")])
def test_the_property_turns_it_on(value: str, expected: str) -> None:
    assert merge(with_property(value), {}, RunOverrides()).reuse == expected


def test_a_job_flag_wins_over_the_property() -> None:
    settings = merge(with_property("stamp"), {}, RunOverrides(reuse="never"))
    assert settings.reuse == "never"
    assert merge(DEPLOYMENT, {}, RunOverrides(reuse="sha256")).reuse == "sha256"


def test_a_bad_property_is_one_line() -> None:
    with pytest.raises(SpecError) as caught:
        merge(with_property("always"), {}, RunOverrides())
    assert caught.value.message == "deployment property batchctl.reuse: 'always' is not never, stamp or sha256"


def test_rerun_keeps_the_mode() -> None:
    settings = merge(DEPLOYMENT, {}, RunOverrides(reuse="sha256"))
    assert settings.as_overrides().reuse == "sha256"
