"""The user's package index settings, handed to uv.

uv reads its own settings (`UV_INDEX_URL`, `UV_DEFAULT_INDEX`, `UV_EXTRA_INDEX_URL`, `UV_FIND_LINKS`,
`uv.toml`) by itself. pip's are translated here, so that a company mirror or an offline wheel folder
that works for `pip install` works for environments too:

- `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`, `PIP_NO_INDEX`, `PIP_CONSTRAINT` and the same
  keys in pip's configuration files (`PIP_CONFIG_FILE`, else the global, user and site files that pip
  reads; `[global]` then `[install]`), the environment variable winning over the file, as in pip;
- an index or a find-links folder given as a local path or `file://` URL that does not exist is left out
  (a stale mirror entry must not fail every build), and the build log says so;
- a constraint file is passed through too: pip applies it to every install on the machine, so an
  administrator's cap holds inside environments as well;
- `PIP_CERT` becomes `SSL_CERT_FILE` for uv when that is not set;
- with extra indexes, `--index-strategy unsafe-best-match` (unless `UV_INDEX_STRATEGY` is set): pip picks
  the best release across all its indexes, uv by default stops at the first index that has the package,
  so a local extra index holding only today's scikit-learn hid PyPI's `scikit-learn~=1.5.0`.

`PIP_CONFIG_FILE=os.devnull` turns pip's files off, as it does for pip (tests use it)."""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

KEYS = ("index-url", "extra-index-url", "find-links", "no-index", "constraint", "cert")


@dataclass
class IndexSettings:
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _config_files(environ: Mapping[str, str]) -> list[Path]:
    explicit = environ.get("PIP_CONFIG_FILE")
    if explicit:
        return [] if explicit == os.devnull else [Path(explicit)]
    home = Path(environ.get("HOME") or Path.home())
    xdg_dirs = (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf"]
    files.append(Path(sys.prefix) / "pip.conf")
    return files


def pip_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """pip's effective index settings: configuration files, then PIP_* environment variables over them."""
    values: dict[str, str] = {}
    for path in _config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for key in KEYS:
                    if parser.has_option(section, key):
                        values[key] = parser.get(section, key)
    for key in KEYS:
        value = environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            values[key] = value
    return values


def _local_path(location: str) -> Path | None:
    if location.startswith("file:"):
        return Path(unquote(urlparse(location).path))
    if "://" in location:
        return None
    return Path(location)


def _present(location: str, notes: list[str], what: str) -> bool:
    path = _local_path(location)
    if path is not None and not path.exists():
        notes.append(f"pip's {what} {location} does not exist here; left out")
        return False
    return True


def index_settings(environ: Mapping[str, str] | None = None) -> IndexSettings:
    env = os.environ if environ is None else environ
    out = IndexSettings()
    pip = pip_settings(env)
    truthy = ("1", "true", "yes", "on")
    if pip.get("no-index", "").lower() in truthy and not env.get("UV_NO_INDEX"):
        out.args.append("--no-index")
    if pip.get("index-url") and not (env.get("UV_INDEX_URL") or env.get("UV_DEFAULT_INDEX")):
        if _present(pip["index-url"], out.notes, "index-url"):
            out.args += ["--index-url", pip["index-url"]]
    for url in pip.get("extra-index-url", "").split():
        if _present(url, out.notes, "extra-index-url"):
            out.args += ["--extra-index-url", url]
    if "--extra-index-url" in out.args and not env.get("UV_INDEX_STRATEGY"):
        out.args += ["--index-strategy", "unsafe-best-match"]  # pip's rule: every index, the best release
    for link in pip.get("find-links", "").split():
        if _present(link, out.notes, "find-links"):
            out.args += ["--find-links", link]
    for constraint in pip.get("constraint", "").split():
        if _present(constraint, out.notes, "constraint file"):
            out.args += ["--constraint", constraint]
    if pip.get("cert") and not env.get("SSL_CERT_FILE"):
        out.env["SSL_CERT_FILE"] = pip["cert"]
    return out
