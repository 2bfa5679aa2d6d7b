"""registry.json under faults (issue 7, "Registry and state"): a writer killed before the replace, racing
writers, a held or abandoned lock, a corrupt file with a backup beside it, a full or read-only disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from batchctl import fsutil
from batchctl.settings import SCHEMA_VERSION

from .hardening_helpers import batchctl_run, one_line_error, tree


@pytest.fixture
def home() -> Path:
    return Path(os.environ["BATCHCTL_HOME"])


def _ok(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


# ------------------------------------------------------------------------------------- killed writer

# A real `batchctl endpoint create` whose os.replace onto registry.json kills the process, as a power cut
# or SIGKILL would between writing the temp file and the replace. Other replaces (the .bak) go through.
KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == "registry.json":
            os._exit(9)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    sys.argv = ["batchctl", *sys.argv[1:]]
    from batchctl.cli import main
    main()
    """
)


def test_writer_killed_before_the_replace_leaves_the_previous_version(cli, home):
    _ok(cli("endpoint", "create", "-n", "ep1"))
    before = (home / "registry.json").read_bytes()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, "endpoint", "create", "-n", "ep2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert killed.returncode == 9, killed.stderr
    assert (home / "registry.json").read_bytes() == before
    strays = list(home.glob(".registry.json.tmp-*"))
    assert len(strays) == 1 and b"ep2" in strays[0].read_bytes()  # the temp file was fully written
    # readers ignore the stray temp file
    assert [e["name"] for e in _ok(cli("endpoint", "list"))] == ["ep1"]
    # the next write cleans it
    _ok(cli("endpoint", "create", "-n", "ep3"))
    assert not list(home.glob(".registry.json.tmp-*"))
    assert not list(home.glob(".registry.json.bak-*"))
    assert sorted(json.loads((home / "registry.json").read_text())["endpoints"]) == ["ep1", "ep3"]
    assert (home / "registry.json.bak").read_bytes() == before


# ------------------------------------------------------------------------------------- racing writers

SAME_NAME = textwrap.dedent(
    """
    import os, sys, time
    while not os.path.exists(sys.argv[1]):  # start together, after the imports, so the writes contend
        time.sleep(0.005)
    sys.argv = ["batchctl", "endpoint", "create", "-f", sys.argv[2]]
    from batchctl.cli import main
    main()
    """
)


