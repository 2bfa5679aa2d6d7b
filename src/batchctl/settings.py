"""Where the workspace lives and the defaults that are not part of a spec. No side effects at import."""

from __future__ import annotations

import os
from pathlib import Path

# 2: paths inside the workspace (models, code snapshots, environment files) are stored relative to its
# root. A registry of version 1 (absolute paths) loads as it is and is written back as version 2, so an
# older batchctl refuses it instead of reading a relative path against its current folder.
SCHEMA_VERSION = 2
LOCK_TIMEOUT_ENV = "BATCHCTL_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 30.0


def workspace_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--workspace > BATCHCTL_HOME > ~/.batchctl (not created here)."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("BATCHCTL_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".batchctl"


def lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    return DEFAULT_LOCK_TIMEOUT


def debug_enabled() -> bool:
    return os.environ.get("BATCHCTL_DEBUG", "").lower() in ("1", "true", "yes")
