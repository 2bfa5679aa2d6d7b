import argparse
import os
import signal
import time

import pandas as pd

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
    global LEVEL
    _mark("pids", str(os.getpid()))
    parser = argparse.ArgumentParser()
    parser.add_argument("--logging_level")
    args, _ = parser.parse_known_args()
    LEVEL = args.logging_level
    print(f"init in {os.getcwd()} level={LEVEL}")
    if os.environ.get("INIT_FAIL"):
        raise RuntimeError("init exploded: the weights are corrupt")
    # "K:N": the K-th init() on opens gate late-init, waits until N files ran, then fails a second later
    later = os.environ.get("LATE_INIT_FAIL")
    if later:
        nth, files = (int(x) for x in later.split(":"))
        if len(os.listdir(os.path.join(STATE, "pids"))) >= nth:
            _mark("gates", "late-init")
            ran = os.path.join(STATE, "ran")
            while len(os.listdir(ran) if os.path.isdir(ran) else []) < files:
                time.sleep(0.05)
            time.sleep(1.0)
            raise RuntimeError("late init exploded")


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = os.path.relpath(path, os.environ.get("INPUT_ROOT", os.path.dirname(path)))
        with open(path) as handle:
            text = handle.read().strip()
        cmd, _, arg = text.partition(" ")
        _mark("ran", name.replace("/", "_"))
        if cmd == "gate":
            gate = os.path.join(STATE, "gates", arg)
            deadline = time.monotonic() + 120
            while not os.path.exists(gate):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gate {arg} was never opened")
                time.sleep(0.05)
        elif cmd == "open":
            _mark("gates", arg)
        elif cmd == "sleep":
            time.sleep(float(arg))
        elif cmd == "raise":
            raise ValueError(f"cannot score {name}")
        elif cmd == "none":
            return None
        elif cmd == "exit":
            os._exit(3)
        elif cmd == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif cmd == "killonce" and _mark("killed", name.replace("/", "_")):
            os.kill(os.getpid(), signal.SIGKILL)
        elif cmd == "exitonce" and _mark("exited", name.replace("/", "_")):
            os._exit(3)
        elif cmd == "flaky" and _mark("flaky", name.replace("/", "_")):
            raise RuntimeError(f"flaky failure on {name}")
        elif cmd == "skip":
            continue
        elif cmd == "write":
            base = os.path.splitext(os.path.basename(path))[0]
            with open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], base + ".out"), "w") as out:
                out.write(f"scored {name}\n")
        print(f"scored {name}")
        rows.append([name, cmd, os.getpid()])
    if os.environ.get("RETURN") == "frame":
        return pd.DataFrame(rows, columns=["file", "cmd", "pid"])
    return [f"{r[0]},{r[1]}" for r in rows]
