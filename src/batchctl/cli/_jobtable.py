"""The rows of `job list -o table` (and `endpoint|deployment list-jobs`): when each job was created, how
long it ran (so far, for a running job) and how many items succeeded and failed."""

from __future__ import annotations

import datetime as dt
from typing import Any


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _created(value: str | None) -> str:
    when = _time(value)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else (value or "")


def _duration(record: dict[str, Any], now: dt.datetime) -> str:
    seconds = record.get("duration_seconds")
    if seconds is None:
        start = _time(record.get("start_time"))
        if start is None:
            return ""
        end = _time(record.get("end_time")) or now
        seconds = (end - start).total_seconds()
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def job_rows(records: Any) -> Any:
    if not isinstance(records, list):
        return records
    now = dt.datetime.now(dt.UTC)
    rows = []
    for record in records:
        if not isinstance(record, dict):
            return records
        counts = record.get("counts") or {}
        rows.append(
            {
                "name": record.get("name"),
                "status": record.get("status"),
                "endpoint": record.get("endpoint_name"),
                "deployment": record.get("deployment_name"),
                "created": _created(record.get("created_at")),
                "duration": _duration(record, now),
                "items_ok": counts.get("items_succeeded", 0),
                "items_failed": counts.get("items_failed", 0),
            }
        )
    return rows
