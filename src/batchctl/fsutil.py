"""Crash-safe local file writes (pip's adjacent_tmp_file, hatch's atomic writes)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def adjacent_tmp(path: Path, prefix: str | None = None) -> Iterator[tuple[IO[bytes], Path]]:
    """A temp file in the target's folder, flushed and fsynced on success, removed on failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.tmp-")
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp_path
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: readers see the old or the new file, never a torn one."""
    with adjacent_tmp(path) as (handle, tmp):
        handle.write(data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())
