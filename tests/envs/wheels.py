"""Tiny wheels written in the test: `bcprobe` releases served from a folder with --find-links, no index."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


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
