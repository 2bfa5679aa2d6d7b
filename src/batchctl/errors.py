"""The BatchctlError tree. Each class carries a stable exit code (README: "Exit codes")."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

_SECRET_PATTERNS = [
    (re.compile(r"(AccountKey=)[^;\s'\"]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(SharedAccessSignature=)[^;\s'\"]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(?<![^?&;\s'\"])(sig=)[^&;\s'\"]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(account_key['\"]?\s*[:=]\s*['\"]?)[^,'\"\s}]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(sas_token['\"]?\s*[:=]\s*['\"]?)[^,'\"\s}]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(client_secret['\"]?\s*[:=]\s*['\"]?)[^,'\"\s}]+", re.IGNORECASE), r"\1***"),
    # a storage account key on its own: 64 bytes in base64 are 88 characters ending in "=="
    (re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"), "***"),
]


# Values masked wherever `redact` runs, as CI systems mask secret variables: the resolved `${env:NAME}`
# values of the jobs running in this process (see `masking`). Shorter values are not masked: they would
# hide every "1" or "yes" in a log. Longest first, so that a value inside another is not masked half.
MIN_MASKED_LENGTH = 4
MASK = "***"
_masked_counts: dict[str, int] = {}
_masked: tuple[str, ...] = ()
_masked_lock = threading.Lock()


def _set_masked() -> None:
    global _masked
    _masked = tuple(sorted(_masked_counts, key=len, reverse=True))


@contextlib.contextmanager
def masking(values: Iterable[str]) -> Iterator[None]:
    """Mask `values` in everything `redact` sees while the block runs (counted: the server runs jobs that
    share a value at the same time)."""
    kept = {v for v in values if len(v) >= MIN_MASKED_LENGTH}
    with _masked_lock:
        for value in kept:
            _masked_counts[value] = _masked_counts.get(value, 0) + 1
        _set_masked()
    try:
        yield
    finally:
        with _masked_lock:
            for value in kept:
                _masked_counts[value] -= 1
                if not _masked_counts[value]:
                    del _masked_counts[value]
            _set_masked()


def mask_always(values: Iterable[str]) -> None:
    """Mask `values` for the rest of this process (a worker, whose job's values never change)."""
    with _masked_lock:
        for value in values:
            if len(value) >= MIN_MASKED_LENGTH:
                _masked_counts[value] = _masked_counts.get(value, 0) + 1
        _set_masked()


def masked_values() -> tuple[str, ...]:
    return _masked


def mask_bytes(data: bytes) -> bytes:
    """`data` with the masked values (UTF-8) replaced by ***: a worker's captured output."""
    for value in _masked:
        encoded = value.encode("utf-8", "surrogateescape")
        if encoded in data:
            data = data.replace(encoded, MASK.encode())
    return data


def redact(text: str) -> str:
    """Remove storage keys (in a connection string or alone), SAS signatures and client secrets from a message,
    a log line or a value about to be printed, and the values being masked (`masking`)."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    for value in _masked:
        if value in text:
            text = text.replace(value, MASK)
    return text


class BatchctlError(Exception):
    """Base of every error batchctl reports to a user: a one-line message and an optional hint.

    Each class carries a stable exit code (README: "Exit codes"); `exit_code=` gives one instance another
    (a failed job's own code, `job verify`'s 10-12). `record`: what a command prints before the error line
    (the failed job, the verify report), or None. `http_status` and `http_code`: how the server answers
    it (the REST body's `error.code`, the Studio page's status): the one error -> HTTP mapping."""

    exit_code: int = 1
    http_status: ClassVar[int] = 400
    http_code: ClassVar[str] = "UserError"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        exit_code: int | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        message = redact(" ".join(str(message).split()))
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else None
        if exit_code is not None:
            self.exit_code = exit_code
        self.record = record


class JobFailedError(BatchctlError):
    exit_code = 1


class SpecError(BatchctlError):
    """A spec, a name or an argument is invalid."""

    exit_code = 3
    http_status = 400
    http_code = "BadRequest"


class NotFoundError(BatchctlError):
    exit_code = 4
    http_status = 404
    http_code = "NotFound"


class ConflictError(BatchctlError):
    """The object exists already, or the operation conflicts with the current state."""

    exit_code = 5
    http_status = 409
    http_code = "Conflict"


class InvalidStateError(ConflictError):
    exit_code = 5


class OutputExistsError(ConflictError):
    exit_code = 5


class MissingDependencyError(BatchctlError):
    exit_code = 6
    http_status = 500
    http_code = "InternalServerError"


class RegistryLockedError(BatchctlError):
    exit_code = 7
    http_status = 503
    http_code = "ServiceUnavailable"


class RegistryCorruptError(BatchctlError):
    exit_code = 8
    http_status = 500
    http_code = "InternalServerError"


class StorageError(BatchctlError):
    """Reading or writing data failed: missing input, unreachable store, bad credentials."""

    exit_code = 9


class StorageUnavailableError(StorageError):
    """The store did not answer (connection refused, timeout): transient, so a mini-batch attempt that
    meets it fails as a whole and is retried, rather than counting its files as failed items."""

    http_status = 503
    http_code = "StorageUnavailable"


class EnvironmentBuildError(BatchctlError):
    """A deployment's environment could not be built (or --env-strict refused a substitution)."""

    exit_code = 13


class JobCanceledError(BatchctlError):
    exit_code = 130
