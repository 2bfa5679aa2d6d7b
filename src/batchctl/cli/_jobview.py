"""What a person sees of a job in a terminal: the few lines a job ends with (`summary_lines`) and the
curated `job show` (`show_lines`). Both are built from the public job record as lines of (text, style)
segments; `_console.print_lines` prints them. Scripts never see these: `-o` and `--query` print the
record as before."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from batchctl.cli._jobtable import _duration, _time

Segment = tuple[str, str | None]
Line = list[Segment]

STATUS_STYLE = {
    "Completed": "bold green",
    "Failed": "bold red",
    "Canceled": "bold yellow",
    "Running": "bold cyan",
    "Queued": "bold cyan",
}
LABEL = 9  # the width of a summary line's label column: "results  "
ERROR_CHARS = 150  # the first error's text in a summary: at most two lines at 80 columns
SHOW_ERROR_CHARS = 300  # job show's first error: a schema error quotes the data (`job errors` has it whole)
REASON_CHARS = 70  # the job's own reason in a summary: one line
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
SHORT_NAME = 32


def short_name(name: str) -> str:
    """A job's name as a progress bar shows it: the first 8 characters of a UUID, the whole of a short
    name, the head of a long one."""
    if _UUID.match(name):
        return name[:8]
    return name if len(name) <= SHORT_NAME else name[: SHORT_NAME - 1] + "…"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_error(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the job's first error as `Type: message (file:line)`, the job's own reason when it is another
    text), from either shape of the record's `error`: `{type, message, frame, ...}` or the older
    `{message, exit_code, first_item_error}`."""
    error = record.get("error")
    if not isinstance(error, dict) or not error:
        return None, None
    message = str(error.get("message") or "").strip()
    kind = error.get("type")
    frame = error.get("frame")
    first_item = error.get("first_item_error")
    if first_item is None:  # an item's error kept under another key, as a {type, message, frame} mapping
        first_item = next(
            (v for k, v in error.items() if k not in _OWN_KEYS and isinstance(v, dict) and v.get("message")), None
        )
    if isinstance(first_item, dict):  # an item's error inside a job-level one
        first_item = _typed(str(first_item.get("message") or ""), first_item.get("type"), first_item.get("frame"))
    if first_item:
        reason = message if message and message not in str(first_item) else None
        return str(first_item), reason
    if not message and not kind:
        return None, None
    return _typed(message, kind, frame), None


_OWN_KEYS = ("type", "message", "frame", "details", "exit_code")


def _typed(message: str, kind: Any, frame: Any) -> str:
    text = message
    if kind and not text.startswith(f"{kind}:") and text != kind:
        text = f"{kind}: {text}" if text else str(kind)
    if frame and not text.endswith(f"({frame})"):
        text = f"{text} ({frame})"
    return text


def _error_text(text: str, limit: int) -> str:
    """The first error in at most `limit` characters: its head and its tail (MLflow's schema errors dump
    the data first and give the cause last: "... Model is missing inputs ['thal']."), keeping its
    `(file:line)` at the end."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    frame = re.search(r" \([^()]+:\d+\)$", text)
    tail = frame.group(0) if frame else ""
    body = text[: len(text) - len(tail)]
    room = limit - len(tail) - 3  # " … "
    head = room // 2
    return f"{body[:head].rstrip()} … {body[len(body) - (room - head) :].lstrip()}{tail}"


def next_steps(record: dict[str, Any]) -> tuple[str | None, list[str]]:
    """For a job that did not complete: (what to do first, when the job's cause says it: the record's
    `error.hint`, e.g. start the Ray cluster or move the file that appeared at the output; the commands to
    type next). Resume keeps the job's --keep-columns, so a job that failed on them points to a rerun, as
    the CLI's Hint line does (cli/job.outcome_error)."""
    name = record["name"]
    error: dict[str, Any] = record["error"] if isinstance(record.get("error"), dict) else {}
    hint = error.get("hint") or None
    commands = []
    if record.get("status") == "Failed" and (record.get("counts") or {}).get("items_failed"):
        commands.append(f"batchctl job errors -n {name}")
    texts = f"{error.get('message') or ''} {error.get('first_item_error') or ''}"
    if "--keep-columns:" in texts:
        commands.append(f"batchctl job rerun -n {name} --set keep_columns=<columns>")
    elif not (hint and "batchctl job resume" in hint):  # a hint naming resume already says how
        commands.append(f"batchctl job resume -n {name}")
    return hint, commands


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {plural or word + 's'}"


