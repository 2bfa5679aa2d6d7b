"""Building an environment with uv: once per key, under `<workspace>/envs/<key>`.

- a temporary folder `envs/.tmp-<key>-<random>`, renamed to the key only once the environment is whole
  (installed, smoke-imported, locked), so a killed build never leaves anything a job could use;
- one file lock per key (`envs/.locks/<key>.lock`): four jobs needing the same new environment cause one
  build; the others wait and reuse it. The lock holder removes the temporary folders a killed build left;
- `requirements.lock` (`uv pip freeze`) and `build.log` are kept in the environment's folder; the log of a
  failed build is kept under `envs/.logs/`;
- uv's cache stays where uv keeps it (`UV_CACHE_DIR`); it hardlinks from it when the cache and the
  workspace share a filesystem, and copies otherwise (set `UV_LINK_MODE=copy` to silence its warning).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchctl.envs.index import index_settings
from batchctl.envs.spec import Change, EnvSpec, requirement_name
from batchctl.errors import EnvironmentBuildError, MissingDependencyError

META = "batchctl-env.json"
LOCK_FILE = "requirements.lock"
BUILD_LOG = "build.log"
LAST_USED = ".last-used"
MIN_PYTHON = (3, 11)  # batchctl's worker code runs inside the environment
MIN_STEP_PYTHON = (3, 8)  # an environment that runs a command only: uv's floor, and the import check's
ENV_PLACEHOLDER = "{ENV}"
Log = Callable[[str], None]


@dataclass
class BuiltEnv:
    """A ready environment: what a worker starts with, and what the job records."""

    key: str
    path: str
    python: str  # the interpreter a worker starts with
    python_version: str
    sys_path: list[str]
    lock_file: str
    lock_sha256: str
    changes: list[Change] = field(default_factory=list)
    built: bool = False  # this call built it (False: reused)
    seconds: float = 0.0
    build_log: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": self.path,
            "python": self.python_version,
            "lock_file": self.lock_file,
            "lock_sha256": self.lock_sha256,
            "built": self.built,
            "build_seconds": round(self.seconds, 3),
            "build_log": self.build_log,
            "substitutions": [c.as_dict() for c in self.changes],
        }


def uv_binary() -> str:
    """The uv that ships with the `uv` package (a dependency of batchctl): nothing is downloaded at run time."""
    explicit = os.environ.get("BATCHCTL_UV")
    if explicit:
        return explicit
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise MissingDependencyError("uv is not installed; isolated environments are built with it", "pip install uv")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(root: Path, key: str) -> BuiltEnv | None:
    """The environment built for `key`, or None. Only a renamed (complete) folder counts."""
    folder = root / key
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    lock = folder / LOCK_FILE
    return BuiltEnv(
        key=key,
        path=str(folder),
        python=str(folder / "venv" / "bin" / "python"),
        python_version=meta["python_version"],
        sys_path=[p.replace(ENV_PLACEHOLDER, str(folder)) for p in meta["sys_path"]],
        lock_file=str(lock),
        lock_sha256=meta["lock_sha256"],
        changes=[Change(**c) for c in meta.get("changes", [])],
        build_log=str(folder / BUILD_LOG),
    )


def touch(root: Path, key: str) -> None:
    with contextlib.suppress(OSError):
        (root / key / LAST_USED).write_text(str(time.time()))


def ensure(root: Path, spec: EnvSpec, strict: bool = False, log: Log | None = None) -> BuiltEnv:
    """The environment for `spec`: reused when built, else built now under the key's lock."""
    say = log or (lambda _line: None)
    key = spec.key
    ready = load(root, key)
    if ready is None:
        from filelock import FileLock, Timeout

        locks = root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        timeout = float(os.environ.get("BATCHCTL_ENV_BUILD_TIMEOUT") or 3600)
        try:
            with FileLock(str(locks / f"{key}.lock"), timeout=timeout):
                ready = load(root, key)
                if ready is None:
                    ready = _build(root, spec, strict, say)
        except Timeout:
            raise EnvironmentBuildError(
                f"environment {key[:12]}: another build held its lock for more than {timeout:.0f} s",
                f"wait for it, or remove {locks / (key + '.lock')} if no batchctl process is building",
            ) from None
    touch(root, key)
    return ready


