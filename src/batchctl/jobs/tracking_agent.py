"""The tracking agent: `python -m batchctl.jobs.tracking_agent JOB_FOLDER`, started by the runner when the
job has a tracking URI. It reads the runner's JSON lines (start, metrics, finish) from stdin, makes the
MLflow calls (`batchctl.tracking.tracker.RunLogger`) at low CPU priority, and writes the run's id, URL and
state into the record's `tracking` (`state`: logging -> logged, or failed with `error`).

It waits up to BATCHCTL_TRACKING_DELAY seconds (default 10) before importing mlflow, so a short job pays
nothing while it runs; its buffered metrics keep the times they were measured at. A runner that goes away
without `finish` (killed) ends the run with what the record says."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from batchctl.jobs import records
from batchctl.jobs.logs import JobLogs
from batchctl.tracking.tracker import RunLogger, StoreDown, _env_number

EOF = None


def _reader(ops: queue.Queue[Any]) -> None:
    for line in sys.stdin.buffer:
        with contextlib.suppress(ValueError):
            ops.put(json.loads(line))
    ops.put(EOF)


def _set_tracking(folder: Path, **changes: Any) -> None:
    with contextlib.suppress(Exception):  # the job folder was deleted: nothing to record
        current = records.read(folder)
        if current is not None:
            records.update(folder, tracking={**(current.tracking or {}), **changes})


def run(folder: Path) -> int:
    with contextlib.suppress(OSError):
        os.nice(10)  # the job's workers first
    ops: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_reader, args=(ops,), daemon=True).start()
    first = ops.get()
    if first is EOF or first.get("op") != "start":
        return 0
    record = first["record"]
    uri = record["tracking"]["uri"]
    logs = JobLogs(folder / "logs")
    _set_tracking(folder, state="logging")
    pending: list[dict[str, Any]] = []
    final: Any = ...
    deadline = time.monotonic() + _env_number("BATCHCTL_TRACKING_DELAY", 10)
    while final is ...:
        try:
            op = ops.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if op is EOF or op.get("op") == "finish":
            final = op
        else:
            pending.append(op)
    logger = RunLogger(uri, record, logs.master)
    try:
        logger.start(int(first["ts"]))
        _set_tracking(folder, **logger.info())
        for op in pending:
            logger.metrics(op["metrics"], int(op["ts"]))
        while final is ...:
            op = ops.get()
            if op is EOF or op.get("op") == "finish":
                final = op
            else:
                logger.metrics(op["metrics"], int(op["ts"]))
        if final is EOF:  # the runner went away without saying how the job ended: the record does
            current = records.read(folder)
            end = current.dump() if current is not None else {**record, "status": "Failed"}
            logger.finish(end, folder, int(time.time() * 1000))
        else:
            logger.finish(final["record"], folder, int(final["ts"]))
        _set_tracking(folder, **logger.info(), state="logged")
    except StoreDown as exc:
        _set_tracking(folder, **logger.info(), state="failed", error=f"the tracking store did not answer: {exc}")
    finally:
        logs.close()
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
