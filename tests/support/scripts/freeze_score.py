"""init() builds long-lived objects, as a model's load does; run() reports whether the worker froze them
(execution/worker._freeze_long_lived: a full collection then skips them)."""

import gc
import os

MODEL: list[list[int]] = []


def init():
    MODEL.extend([i] for i in range(1000))  # lists are always tracked by the collector


def run(mini_batch):
    frozen = gc.get_freeze_count() >= len(MODEL) > 0
    return [f"{os.path.basename(path)} frozen={frozen}" for path in mini_batch]
