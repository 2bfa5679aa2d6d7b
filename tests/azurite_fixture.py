"""Real Azurite blob server for the test suite (loaded as a pytest plugin by ``tests/conftest.py``).

Fixtures
--------
``azurite`` (session scope, lazy)
    Starts ``node <repo>/node_modules/azurite/dist/src/blob/main.js`` directly (never ``npx``: the PID
    recorded for ``npm exec`` is not the server, and killing it leaves the server orphaned) on
    ``127.0.0.1`` with ``--blobPort 0`` and ``--inMemoryPersistence``, the first time a test requests it.
    The port is read from the server log ("successfully listens on http://127.0.0.1:PORT"); start-up is
    bounded at 30 s. At session end the server is stopped by PID (SIGTERM, up to 5 s, then SIGKILL);
    an ``atexit`` hook and, on Linux, ``PR_SET_PDEATHSIG`` are safety nets for interrupted runs
    (``pytest-timeout``'s thread method ends the run with ``os._exit``, which skips ``atexit``).

    If ``node`` or ``node_modules/azurite`` is missing, the fixture FAILS (it never skips: CI must run
    the Azurite tests). Run ``npm ci`` (or ``make install``) first.

``azurite_env`` (function scope)
    The ``azurite`` server plus ``AZURE_STORAGE_CONNECTION_STRING`` set for one test.

Stopping and restarting (fault tests)
-------------------------------------
``azurite.stop()`` stops the server process (the PID really goes away) and ``azurite.start()`` starts a
new one on the **same port**, so connection strings and filesystems created earlier point at it again.
``with azurite.paused(): ...`` does both and always restarts. Because the server runs with
``--inMemoryPersistence``, **a restart loses all containers and blobs**: a test that needs data after a
restart must recreate it. A test that calls ``stop()`` must restart the server (``start()`` or
``paused()``) before it ends; the server is shared by the whole session.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
AZURITE_MAIN = ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

ACCOUNT_NAME = "devstoreaccount1"
# The public, well-known Azurite / storage-emulator development key (not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
_LISTENING = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")

_live: list[AzuriteServer] = []


def _stop_all_at_exit() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all_at_exit)


def _pdeathsig() -> None:  # pragma: no cover - runs in the forked child
    """Linux: have the kernel SIGTERM the server when the thread that started it dies."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


class AzuriteServer:
    """One Azurite blob server process; see the module docstring for the stop/restart semantics."""

    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="batchctl-azurite-"))
        self._log_path = self._workdir / "azurite.log"
        self.startup_seconds: float | None = None  # duration of the last successful start()

    # -- connection details ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Azurite has not been started")
        return self._port

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("Azurite is not running")
        return self._proc.pid

    @property
    def blob_endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:  # never shows the key
        state = f"pid={self._proc.pid}" if self.is_running() else "stopped"
        return f"AzuriteServer(port={self._port}, {state})"

    # -- helpers ----------------------------------------------------------------------------------
    def new_container(self) -> str:
        """Create a uniquely named, empty container and return its name."""
        from azure.storage.blob import BlobServiceClient

        name = f"t-{uuid.uuid4().hex[:12]}"
        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            client.create_container(name)
        return name

    def fs(self, **kwargs: Any) -> Any:
        """A fresh ``adlfs.AzureBlobFileSystem`` for this server (no fsspec instance cache)."""
        import adlfs

        return adlfs.AzureBlobFileSystem(connection_string=self.connection_string, skip_instance_cache=True, **kwargs)

    # -- process control ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server: on a free port the first time, then always on the same port."""
        if self.is_running():
            return
        node = shutil.which("node")
        if node is None:
            pytest.fail(
                "Azurite tests need Node.js: `node` is not on PATH. Install Node 20 and run `npm ci` "
                "in the repository root (or `make install`).",
                pytrace=False,
            )
        if not AZURITE_MAIN.is_file():
            pytest.fail(
                f"Azurite is not installed: {AZURITE_MAIN} is missing. Run `npm ci --no-audit --no-fund` "
                f"in {ROOT} (or `make install`).",
                pytrace=False,
            )
        port = self._port or 0
        t0 = time.monotonic()
        deadline = t0 + START_TIMEOUT
        while True:
            found, log = self._spawn(node, port, deadline)
            if found is not None:
                break
            # The same port can be briefly unavailable after a restart; retry until the deadline.
            if port and "EADDRINUSE" in log and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            self.stop()
            timed_out = time.monotonic() >= deadline
            why = f"was not listening within {START_TIMEOUT:.0f} s" if timed_out else "exited before listening"
            pytest.fail(f"Azurite {why} ({AZURITE_MAIN}). Log:\n{log}", pytrace=False)
        if self._port is not None and found != self._port:  # pragma: no cover - defensive
            self.stop()
            pytest.fail(f"Azurite restarted on port {found}, expected {self._port}", pytrace=False)
        self._port = found
        self.startup_seconds = time.monotonic() - t0
        if self not in _live:
            _live.append(self)

    def _spawn(self, node: str, port: int, deadline: float) -> tuple[int | None, str]:
        cmd = [
            node, str(AZURITE_MAIN),
            "--blobHost", HOST, "--blobPort", str(port),
            "--inMemoryPersistence", "--extentMemoryLimit", "256",
            "--skipApiVersionCheck", "--disableTelemetry", "--silent",
        ]  # fmt: skip
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,  # in-memory mode writes nothing, but never into the repo
                # Own session: Ctrl-C in the terminal does not race our own shutdown.
                start_new_session=True,
                # PDEATHSIG follows the *thread* that forks; only use it from the main thread.
                preexec_fn=_pdeathsig if sys.platform == "linux" and in_main_thread else None,
            )
        while True:
            text = self._log_path.read_text(errors="replace")
            match = _LISTENING.search(text)
            if match:
                return int(match.group(1)), text
            if self._proc.poll() is not None or time.monotonic() >= deadline:
                if self._proc.poll() is None:
                    self._terminate()
                self._proc = None
                return None, text
            time.sleep(0.05)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop the server by PID (SIGTERM, up to 5 s, then SIGKILL) and reap it. Keeps the port."""
        if self._proc is not None:
            self._terminate()
            self._proc = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the server for the body of the ``with`` block, then restart it on the same port."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        """Stop for good and remove the scratch directory."""
        self.stop()
        if self in _live:
            _live.remove(self)
        shutil.rmtree(self._workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """The session's Azurite blob server (started on first use)."""
    server = AzuriteServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def azurite_env(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> AzuriteServer:
    """Azurite with ``AZURE_STORAGE_CONNECTION_STRING`` pointing at it for this test."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    return azurite
