"""Paths a page may read: a job's log files, confined to the job's own log folder after `..`, encoded
forms and symbolic links are resolved."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from batchctl.errors import NotFoundError


class OutsideJobError(NotFoundError):
    """A path that leaves the job's folder: answered as not found (404), so nothing is revealed."""


def confined(root: Path, rel: str) -> Path:
    """`root/rel`, resolved, which must stay inside `root`. `rel` is decoded again (double-encoded
    `%252e%252e`), and absolute paths, NUL bytes and anything that resolves outside are refused."""
    decoded = rel
    for _ in range(3):  # %2e%2e%2f and %252e%252e%252f both become ../
        decoded = unquote(decoded)
    if "\x00" in decoded or os.path.isabs(decoded) or decoded.startswith(("\\", "~")):
        raise OutsideJobError(f"'{rel}' is not a file of this job")
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / decoded))
    if target != real_root and real_root not in target.parents:
        raise OutsideJobError(f"'{rel}' is not a file of this job")
    return target


def tree(root: Path) -> list[dict[str, object]]:
    """The files under `root` (depth-first, folders first), each with its relative path, depth and size;
    symbolic links are left out."""
    entries: list[dict[str, object]] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        except OSError:
            return
        for child in children:
            if child.is_symlink():
                continue
            rel = child.relative_to(root).as_posix()
            if child.is_dir():
                entries.append({"path": rel, "name": child.name, "depth": depth, "folder": True})
                walk(child, depth + 1)
            else:
                entries.append(
                    {"path": rel, "name": child.name, "depth": depth, "folder": False, "size": child.stat().st_size}
                )

    if root.is_dir():
        walk(root, 0)
    return entries
