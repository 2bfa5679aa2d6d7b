"""The workspace folder: registry, model and code copies, jobs, the default datastore."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from batchctl.errors import BatchctlError, SpecError
from batchctl.registry.store import RegistryStore
from batchctl.settings import workspace_path

_SKIP = {"__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store"}

SETTINGS_FILE = "settings.json"  # the workspace's own defaults: tracking_uri, env_manager


def workspace_setting(ws: Workspace, key: str) -> object:
    """One value of `<workspace>/settings.json`: None when the file or the key is missing."""
    path = ws.root / SETTINGS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: not a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: not a JSON object")
    return data.get(key)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, explicit: str | os.PathLike[str] | None = None) -> Workspace:
        return cls(workspace_path(explicit))

    @property
    def store(self) -> RegistryStore:
        return RegistryStore(self.root)

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def default_datastore_dir(self) -> Path:
        return self.root / "datastores" / "workspaceblobstore"

    def refuse_source_holding_workspace(self, source: Path, what: str) -> None:
        """A folder to copy into the workspace must not hold the workspace: the copy would copy itself."""
        src = source.resolve()
        root = self.root.resolve()
        if root == src or src in root.parents:
            raise SpecError(
                f"{what}: '{source}' contains the workspace '{self.root}', so copying it into the workspace "
                "would copy the workspace into itself",
                "point the path at a folder that does not hold the workspace, or move the workspace "
                "(--workspace or BATCHCTL_HOME)",
            )

    def stored_path(self, path: Path | str) -> str:
        """How the registry stores a path: relative to the workspace root when it is inside it (so a
        workspace can be moved or copied whole), else as given."""
        path = Path(path)
        if path.is_absolute() and path.is_relative_to(self.root):
            return str(path.relative_to(self.root))
        return str(path)

    def resolved_path(self, stored: str) -> str:
        """A stored path as a path to use: a relative one is under the workspace root; an absolute one
        (what registries written before relative paths hold) is kept as it is."""
        return str(self.root / stored)

    def inside(self, path: Path) -> Path:
        """Refuse any path that would leave the workspace (names are checked before, this is the backstop)."""
        resolved = path.resolve()
        root = self.root.resolve()
        if resolved != root and root not in resolved.parents:
            raise SpecError(f"path {path} leaves the workspace {self.root}")
        return path


def _iter_files(path: Path, follow_links: bool = True) -> list[Path]:
    if path.is_file():
        return [path]
    files = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP)
        names = list(filenames)
        if not follow_links:  # a link to a folder is an entry of its own (os.walk never enters it)
            names += [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(names):
            if name not in _SKIP and not name.endswith(".pyc"):
                files.append(Path(dirpath) / name)
    return files


def content_hash(path: Path, follow_links: bool = True) -> str:
    """sha256 over relative paths and bytes of a file or folder (poetry's content-hash idea). With
    `follow_links=False` a symbolic link counts as the text it points to, never the bytes behind it."""
    digest = hashlib.sha256()
    base = path if path.is_dir() else path.parent
    for file in _iter_files(path, follow_links):
        digest.update(str(file.relative_to(base)).encode() + b"\0")
        if not follow_links and file.is_symlink():
            digest.update(b"symlink\0" + os.fsencode(os.readlink(file)) + b"\0")
            continue
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def copy_into(source: Path, dest_parent: Path, symlinks: bool = False) -> Path:
    """Copy a file or folder into a fresh staging folder under dest_parent; returns the staging folder.
    With `symlinks`, links inside a folder are copied as links instead of what they point to."""
    staging = dest_parent / f".staging-{uuid.uuid4().hex}"
    try:
        staging.mkdir(parents=True)
        target = staging / source.name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=symlinks, ignore=shutil.ignore_patterns(*_SKIP, "*.pyc"))
        else:
            shutil.copy2(source, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise BatchctlError(f"cannot copy {source} into the workspace: {exc.strerror or exc}") from exc
    return staging
