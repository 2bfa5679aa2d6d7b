"""Every job an MLflow run, when a tracking URI is set: the MLflow calls (`RunLogger`), made by the job's
tracking agent process (`batchctl.jobs.tracking_agent`), never by the runner itself.

Why a separate process: `import mlflow` and its SQL store cost 3-5 s of CPU, as much as a whole 200-file
job on two cores. The runner only writes one JSON line per event to the agent's pipe (progress at most every
2 s, never blocking); the agent waits `BATCHCTL_TRACKING_DELAY` seconds (default 10) before it imports
mlflow, so a short job is logged right after it ends and a long one as it goes. Metrics carry the time they
were measured, so the run's history is the same either way.

Each MLflow call is tried `BATCHCTL_TRACKING_ATTEMPTS` times (default 3) with a request timeout of
`BATCHCTL_TRACKING_TIMEOUT` seconds (default 5). When a call still fails the store is considered down for
the rest of the job: a warning goes to the job's master log, and the job is never affected.

The tracking URI: `--tracking-uri` > `MLFLOW_TRACKING_URI` > `tracking_uri` in `<workspace>/settings.json`.
With none, no agent is started and mlflow is not imported: nothing is written anywhere."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchctl.errors import SpecError, redact
from batchctl.workspace import SETTINGS_FILE, Workspace, workspace_setting

PROGRESS_SECONDS = 2.0
# Azure's states -> MLflow's run statuses
RUN_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}
PARAMS = (
    "mini_batch_size",
    "instance_count",
    "max_concurrency_per_instance",
    "error_threshold",
    "max_retries",
    "timeout",
    "output_action",
    "output_file_name",
)


def _env_number(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def workspace_tracking_uri(ws: Workspace) -> str | None:
    uri = workspace_setting(ws, "tracking_uri")
    if uri is not None and not isinstance(uri, str):
        raise SpecError(f"{ws.root / SETTINGS_FILE}: tracking_uri must be a string")
    return uri or None


def resolve_tracking_uri(ws: Workspace, explicit: str | None = None) -> str | None:
    """--tracking-uri > MLFLOW_TRACKING_URI > the workspace's settings.json; None: no tracking."""
    if explicit is not None:
        if not explicit.strip():
            raise SpecError("--tracking-uri: empty")
        return explicit.strip()
    return os.environ.get("MLFLOW_TRACKING_URI") or workspace_tracking_uri(ws)


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return None


