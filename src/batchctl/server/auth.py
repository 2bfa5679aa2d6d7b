"""Bearer tokens for the server, as `auth_mode: aad_token` implies: `batchctl token` signs a short-lived
JWT (HS256) with a key that only the workspace's owner can read.

`<workspace>/server/secret.key` (mode 0600) holds 32 random bytes, created on first use; beside it,
`workspace.id` names the workspace in every token (audience `batchctl:<id>`), so a token of another
workspace is refused even if someone copied a key between them. PyJWT is imported inside functions: the
CLI's `batchctl token` must not pull the web stack.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import socket
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchctl.errors import BatchctlError, SpecError
from batchctl.fsutil import adjacent_tmp, fsync_dir
from batchctl.notices import notify
from batchctl.workspace import Workspace

ISSUER = "batchctl"
ALGORITHM = "HS256"
DEFAULT_EXPIRES_IN = 3600
MAX_EXPIRES_IN = 30 * 24 * 3600


class AuthError(BatchctlError):
    """A request without a valid token (HTTP 401)."""

    exit_code = 3
    http_status = 401
    http_code = "Unauthorized"


@dataclass(frozen=True)
class WorkspaceKey:
    secret: bytes
    workspace_id: str

    @property
    def audience(self) -> str:
        return f"{ISSUER}:{self.workspace_id}"


def key_dir(ws: Workspace) -> Path:
    return ws.root / "server"


def _create_once(path: Path, data: bytes) -> None:
    """Write `path` create-only (temp file with mode 0600, then a hard link): a reader never sees a torn
    file, and two processes creating it at once end with one of their values for both."""
    with adjacent_tmp(path) as (handle, tmp):
        handle.write(data)
    try:
        os.chmod(tmp, 0o600)
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)


def _read_private(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(path, 0o600)
        notify(f"{path} was readable by other users; its mode is now 0600 (tokens signed before may have leaked)")
    return path.read_bytes().strip()


def load_key(ws: Workspace, create: bool = True) -> WorkspaceKey:
    """The workspace's signing key and id, created on first use."""
    folder = key_dir(ws)
    secret_path, id_path = folder / "secret.key", folder / "workspace.id"
    if create:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not secret_path.exists():
            _create_once(secret_path, secrets.token_hex(32).encode() + b"\n")
        if not id_path.exists():
            _create_once(id_path, uuid.uuid4().hex.encode() + b"\n")
    try:
        secret = _read_private(secret_path)
        workspace_id = id_path.read_bytes().decode().strip()
    except FileNotFoundError:
        raise BatchctlError(
            f"the workspace {ws.root} has no server key yet", "run `batchctl token` once to create it"
        ) from None
    if len(secret) < 32 or not workspace_id:
        raise BatchctlError(f"{secret_path} or {id_path} is damaged", f"remove {folder} to make a new key")
    return WorkspaceKey(secret, workspace_id)


def mint(key: WorkspaceKey, expires_in: int = DEFAULT_EXPIRES_IN, subject: str | None = None) -> dict[str, Any]:
    """A signed token and its expiry, in the shape of `az account get-access-token`."""
    import jwt

    if not 0 < expires_in <= MAX_EXPIRES_IN:
        raise SpecError(f"--expires-in: {expires_in} must be between 1 and {MAX_EXPIRES_IN} seconds")
    issued = int(time.time())
    expires = issued + expires_in
    claims = {
        "iss": ISSUER,
        "aud": key.audience,
        "sub": subject or _whoami(),
        "wid": key.workspace_id,
        "iat": issued,
        "exp": expires,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, key.secret, algorithm=ALGORITHM)
    return {
        "accessToken": token,
        "tokenType": "Bearer",
        "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.localtime(expires)),
        "expires_on": expires,
        "workspace_id": key.workspace_id,
        "subject": claims["sub"],
    }


def verify(key: WorkspaceKey, header: str | None) -> dict[str, Any]:
    """The claims of `Authorization: Bearer <token>`; AuthError for a missing, malformed, expired, forged
    or other-workspace token."""
    import jwt

    if not header:
        raise AuthError("missing Authorization header; send `Authorization: Bearer <token>` (batchctl token)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("the Authorization header must be `Bearer <token>`")
    try:
        claims = jwt.decode(
            token.strip(),
            key.secret,
            algorithms=[ALGORITHM],
            audience=key.audience,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired; get a new one with `batchctl token`") from None
    except jwt.InvalidAudienceError:
        raise AuthError("the token was issued for another workspace") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    return dict(claims)


def _whoami() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (containers): the token still works
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
