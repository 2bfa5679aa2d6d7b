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


COMMAND_CHARS = 200


def _shown_command(words: list[str]) -> str:
    from batchctl.errors import redact

    if not words:
        return ""
    text = " ".join([os.path.basename(words[0]), *words[1:]])
    text = redact(" ".join(text.split()))
    return text if len(text) <= COMMAND_CHARS else text[: COMMAND_CHARS - 1] + "…"


def own_command() -> str:
    import sys

    return _shown_command(list(sys.argv))


def process_command(pid: int) -> str | None:
    """The command line of process `pid` (its program's file name, then its arguments), secrets redacted."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return _shown_command([w.decode(errors="replace") for w in raw.split(b"\0") if w]) or None


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch): its start ticks after the boot time."""
    ticks = process_start_ticks(pid)
    try:
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK") if ticks is not None else None
    except (OSError, ValueError, StopIteration):
        return None


def flock_holder(path: str | os.PathLike[str]) -> int | None:
    """The pid that holds a flock() on the file `path`, from /proc/locks (Linux), whatever program it is."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue  # a waiter, or another kind of lock
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino):
                return int(fields[4])
        except ValueError:
            continue
    return None
