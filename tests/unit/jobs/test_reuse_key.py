"""The environment part of the reuse key (issue 26 item 3 with issue 22's environments): a job's key is made
from the environment recorded in the job (`record.environment`): an isolated environment's key and the
sha256 of its lock file, else this interpreter's versions (and the key of the environment the deployment
asked for). Any difference makes another key, so no earlier result is reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchctl.jobs.model import JobRecord
from batchctl.jobs.reuse import environment_key, job_key

FIXTURE = Path(__file__).parents[2] / "jobs" / "fixtures" / "job-v0.1.0" / "job.json"

ISOLATED = {"manager": "uv", "used": "isolated", "key": "k" * 64, "lock_sha256": "a" * 64, "path": "/envs/k"}
LOCAL = {"manager": "local", "used": "local", "key": "k" * 64}


def record(environment: dict[str, Any] | None) -> JobRecord:
    data = json.loads(FIXTURE.read_text())
    return JobRecord.model_validate({**data, "environment": environment})


def key(environment: dict[str, Any] | None) -> str:
    return job_key(record(environment), model_sha256="m" * 64)[0]


def test_the_same_environment_gives_the_same_key() -> None:
    assert key(dict(ISOLATED)) == key(dict(ISOLATED))
    assert key(dict(LOCAL)) == key(dict(LOCAL))
    assert key(None) == key(None)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({**ISOLATED, "key": "j" * 64}, id="another environment key"),
        pytest.param({**ISOLATED, "lock_sha256": "b" * 64}, id="another lock file"),
        pytest.param({**ISOLATED, "lock_sha256": None}, id="no lock recorded"),
        pytest.param(LOCAL, id="scored in this interpreter instead"),
        pytest.param(None, id="no environment named"),
    ],
)
def test_any_difference_in_the_isolated_environment_makes_another_key(other: dict[str, Any] | None) -> None:
    assert key(other) != key(dict(ISOLATED))


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({**LOCAL, "key": "j" * 64}, id="the deployment asked for another environment"),
        pytest.param(None, id="no environment named"),
    ],
)
def test_a_job_scored_in_this_interpreter_keys_on_the_environment_it_asked_for(other: dict[str, Any] | None) -> None:
    assert key(other) != key(dict(LOCAL))


def test_an_isolated_environment_is_keyed_by_its_key_and_lock_not_by_this_interpreter() -> None:
    assert environment_key(ISOLATED) == {"used": "isolated", "key": "k" * 64, "lock_sha256": "a" * 64}
    here = environment_key(None)
    assert set(here) == {"python", "packages"} and "scikit-learn" in here["packages"]
