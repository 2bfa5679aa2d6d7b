"""A real `batchctl serve --port 0` subprocess on 127.0.0.1, for the tests that need the process itself
(browser, lifecycle, signals): its output goes to files (a pipe could fill up), its address is read from
the line it prints, and it is stopped by its PID. tests/server and tests/studio build their fixtures on it;
route and form tests run the app in-process instead (build_state + create_app)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STARTUP_SECONDS = 90


class ServeProcess:
    """`python -m batchctl serve --port 0 ARGS` for the workspace at `home`, logs under `logs`."""

    def __init__(
        self, home: Path, logs: Path, *args: str, env: dict[str, str] | None = None, wait_for_login: bool = False
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.monotonic_ns()}"
        self.stdout_path = logs / f"{stamp}.out"
        self.stderr_path = logs / f"{stamp}.err"
        full_env = {**os.environ, "BATCHCTL_HOME": str(home), **(env or {})}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "batchctl", "serve", "--port", "0", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=full_env,
            )
        self.pid = self.proc.pid
        self.url, self.login_url = self._wait_listening(wait_for_login)

    def _wait_listening(self, login: bool) -> tuple[str, str | None]:
        """The URL it listens on (and the one-time login link, when asked) once it has printed them."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text()
            if "listening on " in text and (not login or "login link): " in text):
                url = text.split("listening on ", 1)[1].split()[0]
                return url, text.split("login link): ", 1)[1].split()[0] if login else None
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}): {self.stderr_path.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"the server did not start within {STARTUP_SECONDS}s: {self.stderr_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send `sig` and wait for the exit code; a server still running after `timeout` is killed and fails."""
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"the server did not stop within {timeout}s after signal {sig}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)

    def output(self) -> tuple[str, str]:
        return self.stdout_path.read_text(), self.stderr_path.read_text()
