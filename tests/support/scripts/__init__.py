"""Behaviour-driven scoring scripts: each input file holds a command (`sleep 2`, `raise`, `exitonce`, ...)
that the script acts on, so a test states what each mini-batch does. Real files, checked by ruff; a test
writes one into its deployment's code folder (`script_text(name)`)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def script_text(name: str) -> str:
    """The source of scripts/`name`.py."""
    return (HERE / f"{name}.py").read_text()
