"""Scheduling of ``Engine.run``'s host loop: which lanes sit in which slots of a program, the
program sizes (power-of-two buckets, so recompiles are few), how many eval blocks the next chunk
runs, and how long its chunks took (device, bookkeeping, host). Plain numpy, no JAX."""

from __future__ import annotations

import math
import time

import numpy as np


def bucket(n: int, multiple: int) -> int:
    """Smallest power of two >= n, rounded up to a multiple of the device count."""
    b = 1 << max(0, math.ceil(math.log2(max(n, 1))))
    return int(math.ceil(b / multiple) * multiple)


def smaller_bucket_max(size: int, ndev: int) -> int:
    """The most lanes that fit a smaller bucket than ``size`` (0 if none does)."""
    m = size - 1
    while m > 0 and bucket(m, ndev) >= size:
        m -= 1
    return m


def lane_groups(n: int, group: int) -> tuple:
    """(start, stop) of consecutive groups of ``group`` lanes covering ``n`` lanes."""
    return tuple((i, min(i + group, n)) for i in range(0, n, group))


def first_slots(n: int, cap: int, ndev: int, repack: bool) -> tuple:
    """(slots, real, queued) of a fresh run: the first ``min(n, cap)`` lanes in a program of a
    bucket's size (``slots``: slot -> lane; ``real``: not padding); lanes [queued, n) wait."""
    first = min(n, cap)
    size = min(bucket(first, ndev), cap) if repack else -(-first // ndev) * ndev
    slots = np.concatenate([np.arange(first), np.zeros(size - first, np.int64)])  # -> lane
    real = np.arange(size) < first  # padding
    return slots, real, first


def chunk_blocks(
    left: tuple, waiting: bool, skips: bool, repack: bool, n_blocks: int, every: int
) -> int:
    """Eval blocks the next chunk runs (at most ``n_blocks``), from ``left`` = (smallest steps
    left of a running slot, the k-th smallest, running slots) as the book's plan gives them:
    up to the first lane's end while lanes wait for a slot (``waiting``) or finished slots are
    skipped (``skips``), else up to the end of enough lanes for a smaller bucket."""
    min_left, kth_left, n_run = left
    if waiting or skips:  # stop as soon as a lane finishes (its slot then idles)
        return int(min(max(-(-(min_left + 1) // every), 1), n_blocks))
    if not repack or n_run == 0:
        return n_blocks
    # when enough lanes will have finished for the program to shrink a bucket
    return int(min(max(-(-(kth_left + 1) // every), 1), n_blocks))


def lanes_computed(size: int, n_real: int, running, group: int) -> int:
    """Lanes a chunk computed: every real slot of one vmap, or the slots of the groups of
    ``group`` lanes that the host walked because one of their slots was ``running``."""
    if not group:
        return n_real
    return sum(b - a for a, b in lane_groups(size, group) if running[a:b].any())


class ChunkClock:
    """Per chunk: device time (dispatch until the chunk's outputs are ready), bookkeeping time
    (the device programs of plan / update / refill / repack, dispatch until their scalars are
    read) and host time (the rest: Python), summed over every chunk after the first (which
    compiles). ``timing`` is what the run's stats report."""

    def __init__(self):
        self.timing = dict(chunks=0, device_s=0.0, book_s=0.0, host_s=0.0)
        self.it_start = self.dev_s = None
        self.book_s = 0.0

    def close(self) -> None:
        """Adds the chunk that ran since ``start`` (if any, and not the first) to ``timing``."""
        timing = self.timing
        if self.it_start is not None and timing["chunks"] > 1:
            timing["device_s"] += self.dev_s
            timing["book_s"] += self.book_s
            timing["host_s"] += time.perf_counter() - self.it_start - self.dev_s - self.book_s
        self.book_s = 0.0

    def start(self) -> None:
        """Closes the previous chunk and starts the next."""
        self.close()
        self.it_start = time.perf_counter()
        self.timing["chunks"] += 1
