"""registry.json: one JSON document, changed only under a sidecar file lock and replaced atomically."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchctl import processes
from batchctl.errors import BatchctlError, RegistryCorruptError, RegistryLockedError
from batchctl.fsutil import atomic_write_bytes, fsync_dir
from batchctl.notices import notify
from batchctl.settings import SCHEMA_VERSION, lock_timeout

HOLDER_FILE = "registry.json.lock.holder"


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return "an unknown time"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    return f"{stamp}, {max(0.0, time.time() - epoch):.0f} s ago"


# a section added later reads as empty in an older registry.json (see _parse), so no schema_version bump
SECTIONS = ("endpoints", "deployments", "models", "data", "datastores", "computes", "environments", "components")
MOUNTS_FILE = "/proc/mounts"
# network and FUSE filesystems where flock() and an atomic rename are not guaranteed (docs/security.md)
NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "fuse.sshfs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "afs",
    "lustre",
}
ALLOW_NETWORK_FS_ENV = "BATCHCTL_ALLOW_NETWORK_FS"
_warned_roots: set[str] = set()


def _unescape_mount(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def network_filesystem(path: Path) -> str | None:
    """The network filesystem type holding `path` (longest mount point), or None if local or unknown."""
    try:
        with open(MOUNTS_FILE, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None  # not Linux, or no /proc: nothing to tell
    target = str(path.resolve())
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount, fstype = _unescape_mount(fields[1]), fields[2]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, fstype
    return best_type if best_type in NETWORK_FS else None


def warn_if_network_fs(root: Path) -> None:
    """Once per process and workspace: the registry's guarantees need a local filesystem."""
    if os.environ.get(ALLOW_NETWORK_FS_ENV) == "1" or str(root) in _warned_roots:
        return
    _warned_roots.add(str(root))
    fstype = network_filesystem(root)
    if fstype:
        notify(
            f"the workspace {root} is on a {fstype} filesystem; the registry lock and atomic "
            "replace are only guaranteed on a local filesystem (docs/security.md). Use a local "
            f"--workspace / BATCHCTL_HOME, or set {ALLOW_NETWORK_FS_ENV}=1 to silence this warning"
        )


def empty_state() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, **{name: {} for name in SECTIONS}}


class RegistryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "registry.json"
        self.lock_path = root / "registry.json.lock"
        self.backup_path = root / "registry.json.bak"

    def _restore_hint(self) -> str:
        if self.backup_path.exists():
            return (
                f"the last good version is {self.backup_path}; restore it with: cp '{self.backup_path}' '{self.path}'"
            )
        return f"move {self.path} aside to start a new registry (its contents are not recoverable by batchctl)"

    def _older_backup_hint(self) -> str:
        """For a newer-schema registry: the .bak, when this batchctl can read it, is a way back."""
        try:
            data = json.loads(self.backup_path.read_bytes())
            readable = isinstance(data, dict) and isinstance(data.get("schema_version"), int)
            if not readable or data["schema_version"] > SCHEMA_VERSION:
                return ""
        except (OSError, ValueError):
            return ""
        return (
            f"; or go back to the last version this batchctl wrote (later changes are lost): "
            f"cp '{self.backup_path}' '{self.path}'"
        )

    def _parse(self, raw: bytes) -> dict[str, Any]:
        if not raw.strip(b" \t\r\n\x00"):
            raise RegistryCorruptError(
                f"registry {self.path} is corrupt: the file is empty; it was left untouched",
                self._restore_hint(),
            )
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise RegistryCorruptError(
                f"registry {self.path} is corrupt ({reason}); it was left untouched", self._restore_hint()
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
            raise RegistryCorruptError(
                f"registry {self.path} is corrupt: no schema_version; it was left untouched",
                self._restore_hint(),
            )
        version = data["schema_version"]
        if version > SCHEMA_VERSION:
            raise RegistryCorruptError(
                f"registry {self.path} has schema_version {version}, newer than this batchctl supports "
                f"({SCHEMA_VERSION}); it was left untouched",
                "upgrade batchctl (pip install -U batchctl) to use this workspace" + self._older_backup_hint(),
            )
        for section in SECTIONS:
            if not isinstance(data.setdefault(section, {}), dict):
                raise RegistryCorruptError(
                    f"registry {self.path} is corrupt: '{section}' is not a mapping; it was left untouched",
                    self._restore_hint(),
                )
        return data

    def read(self) -> dict[str, Any]:
        """A snapshot without taking the lock (writes are atomic, so it is never torn)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return empty_state()
        except OSError as exc:
            raise BatchctlError(f"cannot read registry {self.path}: {exc.strerror}") from exc
        return self._parse(raw)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchctlError(f"cannot create workspace {self.root}: {exc.strerror}") from exc
        warn_if_network_fs(self.root)
        lock = FileLock(str(self.lock_path), timeout=lock_timeout())
        try:
            lock.acquire()
        except Timeout:
            raise RegistryLockedError(
                f"the registry is locked by {self.lock_holder()}: {self.lock_path}",
                "wait for the other command to finish, or raise BATCHCTL_LOCK_TIMEOUT (seconds)",
            ) from None
        except OSError as exc:
            raise BatchctlError(f"cannot lock the registry {self.lock_path}: {exc.strerror}") from exc
        holder = self.lock_path.with_name(HOLDER_FILE)
        try:
            # filelock records no holder: who holds the lock is written beside it, for a waiter's error
            identity = {**processes.runner_identity(), "command": processes.own_command(), "since": time.time()}
            with contextlib.suppress(OSError):
                holder.write_text(json.dumps(identity), encoding="utf-8")
            yield
        finally:
            with contextlib.suppress(OSError):
                holder.unlink()
            lock.release()

    def lock_holder(self) -> str:
        """Who holds the registry lock: the identity a batchctl holder wrote beside it, else the pid that
        /proc/locks names (any program), else "another process"."""
        try:
            written = json.loads(self.lock_path.with_name(HOLDER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            written = None
        pid = processes.flock_holder(self.lock_path)
        if isinstance(written, dict) and processes.runner_alive(written) and pid in (None, written.get("pid")):
            return (
                f"another batchctl process, pid {written['pid']} (`{written.get('command') or '?'}`), "
                f"since {_when(written.get('since'))}"
            )
        if pid is None or pid <= 0:
            return "another process"
        command = processes.process_command(pid) or "?"
        return f"another process, pid {pid} (`{command}`, started {_when(processes.process_started_at(pid))})"

    def _clean_stray_temps(self) -> None:
        for pattern in (".registry.json.tmp-*", ".registry.json.bak-*"):
            for stray in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    stray.unlink()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Lock, read, let the caller mutate, then write atomically if anything changed."""
        with self.lock():
            self._clean_stray_temps()
            state = self.read()
            before = copy.deepcopy(state)
            yield state
            if state != before:
                self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        state["schema_version"] = SCHEMA_VERSION  # what this version writes (settings.SCHEMA_VERSION)
        payload = (json.dumps(state, indent=2) + "\n").encode()
        bak_tmp = self.root / f".registry.json.bak-{os.getpid()}"
        try:
            if self.path.exists():
                with contextlib.suppress(FileNotFoundError):
                    bak_tmp.unlink()
                os.link(self.path, bak_tmp)
                os.replace(bak_tmp, self.backup_path)
            atomic_write_bytes(self.path, payload)
        except OSError as exc:
            raise BatchctlError(
                f"cannot write registry {self.path}: {exc.strerror or exc}; it was left unchanged"
            ) from exc
        finally:
            # left behind when the replace failed, or when a writer died before its own replace: then
            # registry.json and .bak are one inode, and rename() of a hard link onto itself does nothing
            with contextlib.suppress(OSError):
                bak_tmp.unlink()
        fsync_dir(self.root)
