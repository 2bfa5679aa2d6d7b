"""Studio sessions: `batchctl serve` prints a one-time login URL (as Jupyter does); redeeming it sets an
HttpOnly, SameSite=Strict session cookie. A login URL may carry the Studio page it lands on (`show --web`
asks the server for one with the workspace's bearer token); that page is fixed when the URL is issued.
Each session carries a CSRF token that every form POST must send back. Everything lives in the server's
memory: a restart logs every browser out."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "batchctl_studio"
HOME = "/studio/"
LOGIN_TTL = 3600.0  # seconds a one-time login token stays valid
SESSION_TTL = 12 * 3600.0


def studio_page(target: object) -> str | None:
    """`target` when it is a path of a Studio page on this server (so a login link never sends the browser
    elsewhere), else None."""
    if not isinstance(target, str) or not target.startswith("/studio/") or len(target) > 2048:
        return None
    if "\\" in target or "//" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return None
    if target.split("?", 1)[0].startswith(("/studio/login", "/studio/static/")):
        return None
    return target


@dataclass
class Session:
    id: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, login_ttl: float = LOGIN_TTL, session_ttl: float = SESSION_TTL) -> None:
        self.login_ttl = login_ttl
        self.session_ttl = session_ttl
        self._logins: dict[str, tuple[float, str]] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def issue_login(self, target: str = HOME) -> str:
        """A new one-time login token, which lands on `target` (a Studio page: see studio_page)."""
        if studio_page(target) is None:
            raise ValueError(f"not a Studio page: {target!r}")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._purge()
            self._logins[token] = (time.monotonic() + self.login_ttl, target)
        return token

    def redeem(self, token: str | None) -> tuple[Session, str] | None:
        """(a new session, the page it lands on) for a valid login token, which is used up; None for an
        unknown, used or expired one."""
        if not token:
            return None
        with self._lock:
            self._purge()
            login = self._logins.pop(token, None)
            if login is None:
                return None
            session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.monotonic() + self.session_ttl)
            self._sessions[session.id] = session
            return session, login[1]

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires < time.monotonic():
                self._sessions.pop(session_id, None)
                return None
            return session

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())

    def _purge(self) -> None:
        now = time.monotonic()
        for token in [t for t, (exp, _) in self._logins.items() if exp < now]:
            del self._logins[token]
        for sid in [s for s, sess in self._sessions.items() if sess.expires < now]:
            del self._sessions[sid]
