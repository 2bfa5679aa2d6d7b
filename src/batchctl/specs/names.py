"""Name and version rules (Azure's), free of pydantic so commands that only read stay fast."""

from __future__ import annotations

import re

ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
ASSET_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
VERSION_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")

ENDPOINT_LENGTH_MESSAGE = (
    "The name for an endpoint must be at least 3 and at most 32 characters long (inclusive of both limits)."
)
ENDPOINT_CHARS_MESSAGE = (
    "The name for an endpoint must start with an upper- or lowercase letter and only consist of "
    "'-'s and alphanumeric characters."
)


def _printable(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")


def endpoint_name_problem(value: str) -> str | None:
    if not 3 <= len(value) <= 32:
        return ENDPOINT_LENGTH_MESSAGE
    if not ENDPOINT_NAME_RE.fullmatch(value):
        return ENDPOINT_CHARS_MESSAGE
    return None


def asset_name_problem(value: str) -> str | None:
    if not ASSET_NAME_RE.fullmatch(value):
        return (
            f"name '{_printable(value)}' is invalid: use 1-255 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return None


def version_problem(value: str) -> str | None:
    if not VERSION_RE.fullmatch(value):
        return f"version '{_printable(value)}' is invalid: use letters, digits, '.', '-' or '_'"
    return None


def control_character_problem(value: str) -> str | None:
    """Names and file names never hold a control character (a newline in a file name splits every log
    line and listing that shows it) nor a format character (category Cf: U+202E, right-to-left override,
    shows `exe.csv` for `vsc.exe`; zero-width characters make two names that look the same)."""
    import unicodedata

    for ch in value:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp"):
            return f"'{_printable(value)}' contains a control character (U+{ord(ch):04X}), which names may not hold"
        if category == "Cf":
            return f"'{_printable(value)}' contains a format character (U+{ord(ch):04X}), which names may not hold"
    return None
