"""Fixtures of the hardening suite. Helpers live in hardening_helpers.py (a unique module name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .hardening_helpers import Workbench


@pytest.fixture
def bench(cli: Any, tmp_path: Path) -> Workbench:
    return Workbench(cli, tmp_path)
