"""run_job(): the one writer of a job's state while it runs.

plan.json (the sorted input files) -> mini-batches -> executor -> per-mini-batch parts -> one results
file published create-only -> Completed. Any failure leaves nothing at the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import BatchctlError, JobCanceledError, JobFailedError, redact
from batchctl.execution.base import InitFailedError, RunSettings, supervise
from batchctl.execution.partition import plan_batches
from batchctl.jobs import records
from batchctl.jobs.logs import JobLogs
from batchctl.scoring.base import ScorerRef
from batchctl.workspace import Workspace, now

ProgressFn = Callable[[str, dict[str, Any]], None]
CANCEL_MARKER = "cancel_requested"


def _first_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return redact(lines[-1].strip()) if lines else ""


def _system_failure(error: str | None) -> bool:
    """A timeout or a dead worker: the supervisor's finding, not a traceback the worker reported."""
    return "timed out" in (error or "") or "exited unexpectedly" in (error or "")


def make_backend(record: dict[str, Any], ref: ScorerRef, folder: Path) -> Any:
    compute = record.get("compute_type", "local")
    if compute == "ray":
        from batchctl.execution.ray import RayBackend

        return RayBackend(
            ref,
            record.get("compute_address") or "local",
            record.get("compute_max_workers"),
            logs_dir=str(folder / "logs"),
        )
    from batchctl.execution.local import LocalBackend

    return LocalBackend(ref, str(folder / "logs"), str(folder / "parts"))


