"""`python -m batchctl.jobs.detached WORKSPACE JOB`: the runner of a `--no-wait` job."""

from __future__ import annotations

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    from pathlib import Path

    from batchctl.jobs import records
    from batchctl.jobs.runner import run_job
    from batchctl.workspace import Workspace

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    ws = Workspace(Path(sys.argv[1]))
    queued = records.read(records.job_dir(ws, sys.argv[2]))
    if queued is not None and queued.type == "pipeline":
        from batchctl.jobs.pipelines.runner import run_pipeline

        record = run_pipeline(ws, sys.argv[2])
    else:
        record = run_job(ws, sys.argv[2])
    return 0 if record.status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