def _items(counts: dict[str, Any]) -> str:
    ok, bad, files = counts.get("items_succeeded", 0), counts.get("items_failed", 0), counts.get("files", 0)
    text = f"{ok} ok, {bad} failed of {_plural(files, 'file')}"
    if counts.get("rows"):
        text += f" · {_plural(counts['rows'], 'row')}"
    return text


def results_place(record: dict[str, Any]) -> str | None:
    """Where the results are: the results file (a local path, else its URI), else the output folder's URI."""
    if record.get("output_file"):
        return str(record["output_file"])
    score = (record.get("outputs") or {}).get("score") or {}
    return score.get("path")


def _row(label: str, value: str, style: str | None = None) -> Line:
    return [(f"{label:<{LABEL}}", "bold"), (value, style)]


def _is_job(record: Any) -> bool:
    return isinstance(record, dict) and "status" in record and "counts" in record and "dry_run" not in record


def summary_lines(record: Any) -> list[Line] | None:
    """The end of `endpoint invoke`, `job create|resume|rerun|stream` in a terminal; None when `record`
    is not a job record (a dry run's plan)."""
    if not _is_job(record):
        return None
    name, status = record["name"], str(record["status"])
    counts = record.get("counts") or {}
    now = dt.datetime.now(dt.UTC)
    head: Line = [(status, STATUS_STYLE.get(status)), (f"  job {name}", "bold")]
    running = status in ("Queued", "Running")
    if not running:
        head.append((f"  in {_duration(record, now)}", None))
    lines = [head]
    place = results_place(record)
    cmd = f"batchctl job {{}} -n {name}"
    if running:  # --no-wait: the job runs in a detached runner
        input_path = ((record.get("inputs") or {}).get("input_data") or {}).get("path")
        mini = counts.get("mini_batches", 0)
        if input_path:
            files = _plural(counts.get("files", 0), "file")
            lines.append(_row("input", f"{input_path} ({files}, {_plural(mini, 'mini-batch', 'mini-batches')})"))
        if place:
            lines.append(_row("results", f"will be {place}"))
        lines.append(_row("next", cmd.format("stream")))
        return lines
    lines.append(_row("items", _items(counts)))
    error, reason = first_error(record)
    if status == "Completed":
        if place:
            lines.append(_row("results", place))
        if error and counts.get("items_failed"):
            lines.append(_row("error", _error_text(error, ERROR_CHARS)))
            lines.append(_row("next", cmd.format("errors")))
            lines.append(_row("", cmd.format("download")))
        else:
            lines.append(_row("next", cmd.format("download")))
        return lines
    if reason:
        lines.append(_row("reason", _shorten(reason, REASON_CHARS)))
    if error and status != "Canceled":
        lines.append(_row("error", _error_text(error, ERROR_CHARS), "red"))
    lines.append(_row("results", "none published; what was scored is kept for resume"))
    hint, commands = next_steps(record)
    if hint:
        lines.append(_row("hint", " ".join(hint.split())))  # whole: it names commands
    for i, command in enumerate(commands):
        lines.append(_row("" if i else "next", command))
    return lines


# ------------------------------------------------------------------------------------------ job show

SETTING_KEYS = (
    "mini_batch_size",
    "instance_count",
    "max_concurrency_per_instance",
    "output_action",
    "output_file_name",
    "retry_settings.max_retries",
    "retry_settings.timeout",
    "error_threshold",
    "logging_level",
    "split",
    "keep_columns",
)
SHOW_LABEL = 14


def deployment_settings(deployment: dict[str, Any]) -> dict[str, Any]:
    """A deployment's values of the settings a job can override, as a job without overrides gets them."""
    from batchctl.specs.deployment import DEFAULT_OUTPUT_FILE_NAME

    settings = deployment.get("settings") or {}
    retry = settings.get("retry_settings") or {}
    props = deployment.get("properties") or {}
    keep = props.get("batchctl.keep_columns")
    return {
        "mini_batch_size": settings.get("mini_batch_size"),
        "instance_count": (deployment.get("resources") or {}).get("instance_count"),
        "max_concurrency_per_instance": settings.get("max_concurrency_per_instance"),
        "output_action": settings.get("output_action"),
        "output_file_name": settings.get("output_file_name")
        or (DEFAULT_OUTPUT_FILE_NAME if settings.get("output_action", "append_row") == "append_row" else None),
        "retry_settings.max_retries": retry.get("max_retries"),
        "retry_settings.timeout": retry.get("timeout"),
        "error_threshold": settings.get("error_threshold"),
        "logging_level": settings.get("logging_level"),
        "split": props.get("batchctl.split") or "auto",
        "keep_columns": [c.strip() for c in str(keep).split(",") if c.strip()] if keep else [],
    }


