"""Code that runs inside a worker (a spawned process, or a Ray actor): process set-up as Azure's
runtime does it, and one attempt at one mini-batch."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

from batchctl.errors import mask_always, mask_bytes, masked_values
from batchctl.execution.events import BatchResult, BatchTask, InitFailed, WorkerReady, WorkerResult
from batchctl.scoring.base import Outcome, ScorerRef
from batchctl.scoring.build import build_scorer
from batchctl.scoring.failures import ErrorInfo, ItemError, cap


def prepare_process(ref: ScorerRef) -> None:
    """AZUREML_* variables, the deployment's environment variables, --logging_level, code on sys.path."""
    os.environ["AZUREML_MODEL_DIR"] = ref.model_dir
    os.environ["AZUREML_BI_OUTPUT_PATH"] = ref.output_dir
    os.environ.update(ref.environment_variables)
    mask_always(ref.masked)  # in this process's captured output, from init() on
    script = ref.scoring_script or "batchctl_mlflow_driver.py"
    sys.argv = [script, "--logging_level", ref.logging_level.upper()]
    if ref.code_dir:
        sys.path.insert(0, ref.code_dir)
        os.chdir(ref.code_dir)
    level = {"warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}[ref.logging_level]
    logging.basicConfig(
        level=level, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def new_scorer(ref: ScorerRef) -> Any:
    scorer = build_scorer(ref)
    scorer.init()
    return scorer


def unreadable(path: str) -> str | None:
    """Why a local input cannot be scored, or None. A FIFO, socket or device is never opened: reading a
    FIFO blocks until a writer comes, which would stall the whole mini-batch until its timeout."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot read input: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device); it was not opened"
    # readable by everyone (the usual 0644): no second system call; else ask (owner, group, root)
    if not mode & stat.S_IROTH and not os.access(path, os.R_OK):
        return "cannot read input: Permission denied"
    return None


def run_task(scorer: Any, task: BatchTask, scratch: str) -> BatchResult:
    """One attempt: fetch the files (remote ones into scratch), score them."""
    from batchctl.errors import StorageUnavailableError
    from batchctl.storage import fetch

    started = time.monotonic()
    root = task.root
    names = task.files
    local_files, ok_names, fetch_errors = [], [], []
    batch_dir = os.path.join(scratch, f"b{task.batch}")
    try:
        if task.span is not None:  # a row range of a big file: read by range, never downloaded whole
            names = []
            outcome = scorer.score_range(root, task.span)
        for rel in names:
            try:
                path = fetch(root, rel, batch_dir)
            except StorageUnavailableError:
                raise  # the store is down, not the file: fail the attempt so that it is retried
            except Exception as exc:  # an unreadable input is one failed item
                fetch_errors.append(ItemError(rel, ErrorInfo(type(exc).__name__, cap(str(exc)))))
                continue
            reason = unreadable(path)
            if reason is not None:
                fetch_errors.append(ItemError(rel, ErrorInfo(None, f"input '{rel}': {reason}")))
                continue
            local_files.append(path)
            ok_names.append(rel)
        if local_files:
            outcome = scorer.score(local_files, ok_names)
        elif task.span is None:
            outcome = Outcome(ok=True)
    except StorageUnavailableError as exc:
        outcome = Outcome(ok=False, error=str(exc), error_info=ErrorInfo.from_exception(exc))
    except Exception as exc:  # the scorer's own failure: the attempt failed
        code_dir = getattr(getattr(scorer, "ref", None), "code_dir", None)
        outcome = Outcome(ok=False, error=traceback.format_exc(), error_info=ErrorInfo.from_exception(exc, code_dir))
    finally:
        shutil.rmtree(batch_dir, ignore_errors=True)
    if outcome.ok and fetch_errors:
        outcome.failed += len(fetch_errors)
        outcome.item_errors = fetch_errors + outcome.item_errors
    return BatchResult(
        batch=task.batch,
        attempt=task.attempt,
        ok=outcome.ok,
        succeeded=outcome.succeeded,
        failed=outcome.failed,
        rows=outcome.rows,
        data=outcome.data,
        error=outcome.error,
        error_info=outcome.error_info,
        item_errors=outcome.item_errors,
        file_rows=outcome.file_rows if task.span is None else None,
        duration=time.monotonic() - started,
        pid=os.getpid(),
    )


def part_name(batch: int, attempt: int) -> str:
    """The file that holds one mini-batch's rows under the job's parts/ folder."""
    return f"{batch:08d}.a{attempt}.part"


def _die_with_parent(parent_pid: int) -> None:
    """Orphaned workers exit on their own: PR_SET_PDEATHSIG where Linux has it, and a watchdog thread.
    The parent is the driver, or the forkserver the driver's worker was forked from (which leaves when
    the driver does: multiprocessing closes its "alive" pipe)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(0.5)

    threading.Thread(target=watch, name="batchctl-parent-watch", daemon=True).start()


def _freeze_long_lived() -> None:
    """What the worker holds once init() has run (the libraries, the model) lives as long as it does. A
    full collection traverses all of it: 70-130 ms on a scikit-learn worker, and in a worker forked from
    the forkserver it writes to every object's header, copying the pages it shares with the forkserver.
    Move it to the permanent generation, which the collector skips; what scoring allocates later is
    collected as before."""
    gc.freeze()


def _allow_children() -> None:
    """The driver starts workers as daemonic processes (multiprocessing stops them when it exits), and
    multiprocessing refuses children to a daemonic process: a scoring script's own Pool would fail with
    "daemonic processes are not allowed to have children", where Azure runs it. Inside the worker the flag
    serves nothing (the driver keeps its own copy), so it is cleared."""
    import multiprocessing

    with contextlib.suppress(Exception):
        multiprocessing.current_process().daemon = False


def _leave_forkserver() -> None:
    """Close the forkserver's "alive" pipe that multiprocessing hands every forked child. The forkserver
    leaves when every holder of that pipe has closed it: held here, it would keep the forkserver alive
    after the driver died, and so this worker, whose parent it is. Closed, the driver is the only holder:
    when it dies the forkserver leaves and PR_SET_PDEATHSIG takes this worker with it. The module's
    forkserver state is cleared too, so a scoring script that uses multiprocessing's forkserver starts
    its own."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    for name in ("_forkserver_alive_fd", "_forkserver_address", "_forkserver_pid"):
        if hasattr(server, name):
            setattr(server, name, None)


LOG_CAP_ENV = "BATCHCTL_WORKER_LOG_CAP"  # bytes of captured output kept per worker log file
DEFAULT_LOG_CAP = 10 * 1024 * 1024
_capture: CappedOutput | None = None


class CappedOutput:
    """The worker's stdout and stderr (file descriptors 1 and 2, so C extensions are caught too) go through
    a pipe to its log file, which stops growing at the cap: then one "truncated" line, and at the end a
    count of the bytes dropped. A run() that prints for ever cannot fill the disk."""

    def __init__(self, path: str, cap: int) -> None:
        self.lock = threading.Lock()
        self.cap = cap
        self._open(path)
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self.read_end = read_end
        self.thread = threading.Thread(target=self._pump, name="batchctl-output", daemon=True)
        self.thread.start()

    def _open(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.written = os.fstat(self.file).st_size  # a replaced worker appends to the same file
        self.dropped = 0
        self.at_line_start = True
        self.pending = b""  # with values to mask: the end of a line not yet complete (a value may span reads)

    def switch(self, path: str) -> None:
        """Write to another job's log from now on (a warm worker of the server's pool); the cap restarts."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with self.lock:
            self._flush_pending()
            self._end_note()
            os.close(self.file)
            self._open(path)

    def _note(self, text: str) -> None:
        """A line of ours in the log, on a line of its own."""
        os.write(self.file, (("" if self.at_line_start else "\n") + text + "\n").encode())
        self.at_line_start = True

    def _end_note(self) -> None:
        if self.dropped:
            self._note(f"[batchctl] {self.dropped} bytes of output were dropped")

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.read_end, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            with self.lock:
                self._write(self._masked(chunk) if masked_values() else chunk)
        with self.lock:
            self._flush_pending()
            self._end_note()

    def _masked(self, chunk: bytes) -> bytes:
        """Complete lines with the masked values replaced; the rest waits for its line's end (up to 64 KiB),
        so a value split between two reads of the pipe is still masked."""
        data = self.pending + chunk
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) < 1 << 16:
            self.pending = data
            return b""
        cut = cut or len(data)
        self.pending = data[cut:]
        return mask_bytes(data[:cut])

    def _flush_pending(self) -> None:
        if self.pending:
            data, self.pending = self.pending, b""
            self._write(mask_bytes(data))

    def _write(self, chunk: bytes) -> None:
        room = max(0, self.cap - self.written)
        kept = chunk[:room]
        if kept:
            os.write(self.file, kept)
            self.written += len(kept)
            self.at_line_start = kept.endswith(b"\n")
        if len(kept) < len(chunk):
            if not self.dropped:  # the first byte past the cap, in this chunk or at its start
                self._note(f"[batchctl] output truncated at {self.cap} bytes")
            self.dropped += len(chunk) - len(kept)

    def close(self) -> None:
        """Flush, end the pipe and let the pump write its last line (bounded wait)."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.thread.join(2.0)


def log_cap() -> int:
    try:
        return int(os.environ.get(LOG_CAP_ENV) or DEFAULT_LOG_CAP)
    except ValueError:
        return DEFAULT_LOG_CAP


def _redirect_output(path: str, capped: bool = True) -> None:
    """fd 1 and 2 to `path`: through CappedOutput for a local worker; straight to the file for a Ray actor,
    whose output the driver reads back and caps as it writes the job's log."""
    global _capture
    import atexit

    if capped and _capture is not None:  # a warm worker moving on to another job's log
        _capture.switch(path)
        return
    if capped:
        _capture = CappedOutput(path, log_cap())
        # registered first, so it runs last: output printed by the script's own atexit handlers is kept too
        atexit.register(_capture.close)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _hand_over_outputs(own: str, target: str) -> None:
    """A warm worker's script writes to its own AZUREML_BI_OUTPUT_PATH (a script may keep that path from
    init(), as Azure's examples do); after each task the files move to the job's output folder."""
    if not own or os.path.abspath(own) == os.path.abspath(target):
        return
    for folder, _, names in os.walk(own):
        for name in names:
            source = os.path.join(folder, name)
            dest = os.path.join(target, os.path.relpath(source, own))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.move(source, dest)


