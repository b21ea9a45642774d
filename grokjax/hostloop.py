"""``Engine.run``'s host loop, one job per function: ``start`` (from a checkpoint or fresh),
``advance`` (one chunk, recorded in the book), ``reschedule`` (refill freed slots or repack),
``checkpoint_or_stop`` and ``result``. Each takes the ``Engine`` whose programs it calls and the
``Loop`` (the state between chunks) it updates."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np

from grokjax.book import Book, device_book, fresh_book, restored_book
from grokjax.lane import LaneHParams, LaneState
from grokjax.protocol import RunResult
from grokjax.schedule import (
    ChunkClock,
    bucket,
    chunk_blocks,
    first_slots,
    lanes_computed,
    smaller_bucket_max,
)


class Interrupted(Exception):
    """Raised by ``Engine.run`` when ``should_stop()`` turned true between two chunks.

    Attributes:
      step: steps the program had run when it stopped.
      checkpoint_step: the step of the checkpoint written before stopping (None without a
        checkpointer).
      label: the run's label.
    """

    def __init__(self, step: int, checkpoint_step: int | None, label: str = ""):
        super().__init__(f"{label}stopped at step {step}")
        self.step, self.checkpoint_step, self.label = step, checkpoint_step, label


@dataclasses.dataclass
class Loop:
    """``Engine.run``'s host loop between chunks: the device arrays (lane state, book, slot map,
    hyperparameters) and the counters (program size, lanes started, steps, lane-steps)."""

    state: LaneState  # [size, ...] in slot order
    book: Book
    slots: Any  # int32 [size]: slot -> lane
    real: Any  # bool [size]: not padding
    hp_dev: LaneHParams  # [size]: the slots' hyperparameters
    hp_all: LaneHParams  # [lanes]
    budget_dev: Any
    grid_dev: Any
    n: int  # lanes
    ndev: int
    repack: bool
    fingerprint: str
    size: int  # slots in the program
    n_real: int  # slots holding a lane
    queued: int  # lanes [queued, n) wait for a free slot
    step: int  # steps the program has run
    executed: int  # lane-steps computed
    shapes: set  # program sizes used
    elapsed: float  # seconds before a resume
    resumed_from: int | None
    n_active: int
    param_dtype: str
    executed0: int = 0
    t0: float = 0.0
    label: str = ""
    n_blocks: int = 1
    shards: dict = dataclasses.field(default_factory=dict)


def start(eng, hp, budget, grid, cap, repack, fingerprint, checkpointer) -> Loop:
    """The loop's state at its start: from the newest readable checkpoint, or fresh (the
    first lanes in their slots, the rest waiting). Book and slot map go on the device."""
    n, ndev = hp.seed.shape[0], len(eng.devices)
    restored = (
        eng._restore(checkpointer, fingerprint, hp, repack) if checkpointer is not None else None
    )
    if restored is not None:
        state, host, meta = restored
        slots, real = host["slots"], host["real"].astype(bool)
        book = restored_book(host, meta, n)
        queued = int(meta.get("queued", n))
        step, executed = int(meta["step"]), int(meta["executed"])
        shapes, elapsed = set(meta["shapes"]), float(meta["elapsed_s"])
        resumed_from = step
    else:
        state = None
        book = fresh_book(eng.static, n, grid, len(eng.fns.groups), budget)
        slots, real, queued = first_slots(n, cap, ndev, repack)
        step, executed, shapes, elapsed, resumed_from = 0, 0, set(), 0.0, None
    size, n_real = int(slots.size), int(real.sum())
    n_active = int(book["active"].sum())
    # Everything the loop keeps per lane lives on the device (``Book``, in the caller's lane
    # order) and so does the slot map; between chunks the host reads a few scalars only.
    book = device_book(book, eng._put_rep)
    slots, real = eng._put_rep((np.asarray(slots, np.int32), np.asarray(real, bool)))
    hp_all = eng._put_rep(hp)
    budget_dev = eng._put_rep(np.asarray(budget, np.int32))
    grid_dev = eng._put_rep(np.asarray(grid, np.int32))
    hp_dev = eng._gather_hp(hp_all, slots)
    if state is None:
        state = eng._init(hp_dev)
    param_dtype = str(jax.tree.leaves(state.params)[0].dtype)
    return Loop(
        state,
        book,
        slots,
        real,
        hp_dev,
        hp_all,
        budget_dev,
        grid_dev,
        n,
        ndev,
        repack,
        fingerprint,
        size,
        n_real,
        queued,
        step,
        executed,
        shapes,
        elapsed,
        resumed_from,
        n_active,
        param_dtype,
        executed0=executed,
        t0=time.perf_counter(),
    )


def advance(eng, loop: Loop, clock: ChunkClock) -> tuple:
    """Runs one chunk (as far as the book's plan allows) and records it in the book.
    Returns (lanes active, lanes grokked, running slots, lane-steps left)."""
    size, ev = loop.size, eng.static.eval_every
    # Lanes walked in groups skip finished and padding slots for free: no repacking then.
    skips = eng.lanes_per_group > 0
    if size not in loop.shards:  # metadata only: how the lane axis is spread over devices
        leaf = jax.tree.leaves(loop.state.params)[0]
        loop.shards[size] = (
            len(leaf.sharding.device_set),
            int(leaf.sharding.shard_shape(leaf.shape)[0]),
        )
    loop.shapes.add(size)
    t_book = time.perf_counter()
    m_max = smaller_bucket_max(size, loop.ndev)
    plan, running = eng._plan(loop.book, loop.slots, loop.real, m_max)
    if skips:
        plan, running = eng._fetch((plan, running))
    else:
        plan, running = eng._fetch(plan), None
    clock.book_s += time.perf_counter() - t_book
    left = tuple(int(v) for v in plan)
    waiting = loop.queued < loop.n
    run_blocks = chunk_blocks(left, waiting, skips, loop.repack, loop.n_blocks, ev)
    t_dev = time.perf_counter()
    state, m = eng._chunk_upto(
        loop.state, loop.hp_dev, np.int32(run_blocks), running, loop.n_blocks
    )
    jax.block_until_ready(m)
    clock.dev_s = time.perf_counter() - t_dev
    loop.state = state
    loop.step += run_blocks * ev
    computed = lanes_computed(size, loop.n_real, running, eng.lanes_per_group)
    loop.executed += run_blocks * ev * computed
    # Records, latches, end steps and finished lanes: one program on the device.
    t_book = time.perf_counter()
    loop.book, summary = eng._update(
        loop.book,
        state.latches,
        m,
        state.step,
        loop.slots,
        loop.real,
        loop.budget_dev,
        loop.grid_dev,
    )
    n_active, n_grok, n_run_after, left = (float(v) for v in eng._fetch(summary))
    clock.book_s += time.perf_counter() - t_book
    return int(n_active), int(n_grok), int(n_run_after), left


def reschedule(eng, loop: Loop, n_active: int, n_run_after: int) -> None:
    """Waiting lanes take the freed slots, or else the running lanes move into a smaller
    program (only when every lane has started and one vmap runs them all)."""
    ndev, n, size = loop.ndev, loop.n, loop.size
    n_free = size - n_run_after
    if loop.queued < n and n_free:  # waiting lanes take the freed slots
        k = min(n_free, n - loop.queued)
        width = bucket(k, ndev)  # bucketed so that few refill programs compile
        loop.state, loop.slots, loop.real, loop.hp_dev = eng._refill(
            loop.state,
            loop.book,
            loop.slots,
            loop.real,
            loop.hp_all,
            np.int32(loop.queued),
            np.int32(k),
            width,
        )
        loop.queued += k
        loop.n_real = n_run_after + k
    elif (
        loop.repack
        and not eng.lanes_per_group
        and loop.queued == n
        and bucket(n_active, ndev) < size
    ):
        loop.size = bucket(n_active, ndev)
        loop.state, loop.slots, loop.real, loop.hp_dev = eng._repack(
            loop.state, loop.book, loop.slots, loop.real, loop.hp_all, loop.size
        )
        loop.n_real = n_active


def checkpoint_or_stop(eng, loop: Loop, checkpointer, should_stop) -> None:
    """Checkpoints when the checkpointer's policy says so or a stop was requested (every
    process agreeing), and raises ``Interrupted`` on a stop."""
    stop = should_stop is not None and bool(should_stop())
    due = checkpointer is not None and checkpointer.tick()
    due, stop = (bool(v) for v in eng._agree(due, stop))
    if checkpointer is not None and (due or stop):
        host = eng._host_book(loop.book, loop.slots, loop.real)
        checkpointer.save(
            loop.step,
            eng._fetch(loop.state) if eng.multiprocess else loop.state,
            host,
            dict(
                fingerprint=loop.fingerprint,
                size=int(loop.size),
                lanes=loop.n,
                executed=loop.executed,
                queued=loop.queued,
                shapes=sorted(int(s) for s in loop.shapes),
                label=loop.label,
                devices=loop.ndev,
                elapsed_s=loop.elapsed + time.perf_counter() - loop.t0,
            ),
        )
    if stop:
        if checkpointer is not None:
            checkpointer.wait()
        raise Interrupted(loop.step, loop.step if checkpointer is not None else None, loop.label)


def result(eng, loop: Loop, grid, chunk_steps: int, timing: dict) -> RunResult:
    """The finished loop's ``RunResult`` (latches, steps run, curves, stats)."""
    host = eng._host_book(loop.book, loop.slots, loop.real)
    latches_out, end = host["latches"], host["end"]
    diverged = latches_out["diverged_step"] >= 0
    steps_run = np.where(diverged, latches_out["diverged_step"], end).astype(np.int64)
    stats = dict(
        wall_s=loop.elapsed + time.perf_counter() - loop.t0,
        lane_steps_executed=loop.executed,
        lane_steps_needed=int(steps_run.sum()),
        programs=sorted(int(s) for s in loop.shapes),
        chunk_steps=chunk_steps,
        lanes=loop.n,
        fingerprint=loop.fingerprint,
        resumed_from_step=loop.resumed_from,
        devices=loop.ndev,
        param_dtype=loop.param_dtype,
        lane_mode=eng.lane_mode,
        chunk_timing=timing,
        shards={int(k): list(v) for k, v in sorted(loop.shards.items())},
    )
    return RunResult(latches_out, steps_run, grid, host["curves"], eng.fns.groups, stats)
