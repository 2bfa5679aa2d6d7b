"""What a failure says, kept whole enough to act on: the exception type, its message (capped
generously, secrets redacted, the head and the tail kept so that a data dump in the middle cannot hide
the cause) and the frame of the user's code that raised it."""

from __future__ import annotations

import os
import re
import traceback
from dataclasses import dataclass
from typing import Any

from batchctl.errors import redact

MESSAGE_CAP = 8000
_HEAD = 2000
_FRAME_RE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
_LAST_LINE_RE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")


def cap(text: str, limit: int = MESSAGE_CAP) -> str:
    """`text` redacted; past `limit` characters the middle is cut, so the start and the end both stay."""
    text = redact(text)
    if len(text) <= limit:
        return text
    tail = limit - _HEAD
    return f"{text[:_HEAD]} … [{len(text) - limit} characters omitted] … {text[-tail:]}"


@dataclass(frozen=True)
class ErrorInfo:
    """One failure: `type` is the exception's class name, `frame` is `file:line` of the user code
    (relative to the code folder) when the failure came from there."""

    type: str | None
    message: str
    frame: str | None = None

    def summary(self) -> str:
        """`ExceptionType: message (file:line)`, on one line."""
        head = f"{self.type}: {self.message}" if self.type else self.message
        head = " ".join(head.split())
        return f"{head} ({self.frame})" if self.frame else head

    @classmethod
    def from_exception(cls, exc: BaseException, code_dir: str | None = None) -> ErrorInfo:
        message = str(exc)
        if isinstance(exc, SystemExit):
            message = f"exit code {exc.code}" if exc.code is not None else "exit code None"
        return cls(type(exc).__name__, cap(message), _user_frame(traceback.extract_tb(exc.__traceback__), code_dir))

    @classmethod
    def from_traceback(cls, text: str, code_dir: str | None = None) -> ErrorInfo:
        """The same, read back from a formatted traceback (what a worker sends when init() fails)."""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        frames: list[tuple[str, int]] = []
        for line in lines:
            match = _FRAME_RE.match(line)
            if match:
                frames.append((match["file"], int(match["line"])))
        last = lines[-1].strip() if lines else ""
        match = _LAST_LINE_RE.match(last) if frames else None
        if match and match["type"]:
            # the message is what follows the type on the last line and any lines after the last frame
            exc_type = match["type"].rsplit(".", 1)[-1]
            message = match["msg"] or ""
        else:
            exc_type, message = None, last or text.strip()
        return cls(exc_type, cap(message), _pick_frame(frames, code_dir))


@dataclass(frozen=True)
class ItemError:
    """One failed item (an input file), for failed_items.jsonl."""

    item: str | None  # None: the mini-batch's failed items cannot be told apart
    info: ErrorInfo

    @property
    def reason(self) -> str:
        return self.info.summary()


def _user_frame(frames: Any, code_dir: str | None) -> str | None:
    return _pick_frame([(f.filename, f.lineno or 0) for f in frames], code_dir)


def _pick_frame(frames: list[tuple[str, int]], code_dir: str | None) -> str | None:
    """The last frame inside the user's code folder; None when no frame is there."""
    if not code_dir or not frames:
        return None
    root = os.path.abspath(code_dir)
    for filename, line in reversed(frames):
        path = os.path.abspath(filename)
        if path == root or path.startswith(root + os.sep):
            return f"{os.path.relpath(path, root)}:{line}"
    return None
