"""Error translation: an SDK or transport exception from a store becomes one clear StorageError line.

Messages never carry a key or a SAS (`redact`), and a store that cannot be reached is told apart from one
that refused the credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchctl.errors import StorageError, StorageUnavailableError, redact
from batchctl.urls import AZURE_PROTOCOLS, azure_address

if TYPE_CHECKING:
    from batchctl.storage.locations import Location


def _reason(exc: BaseException) -> str:
    """One line from an exception, without the SDK's RequestId/Time/ErrorCode trailer and without secrets."""
    text = str(exc).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "") or type(exc).__name__
    return redact(line)[:300]


def _status(exc: BaseException) -> int | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "status_code", None) or getattr(cur, "status", None)
        if isinstance(code, int):
            return code
        cur = cur.__cause__ or cur.__context__
    return None


def _is_connect_error(exc: BaseException) -> bool:
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(
        names
        & {
            "ServiceRequestError",
            "ClientConnectorError",
            "ClientConnectionError",
            "ServerTimeoutError",
            "ConnectionError",
            "TimeoutError",
        }
    )


def _storage_error(action: str, url: str, exc: BaseException, loc: Location | None = None) -> StorageError:
    """Translate a transport error into one clear line; never includes a key or SAS."""
    where = redact(url)
    if _is_connect_error(exc) and _status(exc) is None:
        host = url
        if loc is not None and loc.protocol in AZURE_PROTOCOLS:
            addr = azure_address(loc.url)
            host = addr.account_url or "the account of AZURE_STORAGE_CONNECTION_STRING"
        return StorageUnavailableError(
            f"cannot {action} {where}: storage at {redact(host)} is unreachable ({_reason(exc)})",
            "check the URL or datastore endpoint and that the storage service is running",
        )
    status = _status(exc)
    if status in (401, 403):
        return StorageError(
            f"cannot {action} {where}: access denied (HTTP {status}): the credentials were rejected",
            "check AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN "
            "or your Azure sign-in for this account",
        )
    return StorageError(f"cannot {action} {where}: {_reason(exc)}")
