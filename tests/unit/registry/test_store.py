from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from batchctl import fsutil
from batchctl.errors import BatchctlError, RegistryCorruptError, RegistryLockedError
from batchctl.registry.store import RegistryStore, empty_state
from batchctl.settings import SCHEMA_VERSION


@pytest.fixture
def store(tmp_path: Path) -> RegistryStore:
    return RegistryStore(tmp_path / "ws")


def _add(store: RegistryStore, name: str) -> None:
    with store.transaction() as state:
        state["endpoints"][name] = {"name": name}


def test_missing_registry_reads_as_empty_and_creates_nothing(store):
    assert store.read() == empty_state()
    assert not store.root.exists()


def test_first_write_has_schema_version_and_all_sections(store):
    _add(store, "ep1")
    data = json.loads(store.path.read_text())
    assert data == {
        "schema_version": SCHEMA_VERSION,
        "endpoints": {"ep1": {"name": "ep1"}},
        "deployments": {},
        "models": {},
        "data": {},
        "datastores": {},
        "computes": {},
        "environments": {},
        "components": {},
    }


def test_a_registry_written_before_the_environments_section_loads_and_keeps_its_records(store):
    store.root.mkdir(parents=True)
    old = {"schema_version": 1, "endpoints": {"ep1": {"name": "ep1"}}, "deployments": {}, "models": {}, "data": {}}
    store.path.write_text(json.dumps(old))
    assert store.read()["environments"] == {}
    _add(store, "ep2")
    data = json.loads(store.path.read_text())
    # written back with this version's schema: an older batchctl would misread its relative paths
    assert (data["schema_version"], sorted(data["endpoints"]), data["environments"]) == (2, ["ep1", "ep2"], {})


def test_write_goes_through_an_adjacent_temp_file_and_os_replace(store, monkeypatch):
    _add(store, "ep1")
    calls: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", spy)
    _add(store, "ep2")
    registry_calls = [(src, dst) for src, dst in calls if dst == store.path]
    assert len(registry_calls) == 1
    src, _ = registry_calls[0]
    assert src.parent == store.root
    assert src.name.startswith(".registry.json.tmp-")
    assert not src.exists()
    assert sorted(p.name for p in store.root.iterdir()) == [
        "registry.json",
        "registry.json.bak",
        "registry.json.lock",
    ]


def test_backup_keeps_the_previous_version(store):
    _add(store, "ep1")
    first = store.path.read_bytes()
    _add(store, "ep2")
    assert store.backup_path.read_bytes() == first
    assert set(json.loads(store.path.read_text())["endpoints"]) == {"ep1", "ep2"}


def test_no_change_means_no_write(store):
    _add(store, "ep1")
    before = store.path.stat().st_mtime_ns, store.path.read_bytes()
    with store.transaction() as state:
        state["endpoints"]["ep1"] = {"name": "ep1"}
    assert (store.path.stat().st_mtime_ns, store.path.read_bytes()) == before


def test_failed_replace_leaves_the_registry_and_no_temp_file(store, monkeypatch):
    _add(store, "ep1")
    before = store.path.read_bytes()

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "replace", broken)
    with pytest.raises(BatchctlError) as info:
        _add(store, "ep2")
    assert info.value.message == (f"cannot write registry {store.path}: No space left on device; it was left unchanged")
    assert store.path.read_bytes() == before
    assert not list(store.root.glob(".registry.json.tmp-*"))


