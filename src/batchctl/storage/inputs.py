"""Inputs: what a job scores. Probe whether a location is a file or a folder, list the files to score, and
fetch one file to the worker's scratch folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from batchctl.errors import BatchctlError, StorageError, redact
from batchctl.storage.azure import _container_exists
from batchctl.storage.faults import _is_connect_error, _storage_error
from batchctl.storage.locations import Location, remote
from batchctl.urls import AZURE_PROTOCOLS


@dataclass(frozen=True)
class InputListing:
    root: Location
    input_type: str  # uri_file | uri_folder
    files: list[str]  # relative to root for folders; the file name for uri_file


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.replace("\\", "/").split("/"))


# Here, not in faults.py, because it asks the store (remote, _container_exists): faults.py stays below
# locations.py and azure.py.
def _missing(loc: Location, what: str) -> StorageError:
    """A missing path, or a missing container when that is the cause."""
    if loc.protocol in AZURE_PROTOCOLS:
        fs, path = remote(loc)
        container = path.split("/", 1)[0]
        if container and not _container_exists(fs, container, loc):
            account = getattr(fs, "account_name", None) or "the storage account"
            return StorageError(f"{what} {redact(loc.url)}: container '{container}' does not exist in {account}")
    return StorageError(f"{what} '{redact(loc.url)}' does not exist")


def probe_type(loc: Location) -> str:
    """uri_file when the location is a file, else uri_folder; StorageError when it does not exist."""
    if loc.is_local:
        if os.path.isfile(loc.url):
            return "uri_file"
        if os.path.isdir(loc.url):
            return "uri_folder"
        if os.path.islink(loc.url) and not os.path.exists(loc.url):
            raise StorageError(f"input '{loc.url}' is a symbolic link to a path that does not exist")
        if os.path.exists(loc.url):
            raise StorageError(f"input '{loc.url}' is not a regular file or folder (a FIFO, socket or device)")
        raise StorageError(f"input '{loc.url}' does not exist")
    fs, path = remote(loc)
    try:
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache()
        # info(), not isfile()/isdir(): those answer False for an unreachable store or a rejected key
        info = fs.info(path)
    except FileNotFoundError as exc:
        # fsspec's HTTP filesystem turns every failure of HEAD and GET into FileNotFoundError: a host that
        # does not answer is unreachable, not missing
        cause = exc.__cause__ or exc.__context__
        if cause is not None and _is_connect_error(cause):
            raise _storage_error("read", loc.url, cause, loc) from exc
        raise _missing(loc, "input") from None
    except BatchctlError:
        raise
    except Exception as exc:  # adlfs/aiohttp raise their own types; report them as one line
        raise _storage_error("read", loc.url, exc, loc) from exc
    if info.get("type") == "directory":
        return "uri_folder"
    if loc.protocol in ("http", "https") and loc.url.endswith("/"):
        return "uri_folder"  # a listed folder: an index page whose links are the files
    return "uri_file"


Entry = tuple[str, int | None, Any]  # (path relative to the root, size, stamp: mtime in ns locally, ETag on blob)


@dataclass(frozen=True)
class ListingStream:
    """A listing being read: its root and type, what its stamps are, and its entries in the order jobs
    score them (sorted by path, as a plain string sort of the relative paths gives), produced lazily."""

    root: Location
    input_type: str  # uri_file | uri_folder
    basis: str  # what an entry's stamp is: "path,size,mtime_ns" locally, "path,size,etag" on a store
    entries: Iterator[Entry]


def open_listing(loc: Location, input_type: str | None) -> ListingStream:
    """The files to score as a stream: recursive, sorted by path, hidden files skipped. A folder is walked
    one directory at a time (each directory's entries sorted, then visited in that order), so the first
    entries come at once and memory holds one directory per level, not the whole listing."""
    actual = probe_type(loc)
    kind = input_type or actual
    if kind == "uri_file" and actual != "uri_file":
        raise StorageError(f"input '{loc.url}' is a folder but --input-type is uri_file")
    if kind == "uri_folder" and actual != "uri_folder":
        raise StorageError(f"input '{loc.url}' is a file but --input-type is uri_folder")
    basis = "path,size,mtime_ns" if loc.is_local else "path,size,etag"
    if kind == "uri_file":
        parent, name = os.path.split(loc.url) if loc.is_local else loc.url.rstrip("/").rsplit("/", 1)
        root = Location(parent, loc.protocol)
        return ListingStream(root, "uri_file", basis, iter(entries_of(root, [name])))
    if loc.is_local:
        walk = _walk_local(loc)
    elif loc.protocol in ("http", "https"):  # an index page: its links are one flat listing
        walk = _find_flat(loc)
    else:
        walk = _walk_remote(loc)
    return ListingStream(loc, "uri_folder", basis, walk)


def list_inputs(loc: Location, input_type: str | None) -> InputListing:
    """List the files to score (the whole listing in memory: small inputs and checks)."""
    stream = open_listing(loc, input_type)
    files = [entry[0] for entry in stream.entries]
    if not files:
        raise StorageError(f"input folder '{loc.url}' has no files to score")
    return InputListing(stream.root, stream.input_type, files)


def sort_key(name: str, is_dir: bool, sep: str = "/") -> str:
    """A directory entry's place among its siblings. A directory sorts as its name plus the separator,
    which makes a walk in this order equal to a string sort of the full relative paths: 'a-b/x' comes
    before 'a/b' ('-' < '/'), and 'a.csv' before 'a/x' but 'a0.csv' after it."""
    return name + sep if is_dir else name


WINDOW = 10_000  # a directory's names are sorted this many at a time; a bigger one spills sorted runs to disk
MERGE_FAN_IN = 64  # runs merged at once (more runs are first merged into one, so open files stay bounded)


def _scan_keys(folder: str) -> Iterator[tuple[str, bool]]:
    """A directory's (sort key, is a link to a file), unsorted; hidden entries and links to folders left out."""
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:  # a link loop: listed, and the worker fails it as one item with its reason
                is_dir = False
            link = entry.is_symlink()
            if link and is_dir:
                continue
            yield sort_key(name, is_dir, os.sep), link


def _write_run(path: str, records: Iterable[tuple[str, bool]]) -> None:
    """A sorted run: each record is a flag ('L' a link to a file, '-' not) and the key, ended by NUL (a
    name never holds one); lone surrogates (undecodable names) round-trip through surrogatepass."""
    with open(path, "wb", buffering=1 << 16) as out:
        for key, link in records:
            out.write((("L" if link else "-") + key + "\0").encode("utf-8", "surrogatepass"))


def _read_run(path: str) -> Iterator[tuple[str, bool]]:
    with open(path, "rb") as run:
        rest = b""
        while block := run.read(1 << 14):  # small blocks: every run of a merge holds one, split
            *records, rest = (rest + block).split(b"\0")
            for record in records:
                text = record.decode("utf-8", "surrogatepass")
                yield text[1:], text[0] == "L"


def _sorted_keys(folder: str) -> Iterator[tuple[str, bool]]:
    """A directory's keys in order, read once: WINDOW at a time are sorted in memory, and a bigger
    directory's sorted runs are spilled to a temporary folder and merged (an external sort), so memory
    holds a bounded number of names whatever the directory's size."""
    import heapq
    import itertools
    import tempfile

    scan = _scan_keys(folder)
    first = sorted(itertools.islice(scan, WINDOW))
    if len(first) < WINDOW:
        yield from first
        return
    with tempfile.TemporaryDirectory(prefix="batchctl-listing-") as spill:
        runs: list[str] = []
        names = itertools.count()

        def spill_run(records: Iterable[tuple[str, bool]]) -> None:
            runs.append(os.path.join(spill, f"{next(names)}.run"))
            _write_run(runs[-1], records)

        chunk, first = first, []
        while chunk:
            spill_run(chunk)
            chunk = []
            if len(runs) >= MERGE_FAN_IN:  # fold them into one run
                merging, runs[:] = list(runs), []
                spill_run(heapq.merge(*(_read_run(run) for run in merging)))
                for run in merging:
                    os.remove(run)
            chunk = sorted(itertools.islice(scan, WINDOW))
        yield from heapq.merge(*(_read_run(run) for run in runs))


def _walk_local(loc: Location) -> Iterator[Entry]:
    """Files under a local folder, relative and sorted; hidden entries skipped; symbolic links to folders
    are not followed (as os.walk does), and a link to a file outside the folder is refused. Each
    directory is read once, its names sorted in bounded memory (_sorted_keys)."""
    root = os.path.realpath(loc.url)
    stack = [(_sorted_keys(loc.url), loc.url, "")]
    while stack:
        keys, folder, prefix = stack[-1]
        item = next(keys, None)
        if item is None:
            stack.pop()
            continue
        key, link = item
        if key.endswith(os.sep):
            name = key[:-1]
            path = os.path.join(folder, name)
            stack.append((_sorted_keys(path), path, prefix + key))
            continue
        rel, path = prefix + key, os.path.join(folder, key)
        if link:
            target = os.path.realpath(path)
            if os.path.commonpath([root, target]) != root:
                raise StorageError(
                    f"input '{rel}' is a symbolic link that points outside the input folder ({target})",
                    "copy the file into the input folder, or remove the link",
                )
        try:
            st = os.stat(path)
            yield rel, st.st_size, st.st_mtime_ns
        except OSError:
            yield rel, None, None


def stamp_of(info: dict[str, Any]) -> str | None:
    """What says a stored file changed: its ETag (or what the store gives instead)."""
    for key in ("etag", "ETag", "mtime", "last_modified", "LastModified"):
        value = info.get(key)
        if value is not None:
            return str(value).strip('"')
    return None


def _walk_remote(loc: Location) -> Iterator[Entry]:
    """A store's folder, one directory listing at a time (the SDK pages through each listing); the
    filesystem's listing cache is dropped after each directory so that memory stays flat."""
    fs, path = remote(loc)
    base = fs._strip_protocol(path).rstrip("/")

    def children(folder: str) -> list[tuple[str, int | None, str | None]]:
        try:
            infos = fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:  # remote listing errors come in many types
            raise _storage_error("list", loc.url, exc, loc) from exc
        finally:
            with contextlib.suppress(Exception):
                fs.invalidate_cache(folder)
        items = []
        for info in infos:
            full = str(info.get("name", "")).rstrip("/")
            full = fs._strip_protocol(full) if "://" in full else full
            if not full.startswith(folder.rstrip("/") + "/"):
                continue  # the folder itself (a marker blob)
            name = full[len(folder.rstrip("/")) + 1 :]
            if not name or name.startswith(".") or "/" in name:
                continue
            is_dir = info.get("type") == "directory"
            size = info.get("size")
            # held for the whole directory: the key (name) and what the entry needs, not the store's dict
            items.append((sort_key(name, is_dir), None if is_dir or size is None else int(size), stamp_of(info)))
        items.sort(key=lambda item: item[0])
        return items

    stack = [(iter(children(base)), base)]
    while stack:
        level, folder = stack[-1]
        item = next(level, None)
        if item is None:
            stack.pop()
            continue
        key, size, stamp = item
        full = f"{folder}/{key.rstrip('/')}"
        if key.endswith("/"):
            stack.append((iter(children(full)), full))
            continue
        yield full[len(base) :].lstrip("/"), size, stamp


def _list_remote(loc: Location) -> list[str]:
    """A store's folder as one flat listing (an output folder's files), sorted."""
    return [entry[0] for entry in _find_flat(loc)]


def _find_flat(loc: Location) -> Iterator[Entry]:
    """One flat listing (fsspec's find), sorted: an http index page, or an output folder."""
    fs, path = remote(loc)
    base = fs._strip_protocol(path).rstrip("/")
    try:
        found = fs.find(path, detail=True)
    except FileNotFoundError:
        return
    except Exception as exc:  # remote listing errors come in many types
        raise _storage_error("list", loc.url, exc, loc) from exc
    out = []
    for full, info in found.items():
        if info.get("type") == "directory":  # folder marker blobs
            continue
        rel = full[len(base) :].lstrip("/") if full.startswith(base) else full
        if "://" in rel:  # an http link that leaves the listed folder
            continue
        if rel and not _hidden(rel):
            size = info.get("size")
            out.append((rel, None if size is None else int(size), stamp_of(info)))
    out.sort(key=lambda entry: entry[0])
    yield from out


def entries_of(root: Location, files: list[str]) -> list[Entry]:
    """(path, size, stamp) of named files (a rerun's subset, a uri_file input); None, None for a file that
    is gone."""
    out: list[Entry] = []
    if root.is_local:
        for rel in files:
            try:
                st = os.stat(os.path.join(root.url, rel))
                out.append((rel, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((rel, None, None))
        return out
    fs, path = remote(root)
    for rel in files:
        try:
            info = fs.info(f"{path.rstrip('/')}/{rel}")
            size = info.get("size")
            out.append((rel, None if size is None else int(size), stamp_of(info)))
        except Exception:  # gone, or the store went away: the job reports it per item
            out.append((rel, None, None))
    return out


def fetch(root: Location, rel: str, dest_dir: str) -> str:
    """A local path for one input file: the file itself when local, else a copy in dest_dir (the worker's
    scratch folder, removed after the mini-batch)."""
    if root.is_local:
        return os.path.join(root.url, rel)
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise StorageError(f"input name '{rel}' has a '..' segment; it was not downloaded")
    src = root.join(rel)
    target = os.path.join(dest_dir, *parts)
    os.makedirs(os.path.dirname(target) or dest_dir, exist_ok=True)
    fs, path = remote(src)
    try:
        fs.get_file(path, target)
    except FileNotFoundError:
        raise StorageError(f"input file {redact(src.url)} no longer exists") from None
    except Exception as exc:  # report any transport error as one line; the item fails
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise _storage_error("download", src.url, exc, src) from exc
    return target


TABLE_SUFFIXES = (".csv", ".parquet", ".pqt")


def local_columns(path: str) -> list[str] | None:
    """The column names of a local CSV (its header line) or Parquet file (its schema); None for another
    kind of file or one that cannot be read (scoring reports those)."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".csv":
            import csv

            with open(path, encoding="utf-8-sig", newline="") as handle:
                # the header is the first line that is not blank, as pandas finds it (execution/splitting.py's
                # header_end): blank lines before it are skipped
                return next((row for row in csv.reader(handle) if any(c.strip(" \t\r") for c in row)), [])
        if suffix in (".parquet", ".pqt"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
    except Exception:  # an unreadable or malformed file is scoring's to report, as one failed item
        return None
    return None
