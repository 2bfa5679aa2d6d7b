"""One way to wait in a test: poll until a condition holds, or fail saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Call `predicate` every `interval` seconds until it returns something true, and return that; after
    `timeout` seconds, fail with "timed out after {timeout}s waiting for {what}". The predicate runs once more
    at the deadline, so a slow machine is not failed by the last sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