def local_worker_main(
    conn: Any,
    ref: ScorerRef,
    slot: int,
    stdout_path: str,
    parts_dir: str,
    parent_pid: int,
    environ: dict[str, str] | None = None,
) -> None:
    """Entry point of a worker process (execution/local.py): spawned, or forked from the forkserver, which
    then hands over the driver's environment (`environ`) and is the parent to watch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the driver, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _allow_children()
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
        parent_pid = os.getppid()
        _leave_forkserver()
    _die_with_parent(parent_pid)
    _redirect_output(stdout_path)
    try:
        prepare_process(ref)
        scorer = new_scorer(ref)
    except BaseException:
        conn.send(InitFailed(traceback.format_exc()))
        return
    _freeze_long_lived()
    conn.send(WorkerReady(os.getpid()))
    scratch = tempfile.mkdtemp(prefix=f"batchctl-worker{slot}-")
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message[0] != "task":
                break
            task: BatchTask = message[1]
            if task.stdout_path and task.stdout_path != stdout_path:
                stdout_path = task.stdout_path
                _redirect_output(stdout_path)
            result = run_task(scorer, task, scratch)
            if task.output_dir:
                _hand_over_outputs(ref.output_dir, task.output_dir)
            data, result.data = result.data, b""
            target = task.parts_dir or parts_dir
            if result.ok and data:
                name = part_name(task.batch, task.attempt)
                tmp = os.path.join(target, f".{name}.tmp")
                with open(tmp, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, os.path.join(target, name))
                result.part = os.path.join(target, name)
            try:
                conn.send(WorkerResult(result))
            except (BrokenPipeError, OSError):
                break
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        # a script gets the teardown of an unfrozen process: the last collection finalizes what its init()
        # left in reference cycles (a buffered file it keeps open is flushed)
        gc.unfreeze()
    if ref.kind == "mlflow":
        # Tearing down an interpreter that loaded pandas, mlflow and scikit-learn takes about half a
        # second, on the job's critical path. The built-in scorer holds nothing to flush and everything
        # was reported, so leave at once. A custom script may rely on normal exit (atexit handlers,
        # buffered files it keeps open), so it gets the normal teardown.
        logging.shutdown()
        if _capture is not None:
            _capture.close()
        os._exit(0)
