"""Workspaces built once per session and copied per test, as dvc's fixtures copy a prepared repository.

A workspace stores its models and code snapshots relative to its root (`Workspace.stored_path`), so a
copy of the folder is a workspace of its own: registering a model and creating deployments once, then
`copytree` per test, gives every test the same starting state for the cost of a copy.

    templates.copy("server", build, tmp_path / "ws")

`build(root)` makes the workspace at `root` (it may put files it needs beside it, in `root.parent`, but
a copy takes only `root`: whatever a test reaches must be inside the workspace). Templates are read-only:
a test changes its copy only."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


class WorkspaceTemplates:
    """One template per name per session (per xdist worker), built on first use."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.built: dict[str, Path] = {}

    def template(self, name: str, build: Callable[[Path], object]) -> Path:
        if name not in self.built:
            from batchctl.cli import _common

            root = self.factory.mktemp(f"template-{name}") / "ws"
            # a build through the in-process CLI with `--workspace ROOT` sets the CLI's process-wide workspace:
            # put it back, so the test's own commands reach its copy, never the template
            saved = dict(_common._STATE)
            try:
                build(root)
            finally:
                _common._STATE.update(saved)
            self.built[name] = root
        return self.built[name]

    def copy(self, name: str, build: Callable[[Path], object], dest: Path) -> Path:
        """A fresh copy of template `name` at `dest` (which must not exist)."""
        template = self.template(name, build)
        # the lock's holder file and stray temporaries of the template are not part of a workspace's state
        shutil.copytree(template, dest, symlinks=True, ignore=shutil.ignore_patterns("registry.json.lock*"))
        return dest
