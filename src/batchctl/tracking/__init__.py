"""Tracking and lineage: every job an MLflow run when a tracking URI is set (`tracker.py`, mlflow imported
lazily, in a background thread), and every job a lineage manifest (`lineage.py`) that `job verify` checks.

Sits between `batchctl.jobs` (which calls it) and `batchctl.resources`; it never imports `batchctl.jobs`,
so it works on the job record as a plain dict."""
