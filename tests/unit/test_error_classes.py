"""The error classes (issue 25, item 6 and item 3's one mapping): an error is built whole, with its exit code
and the record a command prints, and carries the HTTP status that both the REST API and the Studio answer."""

from __future__ import annotations

import pytest

from batchctl.errors import (
    BatchctlError,
    ConflictError,
    InvalidStateError,
    JobCanceledError,
    MissingDependencyError,
    NotFoundError,
    RegistryCorruptError,
    RegistryLockedError,
    SpecError,
    StorageError,
    StorageUnavailableError,
)
from batchctl.server.auth import AuthError
from batchctl.server.queue import QueueClosedError
from batchctl.server.rest import BadRequestError, ForbiddenPathError
from batchctl.tracking.lineage import MODEL_DIFFERS, LineageMismatchError


def test_an_error_is_built_with_its_exit_code_and_record() -> None:
    record = {"name": "job-1", "status": "Failed"}
    error = BatchctlError("job job-1 failed:  boom", "fix it", exit_code=9, record=record)
    assert (error.message, error.hint, error.exit_code, error.record) == ("job job-1 failed: boom", "fix it", 9, record)
    plain = SpecError("bad")
    assert (plain.exit_code, plain.record, plain.hint) == (3, None, None)
    # an instance's code never changes its class's
    assert BatchctlError("other").exit_code == 1
    assert JobCanceledError("canceled", record=record).exit_code == 130


def test_the_exit_code_and_record_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        BatchctlError("message", "hint", 9)  # type: ignore[misc]  # the point of the test: refused


def test_job_verify_error_carries_its_code_and_report() -> None:
    report = {"ok": False}
    error = LineageMismatchError("model differs", exit_code=MODEL_DIFFERS, record=report)
    assert (error.exit_code, error.record) == (11, report)
    assert LineageMismatchError("results differ").exit_code == 10


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (AuthError("x"), 401, "Unauthorized"),
        (ForbiddenPathError("x"), 403, "Forbidden"),
        (BadRequestError("x"), 400, "BadRequest"),
        (QueueClosedError("x"), 503, "ServiceUnavailable"),
        (NotFoundError("x"), 404, "NotFound"),
        (ConflictError("x"), 409, "Conflict"),
        (InvalidStateError("x"), 409, "Conflict"),
        (SpecError("x"), 400, "BadRequest"),
        (StorageUnavailableError("x"), 503, "StorageUnavailable"),
        (StorageError("x"), 400, "UserError"),
        (RegistryLockedError("x"), 503, "ServiceUnavailable"),
        (RegistryCorruptError("x"), 500, "InternalServerError"),
        (MissingDependencyError("x"), 500, "InternalServerError"),
        (BatchctlError("x"), 400, "UserError"),
    ],
)
def test_one_error_to_http_mapping(error: BatchctlError, status: int, code: str) -> None:
    from batchctl.server.app import _batchctl_error
    from batchctl.server.studio.pages import error_status

    assert (error.http_status, error.http_code) == (status, code)
    response = _batchctl_error(None, error)  # type: ignore[arg-type]  # the handler does not read the request
    assert response.status_code == status and f'"code":"{code}"'.encode() in response.body
    assert error_status(error) == status
