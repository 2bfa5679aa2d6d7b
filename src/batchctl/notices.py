"""Warnings for the user. The core never prints: it hands each notice to the sink that the front end
installed (the CLI writes `Warning: ...` on stderr). With no sink, notices wait in a list."""

from __future__ import annotations

from collections.abc import Callable

Sink = Callable[[str], None]
_sink: Sink | None = None
_pending: list[str] = []


def notify(message: str) -> None:
    """Tell the user something that does not stop the command (a warning, one line)."""
    if _sink is not None:
        _sink(message)
    else:
        _pending.append(message)


def set_sink(sink: Sink | None) -> Sink | None:
    """Install where notices go (and hand it those already waiting); returns the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    if sink is not None:
        for message in drain():
            sink(message)
    return previous


def drain() -> list[str]:
    """The notices given while no sink was installed, oldest first; the list is emptied."""
    out = list(_pending)
    _pending.clear()
    return out
