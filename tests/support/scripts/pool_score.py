"""run() starts its own multiprocessing pool, with the start method named by $POOL_METHOD, as scoring
scripts that parallelize inside a mini-batch do."""

import multiprocessing
import os


def _square(x):
    return x * x


def init():
    pass


def run(mini_batch):
    method = os.environ["POOL_METHOD"]
    with multiprocessing.get_context(method).Pool(2) as pool:
        total = sum(pool.map(_square, range(4)))
    return [f"{os.path.basename(path)} {method} {total}" for path in mini_batch]
