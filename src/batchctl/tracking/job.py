"""What the runner holds while a job runs: its lineage manifest and, when the record names a tracking URI,
the pipe to its tracking agent (a detached process that makes the MLflow calls, `tracker.py`). Nothing
here ever raises into the job or waits for the tracking store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchctl.errors import redact
from batchctl.storage import Location
from batchctl.tracking import lineage as lineage_mod
from batchctl.tracking.tracker import PROGRESS_SECONDS, json_line, metrics_of


def _ms() -> int:
    return int(time.time() * 1000)


class TrackedJob:
    def __init__(
        self,
        record: dict[str, Any],
        root: Location,
        input_type: str,
        folder: Path,
        log: Callable[[str], None],
        agent_module: str,
    ) -> None:
        self.log = log
        self.lineage: dict[str, Any] | None = None
        try:
            self.lineage = lineage_mod.build(record, root, input_type)
        except Exception as exc:  # e.g. the model files are gone: the job reports that itself
            log(f"lineage: the manifest could not be built: {redact(str(exc))[:300]}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = time.monotonic()
        self._last = 0.0
        uri = (record.get("tracking") or {}).get("uri")
        if not uri:
            return
        log(
            f"tracking: MLflow run in experiment '{record.get('experiment_name') or record['endpoint_name']}' "
            f"at {redact(uri)}, logged by a tracking agent process"
        )
        try:
            with open(folder / "logs" / "sys" / "tracking_agent.txt", "ab") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", agent_module, str(folder)],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                    close_fds=True,
                )
            self._send({"op": "start", "record": record, "ts": _ms()})
        except OSError as exc:
            log(f"Warning: the tracking agent could not start ({exc}); the job runs without tracking")
            self.proc = None

    def _send(self, data: dict[str, Any], wait: bool = True) -> None:
        if self.proc is None or self.proc.stdin is None:
            return
        try:
            os.set_blocking(self.proc.stdin.fileno(), wait)
            self.proc.stdin.write(json_line(data))
            self.proc.stdin.flush()
        except BlockingIOError:
            pass  # the agent is behind: this progress point is dropped, the next one carries the counts
        except (BrokenPipeError, OSError, ValueError):
            self.log("Warning: the tracking agent exited early; see logs/sys/tracking_agent.txt")
            self.proc = None

    def progress_fn(self, on_progress: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
        """The journal's progress callback with the tracker's metrics in front, at most every 2 s."""
        if self.proc is None:
            return on_progress

        def both(progress: Any) -> None:
            now = time.monotonic()
            if self.proc is not None and now - self._last >= PROGRESS_SECONDS:
                self._last = now
                metrics = metrics_of(progress.counts.model_dump(), now - self.started)
                self._send({"op": "metrics", "metrics": metrics, "ts": _ms()}, wait=False)
            if on_progress is not None:
                on_progress(progress)

        return both

    def environment(self, env: dict[str, Any]) -> None:
        """The environment the workers ran in: into the manifest (with its lock file's sha256, which
        `job verify` checks) and, at the end, the MLflow run's params and tags (from the final record)."""
        if self.lineage is None:
            return
        self.lineage["environment"]["isolated"] = {
            "used": env.get("used"),
            "key": env.get("key") if env.get("used") == "isolated" else None,
            "lock_file": env.get("lock_file") if env.get("used") == "isolated" else None,
            "lock_sha256": env.get("lock_sha256") if env.get("used") == "isolated" else None,
            "substitutions": (env.get("skipped") or []) + (env.get("substitutions") or []),
        }

    def listed(self, files: int, listing_sha256: str | None, basis: str) -> None:
        """The input listing is complete (a big input is listed while it is scored): its hash and size."""
        if self.lineage is not None:
            self.lineage["input"].update(files=files, listing_sha256=listing_sha256, listing_basis=basis)

    def published(self, digest: str, size: int) -> None:
        if self.lineage is not None:
            self.lineage["output"].update(sha256=digest, bytes=size)

    def finish(self, record: dict[str, Any]) -> None:
        """Hand the final record to the agent and return at once: the agent ends the run and writes its id
        and URL into the record's `tracking`."""
        if self.proc is None:
            return
        self._send({"op": "finish", "record": record, "ts": _ms()})
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
