"""The Ray executor: one actor per worker, driven by the shared supervise() loop (execution/base.py).

Each actor is a dedicated Ray worker process. It first reports which machine it runs on; the driver
then asks it to set up: on this machine it uses the model and code folders where they are (exactly
like a local worker), on another machine it gets them as one tar archive through the object store
and unpacks them into its own scratch folder. Then it runs `init()` once and scores the mini-batches
the supervise loop hands it with the same `run_task()` as a local worker, so results are
byte-identical. Results (the mini-batch's CSV lines) travel back to the driver, which publishes
them the same create-only way.

Inputs: remote URLs (az://, abfs://, https://, datastores on Azure) are read on the actor's node.
A local-path input is rejected with a clear error when the actor runs on another machine: we do not
ship data through the driver.

`ray` is imported lazily; without it a job on a ray compute fails with one line naming the extra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import ipaddress
import logging
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import traceback
from typing import Any

from batchctl.errors import BatchctlError, JobFailedError, MissingDependencyError, StorageError
from batchctl.execution.events import (
    BatchResult,
    BatchTask,
    InitFailed,
    WorkerDied,
    WorkerMessage,
    WorkerReady,
    WorkerResult,
)
from batchctl.notices import notify
from batchctl.scoring.base import ScorerRef

INSTALL_HINT = "pip install 'batchctl[ray]'"
# CPUs reserved per actor: fractional so that 2 actors (and a replacement) fit on a 2-CPU instance
ACTOR_CPUS_ENV = "BATCHCTL_RAY_ACTOR_CPUS"
DEFAULT_ACTOR_CPUS = 0.5
# treat every actor as if it ran on another machine (tests the shipping path on a one-node instance)
FORCE_REMOTE_ENV = "BATCHCTL_RAY_FORCE_REMOTE"
# storage credentials the actors need to read remote inputs. They travel to each actor in memory, as an
# argument of its setup() call, never in a runtime_env: Ray writes a runtime_env into its logs
# (<ray temp>/session_*/logs/runtime_env_agent.log) in clear.
FORWARDED_ENV_PREFIXES = ("AZURE_STORAGE_", "AZURE_CLIENT_", "AZURE_TENANT_ID")
MAX_BUNDLE_BYTES = 2 << 30
STOP_GRACE_SECONDS = 5.0
DEFAULT_CONNECT_TIMEOUT = 30.0  # seconds to reach a cluster's address before the job fails (compute: connect_timeout)
HEALTH_INTERVAL = 2.0  # how often the driver checks that the cluster's GCS still answers
LOST_AFTER = 6.0  # seconds of a GCS that does not answer before the cluster is declared lost


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(f"Ray is not installed: {INSTALL_HINT}") from exc
    return ray


def machine_id() -> str:
    """Host name and boot id: two processes with the same value see the same files."""
    boot = ""
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        boot = handle.read().strip()
    return f"{socket.gethostname()}/{boot}"


# ------------------------------------------------------------------------------------ actor side


class RayWorker:
    """The body of one actor (wrapped with ray.remote at run time, so this module imports without Ray)."""

    def __init__(self, slot: int, capture_output: bool) -> None:
        self.slot = slot
        self.scratch = tempfile.mkdtemp(prefix=f"batchctl-ray{slot}-")
        self.scorer: Any = None
        self.output_dir: str | None = None  # set when outputs must be shipped back
        self.out_path: str | None = None
        self.out_pos = 0
        if capture_output:
            from batchctl.execution.worker import _redirect_output

            self.out_path = os.path.join(self.scratch, "stdout.txt")
            _redirect_output(self.out_path, capped=False)

    def locate(self) -> str:
        return machine_id()

    def setup(
        self, ref: ScorerRef, bundle: bytes | None, credentials: dict[str, str]
    ) -> tuple[WorkerReady | InitFailed, bytes]:
        """(how init() went, the worker's prints so far)."""
        from batchctl.execution.worker import new_scorer, prepare_process

        if ref.python and os.path.abspath(sys.executable) != os.path.abspath(ref.python):
            # never score silently in another interpreter than the environment's
            said = f"this Ray worker runs {sys.executable}, not the job's environment's {ref.python}"
            return InitFailed(said), self._output()
        try:
            os.environ.update(credentials)  # in memory only (see FORWARDED_ENV_PREFIXES)
            if bundle is not None:
                ref = self._unpack(ref, bundle)
            prepare_process(ref)
            self.scorer = new_scorer(ref)
        except BaseException:
            return InitFailed(traceback.format_exc()), self._output()
        return WorkerReady(os.getpid()), self._output()

    def run(self, task: BatchTask) -> tuple[BatchResult, list[tuple[str, bytes]], bytes]:
        """(result, files written to AZUREML_BI_OUTPUT_PATH, stdout); the rows travel in result.data."""
        from batchctl.execution.worker import run_task

        result = run_task(self.scorer, task, self.scratch)
        return result, self._collect_outputs(), self._output()

    def stop(self) -> bytes:
        out = self._output()
        shutil.rmtree(self.scratch, ignore_errors=True)
        return out

    def _unpack(self, ref: ScorerRef, bundle: bytes) -> ScorerRef:
        dest = os.path.join(self.scratch, "bundle")
        with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as archive:
            archive.extractall(dest, filter="data")
        model_dir = os.path.join(dest, "model_dir")
        if os.path.exists(os.path.join(dest, "model_path")):
            model_path = os.path.join(dest, "model_path", os.path.basename(ref.model_path))
        else:
            model_path = os.path.join(model_dir, os.path.relpath(ref.model_path, ref.model_dir))
        self.output_dir = os.path.join(dest, "output")
        os.makedirs(self.output_dir, exist_ok=True)
        return dataclasses.replace(
            ref,
            model_dir=model_dir,
            model_path=model_path,
            code_dir=os.path.join(dest, "code") if ref.code_dir else None,
            output_dir=self.output_dir,
        )

    def _collect_outputs(self) -> list[tuple[str, bytes]]:
        """Files the script wrote to AZUREML_BI_OUTPUT_PATH on another machine: moved back to the driver."""
        if self.output_dir is None:
            return []
        found = []
        for folder, _, names in os.walk(self.output_dir):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    found.append((os.path.relpath(path, self.output_dir), handle.read()))
                os.unlink(path)
        return sorted(found)

    def _output(self) -> bytes:
        if self.out_path is None:
            return b""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            with open(self.out_path, "rb") as handle:
                handle.seek(self.out_pos)
                data = handle.read()
        except OSError:
            return b""
        self.out_pos += len(data)
        return data


def pack_bundle(ref: ScorerRef) -> bytes:
    """The model folder (AZUREML_MODEL_DIR) and the code folder as one uncompressed tar archive."""
    roots = [("model_dir", ref.model_dir)]
    model_path = os.path.abspath(ref.model_path)
    if os.path.commonpath([model_path, os.path.abspath(ref.model_dir)]) != os.path.abspath(ref.model_dir):
        roots.append(("model_path", ref.model_path))
    if ref.code_dir:
        roots.append(("code", ref.code_dir))
    total = 0
    for _, root in roots:
        if os.path.isfile(root):
            total += os.path.getsize(root)
        for folder, _, names in os.walk(root):
            total += sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    if total > MAX_BUNDLE_BYTES:
        raise BatchctlError(
            f"model and code are {total / (1 << 30):.1f} GiB: too large to ship to the Ray cluster",
            "put the model on storage every node can read, or run the job on a node that has it",
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as archive:
        for arcname, root in roots:
            if arcname == "model_path":
                archive.add(root, arcname=f"model_path/{os.path.basename(root)}")
            else:
                archive.add(root, arcname=arcname)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------- driver side


class RayHandle:
    def __init__(self, backend: RayBackend, slot: int, actor: Any) -> None:
        self.backend = backend
        self.slot = slot
        self.actor = actor
        self.pending: dict[Any, str] = {}  # ObjectRef -> "locate" | "setup" | "run"
        self.dead = False
        self.remote = False  # runs on another machine
        self.machine = ""

    def submit(self, task: BatchTask) -> None:
        if self.remote and task.root.is_local:
            raise StorageError(
                f"input {task.root.url} is a path on this machine, but Ray worker {self.slot} runs on "
                f"another machine ({self.machine.split('/')[0]}); local inputs are not shipped to a cluster",
                "upload the data to a datastore (azureml://datastores/...) or pass an az://, abfs:// or https:// input",
            )
        self.pending[self.actor.run.remote(task)] = "run"

    def kill(self) -> None:
        self.dead = True
        self.pending.clear()
        if self.backend.lost:
            return
        with contextlib.suppress(Exception):
            self.backend.ray.kill(self.actor, no_restart=True)


class ClusterLostError(JobFailedError):
    """The Ray cluster stopped answering while a job ran on it."""


class RayBackend:
    name = "ray"

    def __init__(
        self,
        ref: ScorerRef,
        address: str,
        max_workers: int | None = None,
        logs_dir: str | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        endpoint = parse_endpoint(address)
        loaded = sys.modules.get("ray")
        if endpoint is not None and not (loaded is not None and loaded.is_initialized()):
            # before Ray is even imported: Ray's own connect retries forever while nothing listens (and
            # prints a warning every few seconds)
            wait_reachable(address, endpoint, DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout)
        ray = import_ray()
        self.ray = ray
        self.ref = ref
        self.address = address
        self.logs_dir = logs_dir
        self.handles: list[RayHandle] = []
        self.dropped: dict[int, int] = {}  # bytes of actor output past the log cap, per worker
        self.machine = machine_id()
        self.force_remote = os.environ.get(FORCE_REMOTE_ENV, "") not in ("", "0")
        self.actor_cpus = float(os.environ.get(ACTOR_CPUS_ENV) or DEFAULT_ACTOR_CPUS)
        self._bundle: Any = None
        self._actor_class: Any = None
        self.credentials = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
        self.owns_connection = False
        self._restore_printer: Any = lambda: None
        self.gcs: tuple[str, int] | None = None  # the endpoint whose silence means the cluster is lost
        self.lost = False
        self._checked = time.monotonic()
        self._silent_since: float | None = None
        if ray.is_initialized():
            return  # a caller (a notebook, a test) connected already: use it and leave it connected
        common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if address == "local":
                cpus = int(max_workers) if max_workers else (os.cpu_count() or 1)
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **common)
            else:
                ray.init(address=address, **common)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError... one line for the user
            with contextlib.suppress(Exception):
                ray.shutdown()
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            hint = "check the compute's address (`batchctl compute show`) and that the cluster is up"
            if "auth" in repr(exc.__cause__ or exc).lower() or "token" in str(exc).lower():
                hint = "the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"
            message = f"cannot start or reach the Ray cluster at '{address}': {first.strip()}"
            raise BatchctlError(message, hint) from exc
        self.owns_connection = True
        self._restore_printer = _route_driver_messages(self._driver_message)
        if address.startswith("ray://"):
            # Ray Client: the client server is what this machine reaches (the GCS address the cluster
            # reports may be an internal one, behind a port-forward)
            self.gcs = endpoint
        else:
            with contextlib.suppress(Exception):
                self.gcs = parse_endpoint(ray.get_runtime_context().gcs_address)

    # -- Backend protocol

    def spawn(self, slot: int) -> RayHandle:
        if self._actor_class is None:
            self._actor_class = self.ray.remote(RayWorker)
        self.check_cluster()
        options: dict[str, Any] = {"num_cpus": self.actor_cpus, "max_restarts": 0, "max_task_retries": 0}
        if self.ref.python:
            options.update(self._env_options())
        actor = self._actor_class.options(**options).remote(slot, self.logs_dir is not None)
        handle = RayHandle(self, slot, actor)
        handle.pending[actor.locate.remote()] = "locate"
        self.handles.append(handle)
        return handle

    def _env_options(self) -> dict[str, Any]:
        """An isolated environment built on this machine (jobs/environment.prepare refuses the others): each
        actor starts with its interpreter (Ray's `py_executable`; the environment has the driver's ray),
        finds batchctl's worker code through the shim alone (no host PYTHONPATH), and runs on this node,
        the only one where the environment exists."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        shim = os.pathsep.join(self.ref.python_path[:1])  # jobs/environment.worker_path: the shim comes first
        node = self.ray.get_runtime_context().get_node_id()
        return {
            "runtime_env": {"py_executable": self.ref.python, "env_vars": {"PYTHONPATH": shim}},
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False),
        }

    def wait(self, handles: list[RayHandle], timeout: float) -> list[tuple[RayHandle, WorkerMessage]]:
        ray = self.ray
        self.check_cluster()
        live = {ref: h for h in handles if not h.dead for ref in h.pending}
        if not live:
            time.sleep(timeout)
            return []
        ready, _ = ray.wait(list(live), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(live), num_returns=len(live), timeout=0)
        out: list[tuple[RayHandle, WorkerMessage]] = []
        for ref in ready:
            h = live[ref]
            if h.dead or ref not in h.pending:
                continue
            kind = h.pending.pop(ref)
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the actor's process died (or was never created)
                h.dead = True
                h.pending.clear()
                out.append((h, WorkerDied(describe_death(exc))))
                continue
            except ray.exceptions.RayError as exc:  # runtime_env setup, an error inside our own actor code
                h.kill()
                if kind == "run":
                    out.append((h, WorkerDied(describe_death(exc))))
                else:
                    out.append((h, InitFailed(str(exc))))
                continue
            if kind == "locate":
                h.machine = value
                h.remote = self.force_remote or value != self.machine
                bundle = self._bundle_ref() if h.remote else None
                h.pending[h.actor.setup.remote(self.ref, bundle, self.credentials)] = "setup"
            elif kind == "setup":
                said, stdout = value
                self._write_stdout(h.slot, stdout)
                out.append((h, said))
            else:
                result, outputs, stdout = value
                self._write_stdout(h.slot, stdout)
                self._write_outputs(outputs)
                out.append((h, WorkerResult(result)))
        return out

    def shutdown(self) -> None:
        ray = self.ray
        if self.lost:  # the cluster is gone: nothing to stop there, and asking would hang
            for h in self.handles:
                h.dead = True
        live = [h for h in self.handles if not h.dead]
        idle = [h for h in live if not h.pending]
        stops = {h.actor.stop.remote(): h for h in idle}
        if stops:
            with contextlib.suppress(Exception):
                ready, _ = ray.wait(list(stops), num_returns=len(stops), timeout=STOP_GRACE_SECONDS)
                for ref in ready:
                    with contextlib.suppress(Exception):
                        self._write_stdout(stops[ref].slot, ray.get(ref))
        for h in live:
            h.kill()
        for slot, dropped in self.dropped.items():
            if dropped and self.logs_dir is not None:
                path = os.path.join(self.logs_dir, "user", "stdout", f"worker-{slot}.txt")
                with contextlib.suppress(OSError), open(path, "ab") as handle:
                    handle.write(f"[batchctl] {dropped} bytes of output were dropped\n".encode())
        self.dropped = {}
        self.handles = []
        self._bundle = None
        if self.owns_connection:
            self.owns_connection = False
            with contextlib.suppress(Exception):
                ray.shutdown()
            self._restore_printer()

    def check_cluster(self) -> None:
        """Raise ClusterLostError once the cluster's GCS has not answered for LOST_AFTER seconds. Ray's own
        driver would otherwise wait (replacement actors never start) and then end this process."""
        if self.gcs is None:
            return
        now = time.monotonic()
        if now - self._checked < HEALTH_INTERVAL and self._silent_since is None:
            return
        self._checked = now
        reason = probe(self.gcs, 1.0)
        if reason is None:
            self._silent_since = None
            return
        if self._silent_since is None:
            self._silent_since = now
            return
        if now - self._silent_since >= LOST_AFTER:
            host, port = self.gcs
            self.lost = True
            raise ClusterLostError(
                f"lost the Ray cluster at '{self.address}': its GCS at {host}:{port} has not answered for "
                f"{now - self._silent_since:.0f} s ({reason})",
                "restart the cluster; if it comes back on another address, point the compute at it "
                "(`batchctl compute create -n NAME --type ray --address HOST:PORT`)",
            )
        time.sleep(min(0.5, HEALTH_INTERVAL))

    # -- helpers

    def _bundle_ref(self) -> Any:
        if self._bundle is None:
            self._bundle = self.ray.put(pack_bundle(self.ref))
        return self._bundle

    def _driver_message(self, lines: list[str]) -> None:
        text = "".join(f"{line}\n" for line in lines)
        if self.logs_dir is None:
            for line in lines:
                notify(line)
            return
        with contextlib.suppress(OSError):
            os.makedirs(os.path.join(self.logs_dir, "sys"), exist_ok=True)
            with open(os.path.join(self.logs_dir, "sys", "ray_driver.txt"), "a", encoding="utf-8") as handle:
                handle.write(text)

    def _write_stdout(self, slot: int, data: bytes) -> None:
        """Append an actor's output to its log, which stops growing at the cap (as a local worker's does)."""
        if not data or self.logs_dir is None:
            return
        from batchctl.errors import mask_bytes
        from batchctl.execution.worker import log_cap

        data = mask_bytes(data)  # a task's whole output: the job's resolved `${env:NAME}` values masked

        path = os.path.join(self.logs_dir, "user", "stdout", f"worker-{slot}.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cap = log_cap()
        with open(path, "ab") as handle:
            room = cap - handle.tell()
            if room > 0:
                handle.write(data[:room])
                if len(data) > room:
                    handle.write(f"\n[batchctl] output truncated at {cap} bytes\n".encode())
            self.dropped[slot] = self.dropped.get(slot, 0) + max(0, len(data) - max(room, 0))

    def _write_outputs(self, files: list[tuple[str, bytes]]) -> None:
        for rel, data in files:
            root = os.path.abspath(self.ref.output_dir)
            target = os.path.abspath(os.path.join(root, rel))
            if os.path.commonpath([target, root]) != root:
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(data)


def runs_here(address: str | None) -> bool:
    """Whether the Ray instance at a compute's `address` runs on this machine, so that an environment built
    here exists where its actors start: `local` (started by batchctl), `auto` (a cluster started on this
    machine), or `host:port` whose host is this machine. Ray Client (`ray://`) addresses never count."""
    if not address or address.strip() in ("local", "auto"):
        return True
    endpoint = parse_endpoint(address)
    if endpoint is None or address.strip().startswith("ray://"):
        return False
    return is_this_machine(endpoint[0])


def is_this_machine(host: str) -> bool:
    """Whether `host` names an address of this machine: one of its interfaces' (a socket binds to it) or
    loopback."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, _, _, _, sockaddr in infos:
        if ipaddress.ip_address(str(sockaddr[0]).split("%")[0]).is_loopback:
            return True
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((sockaddr[0], 0, *sockaddr[2:]))  # only an address of this machine's can be bound
            return True
    return False


def parse_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` or `ray://host:port`; None for `local`, `auto` or anything else."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d{1,5})/?", address.strip())
    if not match:
        return None
    return match.group(1), int(match.group(2))


def probe(endpoint: tuple[str, int], timeout: float) -> str | None:
    """None when a TCP connection to the endpoint opens, else why not."""
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def wait_reachable(address: str, endpoint: tuple[str, int], timeout: float) -> None:
    """Wait up to `timeout` seconds for the cluster's address to accept a connection (a cluster that is
    starting gets the time); then fail with one line naming the address. Interruptible (Ctrl-C, SIGTERM)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        reason = probe(endpoint, max(0.1, min(2.0, left)))
        if reason is None:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    host, port = endpoint
    raise BatchctlError(
        f"cannot reach the Ray cluster at '{address}' within {timeout:g} s: {reason}",
        f"start it (`ray start --head --port={port}` on {host}) or point the compute at the cluster's address "
        "(`batchctl compute create -n NAME --type ray --address HOST:PORT`); `connect_timeout` on the compute "
        "sets how long to wait",
    )


def _route_driver_messages(sink: Any) -> Any:
    """Ray's driver prints the cluster's error messages ("(raylet) A worker died...") to sys.stdout, which
    would corrupt `-o json`; send them to the job's log instead. Private Ray API: if it moves, Ray prints
    as before. Returns a function that restores Ray's printer."""
    try:
        import ray._private.worker as ray_worker

        original = ray_worker.print_to_stdstream
    except (ImportError, AttributeError):
        return lambda: None

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        with contextlib.suppress(Exception):
            sink([f"({data.get('pid', 'ray')}) {line}" for line in data.get("lines") or []])

    ray_worker.print_to_stdstream = to_log
    return lambda: setattr(ray_worker, "print_to_stdstream", original)


def describe_death(exc: BaseException) -> str:
    """One line out of Ray's long actor-death message: the exit detail and the pid, when Ray gives them."""
    text = " ".join(str(exc).split())
    pid = re.search(r"\bpid: (\d+)", text)
    detail = re.search(r"exit detail: (.*?)(?: Some common causes|$)", text, re.IGNORECASE)
    because = re.search(r"The actor is dead because (.*?)(?: Worker exit type|$)", text)
    if detail:
        reason = detail.group(1)
    elif because:
        reason = because.group(1)
    else:
        reason = text or type(exc).__name__
    return (f"Ray actor (pid {pid.group(1)}) died: " if pid else "Ray actor died: ") + reason[:300]
