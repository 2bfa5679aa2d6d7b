"""Pure partitioning: the sorted file list cut into mini-batches of `mini_batch_size` files."""

from __future__ import annotations


def plan_batches(files: list[str], mini_batch_size: int) -> list[list[str]]:
    if mini_batch_size < 1:
        raise ValueError("mini_batch_size must be at least 1")
    return [files[i : i + mini_batch_size] for i in range(0, len(files), mini_batch_size)]
