"""The job queue is the one place a front end hands a job to (issue 25, item 3): `check_accepting()` before a
job is submitted, and `submit()`, which cancels a job it can no longer run and re-raises, so nothing stays
Queued with no runner. In process, on a real workspace and job record."""

from __future__ import annotations

import pytest
from server_helpers import Workspace, heart_folder

from batchctl import api
from batchctl.server.queue import JobQueue, QueueClosedError


def test_a_closed_queue_refuses_and_cancels_the_job_it_was_handed(workspace: Workspace) -> None:
    data = heart_folder(workspace.tmp / "data", files=1)
    job = api.submit_job(workspace.ws, api.JobRequest(endpoint="heart", input=str(data)))
    assert api.get_job(workspace.ws, job["name"])["status"] == "Queued"
    queue = JobQueue(workspace.ws, 1, None)
    queue.check_accepting()  # open: no error
    queue.shutdown(0)
    with pytest.raises(QueueClosedError, match="shutting down"):
        queue.check_accepting()
    with pytest.raises(QueueClosedError, match="shutting down"):
        queue.submit(job["name"])
    assert api.get_job(workspace.ws, job["name"])["status"] == "Canceled"  # not left Queued
    assert queue.stats()["queued"] == 0