@pytest.mark.slow
def test_eight_processes_creating_the_same_endpoint_keep_exactly_one_spec(tmp_path, home):
    go = tmp_path / "go"
    specs = []
    for i in range(8):
        spec = tmp_path / f"ep-{i}.yml"
        spec.write_text(f"name: shared\ndescription: writer {i}\ntags: {{writer: '{i}'}}\n")
        specs.append(spec)
    procs = [
        subprocess.Popen([sys.executable, "-c", SAME_NAME, str(go), str(spec)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for spec in specs
    ]  # fmt: skip
    time.sleep(1.0)
    go.touch()
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    # create is create-or-update (SPEC section 3): every writer succeeds, one after another under the lock
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    data = json.loads((home / "registry.json").read_text())
    assert list(data["endpoints"]) == ["shared"]
    winner = data["endpoints"]["shared"]
    assert winner["description"] in {f"writer {i}" for i in range(8)}
    assert winner["tags"] == {"writer": winner["description"].split()[-1]}  # one writer's spec, not a mix
    json.loads((home / "registry.json.bak").read_text())  # the backup is a whole document too
    assert not list(home.glob(".registry.json.tmp-*"))


# ------------------------------------------------------------------------------------- the lock

HOLD_LOCK = (
    "import sys, time\nfrom filelock import FileLock\nlock = FileLock(sys.argv[1])\nlock.acquire()\n"
    "print('locked', flush=True)\ntime.sleep(120)\n"
)


def _holder(lock: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


@pytest.mark.slow
def test_a_held_lock_is_waited_for_a_bounded_time_then_exit_7(cli, home):
    _ok(cli("endpoint", "create", "-n", "ep1"))
    before = tree(home)
    holder = _holder(home / "registry.json.lock")
    try:
        started = time.monotonic()
        result = batchctl_run("endpoint", "create", "-n", "ep2", env={"BATCHCTL_LOCK_TIMEOUT": "1.5"})
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.communicate()
    assert result.returncode == 7
    message = one_line_error(result.stderr)
    assert message.startswith(f"the registry is locked by another process, pid {holder.pid} (`python")
    assert message.endswith(f" s ago): {home / 'registry.json.lock'}")
    assert elapsed >= 1.5  # it did wait ...
    assert elapsed < 1.5 + 30  # ... a bounded time (slack for interpreter start-up on a busy machine)
    assert tree(home) == before


def test_a_lock_whose_holder_was_sigkilled_is_taken_at_once(cli, home):
    _ok(cli("endpoint", "create", "-n", "ep1"))
    holder = _holder(home / "registry.json.lock")
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    # a zero timeout: one try, no waiting; flock was released by the kernel when the holder died
    result = batchctl_run("endpoint", "create", "-n", "ep2", env={"BATCHCTL_LOCK_TIMEOUT": "0"})
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads((home / "registry.json").read_text())["endpoints"]) == ["ep1", "ep2"]


# ------------------------------------------------------------------------------------- corrupt registry


def _newer(raw: bytes) -> bytes:
    data = json.loads(raw)
    data["schema_version"] = SCHEMA_VERSION + 1
    return (json.dumps(data) + "\n").encode()


CORRUPTIONS = {
    "empty": lambda raw: b"",
    "truncated": lambda raw: raw[: len(raw) // 2],
    "nul-filled": lambda raw: b"\x00" * len(raw),  # what some filesystems leave after a crash
    "newer-schema": _newer,
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_registry_is_refused_untouched_and_the_hint_restores_the_backup(cli, home, kind):
    _ok(cli("endpoint", "create", "-n", "ep1"))
    _ok(cli("endpoint", "create", "-n", "ep2"))
    good = (home / "registry.json").read_bytes()
    backup = (home / "registry.json.bak").read_bytes()
    assert list(json.loads(backup)["endpoints"]) == ["ep1"]  # the last good version before the last write
    bad = CORRUPTIONS[kind](good)
    (home / "registry.json").write_bytes(bad)
    before = tree(home)
    for args in (
        ("endpoint", "list"),
        ("endpoint", "show", "-n", "ep1"),
        ("endpoint", "create", "-n", "ep3"),
        ("endpoint", "delete", "-n", "ep1", "--yes"),
        ("compute", "create", "-n", "c1", "--type", "local"),
    ):
        result = cli(*args)
        assert result.exit_code == 8, (args, result.stderr)
        message = one_line_error(result.stderr)
        assert str(home / "registry.json") in message and "left untouched" in message
        hint = result.stderr.splitlines()[1]
        restore = f"cp '{home / 'registry.json.bak'}' '{home / 'registry.json'}'"
        assert restore in hint, hint
        assert tree(home) == before, args  # not rewritten, no backup of the bad file, no temp files
    # following the hint gives a working registry with the last good version
    subprocess.run(["sh", "-c", "cp " + hint.split("cp ", 1)[1]], check=True)
    assert [e["name"] for e in _ok(cli("endpoint", "list"))] == ["ep1"]


# ------------------------------------------------------------------------------------- disk full / EACCES


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _eacces(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


def _fail_file_fsync(real):
    def fsync(fd):
        import stat as st

        if st.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    return fsync


FAULTS = {
    # where the write can fail: creating the temp file, filling it, linking the backup, the replace
    "mkstemp-EACCES": lambda mp: mp.setattr(tempfile, "mkstemp", _eacces),
    "fsync-ENOSPC": lambda mp: mp.setattr(fsutil.os, "fsync", _fail_file_fsync(os.fsync)),
    "backup-link-ENOSPC": lambda mp: mp.setattr(os, "link", _enospc),
    "replace-EACCES": lambda mp: mp.setattr(fsutil.os, "replace", _eacces),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_disk_full_or_permission_denied_leaves_the_registry_byte_identical(cli, home, monkeypatch, fault):
    _ok(cli("endpoint", "create", "-n", "ep1"))
    _ok(cli("endpoint", "create", "-n", "ep2"))
    before = tree(home)
    with monkeypatch.context() as mp:
        FAULTS[fault](mp)
        result = cli("endpoint", "create", "-n", "ep3")
    assert result.exit_code != 0
    message = one_line_error(result.stderr)
    assert message.startswith(f"cannot write registry {home / 'registry.json'}: ")
    assert message.endswith("; it was left unchanged")
    assert ("No space left on device" in message) or ("Permission denied" in message)
    after = tree(home)
    assert after["registry.json"] == before["registry.json"]
    assert not [p for p in after if p.startswith(".registry.json.")], after  # no temp file left behind
    # and the workspace still works once the disk is fine again
    _ok(cli("endpoint", "create", "-n", "ep3"))
