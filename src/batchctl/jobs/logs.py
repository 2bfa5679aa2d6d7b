"""Job logs laid out as Azure lays them out, under jobs/<name>/logs/."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from batchctl.errors import redact


def _ts() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class JobLogs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._handles: dict[str, Any] = {}

    def setup(self) -> None:
        for sub in ("sys/worker", "user/error", "user/stdout"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "readme.txt").write_text(
            "job_progress_overview.txt  mini-batches created / processed, items succeeded / failed\n"
            "job_result.txt             the final result and, on failure, its first cause\n"
            "sys/master_role.txt        the driver: partitioning, dispatch, retries, timeouts, publish\n"
            "sys/worker/worker-N.txt    per mini-batch: items, succeeded, failed, duration\n"
            "user/error.txt             summary of errors from init() / run() and failed items\n"
            "user/error/worker-N.txt    full tracebacks\n"
            "user/stdout/worker-N.txt   what the scoring code printed or logged\n"
        )

    def _append(self, rel: str, line: str) -> None:
        # kept open, line-buffered: a job with thousands of mini-batches writes thousands of lines
        handle = self._handles.get(rel)
        if handle is None:
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._handles[rel] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        handle.write(redact(line.rstrip("\n")) + "\n")

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def master(self, message: str) -> None:
        self._append("sys/master_role.txt", f"{_ts()} {message}")

    def worker(self, slot: int, message: str) -> None:
        self._append(f"sys/worker/worker-{slot}.txt", f"{_ts()} {message}")

    def user_error(self, summary: str, slot: int | None = None, details: str | None = None) -> None:
        self._append("user/error.txt", f"{_ts()} {summary}")
        if details and slot is not None:
            self._append(f"user/error/worker-{slot}.txt", f"{_ts()} {summary}\n{details}")

    def progress(self, text: str) -> None:
        path = self.root / "job_progress_overview.txt"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def result(self, text: str) -> None:
        (self.root / "job_result.txt").write_text(redact(text) + "\n")
