"""run_pipeline(): the one writer of a pipeline job's state and of its steps' child jobs while it runs.

Steps start in dependency order, independent ones in parallel up to the job's capacity, each a process in
its own environment. A failed step fails the pipeline (running steps are stopped, the rest not started)
unless `continue_on_step_failure`, when independent branches go on; a step whose upstream step did not
complete is Skipped with the reason. A promoted output is published create-only when its step completes.
A deterministic step with the same definition and input contents as an earlier completed run reuses that
run's outputs. A step Completed in an earlier attempt is not run again (`job resume`)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from batchctl import storage
from batchctl.errors import BatchctlError, InvalidStateError, redact
from batchctl.jobs import environment as job_env
from batchctl.jobs import records
from batchctl.jobs.logs import JobLogs
from batchctl.jobs.model import JobRecord, JobState, LocationRecord, job_error
from batchctl.jobs.pipelines import frozen, steps
from batchctl.jobs.pipelines.submit import STEP, depends_on, placeholder_settings, snapshot
from batchctl.jobs.runner import CANCEL_MARKER
from batchctl.processes import process_start_ticks
from batchctl.resources.pipelines import BoundPipeline, BoundStep
from batchctl.workspace import Workspace, now

LineFn = Callable[[str], None]
POLL = 0.1


@dataclasses.dataclass
class Running:
    proc: Any
    log: IO[bytes]
    started: float
    outputs: dict[str, str]
    key: str | None
    position: int = 0


class PipelineRun:
    def __init__(self, ws: Workspace, folder: Path, record: JobRecord, bound: BoundPipeline, on_line: LineFn | None):
        self.ws, self.folder, self.record, self.bound = ws, folder, record, bound
        self.logs = JobLogs(folder / "logs")
        self.on_line = on_line
        self.steps = {s.name: s for s in bound.steps}
        self.order = [s.name for s in bound.steps]
        self.state: dict[str, JobState] = {}
        self.reasons: dict[str, str] = {}
        self.hints: dict[str, str] = {}  # a failed step's hint (an environment build's names its full log)
        self.reused: dict[str, str] = {}
        self.running: dict[str, Running] = {}
        self.stopping: str | None = None  # why no further step starts
        self.canceled = False
        self.capacity = max(1, record.settings.workers)
        self.env_plans = {s["name"]: s.get("environment") for s in (record.pipeline or {}).get("steps", [])}

    # -- logging and records ------------------------------------------------------------------------
    def say(self, message: str) -> None:
        self.logs.master(message)
        if self.on_line is not None:
            self.on_line(message)

    def child(self, step: str) -> Path:
        return records.job_dir(self.ws, steps.child_name(self.record.name, step))

    def summary(self) -> dict[str, Any]:
        info = dict(self.record.pipeline or {})
        rows = []
        for row in info.get("steps", []):
            name = row["name"]
            row = {**row, "status": self.state.get(name, JobState.QUEUED).value}
            row.pop("reason", None)
            row.pop("reused_from", None)
            if name in self.reasons:
                row["reason"] = self.reasons[name]
            if name in self.reused:
                row["reused_from"] = self.reused[name]
            rows.append(row)
        info["steps"] = rows
        return info

    def save_graph(self) -> None:
        self.record = records.update(self.folder, pipeline=self.summary())

    def set_state(self, name: str, status: JobState, reason: str | None = None, **changes: Any) -> None:
        self.state[name] = status
        if reason:
            self.reasons[name] = reason
        child = self.child(name)
        if status.terminal and reason and status is not JobState.COMPLETED:
            changes.setdefault("error", job_error(reason))
        records.try_update(child, status, **changes)
        self.say(f"step {name} (job {child.name}): {status.value}" + (f": {reason}" if reason else ""))
        self.save_graph()

    # -- children -------------------------------------------------------------------------------------
    def new_child(self, step: BoundStep) -> JobRecord:
        name = steps.child_name(self.record.name, step.name)
        out = self.child(step.name) / "outputs"
        return JobRecord(
            name=name,
            display_name=step.name,
            type=STEP,
            experiment_name=self.record.experiment_name,
            status=JobState.QUEUED,
            endpoint_name=self.record.endpoint_name,
            deployment_name=self.record.deployment_name,
            model="",
            compute=self.record.compute,
            inputs={k: _input_shape(v) for k, v in step.inputs.items()},
            outputs={k: {"type": v.type, "path": str(out / k)} for k, v in step.outputs.items()},
            output_location=LocationRecord(url=str(out), protocol="file"),
            settings=placeholder_settings(1),
            created_at=now(),
            runner=records.runner_identity(),
            tags=dict(self.record.tags),
            deployment_snapshot=snapshot(),
            parent_job_name=self.record.name,
            pipeline={
                "step": step.name,
                "component": f"{step.component_name}:{step.component_version}",
                "depends_on": sorted(depends_on(step)),
                "is_deterministic": step.is_deterministic,
            },
        )

    def prepare_children(self) -> None:
        """Each step's child job: made Queued now, or (resume) kept Completed, or reopened."""
        for step in self.bound.steps:
            folder = self.child(step.name)
            existing = records.read(folder)
            if existing is None:
                with records.creating_job_dir(self.ws, folder.name) as made:
                    (made / "logs" / "user").mkdir(parents=True)
                    record = self.new_child(step)
                    record.log_dir = str(made / "logs")
                    records.write(made, record)
                self.state[step.name] = JobState.QUEUED
            elif existing.status is JobState.COMPLETED:
                self.state[step.name] = JobState.COMPLETED
                self.say(f"step {step.name} (job {folder.name}): Completed in an earlier attempt; not run again")
            else:
                steps.kill_leftover((existing.pipeline or {}).get("process"))
                if existing.status.terminal:
                    records.reopen(folder, runner=records.runner_identity())
                else:  # Queued/Running with the runner gone (reconcile has not seen it yet): to run again
                    update = {"runner": records.runner_identity(), "status": JobState.QUEUED}
                    records.write(folder, existing.model_copy(update=update))
                self.state[step.name] = JobState.QUEUED
        self.save_graph()

    # -- the loop -------------------------------------------------------------------------------------
    def execute(self) -> tuple[JobState, dict[str, Any] | None]:
        self.prepare_children()
        self.say(
            f"pipeline {self.record.name}: {len(self.order)} steps, up to {self.capacity} at once"
            + ("; continue_on_step_failure" if self.bound.settings.continue_on_step_failure else "")
        )
        try:
            while True:
                if (self.folder / CANCEL_MARKER).exists():
                    raise KeyboardInterrupt
                self.reap()
                self.schedule()
                if not self.running and not self.startable():
                    break
                time.sleep(POLL)
        except KeyboardInterrupt:
            self.canceled = True
            self.stop_all(JobState.CANCELED, "canceled")
        except Exception as exc:  # an unexpected error still ends every step and the job, never Running
            message = redact(f"unexpected {type(exc).__name__}: {exc}")
            self.stop_all(JobState.FAILED, message)
            return JobState.FAILED, job_error(message)
        return self.outcome()

    def startable(self) -> list[str]:
        return [n for n in self.order if self.state[n] is JobState.QUEUED]

    def schedule(self) -> None:
        for name in self.startable():
            upstream = sorted(depends_on(self.steps[name]))
            blocked = [u for u in upstream if self.state[u] in (JobState.FAILED, JobState.CANCELED, JobState.SKIPPED)]
            if blocked:
                what = ", ".join(f"{u} ({self.state[u].value})" for u in blocked)
                self.set_state(name, JobState.SKIPPED, f"skipped: upstream step {what} did not complete")
                continue
            if self.stopping is not None:
                self.set_state(name, JobState.SKIPPED, f"not started: {self.stopping}")
                continue
            if any(self.state[u] is not JobState.COMPLETED for u in upstream):
                continue
            if len(self.running) >= self.capacity:
                return
            self.start(self.steps[name])

    def stop_all(self, status: JobState, reason: str) -> None:
        for name, run in list(self.running.items()):
            steps.stop(run.proc)
            self.tail(name, run)
            run.log.close()
            del self.running[name]
            self.set_state(name, status, reason)
        for name in self.startable():
            self.set_state(name, JobState.CANCELED if status is JobState.CANCELED else JobState.SKIPPED, reason)

    def outcome(self) -> tuple[JobState, dict[str, Any] | None]:
        bad = [n for n in self.order if self.state[n] is not JobState.COMPLETED]
        if self.canceled:
            return JobState.CANCELED, job_error("job canceled")
        if not bad:
            return JobState.COMPLETED, None
        failed = [n for n in self.order if self.state[n] is JobState.FAILED]
        first = self.reasons.get(failed[0]) if failed else None
        message = f"step {', '.join(failed) or ', '.join(bad)} failed" + (f": {first}" if first else "")
        hint = self.hints.get(failed[0]) if failed else None
        return JobState.FAILED, job_error(message, failed_steps=failed, **({"hint": hint} if hint else {}))

    # -- one step -------------------------------------------------------------------------------------
    def inputs_of(self, step: BoundStep, folder: Path) -> tuple[dict[str, str | None], dict[str, Any]]:
        values: dict[str, str | None] = {}
        literals: dict[str, Any] = {}
        for name, bound in step.inputs.items():
            if bound.kind == "literal":
                literals[name] = bound.value
                values[name] = None if bound.value is None else steps.literal_text(bound.value)
            elif bound.kind == "path":
                assert bound.uri is not None
                values[name] = steps.materialize(self.ws, bound.uri, bound.type, folder / "inputs" / name)
            elif bound.kind == "step_output":
                assert bound.step is not None and bound.output is not None
                values[name] = str(self.child(bound.step) / "outputs" / bound.output)
            else:
                values[name] = None
        return values, literals

    def start(self, step: BoundStep) -> None:
        folder = self.child(step.name)
        self.set_state(step.name, JobState.RUNNING, start_time=now(), end_time=None, error=None)
        started = time.monotonic()
        try:
            values, literals = self.inputs_of(step, folder)
            outputs = fresh_outputs(folder, step)
            key = steps.reuse_key(step, values, literals) if step.is_deterministic else None
            if key is not None and self.try_reuse(step, key, outputs, started):
                return
            command = steps.render(step, values, outputs)
            python = self.python_for(step, folder)
            wd = steps.working_folder(step, folder)
            env = steps.step_environment(
                step, values, outputs, folder.name, self.record.name, self.record.experiment_name, python
            )
            # as on Azure, where a step's MLflow is the workspace's (with a model registry): a script's
            # `log_model(registered_model_name=...)` works; MLflow 2's default ./mlruns has no registry
            env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{folder.resolve() / 'mlflow.db'}")
            log_path = folder / "logs" / steps.STD_LOG
            proc, log = steps.start(steps.Launch(command, wd, env, log_path, python))
        except (BatchctlError, OSError) as exc:
            message = exc.message if isinstance(exc, BatchctlError) else f"cannot start the step: {exc}"
            hint = exc.hint if isinstance(exc, BatchctlError) else None
            if hint:
                self.hints[step.name] = hint
            error = job_error(message, **({"hint": hint} if hint else {}))
            self.set_state(step.name, JobState.FAILED, message, error=error)
            self.after_failure(step.name)
            return
        self.running[step.name] = Running(proc, log, started, outputs, key)
        process = {"pid": proc.pid, "start_ticks": process_start_ticks(proc.pid)}
        records.update(folder, pipeline={**self.child_pipeline(step.name), "command": command, "process": process})
        self.say(f"step {step.name}: {command}")

    def child_pipeline(self, name: str) -> dict[str, Any]:
        record = records.read(self.child(name))
        return dict((record.pipeline if record else None) or {})

    def python_for(self, step: BoundStep, folder: Path) -> str:
        """The step environment's interpreter: built (or found built) now, or this one."""
        plan = self.env_plans.get(step.name)
        log = JobLogs(folder / "logs")
        built, used = job_env.prepare(self.ws, plan, "local", log.master)
        log.close()
        if used is not None:
            records.update(folder, environment=used)
        return built.python if built is not None else sys.executable

    def try_reuse(self, step: BoundStep, key: str, outputs: dict[str, str], started: float) -> bool:
        if self.bound.settings.force_rerun:
            return False
        entry = steps.find_reusable(self.ws, key)
        if entry is None:
            return False
        steps.copy_outputs(entry, outputs)
        folder = self.child(step.name)
        note = (
            f"reused the outputs of job {entry['job']}: same component, code, environment and input contents "
            f"(in {time.monotonic() - started:.2f}s; --force-rerun runs it again)"
        )
        log = folder / "logs" / steps.STD_LOG
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(note + "\n")
        self.publish(step, outputs)
        self.reused[step.name] = entry["job"]
        pipeline = {**self.child_pipeline(step.name), "reused_from": entry["job"], "reuse_key": key}
        self.set_state(step.name, JobState.COMPLETED, None, pipeline=pipeline, duration_seconds=0.0)
        self.say(f"step {step.name}: {note}")
        return True

    def reap(self) -> None:
        for name, run in list(self.running.items()):
            if name not in self.running:  # stopped meanwhile, by a failure of another step
                continue
            self.tail(name, run)
            code = run.proc.poll()
            if code is None and (self.child(name) / CANCEL_MARKER).exists():  # `job cancel -n <step job>`
                steps.stop(run.proc)
                run.log.close()
                del self.running[name]
                self.set_state(name, JobState.CANCELED, "canceled")
                self.after_failure(name)
                continue
            if code is None:
                continue
            run.log.close()
            self.tail(name, run)
            del self.running[name]
            self.finish(self.steps[name], run, code)

    def tail(self, name: str, run: Running) -> None:
        """New lines of the step's std_log into the pipeline's log: `job stream` follows every step."""
        path = self.child(name) / "logs" / steps.STD_LOG
        try:
            with open(path, "rb") as handle:
                handle.seek(run.position)
                chunk = handle.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            self.logs.master(f"[{name}] {line}")
        run.position += end

    def finish(self, step: BoundStep, run: Running, code: int) -> None:
        duration = round(time.monotonic() - run.started, 3)
        if code != 0:
            reason = f"the command exited with code {code}" + last_line(self.child(step.name))
            self.set_state(step.name, JobState.FAILED, reason, duration_seconds=duration)
            self.after_failure(step.name)
            return
        try:
            self.publish(step, run.outputs)
        except BatchctlError as exc:
            self.set_state(step.name, JobState.FAILED, exc.message, duration_seconds=duration)
            self.after_failure(step.name)
            return
        if run.key is not None:
            steps.remember(self.ws, run.key, self.child(step.name).name, run.outputs)
        pipeline = {**self.child_pipeline(step.name), "reuse_key": run.key}
        self.set_state(step.name, JobState.COMPLETED, None, duration_seconds=duration, pipeline=pipeline)

    def after_failure(self, name: str) -> None:
        if self.bound.settings.continue_on_step_failure or self.stopping is not None:
            return
        self.stopping = f"step {name} failed and continue_on_step_failure is false"
        for other, run in list(self.running.items()):
            steps.stop(run.proc)
            self.tail(other, run)
            run.log.close()
            del self.running[other]
            self.set_state(other, JobState.CANCELED, f"stopped: {self.stopping}")

    def publish(self, step: BoundStep, outputs: dict[str, str]) -> None:
        """Promoted outputs to the parent's output locations, create-only (a file already there from an
        earlier attempt of this job, with the same content, is kept; any other is refused)."""
        targets = (self.record.pipeline or {}).get("outputs", {})
        for name, bound in step.outputs.items():
            if bound.promoted_to is None or bound.promoted_to not in targets:
                continue
            target = targets[bound.promoted_to]
            loc = storage.Location(target["url"], target["protocol"])
            storage.prepare_output_folder(loc)
            published = publish_tree(outputs[name], loc)
            self.say(f"step {step.name}: published output {bound.promoted_to} ({published} files) to {loc.url}")


