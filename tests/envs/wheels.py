"""Tiny wheels written in the test: `bcprobe` releases served from a folder with --find-links, no index;
and the one way a test takes pip's and uv's settings from the machine away."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import pytest


def isolate_pip(
    monkeypatch: pytest.MonkeyPatch, uv_cache: Path, pip_config: str = os.devnull, find_links: Path | None = None
) -> None:
    """No PIP_*/UV_* variable of this machine, the given pip configuration file (none by default), uv's own
    configuration off, a cache of the test's, no Python downloads; with `find_links`, that folder and no index."""
    for name in list(os.environ):
        if name.startswith(("PIP_", "UV_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", pip_config)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    if find_links is not None:
        monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))
        monkeypatch.setenv("PIP_NO_INDEX", "1")


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(folder: Path, name: str, version: str, code: str | None = None, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel of package `name` whose `__version__` is `version` and whose `probe()` returns
    `name-version` (so output rows can say which release scored them)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}"
    info = f"{dist}.dist-info"
    body = code if code is not None else f'__version__ = "{version}"\n\n\ndef probe():\n    return "{name}-{version}"\n'
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    files = {
        f"{name}/__init__.py": body.encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: batchctl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_digest(data)},{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    target = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return target
