"""The typed job model: state transitions and the one merge of settings."""

from __future__ import annotations

import pytest

from batchctl.errors import InvalidStateError, SpecError
from batchctl.jobs.model import JobState
from batchctl.resources.records import DeploymentRecord
from batchctl.specs.job import RunOverrides
from support.settings import DEPLOYMENT, merge


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.CANCELED),
        (JobState.QUEUED, JobState.FAILED),
        (JobState.RUNNING, JobState.COMPLETED),
        (JobState.RUNNING, JobState.FAILED),
        (JobState.RUNNING, JobState.CANCELED),
    ],
)
def test_allowed_transitions(start: JobState, target: JobState) -> None:
    assert start.transition(target) is target


@pytest.mark.parametrize("start", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELED])
@pytest.mark.parametrize("target", list(JobState))
def test_no_way_out_of_a_terminal_state(start: JobState, target: JobState) -> None:
    if target is start:
        assert start.transition(target) is start
        return
    with pytest.raises(InvalidStateError, match=f"job is {start.value}; it cannot become {target.value}"):
        start.transition(target)


def test_running_cannot_go_back_to_queued() -> None:
    with pytest.raises(InvalidStateError):
        JobState.RUNNING.transition(JobState.QUEUED)


def test_parse_is_case_insensitive_and_names_the_states() -> None:
    assert JobState.parse("completed") is JobState.COMPLETED
    with pytest.raises(SpecError, match="--status: 'done' is not one of Queued, Running, Completed, Failed, Canceled"):
        JobState.parse("done")


def test_defaults_come_from_the_deployment_and_predictions_csv() -> None:
    settings = merge(DEPLOYMENT, {"max_workers": None}, RunOverrides())
    assert settings.mini_batch_size == 10
    assert settings.output_file_name == "predictions.csv"
    assert settings.workers == 2
    assert settings.retry_settings.model_dump() == {"max_retries": 3, "timeout": 30}


def test_flags_over_set_over_invocation_file_over_deployment() -> None:
    file = RunOverrides(mini_batch_size=3, error_threshold=5, retry_settings={"max_retries": 1, "timeout": 90})
    sets = RunOverrides(mini_batch_size=4, retry_settings={"timeout": 60})
    flags = RunOverrides(mini_batch_size=7)
    settings = merge(DEPLOYMENT, {}, flags.over(sets).over(file))
    assert settings.mini_batch_size == 7  # the flag
    assert settings.error_threshold == 5  # the file (nothing above it)
    assert settings.retry_settings.model_dump() == {"max_retries": 1, "timeout": 60}  # field by field


def test_compute_max_workers_caps_the_workers() -> None:
    settings = merge(DEPLOYMENT, {"max_workers": 1}, RunOverrides(instance_count=3))
    assert (settings.instance_count, settings.workers) == (3, 1)


def test_summary_only_refuses_an_output_file_name() -> None:
    deployment = {**DEPLOYMENT, "settings": {**DEPLOYMENT["settings"], "output_action": "summary_only"}}
    assert merge(deployment, {}, RunOverrides()).output_file_name is None
    with pytest.raises(SpecError, match="output_file_name need not to be specified"):
        merge(deployment, {}, RunOverrides(output_file_name="x.csv"))


def test_as_overrides_reproduces_the_same_settings() -> None:
    settings = merge(DEPLOYMENT, {}, RunOverrides(mini_batch_size=2, error_threshold=0))
    assert merge(DEPLOYMENT, {}, settings.as_overrides()) == settings


def test_merge_reads_the_deployment_records_attributes_and_keeps_unknown_keys() -> None:
    """A deployment of a kind this version does not know (extra keys, another type) loads; its dump is the
    stored record, key for key and in order."""
    stored = {"name": "p", "endpoint_name": "heart", "type": "pipeline", "component": "azureml:c:1", **DEPLOYMENT}
    record = DeploymentRecord.load(stored)
    assert (record.type, record.model_extra) == ("pipeline", {"component": "azureml:c:1"})
    assert record.dump() == stored and list(record.dump()) == list(stored)
    assert merge(stored, {}, RunOverrides()).retry_settings.timeout == 30
