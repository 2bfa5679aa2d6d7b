"""Who runs what: a process's identity (pid, start time, host) and whether it still lives. Standard
library only, so that cheap callers (a server's liveness, the CLI's start-up) stay cheap."""

from __future__ import annotations

import os
from typing import Any


def process_start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode(errors="replace")
        return int(raw.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def runner_identity(pid: int | None = None) -> dict[str, Any]:
    pid = pid or os.getpid()
    return {"pid": pid, "start_ticks": process_start_ticks(pid), "host": os.uname().nodename}


def runner_alive(runner: dict[str, Any] | None) -> bool:
    if not runner or not runner.get("pid"):
        return False
    pid = int(runner["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    ticks = runner.get("start_ticks")
    if ticks is not None:
        current = process_start_ticks(pid)
        if current is not None and current != ticks:
            return False  # the pid was reused by another process
        if current is not None:
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    state = handle.read().decode(errors="replace").rsplit(")", 1)[1].split()[0]
                if state in ("Z", "X"):
                    return False
            except OSError:
                return False
    return True
