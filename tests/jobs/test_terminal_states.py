"""No way out of a terminal state, on a record written by this batchctl (the old-records test pins the
same for a 0.1.0 record): a job submitted now and driven to Completed, Failed or Canceled refuses every
change of state, through `records.update` and through the verbs that would restart it, and its job.json
stays byte-identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchctl import api
from batchctl.errors import BatchctlError, InvalidStateError
from batchctl.jobs import records
from batchctl.jobs.model import JobState
from batchctl.workspace import Workspace

from .conftest import write_inputs

TERMINAL = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


@pytest.mark.parametrize("final", TERMINAL, ids=lambda s: s.value)
def test_a_current_record_in_a_terminal_state_refuses_every_change(env: Any, tmp_path: Path, final: JobState) -> None:
    env.endpoint()
    env.script()
    ws = Workspace(env.home)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    job = api.submit_job(ws, api.JobRequest(endpoint="heart", deployment="custom", input=str(data)))
    folder = records.job_dir(ws, job["name"])
    if final is not JobState.CANCELED:
        records.update(folder, JobState.RUNNING, runner=records.runner_identity())
    records.update(folder, final, error=None if final is JobState.COMPLETED else {"message": "ended"})
    before = (folder / "job.json").read_bytes()
    assert records.read(folder).status is final
    for target in JobState:
        if target is final:
            continue
        with pytest.raises(InvalidStateError, match=f"job is {final.value}; it cannot become {target.value}"):
            records.update(folder, target)
    with pytest.raises(BatchctlError, match=f"is {final.value}, not Queued"):
        api.run_job(ws, job["name"])
    with pytest.raises(InvalidStateError, match=f"is {final.value}, not Queued"):
        api.adopt_job(ws, job["name"])
    assert api.cancel_job(ws, job["name"])["status"] == final.value  # canceling an ended job changes nothing
    assert (folder / "job.json").read_bytes() == before