class _Progress:
    def __init__(self, folder: Path, record: dict[str, Any], logs: JobLogs, on_event: ProgressFn | None):
        self.folder = folder
        self.counts = record["counts"]
        self.logs = logs
        self.on_event = on_event
        self.last_write = 0.0
        self.first_error: dict[str, Any] | None = None
        self.ok_batches: dict[int, str | None] = {}
        self.failed_log = open(folder / "failed_items.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.batch_log = open(folder / "batches.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self.failed_log.close()
        self.batch_log.close()

    def overview(self) -> str:
        c = self.counts
        return (
            f"Total mini-batches: {c['mini_batches']}\n"
            f"Mini-batches processed: {c['mini_batches_completed'] + c['mini_batches_failed']}\n"
            f"Mini-batches succeeded: {c['mini_batches_completed']}\n"
            f"Mini-batches failed: {c['mini_batches_failed']}\n"
            f"Items (files): {c['files']}\n"
            f"Items succeeded: {c['items_succeeded']}\n"
            f"Items failed: {c['items_failed']}\n"
            f"Retries: {c['retries']}\n"
            f"Worker restarts: {c['worker_restarts']}\n"
        )

    def flush(self, force: bool = False) -> None:
        now_t = time.monotonic()
        if force or now_t - self.last_write > 0.5:
            self.last_write = now_t
            records.update(self.folder, counts=self.counts)
            self.logs.progress(self.overview())

    def set_error(self, message: str, details: str | None = None) -> None:
        if self.first_error is None:
            self.first_error = {"message": redact(message)}
            if details:
                self.first_error["details"] = redact(details)[-4000:]

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        logs, slot = self.logs, payload.get("slot")
        if kind == "worker_ready":
            logs.master(f"worker {slot} ready (pid {payload.get('pid')}): init() done")
        elif kind == "worker_started":
            logs.master(f"worker {slot} starting")
        elif kind == "dispatched":
            logs.master(f"mini-batch {payload['batch']} attempt {payload['attempt']} -> worker {slot}")
        elif kind == "worker_died":
            logs.master(f"worker {slot} died ({payload['reason']}); replaced")
            self.counts["worker_restarts"] += 1
        elif kind == "timeout":
            logs.master(f"mini-batch {payload['batch']} attempt {payload['attempt']} timed out; worker {slot} killed")
            self.counts["worker_restarts"] += 1
        elif kind == "attempt_failed":
            err = payload.get("error") or "run() failed"
            logs.worker(
                slot,
                f"mini-batch {payload['batch']} attempt {payload['attempt']}: FAILED "
                f"({payload.get('duration', 0):.3f}s): {_first_line(err)}",
            )
            logs.user_error(
                f"mini-batch {payload['batch']} attempt {payload['attempt']}: {_first_line(err)}", slot, err
            )
            self.set_error(f"mini-batch {payload['batch']}: {_first_line(err)}", err)
        elif kind == "retry":
            self.counts["retries"] += 1
            logs.master(
                f"mini-batch {payload['batch']} attempt {payload['attempt']} failed: "
                f"{_first_line(payload.get('error'))}; retrying"
            )
            if _system_failure(payload.get("error")):
                logs.user_error(
                    f"mini-batch {payload['batch']} attempt {payload['attempt']}: {_first_line(payload.get('error'))}"
                )
                self.set_error(f"mini-batch {payload['batch']}: {_first_line(payload.get('error'))}")
        elif kind == "final":
            batch = payload["batch"]
            ok = payload["ok"]
            self.counts["items_succeeded"] += payload["succeeded"]
            self.counts["items_failed"] += payload["failed"]
            if ok:
                self.counts["mini_batches_completed"] += 1
                self.ok_batches[batch] = payload.get("part")
                if payload.get("data"):
                    part = self.folder / "parts" / f"{batch:08d}.a{payload['attempt']}.part"
                    part.write_bytes(payload["data"])
                    self.ok_batches[batch] = str(part)
                items = payload["succeeded"] + payload["failed"]
                logs.worker(
                    slot,
                    f"mini-batch {batch} attempt {payload['attempt']}: items {items}, "
                    f"succeeded {payload['succeeded']}, failed {payload['failed']}, "
                    f"rows {payload.get('rows', 0)}, duration {payload.get('duration', 0):.3f}s",
                )
            else:
                self.counts["mini_batches_failed"] += 1
                error = _first_line(payload.get("error"))
                logs.master(f"mini-batch {batch} failed after {payload['attempt']} attempts: {error}")
                if _system_failure(payload.get("error")):  # run() errors were logged per attempt already
                    logs.user_error(
                        f"mini-batch {batch} attempt {payload['attempt']}: {_first_line(payload.get('error'))}"
                    )
                self.set_error(f"mini-batch {batch}: {_first_line(payload.get('error'))}")
            for name, reason in payload.get("item_errors") or []:
                self.failed_log.write(json.dumps({"file": name, "batch": batch, "reason": redact(reason)}) + "\n")
                if ok:
                    logs.user_error(f"{name}: {reason}")
                    self.set_error(reason)
            if ok and payload["failed"] and not payload.get("item_errors") and payload.get("error"):
                logs.user_error(f"mini-batch {batch}: {payload['error']}")
                self.set_error(f"mini-batch {batch}: {payload['error']}")
            self.failed_log.flush()
            self.batch_log.write(
                json.dumps(
                    {
                        "batch": batch,
                        "ok": ok,
                        "attempts": payload["attempt"],
                        "succeeded": payload["succeeded"],
                        "failed": payload["failed"],
                    }
                )
                + "\n"
            )
            self.batch_log.flush()
            self.flush()
        if self.on_event is not None:
            self.on_event(kind, {**payload, "counts": dict(self.counts)})


def scorer_ref(record: dict[str, Any], bi_output: Path) -> ScorerRef:
    d = record["deployment_snapshot"]
    settings = record["settings"]
    return ScorerRef(
        kind="script" if d.get("code_dir") else "mlflow",
        model_dir=d["model_dir"],
        model_path=d["model_path"],
        code_dir=d.get("code_dir"),
        scoring_script=d.get("scoring_script"),
        output_action=settings["output_action"],
        output_dir=str(bi_output),
        logging_level=settings["logging_level"],
        environment_variables=dict(d.get("environment_variables") or {}),
    )


def run_job(ws: Workspace, name: str, on_event: ProgressFn | None = None) -> dict[str, Any]:
    """Run a Queued job to a terminal state in this process; returns the final record."""
    folder = records.job_dir(ws, name)
    record = records.read_raw(folder)
    if record is None:
        raise BatchctlError(f"job '{name}' has no record")
    if record["status"] != records.QUEUED:
        raise BatchctlError(f"job '{name}' is {record['status']}, not Queued")
    logs = JobLogs(folder / "logs")
    logs.setup()
    record = records.update(folder, status=records.RUNNING, start_time=now(), runner=records.runner_identity())
    if record["status"] != records.RUNNING:  # canceled or reconciled while Queued: never run a terminal job
        raise BatchctlError(f"job '{name}' is {record['status']}, not Queued")
    plan = json.loads((folder / "plan.json").read_text())
    settings = record["settings"]
    parts = folder / "parts"
    bi_output = folder / "output"
    parts.mkdir(exist_ok=True)
    bi_output.mkdir(exist_ok=True)
    progress = _Progress(folder, record, logs, on_event)
    status, error = records.FAILED, None
    started = time.monotonic()
    try:
        batches = plan_batches(plan["files"], settings["mini_batch_size"])
        logs.master(
            f"job {name}: {len(plan['files'])} files -> {len(batches)} mini-batches of up to "
            f"{settings['mini_batch_size']}; {settings['workers']} workers on {record['compute']}"
        )
        if (folder / CANCEL_MARKER).exists():
            raise JobCanceledError("job canceled")
        output_folder = storage.Location(record["output_location"]["url"], record["output_location"]["protocol"])
        if record.get("output_file"):
            storage.refuse_existing(storage.location_from_record(record["output_file_location"]))
        ref = scorer_ref(record, bi_output)
        backend = make_backend(record, ref, folder)
        run_settings = RunSettings(
            workers=settings["workers"],
            max_retries=settings["retry_settings"]["max_retries"],
            timeout=settings["retry_settings"]["timeout"],
            error_threshold=settings["error_threshold"],
        )
        totals = supervise(
            backend,
            batches,
            (plan["root_url"], plan["root_protocol"]),
            run_settings,
            progress,
            lambda: (folder / CANCEL_MARKER).exists(),
        )
        progress.flush(force=True)
        if totals["succeeded"] == 0:
            reason = (progress.first_error or {}).get("message")
            raise JobFailedError(
                "There is no succeeded mini batch item returned from run()"
                + (f"; first error: {reason}" if reason else "")
            )
        _publish(folder, record, progress, logs, output_folder, bi_output)
        status = records.COMPLETED
    except (JobCanceledError, KeyboardInterrupt):
        status = records.CANCELED
        error = {"message": "job canceled"}
        logs.master("job canceled; workers stopped; nothing published")
    except InitFailedError as exc:
        error = {"message": exc.message}
        if exc.details:
            error["details"] = redact(exc.details)[-4000:]
            logs.user_error(exc.message, 0, exc.details)
        else:
            logs.user_error(exc.message)
        logs.master(f"job failed: {exc.message}")
    except BatchctlError as exc:
        error = {"message": exc.message}
        logs.master(f"job failed: {exc.message}")
    except Exception as exc:  # an unexpected error must still end the job as Failed, never Running
        error = {"message": redact(f"unexpected {type(exc).__name__}: {exc}")}
        logs.master(f"job failed: {error['message']}")
    finally:
        progress.close()
        shutil.rmtree(parts, ignore_errors=True)
        shutil.rmtree(bi_output, ignore_errors=True)
        with contextlib.suppress(OSError):
            shutil.rmtree(folder / "staging")
    if (
        status == records.FAILED
        and error is not None
        and progress.first_error
        and "There is no" not in error["message"]
    ):
        error.setdefault("first_item_error", progress.first_error["message"])
    if status == records.COMPLETED and progress.first_error:
        error = progress.first_error
    duration = time.monotonic() - started
    c = progress.counts
    logs.progress(progress.overview() + f"Status: {status}\n")
    logs.result(
        f"{status}: {c['items_succeeded']} items succeeded, {c['items_failed']} failed, "
        f"{c['mini_batches']} mini-batches in {duration:.2f}s"
        + (f"\nError: {error['message']}" if error and status != records.COMPLETED else "")
    )
    final = records.update(
        folder, status=status, end_time=now(), counts=c, error=error, duration_seconds=round(duration, 3)
    )
    logs.close()
    if on_event is not None:
        on_event("finished", {"status": final["status"], "counts": dict(c)})
    return final


def _publish(
    folder: Path,
    record: dict[str, Any],
    progress: _Progress,
    logs: JobLogs,
    output_folder: storage.Location,
    bi_output: Path,
) -> None:
    extra = [p for p in bi_output.rglob("*") if p.is_file()]
    if extra:
        storage.prepare_output_folder(output_folder)
        names = storage.upload_tree(str(bi_output), output_folder)
        logs.master(f"published {len(names)} files written by the scoring script to {output_folder.url}")
    if not record.get("output_file"):
        return
    staging = folder / "staging"
    staging.mkdir(exist_ok=True)
    results = staging / record["settings"]["output_file_name"]
    with open(results, "wb") as out:
        for batch in sorted(progress.ok_batches):
            part = progress.ok_batches[batch]
            if part:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    target = storage.location_from_record(record["output_file_location"])
    storage.prepare_output_folder(output_folder)
    storage.publish(str(results), target)
    logs.master(f"published {target.url} ({results.stat().st_size} bytes)")
