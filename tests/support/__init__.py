"""What the tests share (issue 25, item 5): waiting (`wait_for`), the heart model trained once per machine
(`models`), a quiet loopback HTTP server (`http`), and the behaviour-driven scoring scripts as real files
(`scripts/`, checked by ruff). Imported as `support` (tests/ is on sys.path, as for `testkit`); the older
helper modules (server_helpers, storage_helpers, ...) re-export from here, so their imports keep working."""