def test_lock_timeout_names_the_batchctl_process_that_holds_it(store, monkeypatch):
    """Issue 28, item 13: a batchctl holder writes who it is beside the lock (pid, command, since when);
    a waiter's exit 7 names it. The holder is this test process, inside a transaction."""
    from batchctl.registry.store import HOLDER_FILE

    _add(store, "ep1")
    monkeypatch.setattr(sys, "argv", ["/venv/bin/batchctl", "endpoint", "update", "-n", "ep1"])
    env = {**os.environ, "BATCHCTL_HOME": str(store.root), "BATCHCTL_LOCK_TIMEOUT": "0.3"}
    with store.transaction():
        assert (store.root / HOLDER_FILE).is_file()
        waiter = subprocess.run(
            [sys.executable, "-m", "batchctl", "endpoint", "create", "-n", "ep2"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert waiter.returncode == 7, waiter.stderr
    assert re.fullmatch(
        rf"Error: the registry is locked by another batchctl process, pid {os.getpid()} "
        r"\(`batchctl endpoint update -n ep1`\), since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+ s ago: "
        + re.escape(str(store.lock_path)),
        waiter.stderr.splitlines()[0],
    ), waiter.stderr
    assert not (store.root / HOLDER_FILE).exists()  # removed before the lock is released
    assert "ep2" not in store.read()["endpoints"]


def test_exception_inside_the_transaction_writes_nothing(store):
    _add(store, "ep1")
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError), store.transaction() as state:
        state["endpoints"]["ep2"] = {"name": "ep2"}
        raise RuntimeError("boom")
    assert store.path.read_bytes() == before


def test_stray_temp_files_of_a_crashed_writer_are_cleaned(store):
    _add(store, "ep1")
    stray = store.root / ".registry.json.tmp-crashed"
    stray.write_bytes(b"{half")
    _add(store, "ep2")
    assert not stray.exists()


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_lock_timeout_names_the_lock_file(store, monkeypatch):
    _add(store, "ep1")
    before = store.path.read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store.lock_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setenv("BATCHCTL_LOCK_TIMEOUT", "0.3")
        with pytest.raises(RegistryLockedError) as info:
            _add(store, "ep2")
    finally:
        holder.kill()
        holder.wait()
    # the holder is not batchctl: /proc/locks names it (issue 28, item 13)
    pid = holder.pid
    assert re.fullmatch(
        rf"the registry is locked by another process, pid {pid} \(`python\S* -c import sys, time .*`, "
        rf"started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+ s ago\): {re.escape(str(store.lock_path))}",
        info.value.message,
    ), info.value.message
    assert info.value.hint == "wait for the other command to finish, or raise BATCHCTL_LOCK_TIMEOUT (seconds)"
    assert store.path.read_bytes() == before
    _add(store, "ep2")  # the holder is gone: the lock is free again
    assert set(store.read()["endpoints"]) == {"ep1", "ep2"}


CREATE_ENDPOINT = textwrap.dedent(
    """
    import os, sys, time
    from batchctl import api
    from batchctl.workspace import Workspace
    while not os.path.exists(sys.argv[3]):  # start together, after the imports, so the writes contend
        time.sleep(0.005)
    api.create_endpoint(Workspace.open(sys.argv[1]), name=sys.argv[2])
    """
)


@pytest.mark.slow
def test_sixteen_processes_creating_endpoints_lose_nothing(tmp_path):
    root = tmp_path / "shared-ws"
    go = tmp_path / "go"
    names = [f"endpoint-{i:02d}" for i in range(16)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE_ENDPOINT, str(root), name, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    time.sleep(1.0)
    go.touch()
    errors = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for proc in procs:
        proc.stderr.close()
    assert errors == [(0, "")] * 16
    data = json.loads((root / "registry.json").read_text())
    assert sorted(data["endpoints"]) == names


def _seed(store: RegistryStore, raw: bytes) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x00\x00\x00", "the file is empty"),
        (b'{"schema_version": 1, "endpoints": {"ep1": ', "(Expecting value)"),
        (b'{"schema_version": 1}\x00garbage', "(Extra data)"),
        (b"not json at all", "(Expecting value)"),
        (b"\xff\xfe{}", "(not UTF-8)"),
        (b"[1, 2]", "no schema_version"),
        (b'{"endpoints": {}}', "no schema_version"),
        (b'{"schema_version": 1, "endpoints": []}', "'endpoints' is not a mapping"),
    ],
)
def test_corrupt_registry_refused_and_left_byte_identical(store, raw, message):
    _seed(store, raw)
    with pytest.raises(RegistryCorruptError) as info:
        _add(store, "ep1")
    sep = " " if message.startswith("(") else ": "
    assert info.value.message == f"registry {store.path} is corrupt{sep}{message}; it was left untouched"
    assert info.value.hint == (
        f"move {store.path} aside to start a new registry (its contents are not recoverable by batchctl)"
    )
    assert store.path.read_bytes() == raw
    with pytest.raises(RegistryCorruptError):
        store.read()
    assert store.path.read_bytes() == raw


def test_corrupt_registry_hint_points_at_the_backup(store):
    _add(store, "ep1")
    _add(store, "ep2")
    store.path.write_bytes(b'{"schema_version": 1, "endp')
    with pytest.raises(RegistryCorruptError) as info:
        store.read()
    assert info.value.hint == (
        f"the last good version is {store.backup_path}; restore it with: cp '{store.backup_path}' '{store.path}'"
    )


def test_newer_schema_refused_and_left_byte_identical(store):
    raw = (json.dumps({"schema_version": SCHEMA_VERSION + 1, "endpoints": {}, "flows": {}}) + "\n").encode()
    _seed(store, raw)
    with pytest.raises(RegistryCorruptError) as info:
        _add(store, "ep1")
    assert info.value.message == (
        f"registry {store.path} has schema_version {SCHEMA_VERSION + 1}, newer than this batchctl supports "
        f"({SCHEMA_VERSION}); it was left untouched"
    )
    assert info.value.hint == "upgrade batchctl (pip install -U batchctl) to use this workspace"
    assert store.path.read_bytes() == raw
    assert not store.backup_path.exists()
