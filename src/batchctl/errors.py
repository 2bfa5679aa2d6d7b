"""The BatchctlError tree. Each class carries a stable exit code (README: "Exit codes")."""

from __future__ import annotations

import re
from typing import ClassVar

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


def redact(text: str) -> str:
    """Remove storage keys (in a connection string or alone), SAS signatures and client secrets from a message,
    a log line or a value about to be printed."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


class BatchctlError(Exception):
    """Base of every error batchctl reports to a user: a one-line message and an optional hint."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        message = redact(" ".join(str(message).split()))
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else None


class JobFailedError(BatchctlError):
    exit_code = 1


class SpecError(BatchctlError):
    """A spec, a name or an argument is invalid."""

    exit_code = 3


class NotFoundError(BatchctlError):
    exit_code = 4


class ConflictError(BatchctlError):
    """The object exists already, or the operation conflicts with the current state."""

    exit_code = 5


class InvalidStateError(ConflictError):
    exit_code = 5


class OutputExistsError(ConflictError):
    exit_code = 5


class MissingDependencyError(BatchctlError):
    exit_code = 6


class RegistryLockedError(BatchctlError):
    exit_code = 7


class RegistryCorruptError(BatchctlError):
    exit_code = 8


class StorageError(BatchctlError):
    """Reading or writing data failed: missing input, unreachable store, bad credentials."""

    exit_code = 9


class StorageUnavailableError(StorageError):
    """The store did not answer (connection refused, timeout): transient, so a mini-batch attempt that
    meets it fails as a whole and is retried, rather than counting its files as failed items."""


class EnvironmentBuildError(BatchctlError):
    """A deployment's environment could not be built (or --env-strict refused a substitution)."""

    exit_code = 13


class JobCanceledError(BatchctlError):
    exit_code = 130