def publish_tree(local_dir: str, target: storage.Location) -> int:
    from batchctl.errors import OutputExistsError
    from batchctl.tracking.lineage import hash_location
    from batchctl.workspace import content_hash

    count = 0
    for dirpath, _, filenames in os.walk(local_dir):
        for file_name in sorted(filenames):
            full = os.path.join(dirpath, file_name)
            rel = os.path.relpath(full, local_dir)
            dest = target.join(*rel.split(os.sep))
            try:
                storage.publish(full, dest)
            except OutputExistsError:
                if hash_location(dest) != content_hash(Path(full)):
                    raise
            count += 1
    return count


def fresh_outputs(folder: Path, step: BoundStep) -> dict[str, str]:
    import shutil

    out = {}
    for name in step.outputs:
        path = folder / "outputs" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        out[name] = str(path)
    return out


def last_line(folder: Path) -> str:
    try:
        lines = (folder / "logs" / steps.STD_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    lines = [line for line in lines if line.strip()]
    return f"; last output: {lines[-1].strip()[:300]}" if lines else ""


def _input_shape(bound: Any) -> Any:
    if bound.kind == "literal":
        return bound.value
    if bound.kind == "path":
        return {"type": bound.type, "path": bound.uri}
    if bound.kind == "step_output":
        return {"type": bound.type, "path": f"${{{{parent.jobs.{bound.step}.outputs.{bound.output}}}}}"}
    return None


def run_pipeline(ws: Workspace, name: str, on_line: LineFn | None = None) -> JobRecord:
    """Run a Queued pipeline job to a terminal state in this process; returns the parent's final record."""
    folder = records.job_dir(ws, name)
    record = records.read(folder)
    if record is None:
        raise BatchctlError(f"job '{name}' has no record")
    try:
        record = records.update(folder, JobState.RUNNING, start_time=now(), runner=records.runner_identity())
    except InvalidStateError:
        raise BatchctlError(f"job '{name}' is {record.status}, not Queued") from None
    started = time.monotonic()
    run = PipelineRun(ws, folder, record, frozen.read(folder), on_line)
    try:
        status, error = run.execute()
    finally:
        run.logs.close()
    final = records.try_update(
        folder,
        status,
        error=error,
        end_time=now(),
        duration_seconds=round(time.monotonic() - started, 3),
        pipeline=run.summary(),
        **({"published": True} if status is JobState.COMPLETED else {}),
    )
    logs = JobLogs(folder / "logs")
    logs.master(f"pipeline {name}: {final.status.value}" + (f": {error['message']}" if error else ""))
    logs.result(f"{final.status.value}" + (f"\nError: {error['message']}" if error else ""))
    logs.close()
    if final.tracking and final.tracking.get("uri"):  # MLflow runs of the pipeline and its steps, detached
        from batchctl.jobs.pipelines import tracking_agent

        tracking_agent.start(ws, name)
    return final
