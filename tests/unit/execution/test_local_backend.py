"""How the local backend words a worker's end (the WorkerDied reason in the job's log and errors)."""

from __future__ import annotations

import signal

import pytest

from batchctl.execution.local import describe_exit


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (3, "exit code 3"),
        (0, "exit code 0"),
        (-signal.SIGKILL, "killed by SIGKILL (out of memory?)"),
        (-signal.SIGTERM, "killed by SIGTERM"),
        (-200, "killed by signal 200"),
        (None, "still running"),
    ],
)
def test_describe_exit(code, reason):
    assert describe_exit(code) == reason