def _job_setting(settings: dict[str, Any], key: str) -> Any:
    node: Any = settings
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(none)"
    return "(none)" if value is None else str(value)


def settings_diff(record: dict[str, Any], deployment: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(setting, the job's value, the deployment's value) for every setting where the two differ."""
    mine = record.get("settings") or {}
    theirs = deployment_settings(deployment)
    out = []
    for key in SETTING_KEYS:
        value = _job_setting(mine, key)
        if value is _MISSING:
            continue
        if value != theirs.get(key):
            out.append((key, _value(value), _value(theirs.get(key))))
    return out


def _when(value: str | None) -> str:
    moment = _time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else (value or "")


def _field(label: str, value: str, style: str | None = None) -> Line:
    return [(f"  {label:<{SHOW_LABEL}}", "bold"), (value, style)]


def _heading(text: str) -> Line:
    return [(text, "bold underline")]


def _identity_lines(record: dict[str, Any]) -> list[Line]:
    name = record["name"]
    lines: list[Line] = [[("Job ", "bold"), (name, "bold")]]
    lines.append(_field("endpoint", f"{record.get('endpoint_name')} / deployment {record.get('deployment_name')}"))
    lines.append(_field("model", str(record.get("model"))))
    if record.get("display_name") and record["display_name"] != name:
        lines.append(_field("display name", record["display_name"]))
    if record.get("experiment_name"):
        lines.append(_field("experiment", record["experiment_name"]))
    workers = (record.get("settings") or {}).get("workers")
    compute = str(record.get("compute"))
    if record.get("compute_type") and record["compute_type"] != compute:
        compute += f" ({record['compute_type']})"
    lines.append(_field("compute", compute + (f", {_plural(workers, 'worker')}" if workers else "")))
    if record.get("tags"):
        lines.append(_field("tags", " ".join(f"{k}={v}" for k, v in record["tags"].items())))
    if record.get("description"):
        lines.append(_field("description", str(record["description"])))
    if record.get("rerun_of"):
        lines.append(_field("rerun of", str(record["rerun_of"])))
    return lines


def _status_lines(record: dict[str, Any], now: dt.datetime) -> list[Line]:
    status = str(record["status"])
    lines: list[Line] = []
    lines += [[], _heading("Status and timing")]
    state = [(status, STATUS_STYLE.get(status))]
    if (record.get("attempts") or 1) > 1:
        state.append((f"  (attempt {record['attempts']})", None))
    lines.append([(f"  {'status':<{SHOW_LABEL}}", "bold"), *state])
    lines.append(_field("created", _when(record.get("created_at"))))
    if record.get("start_time"):
        lines.append(_field("started", _when(record.get("start_time"))))
    if record.get("end_time"):
        lines.append(_field("ended", _when(record.get("end_time"))))
    if record.get("start_time"):
        lines.append(_field("duration", _duration(record, now) + ("" if record.get("end_time") else " so far")))
    runner = record.get("runner") or {}
    if status in ("Queued", "Running") and runner.get("pid"):
        lines.append(_field("runner", f"pid {runner['pid']} on {runner.get('host', '?')}"))
    return lines


def _count_lines(counts: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    lines += [[], _heading("Counts")]
    lines.append(_field("items", _items(counts)))
    lines.append(
        _field(
            "mini-batches",
            f"{counts.get('mini_batches_completed', 0)} ok, {counts.get('mini_batches_failed', 0)} failed of "
            f"{counts.get('mini_batches', 0)}",
        )
    )
    if counts.get("retries") or counts.get("worker_restarts"):
        lines.append(
            _field("retries", f"{counts.get('retries', 0)}, worker restarts {counts.get('worker_restarts', 0)}")
        )
    return lines


def _setting_lines(record: dict[str, Any], deployment: dict[str, Any] | None, now: dt.datetime) -> list[Line]:
    lines: list[Line] = []
    if deployment is None:
        lines += [[], _heading("Settings")]
        lines.append([(f"  deployment {record.get('deployment_name')} no longer exists; the job ran with:", None)])
        for key in SETTING_KEYS:
            value = _job_setting(record.get("settings") or {}, key)
            if value is not _MISSING:
                lines.append([(f"  {key}: ", "bold"), (_value(value), None)])
    else:
        lines += [[], _heading(f"Settings that differ from deployment {record.get('deployment_name')}")]
        diff = settings_diff(record, deployment)
        if not diff:
            lines.append([("  none: the job ran with the deployment's settings", None)])
        for key, mine, theirs in diff:
            lines.append([(f"  {key}: ", "bold"), (mine, None), (f"   (deployment: {theirs})", None)])
        if (_time(deployment.get("updated_at")) or now) > (_time(record.get("created_at")) or now):
            lines.append([("  the deployment was updated after this job was created", "yellow")])
    return lines


def _io_lines(record: dict[str, Any]) -> list[Line]:
    status = str(record["status"])
    lines: list[Line] = []
    lines += [[], _heading("Input and output")]
    source = (record.get("inputs") or {}).get("input_data") or {}
    if source:
        lines.append(_field("input", f"{source.get('path')} ({source.get('type')})"))
    score = (record.get("outputs") or {}).get("score") or {}
    if score.get("path"):
        lines.append(_field("output", str(score["path"])))
    if record.get("output_file"):
        published = record.get("published") or status == "Completed"
        lines.append(_field("results", str(record["output_file"]) + ("" if published else "  (not published)")))
    if record.get("log_dir"):
        lines.append(_field("logs", str(record["log_dir"])))
    return lines


def _error_lines(record: dict[str, Any]) -> list[Line]:
    name, status = record["name"], str(record["status"])
    counts = record.get("counts") or {}
    lines: list[Line] = []
    error, reason = first_error(record) if status != "Canceled" else (None, None)
    if error or reason:
        lines += [[], _heading("First error")]
        if reason:
            lines.append(_field("reason", " ".join(reason.split())))
        if error:
            style = "red" if status != "Completed" else None
            lines.append(_field("error", _error_text(error, SHOW_ERROR_CHARS), style))
        if status in ("Failed", "Canceled"):
            hint, commands = next_steps(record)
            if hint:
                lines.append(_field("hint", " ".join(hint.split())))
            for command in commands:
                lines.append(_field("details" if " job errors " in command else "continue", command))
        elif counts.get("items_failed"):
            lines.append(_field("details", f"batchctl job errors -n {name}"))
    return lines


def _tracking_lines(record: dict[str, Any]) -> list[Line]:
    name = record["name"]
    lines: list[Line] = []
    lines += [[], _heading("Tracking and environment")]
    tracking = record.get("tracking") or {}
    if tracking.get("uri"):
        text = str(tracking["uri"])
        if tracking.get("run_id"):
            text += f"  run {tracking['run_id']}"
        if tracking.get("state"):
            text += f"  ({tracking['state']})"
        lines.append(_field("mlflow", text))
        if tracking.get("url"):
            lines.append(_field("run page", str(tracking["url"])))
    else:
        lines.append(_field("mlflow", "not tracked (no tracking URI)"))
    lineage = record.get("lineage") or {}
    environment = lineage.get("environment") or {}
    if environment:
        versions = [f"python {environment['python']}"] if environment.get("python") else []
        versions += [f"{k} {v}" for k, v in (environment.get("packages") or {}).items() if v]
        lines.append(_field("versions", ", ".join(versions)))
    model = lineage.get("model") or {}
    if model.get("sha256"):
        lines.append(_field("model sha256", str(model["sha256"])[:16] + "…"))
    output = lineage.get("output") or {}
    if output.get("sha256"):
        lines.append(_field("result sha256", str(output["sha256"])[:16] + "…"))
    if lineage:
        lines.append(_field("lineage", f"batchctl job show -n {name} --query lineage"))
    return lines


def show_lines(record: dict[str, Any], deployment: dict[str, Any] | None) -> list[Line]:
    """`job show` in a terminal: the record in sections. `deployment` is the job's deployment as it is
    now (None when it no longer exists)."""
    now = dt.datetime.now(dt.UTC)
    return [
        *_identity_lines(record),
        *_status_lines(record, now),
        *_count_lines(record.get("counts") or {}),
        *_setting_lines(record, deployment, now),
        *_io_lines(record),
        *_error_lines(record),
        *_tracking_lines(record),
    ]
