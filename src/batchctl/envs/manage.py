"""Choosing where a job runs (`--env-manager auto|local|uv`), and the builds kept under `<workspace>/envs/`
(`environment show`, `environment prune`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from batchctl.envs.build import LAST_USED, LOCK_FILE, META
from batchctl.errors import SpecError

MANAGERS = ("auto", "local", "uv")


def check_manager(value: str, source: str) -> str:
    if value not in MANAGERS:
        raise SpecError(f"{source}: '{value}' is not one of {', '.join(MANAGERS)}")
    return value


def unsatisfied(requirements: list[str] | tuple[str, ...]) -> list[str]:
    """The requirements this interpreter does not already satisfy (packaging against importlib.metadata;
    milliseconds). A URL requirement is never taken as satisfied."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    missing = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(text)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = Version(metadata.version(req.name))
        except (metadata.PackageNotFoundError, InvalidVersion):
            missing.append(text)
            continue
        if req.url or not req.specifier.contains(have, prereleases=True):
            missing.append(text)
    return missing


def _size(path: Path) -> int:
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, name))
                total += st.st_size
    return total


def _last_used(folder: Path) -> float:
    for candidate in (folder / LAST_USED, folder / META):
        with contextlib.suppress(OSError):
            return candidate.stat().st_mtime
    return 0.0


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def list_builds(root: Path, keys: set[str] | None = None) -> list[dict[str, Any]]:
    """Every complete build (optionally only `keys`): key, Python, size, last use, lock file, source."""
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or (keys is not None and folder.name not in keys):
            continue
        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError):
            continue
        out.append(
            {
                "key": folder.name,
                "python": meta.get("python_version"),
                "source": (meta.get("spec") or {}).get("source"),
                "requirements": (meta.get("spec") or {}).get("requirements"),
                "size_bytes": _size(folder),
                "created_at": _iso(meta.get("created_at") or 0),
                "last_used": _iso(_last_used(folder)),
                "lock_file": str(folder / LOCK_FILE),
                "lock_sha256": meta.get("lock_sha256"),
                "substitutions": meta.get("changes") or [],
                "path": str(folder),
            }
        )
    return out


def prune(root: Path, unused_days: float) -> dict[str, Any]:
    """Remove builds unused for `unused_days` days (a build in use by a build lock is left), temporary
    folders of killed builds and failed-build logs older than that. Says how much it freed."""
    from filelock import FileLock, Timeout

    cutoff = time.time() - unused_days * 86400
    removed, freed = [], 0
    if not root.is_dir():
        return {"removed": [], "freed_bytes": 0, "freed": _human(0)}
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / META).is_file():
            continue
        if _last_used(folder) > cutoff:
            continue
        lock = FileLock(str(root / ".locks" / f"{folder.name}.lock"), timeout=0)
        try:
            with lock:
                size = _size(folder)
                # renamed away first: a job starting now finds no build and makes a new one
                doomed = root / f".tmp-{folder.name}-pruned"
                os.rename(folder, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
        except (Timeout, OSError):
            continue
        removed.append(folder.name)
        freed += size
    for leftover in root.glob(".tmp-*"):  # a killed build's folder: removed under its key's lock only
        key = leftover.name[len(".tmp-") :].split("-")[0]
        try:
            with FileLock(str(root / ".locks" / f"{key}.lock"), timeout=0):
                size = _size(leftover)
                shutil.rmtree(leftover)
                freed += size
        except (Timeout, OSError):
            continue
    for log in (root / ".logs").glob("*.log"):
        with contextlib.suppress(OSError):
            if log.stat().st_mtime <= cutoff:
                size = log.stat().st_size
                log.unlink()
                freed += size
    return {"removed": removed, "freed_bytes": freed, "freed": _human(freed)}


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
