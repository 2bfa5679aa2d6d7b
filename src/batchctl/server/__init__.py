"""`batchctl serve` (extra `server`): Azure's invocation API for one workspace, bearer tokens, a job queue
and warm worker pools. The CLI imports this package only inside `batchctl serve` / `batchctl token`."""