def _run(cmd: list[str], env: dict[str, str], logfile: Any, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    logfile.write("$ " + " ".join(cmd) + "\n")
    logfile.flush()
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    logfile.write(proc.stdout + proc.stderr + f"[exit {proc.returncode}, {time.monotonic() - started:.2f}s]\n")
    logfile.flush()
    return proc


def uv_environ() -> dict[str, str]:
    env = dict(os.environ)
    # no interpreter download unless the user allowed one (machines that reach only package registries)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def host_python() -> tuple[str, str]:
    return getattr(sys, "_base_executable", None) or sys.executable, platform.python_version()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def choose_python(
    requested: str | None, strict: bool, env: dict[str, str], logfile: Any, worker_code: bool = True
) -> tuple[str, str, Change | None]:
    """(interpreter, its version, the substitution made or None). The requested major.minor when one is
    found here (find_python); else the nearest available: batchctl's own interpreter. An environment batchctl's
    worker runs in needs 3.11+; one that runs only a command (a pipeline step) may ask for 3.8 or newer
    (uv's and the import check's floor: importlib.metadata)."""
    exe, version = host_python()
    if not requested or _version_tuple(requested)[:2] == _version_tuple(version)[:2]:
        return exe, version, None
    wanted = _version_tuple(requested)[:2]
    floor = MIN_PYTHON if worker_code else MIN_STEP_PYTHON
    if wanted < floor:
        who = "batchctl's worker" if worker_code else "uv and batchctl's import check"
        reason = f"{who} need{'s' if worker_code else ''} Python {'.'.join(map(str, floor))} or newer"
    else:
        found, looked = find_python(wanted, env, logfile)
        if found:
            return found
        reason = f"no Python {'.'.join(map(str, wanted))} interpreter found (looked in {looked})"
    if strict:
        raise EnvironmentBuildError(
            f"the environment asks for Python {requested}: {reason}",
            f"without --env-strict it would use Python {version}",
        )
    return exe, version, Change("python", f"python {requested}", f"python {version}", reason)


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def python_candidates(minor: tuple[int, ...], env: dict[str, str], logfile: Any) -> tuple[list[str], str]:
    """Interpreters that may be `minor` (newest patch release first), and where they were looked for:
    pyenv's versions folder (its shims only re-run pyenv, which `uv python find` cannot use), uv's managed
    Pythons, then `uv python find` on the PATH without pyenv's shims."""
    name = "python" + ".".join(map(str, minor))
    prefix = ".".join(map(str, minor)) + "."
    looked: list[str] = []
    found: list[tuple[tuple[int, ...], str]] = []
    pyenv = _pyenv_root() / "versions"
    looked.append(str(pyenv))
    if pyenv.is_dir():
        for folder in pyenv.iterdir():
            if folder.name.startswith(prefix) and (folder / "bin" / name).is_file():
                found.append((_version_tuple(folder.name), str(folder / "bin" / name)))
    uv_dir = _run([uv_binary(), "python", "dir"], env, logfile, 60)
    managed = Path(uv_dir.stdout.strip()) if uv_dir.returncode == 0 and uv_dir.stdout.strip() else None
    if managed is not None:
        looked.append(str(managed))
        if managed.is_dir():
            for folder in managed.iterdir():
                if folder.name.startswith(f"cpython-{prefix}") and (folder / "bin" / name).is_file():
                    found.append((_version_tuple(folder.name.split("-")[1]), str(folder / "bin" / name)))
    found.sort(reverse=True)
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.rstrip("/").endswith("shims"))
    looked.append("PATH (less pyenv's shims)")
    proc = _run([uv_binary(), "python", "find", ".".join(map(str, minor))], {**env, "PATH": path}, logfile, 60)
    tail = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else None
    return [exe for _, exe in found] + ([tail] if tail else []), ", ".join(looked)


def find_python(minor: tuple[int, ...], env: dict[str, str], logfile: Any) -> tuple[tuple[str, str, None] | None, str]:
    """((interpreter, version, None) for the first candidate that runs and is `minor`, or None; where
    batchctl looked)."""
    candidates, looked = python_candidates(minor, env, logfile)
    for exe in candidates:
        check = _run([exe, "-c", "import platform; print(platform.python_version())"], env, logfile, 60)
        if check.returncode == 0 and _version_tuple(check.stdout.strip())[:2] == tuple(minor):
            return (exe, check.stdout.strip(), None), looked
    return None, looked


