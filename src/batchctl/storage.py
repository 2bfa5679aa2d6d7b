"""The fsspec seam: where inputs are listed and fetched and where results are published.

Local paths use plain os calls (fast, and the create-only publish is `os.link`); every other URL goes
through fsspec, which is imported only when a remote location is used. Credentials are never stored:
`storage_options()` reads them from the environment each time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchctl.errors import BatchctlError, OutputExistsError, SpecError, StorageError

AZURE_PROTOCOLS = ("az", "abfs", "abfss", "adl")


@dataclass(frozen=True)
class Location:
    """A resolved place: `local` is an absolute path, otherwise `url` is an fsspec URL."""

    url: str
    protocol: str  # "file" for local

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def path(self) -> str:
        if self.is_local:
            return self.url
        return self.url.split("://", 1)[1]

    def join(self, *parts: str) -> Location:
        if self.is_local:
            return Location(os.path.join(self.url, *parts), "file")
        return Location("/".join([self.url.rstrip("/"), *[p.strip("/") for p in parts]]), self.protocol)


def location_from_record(data: dict[str, Any]) -> Location:
    return Location(data["url"], data["protocol"])


def location_record(loc: Location) -> dict[str, str]:
    return {"url": loc.url, "protocol": loc.protocol}


def protocol_of(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.lower() if sep else "file"


def check_remote_path(url: str) -> None:
    path = url.split("://", 1)[1] if "://" in url else url
    segments = path.replace("\\", "/").split("/")
    if ".." in segments or "." in segments[1:-1]:
        raise SpecError(f"path '{url}' contains a '..' or '.' segment, which is not allowed in remote paths")
    if "\x00" in path:
        raise SpecError("path contains a NUL character")


def location(url: str) -> Location:
    protocol = protocol_of(url)
    if protocol == "file":
        local = url[len("file://") :] if url.startswith("file://") else url
        return Location(os.path.abspath(os.path.expanduser(local)), "file")
    check_remote_path(url)
    return Location(url, protocol)


def storage_options(protocol: str) -> dict[str, Any]:
    """Options for fsspec, from the environment only (never persisted, never logged)."""
    if protocol in AZURE_PROTOCOLS:
        opts: dict[str, Any] = {}
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if conn:
            opts["connection_string"] = conn
        else:
            account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
            if account:
                opts["account_name"] = account
            if os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
                opts["account_key"] = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
            elif os.environ.get("AZURE_STORAGE_SAS_TOKEN"):
                opts["sas_token"] = os.environ["AZURE_STORAGE_SAS_TOKEN"]
            elif os.environ.get("AZURE_STORAGE_ANON", "").lower() in ("1", "true"):
                opts["anon"] = True
            else:
                opts["anon"] = False  # DefaultAzureCredential chain
        opts["skip_instance_cache"] = True
        return opts
    return {}


def filesystem(protocol: str) -> Any:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        from batchctl.errors import MissingDependencyError

        raise MissingDependencyError("fsspec is not installed", "pip install batchctl") from exc
    try:
        return fsspec.filesystem(protocol, **storage_options(protocol))
    except (ImportError, ValueError) as exc:
        from batchctl.errors import MissingDependencyError

        extra = "azure" if protocol in AZURE_PROTOCOLS else None
        hint = f"pip install 'batchctl[{extra}]'" if extra else f"install the fsspec implementation for {protocol}://"
        if isinstance(exc, ValueError) and "Protocol not known" not in str(exc):
            raise StorageError(f"cannot open {protocol}:// storage: {exc}") from exc
        raise MissingDependencyError(f"no filesystem for {protocol}:// is installed", hint) from exc


def _storage_error(action: str, url: str, exc: BaseException) -> StorageError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StorageError(f"cannot {action} {url}: {reason[:300]}")


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class InputListing:
    root: Location
    input_type: str  # uri_file | uri_folder
    files: list[str]  # relative to root for folders; the file name for uri_file


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.replace("\\", "/").split("/"))


def probe_type(loc: Location) -> str:
    """uri_file when the location is a file, else uri_folder; StorageError when it does not exist."""
    if loc.is_local:
        if os.path.isfile(loc.url):
            return "uri_file"
        if os.path.isdir(loc.url):
            return "uri_folder"
        raise StorageError(f"input '{loc.url}' does not exist")
    fs = filesystem(loc.protocol)
    try:
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache()
        if fs.isfile(loc.url):
            return "uri_file"
        if fs.isdir(loc.url):
            return "uri_folder"
    except (OSError, ValueError) as exc:
        raise _storage_error("read", loc.url, exc) from exc
    except Exception as exc:  # adlfs/aiohttp raise their own types; report them as one line
        raise _storage_error("read", loc.url, exc) from exc
    raise StorageError(f"input '{loc.url}' does not exist")


def list_inputs(loc: Location, input_type: str | None) -> InputListing:
    """List the files to score: recursive, sorted by path, hidden files skipped."""
    actual = probe_type(loc)
    kind = input_type or actual
    if kind == "uri_file" and actual != "uri_file":
        raise StorageError(f"input '{loc.url}' is a folder but --input-type is uri_file")
    if kind == "uri_folder" and actual != "uri_folder":
        raise StorageError(f"input '{loc.url}' is a file but --input-type is uri_folder")
    if kind == "uri_file":
        parent, name = (os.path.split(loc.url) if loc.is_local else loc.url.rstrip("/").rsplit("/", 1))
        root = Location(parent, loc.protocol)
        return InputListing(root, "uri_file", [name])
    files = _list_local(loc) if loc.is_local else _list_remote(loc)
    if not files:
        raise StorageError(f"input folder '{loc.url}' has no files to score")
    return InputListing(loc, "uri_folder", files)


def _list_local(loc: Location) -> list[str]:
    root = os.path.realpath(loc.url)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(loc.url, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, loc.url)
            if os.path.islink(full):
                target = os.path.realpath(full)
                if os.path.commonpath([root, target]) != root:
                    raise StorageError(
                        f"input '{rel}' is a symbolic link that points outside the input folder ({target})",
                        "copy the file into the input folder, or remove the link",
                    )
            out.append(rel)
    out.sort()
    return out


def _list_remote(loc: Location) -> list[str]:
    fs = filesystem(loc.protocol)
    base = fs._strip_protocol(loc.url).rstrip("/")
    try:
        found = fs.find(loc.url)
    except Exception as exc:  # remote listing errors come in many types
        raise _storage_error("list", loc.url, exc) from exc
    out = []
    for full in found:
        rel = full[len(base) :].lstrip("/") if full.startswith(base) else full
        if rel and not _hidden(rel):
            out.append(rel)
    out.sort()
    return out


def fetch(root: Location, rel: str, dest_dir: str) -> str:
    """A local path for one input file: the file itself when local, else a copy in dest_dir."""
    if root.is_local:
        return os.path.join(root.url, rel)
    src = root.join(rel)
    target = os.path.join(dest_dir, rel)
    os.makedirs(os.path.dirname(target) or dest_dir, exist_ok=True)
    fs = filesystem(root.protocol)
    try:
        fs.get_file(src.url, target)
    except Exception as exc:  # report any transport error as one line; the item fails
        raise _storage_error("download", src.url, exc) from exc
    return target


# ------------------------------------------------------------------------------------------ outputs


def output_exists(loc: Location) -> bool:
    if loc.is_local:
        return os.path.lexists(loc.url)
    fs = filesystem(loc.protocol)
    try:
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache()
        return bool(fs.exists(loc.url))
    except Exception as exc:  # transport errors: the check must not pass silently
        raise _storage_error("check", loc.url, exc) from exc


def refuse_existing(target: Location) -> None:
    if output_exists(target):
        raise OutputExistsError(
            f"output file {target.url} already exists; batchctl never overwrites results",
            "choose another --output-path (or --set output_file_name=...)",
        )


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
    fs = filesystem(target.protocol)
    try:
        with open(local_file, "rb") as src:
            handle = fs.open(target.url, "xb")
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
        raise _storage_error("publish", target.url, exc) from exc


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
    fs = filesystem(source.protocol)
    try:
        fs.get_file(source.url, dest)
    except Exception as exc:  # transport errors
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise _storage_error("download", source.url, exc) from exc


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


def is_readable(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and os.access(path, os.R_OK)
