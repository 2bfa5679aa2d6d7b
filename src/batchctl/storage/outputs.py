"""Outputs: where results go. Every write is create-only: an existing result is refused, never overwritten,
and a failed upload leaves no partial file at the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from batchctl.errors import BatchctlError, OutputExistsError, StorageError, redact
from batchctl.storage.azure import _container_exists
from batchctl.storage.faults import _status, _storage_error
from batchctl.storage.inputs import _list_remote
from batchctl.storage.locations import Location, remote
from batchctl.urls import AZURE_PROTOCOLS


def output_exists(loc: Location) -> bool:
    """Whether anything exists at loc, asked of the store itself (listing cache dropped first). A missing
    container is an error, not "absent": the results could not be published there."""
    if loc.is_local:
        return os.path.lexists(loc.url)
    fs, path = remote(loc)
    try:
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache()
        if loc.protocol in AZURE_PROTOCOLS:
            container = path.split("/", 1)[0]
            if not _container_exists(fs, container, loc):
                account = getattr(fs, "account_name", None) or "the storage account"
                raise StorageError(
                    f"output {redact(loc.url)}: container '{container}' does not exist in {account}",
                    "create the container first (batchctl does not create containers)",
                )
        return bool(fs.exists(path))
    except BatchctlError:
        raise
    except Exception as exc:  # transport errors: the check must not pass silently
        raise _storage_error("check", loc.url, exc, loc) from exc


def refuse_existing(target: Location) -> None:
    if output_exists(target):
        raise OutputExistsError(
            f"output file {target.url} already exists; batchctl never overwrites results",
            "choose another --output-path (or --set output_file_name=...)",
        )


def probe_write(folder: Location) -> None:
    """Before any work: the credentials for a remote output folder must allow creating a blob there. A SAS
    token says so in its `sp=`; other credentials are tried with a zero-byte probe blob, removed at once.
    Call after the container is known to exist (refuse_existing / list_files)."""
    if folder.is_local or folder.protocol not in AZURE_PROTOCOLS:
        return
    import uuid

    fs, path = remote(folder)
    allowed = getattr(fs, "sas_permissions", None)
    if allowed is not None:
        if not set(allowed) & {"c", "w"}:
            raise StorageError(
                f"cannot write to output {redact(folder.url)}: the SAS token allows sp={allowed} (no create or write)",
                "use a SAS token with create and write permissions (sp=rcwl) for the output",
            )
        return
    probe = f"{path.rstrip('/')}/.batchctl-probe-{uuid.uuid4().hex}"
    try:
        fs.pipe_file(probe, b"")
    except Exception as exc:  # transport errors and refusals from the store
        if _status(exc) in (401, 403):
            raise StorageError(
                f"cannot write to output {redact(folder.url)}: access denied (HTTP {_status(exc)}): the "
                "credentials may not create blobs there",
                "use credentials with write access to the output (a SAS token needs sp=rcwl)",
            ) from exc
        raise _storage_error("write to output", folder.url, exc, folder) from exc
    try:
        fs.rm_file(probe)
    except Exception:  # may create but not delete: a zero-byte blob is left, and said
        from batchctl.notices import notify

        notify(f"could not remove the write probe {redact(probe)} (the credentials may create but not delete)")


def check_output_folder(folder: Location) -> None:
    """Before any work: a local output folder must be a folder (or not exist yet, with no file on its path)
    in which files can be created. Remote folders are checked by `refuse_existing`/`list_files`."""
    if not folder.is_local:
        return
    path = folder.url
    if os.path.lexists(path) and not os.path.isdir(path):
        raise StorageError(
            f"output path {path} is a file; --output-path names a folder", "choose another --output-path"
        )
    ancestor = path
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise StorageError(f"output path {path} is under {ancestor}, which is a file", "choose another --output-path")
    try:  # a real probe, not os.access: it also sees read-only filesystems and root's limits
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".batchctl-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StorageError(
            f"cannot write to output path {path}: {exc.strerror or exc}", "choose a folder you can write to"
        ) from exc


def prepare_output_folder(folder: Location) -> None:
    if folder.is_local:
        try:
            os.makedirs(folder.url, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create output folder {folder.url}: {exc.strerror}") from exc
        if not os.access(folder.url, os.W_OK):
            raise StorageError(f"output folder {folder.url} is not writable")


def publish(local_file: str, target: Location) -> None:
    """Create `target` from `local_file` only if it does not exist; never a partial file at the final name."""
    if target.is_local:
        folder = os.path.dirname(target.url)
        prepare_output_folder(Location(folder, "file"))
        tmp = os.path.join(folder, f".{os.path.basename(target.url)}.batchctl-{os.getpid()}.tmp")
        try:
            try:
                os.link(local_file, tmp)  # same filesystem: no copy
            except OSError:
                shutil.copyfile(local_file, tmp)
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
            os.link(tmp, target.url)
        except FileExistsError:
            raise OutputExistsError(
                f"output file {target.url} appeared while the job ran; it was not overwritten",
                "the results of this job were not published",
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot publish {target.url}: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        from batchctl.fsutil import fsync_dir

        fsync_dir(Path(folder))
        return
    fs, path = remote(target)
    try:
        with open(local_file, "rb") as src:
            handle = fs.open(path, "xb")  # adlfs: If-None-Match: * on commit, so create-only is atomic
            try:
                shutil.copyfileobj(src, handle, 4 << 20)
            except BaseException:
                _discard(handle)
                raise
            handle.close()
    except FileExistsError:
        raise OutputExistsError(
            f"output file {target.url} appeared while the job ran; it was not overwritten",
            "the results of this job were not published",
        ) from None
    except BatchctlError:
        raise
    except Exception as exc:  # transport errors from the store
        raise _storage_error("publish", target.url, exc, target) from exc


def _discard(handle: Any) -> None:
    # an fsspec buffered file commits on close(); on failure drop the buffer and mark it closed instead
    with contextlib.suppress(Exception):
        handle.discard()
    with contextlib.suppress(Exception):
        handle.closed = True


def upload_tree(local_dir: str, target: Location) -> list[str]:
    """Copy every file of local_dir under target, create-only; returns the published names."""
    published = []
    for dirpath, _, filenames in os.walk(local_dir):
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, local_dir)
            publish(full, target.join(*rel.split(os.sep)))
            published.append(rel)
    return published


def download(source: Location, dest: str) -> None:
    """Copy a file from a location to a local path that must not exist."""
    if os.path.lexists(dest):
        raise OutputExistsError(f"{dest} already exists; it was not overwritten", "choose another --download-path")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if source.is_local:
        if not os.path.isfile(source.url):
            raise StorageError(f"{source.url} does not exist")
        shutil.copyfile(source.url, dest)
        return
    fs, path = remote(source)
    try:
        fs.get_file(path, dest)
    except Exception as exc:  # transport errors
        with contextlib.suppress(OSError):
            os.unlink(dest)
        if isinstance(exc, FileNotFoundError):
            raise StorageError(f"{redact(source.url)} does not exist") from None
        raise _storage_error("download", source.url, exc, source) from exc


def list_files(loc: Location) -> list[str]:
    """Relative paths of the files under a folder location (empty when it does not exist)."""
    if loc.is_local:
        if os.path.isfile(loc.url):
            return [os.path.basename(loc.url)]
        if not os.path.isdir(loc.url):
            return []
        out = []
        for dirpath, _, filenames in os.walk(loc.url):
            for name in filenames:
                out.append(os.path.relpath(os.path.join(dirpath, name), loc.url))
        return sorted(out)
    return _list_remote(loc) if output_exists(loc) else []