def environment_params(env: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(params, tags) saying where the job's workers ran and every substitution made (batchctl.envs)."""
    changes = [*(env.get("skipped") or []), *(env.get("substitutions") or [])]
    lines = "; ".join(
        f"skipped {c['requested']}" if c["kind"] == "skipped" else f"{c['requested']} -> {c['used']}" for c in changes
    )
    params = {
        "env_manager": str(env.get("manager")),
        "env_used": str(env.get("used")),
        "env_key": str(env.get("key")),
        "env_python": str(env.get("python") or env.get("python_requested")),
        "env_lock_sha256": str(env.get("lock_sha256")),
    }
    tags = {
        "batchctl.environment": str(env.get("source")),
        "batchctl.env_substitutions": (lines or "none")[:5000],
    }
    return params, tags


def run_params(settings: dict[str, Any]) -> dict[str, str]:
    flat = {**settings, **(settings.get("retry_settings") or {})}
    return {k: str(flat.get(k)) for k in PARAMS}


def metrics_of(counts: dict[str, Any], duration: float | None) -> dict[str, float]:
    out = {
        "items_succeeded": float(counts.get("items_succeeded", 0)),
        "items_failed": float(counts.get("items_failed", 0)),
        "rows": float(counts.get("rows", 0)),
        "mini_batches": float(counts.get("mini_batches_completed", 0) + counts.get("mini_batches_failed", 0)),
        "retries": float(counts.get("retries", 0)),
    }
    if duration is not None:
        out["duration_s"] = round(duration, 3)
        out["rows_per_s"] = round(out["rows"] / duration, 3) if duration > 0 else 0.0
    return out


class StoreDown(Exception):
    """The tracking store failed a call after every attempt."""


class RunLogger:
    """One job's MLflow run. Every public method retries a bounded number of times and raises StoreDown
    (after logging a warning through `log`) when the store still fails."""

    def __init__(self, uri: str, record: dict[str, Any], log: Callable[[str], None]) -> None:
        self.uri = uri
        self.record = record
        self.log = log
        self.attempts = max(1, int(_env_number("BATCHCTL_TRACKING_ATTEMPTS", 3)))
        self.timeout = _env_number("BATCHCTL_TRACKING_TIMEOUT", 5)
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._client: Any = None
        self._step = 0
        self._done: set[str] = set()

    def info(self) -> dict[str, Any]:
        url = run_url(self.uri, self.experiment_id, self.run_id) if self.run_id and self.experiment_id else None
        return {"run_id": self.run_id, "experiment_id": self.experiment_id, "url": url}

    def call(self, what: str, fn: Callable[[], None]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                fn()
                return
            except Exception as exc:  # mlflow raises many types: a store that fails must never fail the job
                reason = redact(" ".join(str(exc).split())[:300]) or type(exc).__name__
                if attempt < self.attempts:
                    self.log(f"tracking: {what} failed (attempt {attempt}/{self.attempts}): {reason}; retrying")
                    time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
                else:
                    self.log(
                        f"Warning: tracking store {redact(self.uri)} failed to {what} after {self.attempts} "
                        f"attempts ({reason}); the job is not affected, its MLflow run is incomplete"
                    )
                    raise StoreDown(reason) from None

    def _mlflow(self) -> Any:
        if self._client is None:
            if self.uri.startswith(("http://", "https://")):
                # mlflow's own retries (7, exponential backoff) and 120 s timeout would hold the run for
                # minutes; batchctl retries itself, a bounded number of times (this process is the agent's)
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(self.timeout))))
            import logging

            from mlflow.tracking import MlflowClient

            for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." is not ours to say
                logging.getLogger(name).setLevel(logging.WARNING)
            if self.uri.startswith("sqlite:///"):
                # the first use of a new sqlite store creates its tables and migrates them: two jobs' agents
                # doing it at once fail ("table ... already exists", "Online migration expected to match
                # one row") and can leave the database half-migrated. MlflowClient() opens the store (and
                # so migrates it) in its constructor: the constructor and a first call run under a lock
                # beside the file.
                from filelock import FileLock

                db = Path(self.uri[len("sqlite:///") :]).absolute()
                with FileLock(f"{db}.batchctl-init.lock", timeout=max(30.0, self.timeout)):
                    client = MlflowClient(tracking_uri=self.uri)
                    client.get_experiment_by_name("Default")
            else:
                client = MlflowClient(tracking_uri=self.uri)
            self._client = client
        return self._client

    def _experiment(self, client: Any, name: str) -> str:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if self.uri.startswith("sqlite:///"):
            # beside the database, never ./mlruns in whatever folder the job happens to run from
            db = Path(self.uri[len("sqlite:///") :]).absolute()
            location = (db.parent / "mlartifacts" / name).as_uri()
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except Exception:
            found = client.get_experiment_by_name(name)  # another job created it meanwhile
            if found is None:
                raise
            return str(found.experiment_id)

    def start(self, start_ms: int) -> None:
        self.call("create the run", lambda: self._start(start_ms))

    def _start(self, start_ms: int) -> None:
        client = self._mlflow()
        record = self.record
        if self.experiment_id is None:
            self.experiment_id = self._experiment(client, record.get("experiment_name") or record["endpoint_name"])
        if self.run_id is None:
            run = client.create_run(
                self.experiment_id, start_time=start_ms, run_name=record["name"], tags=run_tags(record)
            )
            self.run_id = run.info.run_id
        if "params" not in self._done:
            from mlflow.entities import Param

            client.log_batch(self.run_id, params=[Param(k, v) for k, v in run_params(record["settings"]).items()])
            self._done.add("params")

    def metrics(self, metrics: dict[str, float], stamp_ms: int) -> None:
        self._step += 1
        step = self._step
        self.call("log metrics", lambda: self._metrics(metrics, stamp_ms, step))

    def _metrics(self, metrics: dict[str, float], stamp_ms: int, step: int) -> None:
        from mlflow.entities import Metric

        self._mlflow().log_batch(self.run_id, metrics=[Metric(k, v, stamp_ms, step) for k, v in metrics.items()])

    def finish(self, record: dict[str, Any], folder: Path, end_ms: int) -> None:
        """Final metrics, artifacts (logs/, failed_items.jsonl, lineage.json, with `--log-predictions` the
        results file) and the run's status (FINISHED, FAILED or KILLED)."""
        if "final" not in self._done:
            self.metrics(metrics_of(record.get("counts") or {}, record.get("duration_seconds") or 0.0), end_ms)
            self._done.add("final")
        if "environment" not in self._done and record.get("environment"):
            self.call("log the environment", lambda: self._environment(record))
            self._done.add("environment")
        self.call("log the artifacts", lambda: self._artifacts(record, folder))
        status = RUN_STATUS.get(str(record.get("status")), "FAILED")
        self.call("end the run", lambda: self._mlflow().set_terminated(self.run_id, status=status, end_time=end_ms))

    def _environment(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        params, tags = environment_params(record["environment"])
        client = self._mlflow()
        client.log_batch(
            self.run_id,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )

    def _artifacts(self, record: dict[str, Any], folder: Path) -> None:
        client = self._mlflow()
        if "logs" not in self._done and (folder / "logs").is_dir():
            client.log_artifacts(self.run_id, str(folder / "logs"), "logs")
            self._done.add("logs")
        if "failed" not in self._done and (folder / "failed_items.jsonl").is_file():
            client.log_artifact(self.run_id, str(folder / "failed_items.jsonl"))
            self._done.add("failed")
        if "lineage" not in self._done and record.get("lineage"):
            client.log_dict(self.run_id, record["lineage"], "lineage.json")
            self._done.add("lineage")
        if "predictions" not in self._done:
            self._log_predictions(client, record)
            self._done.add("predictions")

    def _log_predictions(self, client: Any, record: dict[str, Any]) -> None:
        location = record.get("output_file_location")
        if not (record.get("tracking") or {}).get("log_predictions") or not location:
            return
        if record.get("status") != "Completed":
            return
        if location["protocol"] == "file":
            client.log_artifact(self.run_id, location["url"], "predictions")
            return
        import tempfile

        from batchctl import storage

        with tempfile.TemporaryDirectory(prefix="batchctl-predictions-") as tmp:
            local = os.path.join(tmp, location["url"].rstrip("/").rsplit("/", 1)[-1])
            storage.download(storage.Location(location["url"], location["protocol"]), local)
            client.log_artifact(self.run_id, local, "predictions")


def run_tags(record: dict[str, Any]) -> dict[str, str]:
    inputs = (record.get("inputs") or {}).get("input_data") or {}
    output = record.get("output_file") or (record.get("output_location") or {}).get("url")
    return {
        "batchctl.job": record["name"],
        "batchctl.endpoint": record["endpoint_name"],
        "batchctl.deployment": record["deployment_name"],
        "batchctl.model": str(record.get("model", "")).removeprefix("azureml:"),
        "batchctl.input": str(inputs.get("path")),
        "batchctl.output": str(output),
        "batchctl.compute": str(record.get("compute", "")),
        **{str(k): str(v) for k, v in (record.get("tags") or {}).items()},
    }


def json_line(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()
