"""The Azurite session fixture itself: a real server, adlfs 'xb' semantics, stop/restart by PID."""

from __future__ import annotations

import os
import socket
import threading
import urllib.error
import urllib.request

import psutil
import pytest

pytestmark = pytest.mark.azurite


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_server_answers(azurite):
    assert azurite.account_name == "devstoreaccount1"
    assert azurite.blob_endpoint == f"http://127.0.0.1:{azurite.port}/devstoreaccount1"
    assert f"BlobEndpoint={azurite.blob_endpoint};" in azurite.connection_string
    assert azurite.account_key not in repr(azurite)
    # Any HTTP answer at all (an unauthenticated request is refused) proves the blob server is there.
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{azurite.blob_endpoint}?comp=list", timeout=5)
    assert err.value.code in (400, 403)

    from azure.storage.blob import BlobServiceClient

    name = azurite.new_container()
    assert name.startswith("t-") and len(name) == 14
    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        assert name in [c.name for c in client.list_containers(name_starts_with="t-")]
    assert azurite.new_container() != name


def test_azurite_env_sets_connection_string(azurite_env):
    assert os.environ["AZURE_STORAGE_CONNECTION_STRING"] == azurite_env.connection_string


def test_exclusive_create(azurite):
    fs = azurite.fs()
    path = f"{azurite.new_container()}/out/part-0000.bin"
    with fs.open(path, "xb") as f:
        f.write(b"first")
    assert fs.cat_file(path) == b"first"

    with pytest.raises(FileExistsError):
        with fs.open(path, "xb") as f:
            f.write(b"second")
    fs.invalidate_cache()
    assert fs.cat_file(path) == b"first"


def test_two_concurrent_exclusive_writers_one_wins(azurite):
    path = f"{azurite.new_container()}/race/result.bin"
    barrier = threading.Barrier(2, timeout=10)
    outcome: dict[str, object] = {}

    def writer(tag: str) -> None:
        fs = azurite.fs()  # its own filesystem instance, as a separate worker would have
        try:
            with fs.open(path, "xb") as f:
                f.write(tag.encode() * 1000)
                barrier.wait()  # both have opened and written; now both commit at once
            outcome[tag] = "won"
        except FileExistsError as exc:
            outcome[tag] = exc
        except BaseException as exc:  # surfaces in the assertion below
            outcome[tag] = exc

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)

    winners = [tag for tag, result in outcome.items() if result == "won"]
    losers = [tag for tag, result in outcome.items() if isinstance(result, FileExistsError)]
    assert len(winners) == 1 and len(losers) == 1, outcome
    assert azurite.fs().cat_file(path) == winners[0].encode() * 1000


def test_stop_kills_the_process_and_start_reuses_the_port(azurite):
    port, pid = azurite.port, azurite.pid
    assert _pid_alive(pid) and _port_open(port)
    container = azurite.new_container()
    fs = azurite.fs()
    fs.pipe_file(f"{container}/keep.txt", b"x")

    try:
        azurite.stop()
        assert not azurite.is_running()
        assert not _pid_alive(pid)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not _port_open(port)
    finally:
        azurite.start()

    assert azurite.is_running() and azurite.port == port and azurite.pid != pid
    assert _pid_alive(azurite.pid) and _port_open(port)
    # --inMemoryPersistence: the restarted server is empty (documented in the fixture).
    fresh = azurite.fs()
    assert not fresh.exists(f"{container}/keep.txt")
    # ...and an existing filesystem object reaches the new server through the unchanged port.
    again = azurite.new_container()
    fs.pipe_file(f"{again}/after-restart.txt", b"y")
    assert fresh.cat_file(f"{again}/after-restart.txt") == b"y"


def test_paused_restarts_even_on_error(azurite):
    port = azurite.port
    with pytest.raises(RuntimeError, match="boom"):
        with azurite.paused():
            assert not azurite.is_running()
            raise RuntimeError("boom")
    assert azurite.is_running() and azurite.port == port
