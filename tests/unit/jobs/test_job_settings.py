"""Every job setting (a field of specs/job.RunOverrides) reaches the typed JobRequest from each front end
(the command line's words, REST's body, the Studio's Create job form), or is listed as not offered there,
and changes the merged JobSettings. A new field that a front end forgets fails here: see
docs/architecture.md, "Adding a job setting"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from batchctl.cli import group_app
from batchctl.cli import job as cli_job
from batchctl.jobs.request import JobRequest
from batchctl.server import rest
from batchctl.server.studio import forms
from batchctl.specs.job import RunOverrides
from batchctl.workspace import Workspace
from support.settings import DEPLOYMENT, merge

FIELDS = set(RunOverrides.model_fields)

# one value per setting, other than what the deployment below has
SAMPLES: dict[str, Any] = {
    "mini_batch_size": 7,
    "instance_count": 3,
    "error_threshold": 5,
    "retry_settings": {"max_retries": 4, "timeout": 61},
    "output_file_name": "scores.csv",
    "split": "never",
    "keep_columns": ["id", "region"],
    "reuse": "stamp",
}

# the command line: `endpoint invoke`'s words for each sample (a flag of its own, else `--set`)
CLI_WORDS: dict[str, list[str]] = {
    "mini_batch_size": ["-m", "7"],
    "instance_count": ["-c", "3"],
    "error_threshold": ["--set", "error_threshold=5"],
    "retry_settings": ["--set", "retry_settings.max_retries=4", "--set", "retry_settings.timeout=61"],
    "output_file_name": ["--set", "output_file_name=scores.csv"],
    "split": ["--split", "never"],
    "keep_columns": ["--keep-columns", "id,region"],
    "reuse": ["--reuse", "stamp"],
}

# REST: Azure's invocation body (`properties`) for each sample; rest.NOT_IN_BODY lists the others
REST_BODY: dict[str, dict[str, Any]] = {
    "mini_batch_size": {"miniBatchSize": 7},
    "instance_count": {"compute": {"instanceCount": 3}},
    "error_threshold": {"errorThreshold": 5},
    "retry_settings": {"retrySettings": {"maxRetries": 4, "timeout": 61}},
    "output_file_name": {"outputFileName": "scores.csv"},
}

# the Studio: the Create job form's fields for each sample; forms.NOT_ON_FORM lists the others
STUDIO_FORM: dict[str, dict[str, str]] = {
    "mini_batch_size": {"mini_batch_size": "7"},
    "instance_count": {"instance_count": "3"},
    "error_threshold": {"error_threshold": "5"},
    "retry_settings": {"max_retries": "4", "timeout": "61"},
    "output_file_name": {"output_file_name": "scores.csv"},
}

# settings that JobSettings.merge does not read (none: a new field belongs in merge too)
NOT_MERGED: set[str] = set()


def sample_of(overrides: RunOverrides, field: str) -> Any:
    value = getattr(overrides, field)
    return value.model_dump() if hasattr(value, "model_dump") else value


def test_every_setting_has_a_sample_and_a_place_in_each_front_end() -> None:
    assert set(SAMPLES) == FIELDS, "give the new setting a sample here and a row in each table below"
    assert set(CLI_WORDS) == FIELDS
    assert set(REST_BODY) | set(rest.NOT_IN_BODY) == FIELDS
    assert not set(REST_BODY) & set(rest.NOT_IN_BODY)
    assert set(STUDIO_FORM) | set(forms.NOT_ON_FORM) == FIELDS
    assert not set(STUDIO_FORM) & set(forms.NOT_ON_FORM)
    assert set(cli_job.SETTING_FLAGS) <= FIELDS


def invoke_request(words: list[str]) -> JobRequest:
    """`batchctl endpoint invoke` parsed by its real click command, then turned into a request as the
    command turns it."""
    command = typer.main.get_command(group_app("endpoint"))
    invoke = command.commands["invoke"]  # a click Group: its subcommands by name
    ctx = invoke.make_context("invoke", ["-n", "heart", "--input", "data", *words])
    return cli_job.job_request(ctx.params, ctx.params["set_"], ctx.params["tags"])


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_the_command_line_reaches_every_setting(field: str) -> None:
    request = invoke_request(CLI_WORDS[field])
    assert sample_of(request.overrides, field) == SAMPLES[field]
    assert request.overrides.model_dump(exclude_none=True).keys() == {field}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_set_reaches_every_setting_and_a_flag_wins(field: str) -> None:
    value = SAMPLES[field]
    if isinstance(value, dict):
        sets = [f"{field}.{k}={v}" for k, v in value.items()]
    else:
        sets = [f"{field}={','.join(value) if isinstance(value, list) else value}"]
    assert sample_of(JobRequest.from_words(endpoint="e", input="i", sets=sets).overrides, field) == value
    if field in cli_job.SETTING_FLAGS:
        flagged = JobRequest.from_words(endpoint="e", input="i", sets=sets, settings={field: None})
        assert sample_of(flagged.overrides, field) == value  # an absent flag leaves --set alone


@pytest.mark.parametrize("field", sorted(REST_BODY))
def test_the_rest_body_reaches_its_settings(field: str, tmp_path: Path) -> None:
    body = rest.InvokeBody.model_validate(
        {"properties": {"InputData": {"in": {"JobInputType": "UriFolder", "Uri": str(tmp_path)}}, **REST_BODY[field]}}
    )
    request = rest.submit_request(Workspace(tmp_path), "heart", None, body, [str(tmp_path)])
    assert sample_of(request.overrides, field) == SAMPLES[field]
    assert request.overrides.model_dump(exclude_none=True).keys() == {field}


@pytest.mark.parametrize("field", sorted(STUDIO_FORM))
def test_the_studio_form_reaches_its_settings(field: str) -> None:
    form = {"input_kind": "path", "public_path": "https://example.org/data/", **STUDIO_FORM[field]}
    request, errors = forms.job_options(form, "heart")
    assert errors == {}
    overrides = forms.job_overrides(form)
    assert sample_of(overrides, field) == SAMPLES[field]
    assert overrides.model_dump(exclude_none=True).keys() == {field}
    assert request.endpoint == "heart"


@pytest.mark.parametrize("field", sorted(FIELDS - NOT_MERGED))
def test_every_setting_changes_the_merged_settings(field: str) -> None:
    default = merge(DEPLOYMENT, {}, RunOverrides())
    merged = merge(DEPLOYMENT, {}, RunOverrides.model_validate({field: SAMPLES[field]}))
    assert merged != default
    # and a rerun, which starts from the job's settings as overrides, keeps it
    assert merge(DEPLOYMENT, {}, merged.as_overrides()) == merged
