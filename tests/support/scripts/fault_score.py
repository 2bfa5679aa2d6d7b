import ctypes
import os
import time

STATE = os.environ.get("STATE_DIR", ".")


def _mark(kind, name):
    path = os.path.join(STATE, kind, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def init():
    _mark("pids", str(os.getpid()))


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = os.path.basename(path)
        with open(path) as handle:
            cmd = handle.read().strip()
        if cmd == "sleep":
            time.sleep(600)
        elif cmd == "segv":
            ctypes.string_at(0)
        elif cmd == "segvonce" and _mark("segv", name):
            ctypes.string_at(0)
        elif cmd == "marker":
            open(os.path.join(STATE, "ran-" + name), "w").close()
        rows.append(f"{name},{cmd}")
    return rows
