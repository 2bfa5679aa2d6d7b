import os
import time

import pandas as pd

STATE = os.environ["STATE_DIR"]


def _once(kind, name):
    try:
        fd = os.open(os.path.join(STATE, f"{kind}-{name}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def init():
    global WEIGHT
    root = os.environ["AZUREML_MODEL_DIR"]
    found = [os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n == "weight.txt"]
    with open(found[0]) as handle:
        WEIGHT = float(handle.read())
    open(os.path.join(STATE, f"pid-{os.getpid()}"), "w").close()
    output = os.environ["AZUREML_BI_OUTPUT_PATH"]
    print(f"init weight={WEIGHT} model_dir={root} output_dir={output}", flush=True)


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = os.path.basename(path)
        open(os.path.join(STATE, f"ran-{name}"), "w").close()
        print(f"reading {path}", flush=True)
        with open(path) as handle:
            cmd, _, arg = handle.read().strip().partition(" ")
        if cmd == "skip":  # no row: one failed item
            continue
        if cmd == "write":  # summary_only: a file of its own in AZUREML_BI_OUTPUT_PATH
            with open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], name + ".out"), "w") as out:
                out.write(f"{name}: {arg} x {WEIGHT}\n")
        if cmd == "exitonce" and _once("exit", name):
            os._exit(3)
        if cmd == "hangonce" and _once("hang", name):
            time.sleep(300)
        if cmd == "sleep":
            time.sleep(float(arg))
        score = WEIGHT * (len(arg) + 0.1)
        rows.append({"file": name, "cmd": cmd, "note": f'says "{arg}", ok', "score": score})
    print(f"scored {len(rows)} files", flush=True)
    return pd.DataFrame(rows)
