"""Records how its worker started: init() writes $STATE_DIR/starts/<pid>.json with the worker's parent
PID, the values of the variables named in $PROBE_VARS, and whether numpy was imported before init()
(it is, in a worker forked from the warm forkserver)."""

import json
import os
import sys


def init():
    names = [n for n in os.environ.get("PROBE_VARS", "").split(",") if n]
    record = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "numpy_before_init": "numpy" in sys.modules,
        "env": {name: os.environ.get(name) for name in names},
    }
    folder = os.path.join(os.environ["STATE_DIR"], "starts")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as handle:
        json.dump(record, handle)


def run(mini_batch):
    return [f"{os.path.basename(path)} {os.getpid()}" for path in mini_batch]
