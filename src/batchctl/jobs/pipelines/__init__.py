"""Pipeline jobs (issue 24): a parent job whose steps run as child jobs, each a command in its own
environment. `submit` queues the parent from a bound pipeline, `runner` runs the step graph, `steps`
runs one step (inputs, reuse, the process), `commands` lists, downloads and resumes."""
