"""The Studio pages: Azure ML Studio's batch-endpoint workflow in a local web UI, served by `batchctl serve`
under /studio/ (routes in pages.py, Jinja2 templates and static files shipped in this package)."""

from __future__ import annotations

from batchctl.server.studio.pages import mount

__all__ = ["mount"]
