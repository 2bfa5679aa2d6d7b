import os
import time


def init():
    global OUT
    OUT = os.environ["AZUREML_BI_OUTPUT_PATH"]  # kept from init(), as Azure's examples do
    folder = os.path.join(os.environ["STATE_DIR"], "inits")
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, str(os.getpid())), "w").close()


def run(mini_batch):
    rows = []
    for path in mini_batch:
        text = open(path).read().strip()
        cmd, _, arg = text.partition(" ")
        if cmd == "sleep":
            time.sleep(float(arg))
        elif cmd == "raise":
            raise ValueError("cannot score " + os.path.basename(path))
        elif cmd == "dieonce":
            marker = os.path.join(os.environ["STATE_DIR"], "died-" + os.path.basename(path))
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(3)
        name = os.path.basename(path)
        with open(os.path.join(OUT, name + ".out"), "w") as handle:
            handle.write(text.upper() + "\n")
        print(f"scored {name}", flush=True)
        rows.append(f"{name} {text}")
    return rows