def _exact_pin(req: str) -> tuple[str, str] | None:
    from packaging.requirements import Requirement

    parsed = Requirement(req)
    specs = list(parsed.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version and not parsed.url:
        return requirement_name(req), specs[0].version
    return None


def _would_install(out: str, name: str) -> str | None:
    for line in out.splitlines():
        m = re.match(r"\s*\+\s*([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m and requirement_name(m.group(1)) == name:
            return m.group(2)
    return None


def _relax(
    reqs: list[str], python: str, base: list[str], strict: bool, env: dict[str, str], logfile: Any, version: str
) -> tuple[list[str], list[Change]]:
    """Exact pins with no installable release here (no wheel for this interpreter): each relaxed to the
    newest release of the same major.minor that installs, never across minor versions."""
    pins = [(r, p) for r in reqs if (p := _exact_pin(r)) is not None]
    if not pins:
        return reqs, []
    check = [uv_binary(), "pip", "install", "--dry-run", "--no-deps", "--no-build", "--python", python, *base]
    if _run(check + [r for r, _ in pins], env, logfile).returncode == 0:
        return reqs, []
    out, changes = list(reqs), []
    for req, (name, pinned) in pins:
        if _run(check + [req], env, logfile).returncode == 0:
            continue
        parts = _version_tuple(pinned)
        if len(parts) < 2:
            continue
        series = f"{name}=={parts[0]}.{parts[1]}.*"
        probe = _run(check + [series], env, logfile)
        chosen = _would_install(probe.stdout + probe.stderr, name) if probe.returncode == 0 else None
        if chosen is None:
            continue  # nothing of that series installs either: the install says why
        out[out.index(req)] = f"{name}=={chosen}"
        changes.append(
            Change("relaxed", req, f"{name}=={chosen}", f"no installable {name} {pinned} for Python {version}")
        )
    if strict and changes:
        raise EnvironmentBuildError(
            "--env-strict: the environment would need " + "; ".join(c.line() for c in changes),
            "drop --env-strict to accept these substitutions, or pin releases that install here",
        )
    return out, changes


ERA_SLACK_DAYS = 60  # the releases that followed a pin (wheels for a new Python come weeks later)


def index_url(args: list[str], env: dict[str, str]) -> str | None:
    """The index whose upload dates set the era (None with --no-index)."""
    if "--no-index" in args or env.get("UV_NO_INDEX"):
        return None
    if "--index-url" in args:
        return args[args.index("--index-url") + 1]
    return env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL") or "https://pypi.org/simple"


def upload_time(index: str, name: str, version: str, logfile: Any) -> float | None:
    """When `name==version` was uploaded (PEP 691 JSON + PEP 700 upload-time: PyPI and mirrors that serve
    them); None when the index does not say."""
    import datetime
    import urllib.request

    from packaging.utils import parse_sdist_filename, parse_wheel_filename
    from packaging.version import Version

    url = f"{index.rstrip('/')}/{name}/"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - the user's index
            data = json.loads(response.read())
    except Exception as exc:  # any failure: no era from this index
        logfile.write(f"upload dates: {url}: {type(exc).__name__}: {exc}\n")
        return None
    wanted, times = Version(version), []
    for item in data.get("files") or []:
        filename, stamp = item.get("filename", ""), item.get("upload-time")
        try:
            got = parse_wheel_filename(filename)[1] if filename.endswith(".whl") else parse_sdist_filename(filename)[1]
        except Exception:  # a file name packaging cannot read
            continue
        if got == wanted and stamp:
            times.append(datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    return min(times) if times else None


def era(reqs: list[str], args: list[str], env: dict[str, str], logfile: Any) -> list[str]:
    """uv options that resolve the unpinned packages from the era of the pinned ones: --exclude-newer at the
    newest pinned release's upload (plus 60 days), so an old scikit-learn comes with the numpy and pandas of
    its time, not today's. batchctl's worker packages too: a today's pyarrow needs today's numpy."""
    import datetime

    index = index_url(args, env)
    pins = [p for r in reqs if (p := _exact_pin(r)) is not None]
    if index is None or not pins or os.environ.get("BATCHCTL_ENV_ERA", "1") == "0":
        return []
    times = [upload_time(index, name, version, logfile) for name, version in pins]
    if any(t is None for t in times):
        return []
    newest = max(t for t in times if t is not None) + ERA_SLACK_DAYS * 86400
    if newest > time.time() - 7 * 86400:  # recent pins: nothing to hold back
        return []
    stamp = datetime.datetime.fromtimestamp(newest, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ["--exclude-newer", stamp]


_NO_WHEELS = re.compile(r"(?<![\w.\-])([A-Za-z][A-Za-z0-9_.\-]*)(?:[<>=!~]=?[^\s,]*)? has no usable wheels")


def _era_install(
    install: list[str], held: list[str], wanted: list[str], env: dict[str, str], logfile: Any, lifted: list[str]
) -> subprocess.CompletedProcess[str]:
    """In the era, wheels only (old sdists rarely build on a newer Python). A package with no wheel for this
    Python in the era (MarkupSafe had none for 3.11 until 2023) is let out of it, one round at a time."""
    import datetime

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    proc = _run([*install, *held, "--no-build", *wanted], env, logfile)
    for _ in range(8):
        if proc.returncode == 0:
            break
        names = {requirement_name(m) for m in _NO_WHEELS.findall(proc.stderr)} - set(lifted)
        if not names:
            break
        lifted += sorted(names)
        logfile.write(f"no wheel for this Python in the era: {', '.join(sorted(names))}; taken from today\n")
        extra = [a for n in lifted for a in ("--exclude-newer-package", f"{n}={now}")]
        proc = _run([*install, *held, *extra, "--no-build", *wanted], env, logfile)
    return proc


_SMOKE = r"""
import importlib, importlib.metadata as md, json, sys
answer, sys.stdout = sys.stdout, sys.stderr  # what the imports print goes to the log, not the answers


def check(name):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return [[name, None, "not installed"]]
    tops = (dist.read_text("top_level.txt") or "").split()
    if not tops:  # no top_level.txt (meson-python, hatchling...): packages with an __init__, top modules
        seen = set()
        for f in dist.files or []:
            parts = f.parts
            if len(parts) == 2 and parts[1] == "__init__.py":
                seen.add(parts[0])
            elif len(parts) == 1 and f.suffix in (".py", ".so"):
                seen.add(parts[0].split(".")[0])
        tops = sorted(seen)
    tops = [m for m in tops if m.isidentifier() and not m.startswith("_") and m not in ("test", "tests", "docs")]
    # a distribution that also ships helper packages (mlflow-skinny's pylint_plugins): its namesake only
    dist_name = name.lower().replace("_", "-")
    namesakes = [m for m in tops if m.lower().replace("_", "-") in dist_name]
    failures = []
    for mod in namesakes or tops:
        try:
            importlib.import_module(mod)
        except BaseException as exc:
            failures.append([name, mod, (type(exc).__name__ + ": " + str(exc)).splitlines()[0][:300]])
    return failures


for line in sys.stdin:
    answer.write("\0batchctl " + json.dumps(check(line.strip())) + "\n")
    answer.flush()
"""
SMOKE_PROCS = 4  # at most this many import checks at once (and never more than the CPUs)
SMOKE_TIMEOUT = 600.0


def _installed_sizes(venv: Path) -> dict[str, int]:
    """Files per installed distribution (its RECORD's lines), by canonical name: about how much bytecode
    importing it first compiles."""
    sizes: dict[str, int] = {}
    records = [
        *venv.glob("lib/python*/site-packages/*.dist-info/RECORD"),
        *venv.glob("Lib/site-packages/*.dist-info/RECORD"),
    ]
    for record in records:
        name = requirement_name(record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        with contextlib.suppress(OSError):
            sizes[name] = record.read_text(errors="replace").count("\n")
    return sizes


def smoke_procs(names: int) -> int:
    """How many import-check processes: one per idle CPU (the CPUs less the 1-minute load average, as
    `make -l` does), at least 1, at most SMOKE_PROCS and the number of requirements. On a busy machine a
    second process only compiles the shared modules twice."""
    cpus = os.cpu_count() or 1
    try:
        idle = cpus - int(os.getloadavg()[0] + 0.5)
    except (OSError, AttributeError):  # no load average on this platform
        idle = cpus
    return max(1, min(SMOKE_PROCS, idle, names))


def _smoke_feed(proc: subprocess.Popen[str], todo: queue.SimpleQueue[str], out: list[list[Any]]) -> None:
    """One import-check process: takes the next requirement while there is one; a process that dies
    fails the requirement it was importing."""
    assert proc.stdin is not None and proc.stdout is not None
    while True:
        try:
            name = todo.get_nowait()
        except queue.Empty:
            break
        proc.stdin.write(name + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        while line and not line.startswith("\0batchctl "):
            line = proc.stdout.readline()
        if not line:
            out.append([name, None, None])  # crashed: the message is the last line of its stderr
            break
        out.extend(json.loads(line[len("\0batchctl ") :]))
    proc.stdin.close()


def smoke(python: str, names: list[str], env: dict[str, str], logfile: Any) -> list[list[Any]]:
    """Import each requirement's top-level modules inside the environment: [[dist, module, error], ...].
    The first import of a fresh environment compiles its bytecode, most of a cold build's time, so one
    process per idle CPU takes the requirements from a queue, the largest first (a later one often finds its
    dependencies compiled by then). Each import check is still a real import in the environment."""
    sizes = _installed_sizes(Path(python).parent.parent)
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in sorted(names, key=lambda n: (-sizes.get(n, 0), n)):
        todo.put(name)
    count = smoke_procs(len(names))
    cmd = [python, "-I", "-c", _SMOKE]
    logfile.write(f"$ {python} -I -c <import check> x{count}: {' '.join(names)}\n")
    logfile.flush()
    started = time.monotonic()
    failures: list[list[list[Any]]] = [[] for _ in range(count)]
    procs, threads = [], []
    try:
        for i in range(count):
            errors = tempfile.TemporaryFile("w+")
            proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
            )
            procs.append((proc, errors))
            threads.append(threading.Thread(target=_smoke_feed, args=(proc, todo, failures[i]), daemon=True))
            threads[-1].start()
        for thread in threads:
            thread.join(max(0.0, SMOKE_TIMEOUT - (time.monotonic() - started)))
            if thread.is_alive():
                raise subprocess.TimeoutExpired(cmd, SMOKE_TIMEOUT)
        found: list[list[Any]] = []
        for (proc, errors), got in zip(procs, failures, strict=True):
            proc.wait(max(1.0, SMOKE_TIMEOUT - (time.monotonic() - started)))
            errors.seek(0)
            text = errors.read()
            logfile.write(text + f"[import check: exit {proc.returncode}]\n")
            last = (text.strip().splitlines() or ["the import check crashed"])[-1]
            found += [[d, m, e if e is not None else last] for d, m, e in got]
        logfile.write(f"[import checks: {time.monotonic() - started:.2f}s]\n")
        logfile.flush()
        return found
    finally:
        for proc, errors in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            errors.close()


def first_cause(text: str) -> str:
    """uv's first cause, one line; with the package when uv failed to build one (its `error:` line names
    it, its causes do not: "The build backend returned an error")."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    failed = next((ln[len("error:") :].strip() for ln in lines if ln.startswith("error: Failed to build")), None)
    if failed:
        return f"{failed}: {_first_cause(lines)}"
    return _first_cause(lines)


def _first_cause(lines: list[str]) -> str:
    for prefix in ("Caused by:", "cause:", "╰─▶", "error:"):
        for i, line in enumerate(lines):
            if line.startswith(prefix):
                rest = line[len(prefix) :].strip()
                if not rest and i + 1 < len(lines):
                    rest = lines[i + 1]
                return rest
    return lines[-1] if lines else "uv failed"


def _culprit(cause: str, reqs: list[str]) -> str:
    for req in reqs:
        if requirement_name(req) in cause.lower().replace("_", "-"):
            return req
    return ", ".join(reqs) if len(reqs) <= 3 else f"{len(reqs)} requirements"


@dataclass
class _Building:
    """One build in progress: where it goes, uv's environment and options, and its log."""

    root: Path
    spec: EnvSpec
    strict: bool
    tmp: Path
    env: dict[str, str]
    base: list[str]  # uv's index options (and the constraints file)
    logfile: Any

    @property
    def py(self) -> str:
        return str(self.tmp / "venv" / "bin" / "python")

    def fail(self, message: str, hint: str) -> EnvironmentBuildError:
        self.logfile.flush()
        kept = _keep_log(self.root, self.spec.key, self.tmp / BUILD_LOG)
        return EnvironmentBuildError(message, f"{hint}; full log: {kept}" if hint else f"full log: {kept}")


def _build(root: Path, spec: EnvSpec, strict: bool, say: Log) -> BuiltEnv:
    key = spec.key
    started = time.monotonic()
    for stale in root.glob(f".tmp-{key}-*"):  # a killed build's leftovers: only the lock holder gets here
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{key}-{os.urandom(4).hex()}"
    tmp.mkdir(parents=True)
    log_path = tmp / BUILD_LOG
    say(f"environment {key[:12]}: building ({spec.source}) with uv into {root}")
    env = uv_environ()
    settings = index_settings()
    env.update(settings.env)
    try:
        with open(log_path, "w") as logfile:
            logfile.write(json.dumps(spec.describe(), indent=1) + "\n")
            for note in settings.notes:
                logfile.write(note + "\n")
            job = _Building(root, spec, strict, tmp, env, list(settings.args), logfile)
            exe, version, changes = _populate(job)
            lock = (tmp / LOCK_FILE).read_text()
            paths = _run([job.py, "-I", "-c", "import json, sys; print(json.dumps(sys.path))"], env, logfile)
            sys_path = [p.replace(str(tmp), ENV_PLACEHOLDER) for p in json.loads(paths.stdout) if p]
        meta = {
            "key": key,
            "spec": spec.describe(),
            "canonical": spec.canonical(),
            "python_version": version,
            "python_base": exe,
            "sys_path": sys_path,
            "lock_sha256": hashlib.sha256(lock.encode()).hexdigest(),
            "changes": [c.as_dict() for c in changes],
            "created_at": time.time(),
            "build_seconds": round(time.monotonic() - started, 3),
        }
        # the venv sits one level down so that the folder's own files (log, lock, meta) are beside it
        (tmp / META).write_text(json.dumps(meta, indent=1))
        os.rename(tmp, root / key)
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentBuildError(
            f"environment {key[:12]}: {exc.cmd[1] if len(exc.cmd) > 1 else 'uv'} timed out after {exc.timeout:.0f} s",
            f"full log: {_keep_log(root, key, log_path)}",
        ) from None
    except EnvironmentBuildError as exc:
        if exc.hint is None or "full log" not in exc.hint:
            kept = _keep_log(root, key, log_path)
            exc.hint = (exc.hint + "; " if exc.hint else "") + f"full log: {kept}"
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    built = load(root, key)
    assert built is not None
    built.built = True
    built.seconds = time.monotonic() - started
    say(f"environment {key[:12]}: built in {built.seconds:.1f}s (Python {version})")
    return built


def _populate(job: _Building) -> tuple[str, str, list[Change]]:
    """The venv, its packages (relaxed, in their era), the import checks and the lock file, in `job.tmp`:
    (the base interpreter, its version, the substitutions made)."""
    key, env, logfile = job.spec.key, job.env, job.logfile
    exe, version, python_change = choose_python(job.spec.python, job.strict, env, logfile, job.spec.worker_code)
    changes = [c for c in (python_change,) if c is not None]
    proc = _run([uv_binary(), "venv", "--relocatable", "--python", exe, str(job.tmp / "venv")], env, logfile)
    if proc.returncode != 0:
        raise EnvironmentBuildError(f"environment {key[:12]}: uv venv failed: {first_cause(proc.stderr)}")
    if job.spec.constraints:
        (job.tmp / "constraints.txt").write_text("\n".join(job.spec.constraints) + "\n")
        job.base += ["--constraint", str(job.tmp / "constraints.txt")]
    reqs, relaxed = _relax(list(job.spec.requirements), job.py, job.base, job.strict, env, logfile, version)
    changes += relaxed
    wanted = reqs + list(job.spec.worker)
    if wanted:
        wanted = _install(job, reqs, wanted, changes)
    names = sorted({requirement_name(r) for r in wanted})
    failures = smoke(job.py, names, env, logfile) if names else []
    if failures:
        dist, module, error = failures[0]
        raise job.fail(
            f"environment {key[:12]}: {dist} installs but import {module or dist} fails: {error}",
            "pin the other packages of its era with --env-constraint (for example 'numpy<2')",
        )
    proc = _run([uv_binary(), "pip", "freeze", "--python", job.py], env, logfile)
    (job.tmp / LOCK_FILE).write_text(proc.stdout if proc.returncode == 0 else "")
    return exe, version, changes


def _install(job: _Building, reqs: list[str], wanted: list[str], changes: list[Change]) -> list[str]:
    """`uv pip install` of what is wanted, in the era of the pinned releases when they have one, else from
    today: what was installed (the era adds setuptools); the era is appended to `changes`."""
    env, logfile = job.env, job.logfile
    held = era(reqs, job.base, env, logfile)
    if held and "setuptools" not in {requirement_name(r) for r in wanted}:
        # old releases import pkg_resources, which conda's and pip's environments always had
        wanted = [*wanted, "setuptools"]
    install = [uv_binary(), "pip", "install", "--python", job.py, *job.base]
    lifted: list[str] = []
    tried = _era_install(install, held, wanted, env, logfile, lifted) if held else None
    proc = tried if tried is not None and tried.returncode == 0 else _run([*install, *held, *wanted], env, logfile)
    if proc.returncode != 0 and held:  # the era excludes something asked for: resolve from today
        logfile.write("resolving again without --exclude-newer\n")
        held = []
        wanted = reqs + list(job.spec.worker)
        proc = _run([*install, *wanted], env, logfile)
    if held:
        reason = "the era of the pinned releases" + (
            f" ({', '.join(lifted)} from today: no wheel for this Python then)" if lifted else ""
        )
        changes.append(Change("era", "unpinned packages", f"as of {held[1][:10]}", reason))
    if proc.returncode != 0:
        cause = first_cause(proc.stderr)
        raise job.fail(
            f"environment {job.spec.key[:12]}: cannot install {_culprit(cause, wanted)}: {cause}",
            _install_hint(changes),
        )
    return wanted


def _install_hint(changes: list[Change]) -> str:
    """What to check when an install failed; first, when the Python asked for was not had here, that (pins of
    its time often have no release for the Python used instead)."""
    hint = "check the requirement and your package index (PIP_INDEX_URL, PIP_FIND_LINKS)"
    python = next((c for c in changes if c.kind == "python"), None)
    if python is None or not python.reason.startswith("no Python"):  # below a floor: installing it won't help
        return hint
    wanted = python.requested.removeprefix("python ")
    return (
        f"the environment asks for Python {wanted} and was built on {(python.used or '').removeprefix('python ')} "
        f"({python.reason}): install Python {'.'.join(wanted.split('.')[:2])} (pyenv install, uv python "
        f"install), or {hint[0].lower()}{hint[1:]}"
    )


def _keep_log(root: Path, key: str, log_path: Path) -> str:
    logs = root / ".logs"
    logs.mkdir(parents=True, exist_ok=True)
    target = logs / f"{key[:12]}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    with contextlib.suppress(OSError):
        shutil.copyfile(log_path, target)
    return str(target)


def worker_shim(root: Path) -> str:
    """A folder holding only a link to batchctl's own package: on a worker's sys.path it makes batchctl's
    worker code importable without exposing anything else installed beside batchctl."""
    import batchctl

    package = Path(batchctl.__file__).resolve().parent
    shim = root / ".batchctl" / hashlib.sha256(str(package).encode()).hexdigest()[:16]
    link = shim / "batchctl"
    if not link.exists():
        shim.mkdir(parents=True, exist_ok=True)
        tmp = shim / f".batchctl-{os.urandom(4).hex()}"
        os.symlink(package, tmp)
        os.replace(tmp, link)
    return str(shim)
