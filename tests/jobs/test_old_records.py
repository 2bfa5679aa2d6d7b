"""A job.json written by batchctl 0.1.0 (before the typed job model) still loads, shows and lists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from batchctl.jobs.model import JobRecord, JobState

FIXTURE = Path(__file__).parent / "fixtures" / "job-v0.1.0"


def _lost(old: object, new: object, path: str = "") -> list[str]:
    """Where `new` lacks or changes a value of `old` (keys `new` adds are not losses)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [p for k, v in old.items() for p in (_lost(v, new[k], f"{path}.{k}") if k in new else [f"{path}.{k}"])]
    return [] if old == new else [path]


def _install(home: Path) -> Path:
    folder = home / "jobs" / "old-job"
    folder.parent.mkdir(parents=True)
    shutil.copytree(FIXTURE, folder)
    return folder


def test_a_v010_record_validates_and_round_trips_without_loss() -> None:
    raw = json.loads((FIXTURE / "job.json").read_text())
    record = JobRecord.model_validate(raw)
    assert record.status is JobState.COMPLETED
    assert record.settings.mini_batch_size == 2
    assert record.counts.items_succeeded == 4
    assert record.deployment_snapshot.model_type == "mlflow_model"
    assert record.output_location.location().url == "/tmp/oldjob/out"
    dumped = record.dump()
    assert _lost(raw, dumped) == []  # every key and value survives a load and a save
    assert (dumped["attempts"], dumped["history"]) == (1, [])  # fields added since 0.1.0 take their defaults


def test_job_show_and_list_read_a_v010_record(cli, isolation: Path) -> None:
    _install(isolation)
    shown = cli("job", "show", "-n", "old-job", "-o", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["status"] == "Completed"
    assert data["counts"]["items_succeeded"] == 4
    assert "deployment_snapshot" not in data  # internal keys stay hidden, as before
    listed = cli("job", "list", "--query", "[].[name, status]", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [["old-job", "Completed"]]


def test_a_terminal_v010_record_refuses_a_change_of_state(isolation: Path) -> None:
    import pytest

    from batchctl.errors import InvalidStateError
    from batchctl.jobs import records

    folder = _install(isolation)
    with pytest.raises(InvalidStateError, match="job is Completed; it cannot become Running"):
        records.update(folder, JobState.RUNNING)
    assert json.loads((folder / "job.json").read_text())["status"] == "Completed"
