"""`python -m batchctl.jobs.detached WORKSPACE JOB`: the runner of a `--no-wait` job."""

from __future__ import annotations

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    from pathlib import Path

    from batchctl.jobs.runner import run_job
    from batchctl.workspace import Workspace

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    ws = Workspace(Path(sys.argv[1]))
    record = run_job(ws, sys.argv[2])
    return 0 if record.status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
