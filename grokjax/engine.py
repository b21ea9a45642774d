"""The lane engine (``Engine``): jit the vmapped lane chunk of ``grokjax.lane``, drive it from
the host, record, repack, stop.

``Engine(static).run(hp)`` advances every lane ``chunk_steps`` at a time with no host round
trip inside a chunk. Between chunks it records trajectories on a geometric step grid, prints a
progress line, moves the lanes still running into a smaller program when enough have finished
(power-of-two buckets, so recompiles are few) and stops when every lane is done. The lane axis
is sharded over every device of the job (padded to a multiple of their count): with several
processes (``jax.distributed``) each process computes only the lanes on its own devices, and
what the host loop reads between chunks is gathered to every process
(``multihost_utils.process_allgather``), so all processes take the same decisions.

Two lane modes (``Engine(lane_mode=...)``, ``--lane-mode`` on every experiment): "vmap", every
lane of a phase in one vmapped program (the accelerator path, and the only one over several
devices), and "walk", the host calls one compiled one-lane program per lane
(``lanes_per_group``), the "auto" choice on a single CPU device: XLA:CPU runs a vmapped,
batched matmul, and even a lax.map over lanes inside one program, slower per lane than one
lane's plain matmuls. Both give the same events; floats agree to float32 rounding (the batched
and the plain matmuls sum in another order). In either mode the per-lane bookkeeping between
chunks (curves, latches, end steps, finished lanes, refilling freed slots, repacking by a
gather) is a few small device programs over arrays kept on the device (``grokjax.book``); the
host reads back a handful of scalars per chunk, so its work does not grow with the lane count
(``python -m experiments.bench --host``). The host loop's jobs (start, advance a chunk,
reschedule, checkpoint) are ``grokjax.hostloop``'s; its scheduling and timing
``grokjax.schedule``'s.

Given a ``grokjax.checkpoint.LaneCheckpointer`` the loop also checkpoints between chunks (never
inside one) and, when started again, continues from the newest readable checkpoint: the device
state in its slot layout plus every host-side array (curves so far, latches, end steps, the
slot map), so a resumed run reproduces an uninterrupted one bit for bit on the same machine.
``should_stop`` (e.g. set by a SIGTERM handler) makes it checkpoint and raise ``Interrupted``.
"""

from __future__ import annotations

import functools
import hashlib
import time
from typing import Callable

import jax
import numpy as np

from grokjax import hostloop
from grokjax.hostloop import Interrupted as Interrupted  # (raised by Engine.run)
from grokjax.book import book_programs
from grokjax.lane import (
    FINGERPRINT_VERSION,
    LaneHParams,
    LaneState,
    Metrics,
    Static,
    make_hparams,
    make_lane_fns,
    static_fingerprint,
)
from grokjax.protocol import GRID_POINTS, RunResult
from grokjax.schedule import (
    ChunkClock,
    bucket,
    lane_groups,
)


def step_grid(max_steps: int, eval_every: int, points: int = GRID_POINTS) -> np.ndarray:
    """A geometric grid of eval steps from 0 to max_steps (multiples of eval_every)."""
    g = np.geomspace(eval_every, max(max_steps, eval_every), points)
    g = np.unique(np.round(g / eval_every).astype(np.int64) * eval_every)
    return np.concatenate([[0], g])


# How an Engine runs the lanes of a phase: "vmap", all of them in one vmapped program (sharded
# over the devices); "walk", the host calls one lane's program per lane (one device only);
# "auto", walk on a single CPU device and vmap everywhere else.
LANE_MODES = ("auto", "walk", "vmap")


def memory_budget() -> float | None:
    """The bytes per device a phase may fill (``memory.device_budget``: ``GROKJAX_MEMORY``),
    or None; ValueError naming the variable when it is not a size."""
    from grokjax.memory import device_budget

    return device_budget()


@functools.partial(jax.jit, static_argnums=2)
def _take_lanes(tree, start, size: int):
    """Lanes [start, start + size) of ``tree`` (one compile per size, any start)."""
    return jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, size, axis=0), tree)


@functools.partial(jax.jit, donate_argnums=0)
def _put_lanes(whole, part, start):
    """Writes ``part`` (state [g, ...], metrics [blocks, g, ...]) over lanes [start, start+g)
    of ``whole`` = (state [L, ...], metrics [blocks, L, ...]), in place."""
    state, metrics = whole
    s, m = part
    return (
        jax.tree.map(lambda x, y: jax.lax.dynamic_update_slice_in_dim(x, y, start, 0), state, s),
        jax.tree.map(lambda x, y: jax.lax.dynamic_update_slice_in_dim(x, y, start, 1), metrics, m),
    )


def run_fingerprint(
    static: Static, hp: LaneHParams, chunk_steps: int, grid_points: int, repack: bool
) -> str:
    """A short hash of everything that determines a run's results (config, lanes, chunking)."""
    h = hashlib.sha256()
    # (version 1 hashes the text the tuple's repr had; a later version prefixes its number)
    text = f"({static_fingerprint(static)}, {chunk_steps!r}, {grid_points!r}, {repack!r})"
    h.update(
        text.encode() if FINGERPRINT_VERSION == 1 else f"v{FINGERPRINT_VERSION}:{text}".encode()
    )
    for name, x in zip(LaneHParams._fields, hp):
        a = np.ascontiguousarray(np.asarray(x))
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


class Engine:
    """Jitted, vmapped lane programs for one ``Static`` (compiled once per lane bucket, or
    once per group size when the host walks the lanes).

    With more than one device the lane axis is sharded over a one-axis mesh ("lanes") of
    ``devices`` (default: ``jax.devices()``, every device of every process); every program's
    inputs and outputs carry that sharding, and lane counts are padded to a multiple of the
    device count.

    ``lane_mode``: "vmap" (all lanes in one program), "walk" (the host walks them, one device
    only) or "auto" (walk on a single CPU device, else vmap); see the module docstring.
    ``lanes_per_group``: 0 runs all lanes as one vmap (the default on accelerators and with
    several devices); g >= 1 makes the host walk the lanes g at a time, one call of the same
    compiled g-lane program per group (the default, g = 1, on a single CPU device, where it is
    the fastest per lane); one device only.
    """

    def __init__(
        self,
        static: Static,
        devices=None,
        lanes_per_group: int | None = None,
        lane_mode: str = "auto",
    ):
        self.static = static
        self.fns = make_lane_fns(static)
        self.devices = list(devices if devices is not None else jax.devices())
        # Several processes: the lane arrays span devices this process cannot read directly.
        self.multiprocess = any(d.process_index != jax.process_index() for d in self.devices)
        chunk = self.fns.chunk
        if len(self.devices) > 1:
            mesh = jax.sharding.Mesh(np.array(self.devices), ("lanes",))
            P = jax.sharding.PartitionSpec
            self._sharding = jax.sharding.NamedSharding(mesh, P("lanes"))
            self._rep = jax.sharding.NamedSharding(mesh, P())  # replicated: the book
            metrics_sharding = jax.sharding.NamedSharding(mesh, P(None, "lanes"))
            init_kw = dict(out_shardings=self._sharding)
            chunk_kw = dict(out_shardings=(self._sharding, metrics_sharding))
        else:
            self._sharding = self._rep = None
            init_kw, chunk_kw = {}, {}
        self._init = jax.jit(jax.vmap(self.fns.init), **init_kw)
        # the book's device programs (grokjax.book): between chunks the host reads a few scalars
        progs = book_programs(self.static, self.fns.init, self._sharding, self._rep)
        self._gather_hp, self._plan, self._update = progs.gather_hp, progs.plan, progs.update
        self._refill, self._repack = progs.refill, progs.repack
        # The host loop's program: up to ``max_blocks`` blocks, of which the first ``n_blocks``
        # (a traced scalar) run, so chunks can end where lanes finish without recompiling.
        vchunk = lambda state, hp, n_blocks, max_blocks: jax.vmap(
            lambda s, h: chunk(s, h, n_blocks, max_blocks), out_axes=(0, 1)
        )(state, hp)
        # On one CPU device a batched (vmapped) dot_general runs ~25-35 % slower per lane than
        # one lane's plain matmuls, and a lax.map over the lanes inside the program still costs
        # 8-16 % per lane; so there the host dispatches one lane's program per lane (the same
        # compiled program for every lane and lane count) and skips finished lanes. Elsewhere
        # all lanes are one vmap, sharded over the devices.
        if lane_mode not in LANE_MODES:
            raise ValueError(f"lane_mode must be one of {', '.join(LANE_MODES)}, got {lane_mode!r}")
        if lane_mode == "vmap":
            if lanes_per_group:
                raise ValueError(
                    f"lane_mode 'vmap' runs every lane in one program; "
                    f"lanes_per_group={lanes_per_group} walks them"
                )
            lanes_per_group = 0
        elif lane_mode == "walk" and lanes_per_group is None:
            lanes_per_group = 1
        if lanes_per_group is None:
            lanes_per_group = (
                1 if (self.devices[0].platform == "cpu" and len(self.devices) == 1) else 0
            )
        if lanes_per_group < 0:
            raise ValueError(f"lanes_per_group must be >= 0, got {lanes_per_group}")
        if lanes_per_group and len(self.devices) > 1:
            raise ValueError(
                f"lanes_per_group={lanes_per_group}: walking lanes in groups needs one "
                f"device (here {len(self.devices)}); use 0 (one vmap over all lanes)"
            )
        if lane_mode == "walk" and lanes_per_group == 0:
            raise ValueError("lane_mode 'walk' needs lanes_per_group >= 1 (0 is one vmap)")
        self.lanes_per_group = lanes_per_group
        self._blanks_memo = {}  # memory estimates per chunk length
        self.lane_mode = "walk" if lanes_per_group else "vmap"  # the mode in use ("auto" resolved)
        if lanes_per_group:
            self._chunk_group = jax.jit(vchunk, static_argnums=3, donate_argnums=0)
            self._blanks = {}
        else:
            self._chunk_all = jax.jit(
                lambda state, hp, n_blocks, run, max_blocks: vchunk(
                    state, hp, n_blocks, max_blocks
                ),
                static_argnums=4,
                donate_argnums=0,
                **chunk_kw,
            )

    def _chunk_upto(self, state, hp, n_blocks, run, max_blocks: int):
        """Advances the lanes up to ``max_blocks`` (static) blocks, of which ``n_blocks`` run.

        With ``lanes_per_group`` the host walks groups of that many lanes, one program call per
        group, and a group none of whose lanes ``run`` passes through untouched (its metrics
        blank: step -1, NaN). Returns (state [L, ...], metrics [max_blocks, L, ...]).
        """
        if not self.lanes_per_group:
            return self._chunk_all(state, hp, n_blocks, run, max_blocks)
        n = hp.seed.shape[0]
        # Metrics start blank; each group that runs writes its own lanes (state and metrics
        # in place, so memory stays one lane state per lane plus one group's temporaries).
        out = (state, self._blank_metrics(state, hp, n, max_blocks))
        for a, b in lane_groups(n, self.lanes_per_group):
            if np.any(run[a:b]):
                s, h = _take_lanes(out[0], a, b - a), _take_lanes(hp, a, b - a)
                out = _put_lanes(out, self._chunk_group(s, h, n_blocks, max_blocks), a)
        return out

    def _blank_metrics(self, state, hp, n: int, max_blocks: int):
        """What lanes that do not run report: step -1 and NaN metrics, [max_blocks, n, ...]."""
        key = (n, max_blocks)
        if key not in self._blanks:
            g = min(self.lanes_per_group, n)
            one = jax.eval_shape(
                self._chunk_group,
                _take_lanes(state, 0, g),
                _take_lanes(hp, 0, g),
                np.int32(1),
                max_blocks,
            )[1]
            self._blanks[key] = jax.tree.map(
                lambda x: np.full(
                    (x.shape[0], n) + x.shape[2:],
                    -1 if np.issubdtype(x.dtype, np.integer) else np.nan,
                    x.dtype,
                ),
                one,
            )
        # A fresh device copy each chunk: the walk writes into it in place (donated).
        return jax.device_put(self._blanks[key], self.devices[0])

    def memory_bytes(self, chunk_steps: int = 500) -> tuple[float, float]:
        """(fixed, per-lane) bytes per device of the chunk program, from XLA's memory analysis.

        One vmap: the program at one and two lanes per device. Lanes walked in groups: one
        group's program (its temporaries serve every group in turn) plus, per lane, its state and
        metrics.
        """
        ndev = len(self.devices)
        n_blocks = max(1, chunk_steps // self.static.eval_every)
        lane_state = lambda k: jax.eval_shape(
            jax.vmap(self.fns.init), make_hparams(len(self.fns.groups), seed=np.arange(k))
        )
        if self.lanes_per_group:
            g = self.lanes_per_group
            hp = make_hparams(len(self.fns.groups), seed=np.arange(g))
            m = (
                self._chunk_group.lower(lane_state(g), hp, np.int32(1), n_blocks)
                .compile()
                .memory_analysis()
            )
            state_b = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(lane_state(1)))
            metrics_b = (m.output_size_in_bytes - m.alias_size_in_bytes) / g
            fixed = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            return float(fixed), float(state_b + metrics_b)
        usage = []
        for per_dev in (1, 2):
            k = per_dev * ndev
            hp = make_hparams(len(self.fns.groups), seed=np.arange(k))
            m = (
                self._chunk_all.lower(lane_state(k), hp, np.int32(1), np.ones(k, bool), n_blocks)
                .compile()
                .memory_analysis()
            )
            usage.append(
                m.argument_size_in_bytes
                + m.output_size_in_bytes
                + m.temp_size_in_bytes
                - m.alias_size_in_bytes
            )
        per_lane = max(usage[1] - usage[0], 1)
        # plus what the host loop's bookkeeping keeps per lane on the device (curves, latches)
        book = (len(Metrics._fields) + len(self.fns.groups)) * 121 * np.dtype(
            self.static.model.dtype
        ).itemsize + 64
        return max(usage[0] - per_lane, 0), per_lane + book

    def lanes_that_fit(
        self, memory_bytes: float | None = None, chunk_steps: int = 500, fraction: float = 0.8
    ) -> int:
        """The most lanes (over all devices) whose program fits in memory.

        ``memory_bytes`` is per device; by default the environment variable
        ``GROKJAX_MEMORY`` (bytes per device, e.g. ``2e9`` or ``512MiB``: an artificial
        budget, used as it is) or else the accelerator's ``bytes_limit`` (or half the host's RAM
        on CPU), times ``fraction``; the program's needs come from ``memory_bytes()`` (XLA's
        memory analysis of the compiled chunk program).
        """
        import os

        ndev = len(self.devices)
        if memory_bytes is None and memory_budget() is not None:
            memory_bytes, fraction = memory_budget(), 1.0
        if memory_bytes is None:
            stats = jax.local_devices()[0].memory_stats() or {}
            if "bytes_limit" in stats:
                memory_bytes = stats["bytes_limit"]
            else:
                memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 / ndev
        key = ("memory", chunk_steps)
        if key not in self._blanks_memo:
            self._blanks_memo[key] = self.memory_bytes(chunk_steps)
        fixed, per_lane = self._blanks_memo[key]
        return max(1, int((fraction * memory_bytes - fixed) // per_lane)) * ndev

    @property
    def state_sharding(self):
        """Sharding of every lane-state leaf (lane axis over the mesh, or the one device)."""
        return self._sharding or jax.sharding.SingleDeviceSharding(self.devices[0])

    def _put_on(self, tree, sharding):
        """Host arrays (the same on every process) onto ``sharding``, or the one device."""
        if sharding is None:
            return jax.device_put(tree, self.devices[0])
        if self.multiprocess:
            # Each process supplies the shards of its own devices. (jax.device_put would first
            # check that every process passed equal values, and NaN != NaN fails that check.)
            def put(x):
                x = np.asarray(x)
                return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

            return jax.tree.map(put, tree)
        return jax.device_put(tree, sharding)

    def _put(self, tree):
        """Host arrays onto the lane sharding."""
        return self._put_on(tree, self._sharding)

    def _put_rep(self, tree):
        """Host arrays onto every device (replicated), or the one."""
        return self._put_on(tree, self._rep)

    def _host_book(self, book, slots, real) -> dict:
        """The book and slot map as host arrays, in the checkpoint's ``host`` layout."""
        b, slots, real = self._fetch((book, slots, real))
        return dict(
            slots=np.asarray(slots, np.int64),
            real=np.asarray(real, bool),
            end=np.asarray(b.end, np.int64),
            active=np.asarray(b.active, bool),
            curves={k: np.array(v) for k, v in b.curves.items()},
            latches={k: np.array(v) for k, v in b.latches._asdict().items()},
            lane_step=np.asarray(b.lane_step, np.int64),
        )

    def _fetch(self, tree):
        """Device arrays to host numpy arrays, whole on every process (a collective with several
        processes: every process must call it at the same point)."""
        if self.multiprocess:
            from jax.experimental import multihost_utils

            return multihost_utils.process_allgather(tree, tiled=True)
        return jax.device_get(tree)

    def _agree(self, *values: int) -> tuple:
        """Host decisions that must be the same on every process (a checkpoint is due, a stop
        was requested, which checkpoint to restore): process 0's values, broadcast to all."""
        if not self.multiprocess:
            return values
        from jax.experimental import multihost_utils

        got = multihost_utils.broadcast_one_to_all(np.array(values, np.int64))
        return tuple(int(v) for v in np.asarray(got))

    def init(self, hp: LaneHParams) -> LaneState:
        """Initial state of ``hp``'s lanes (the lane count must be a multiple of the device count)."""
        return self._init(self._put(hp))

    def chunk(self, state: LaneState, hp, n_blocks: int):
        """Advances every lane ``n_blocks`` eval blocks (the program the host loop runs)."""
        run = np.ones(hp.seed.shape[0], bool)
        return self._chunk_upto(state, hp, np.int32(n_blocks), run, n_blocks)

    def _restore(self, checkpointer, fingerprint: str, hp: LaneHParams, repack: bool):
        """The newest readable checkpoint as (state on device, host dict, meta), or None."""
        from grokjax import checkpoint as ckpt

        ndev = len(self.devices)
        shapes = {}

        def target(meta):
            size = int(meta["size"])
            like = jax.eval_shape(
                jax.vmap(self.fns.init), jax.tree.map(lambda x: x[np.zeros(size, np.int64)], hp)
            )
            # Restore straight into the lane sharding; a checkpoint written with another device
            # count that does not divide its lane count lands on one device and is re-packed.
            fits = size % ndev == 0
            shapes["like"], shapes["fits"] = like, fits
            sharding = (
                self.state_sharding if fits else jax.sharding.SingleDeviceSharding(self.devices[0])
            )
            return ckpt.abstract(like, sharding)

        if self.multiprocess:  # process 0's pending writes are finished before anyone reads
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("grokjax: restore")
        got = checkpointer.restore(fingerprint, target)
        mine = -1 if got is None else int(got[0]["step"])
        (step0,) = self._agree(mine)
        if mine != step0:
            raise RuntimeError(
                f"process {jax.process_index()} found another newest checkpoint than "
                f"process 0 (step {step0}) in {checkpointer.directory}: is it on a "
                f"file system that every process sees?"
            )
        if got is None:
            return None
        meta, flat, host = got
        state = ckpt.unflatten(shapes["like"], flat)
        if shapes["fits"] and not isinstance(jax.tree.leaves(state)[0], jax.Array):
            state = self._put(state)  # restored as host arrays (several processes)
        if not shapes["fits"]:
            real = host["real"].astype(bool)
            keep = np.flatnonzero(real)
            n_keep = keep.size
            size = bucket(n_keep, ndev) if repack else -(-n_keep // ndev) * ndev
            sel = np.concatenate([keep, np.full(size - n_keep, keep[0])])
            state = self._put(jax.tree.map(lambda x: np.asarray(x)[sel], state))
            host["slots"], host["real"] = host["slots"][sel], np.arange(size) < n_keep
            checkpointer.log(
                f"{meta.get('label', '')}checkpoint written with another device "
                f"count: re-packed {n_keep} lanes into {size} slots over {ndev} devices "
                f"(numerics may differ in the last bits from an uninterrupted run)"
            )
        return state, host, meta

    def run(
        self,
        hp: LaneHParams,
        *,
        chunk_steps: int = 500,
        grid_points: int = GRID_POINTS,
        repack: bool = True,
        progress: Callable | None = print,
        label: str = "",
        checkpointer=None,
        should_stop: Callable[[], bool] | None = None,
        max_lanes: int | str | None = "auto",
    ) -> RunResult:
        """Trains every lane until it has grokked (plus a margin), diverged or hit its budget.

        Args:
          hp: per-lane hyperparameters (numpy arrays, one row per lane).
          chunk_steps: steps per jitted call (rounded to a multiple of eval_every).
          grid_points: size of the geometric step grid on which curves are recorded.
          repack: move the lanes still running into a smaller program (power-of-two bucket
            sizes) when enough have finished. Results do not depend on it: a lane latches
            only up to its own end step (``lane_end``).
          progress: called with one line per chunk (None for silence).
          checkpointer: a ``grokjax.checkpoint.LaneCheckpointer``: the run starts from its newest
            readable checkpoint (if any) and checkpoints between chunks as its policy says.
            A resumed run gives the same results as an uninterrupted one.
          should_stop: polled between chunks; when it returns True the run writes a checkpoint
            (with a checkpointer) and raises ``Interrupted``.
          max_lanes: the most lanes in the program at once (rounded down to a multiple of the
            device count; see ``lanes_that_fit``). Further lanes wait and take the slot of a lane
            that has finished, starting from their own step 0: results are the same as with every
            lane in the program. None: all lanes at once; "auto" (default): as many as fit in
            memory (``lanes_that_fit``; estimated only above 64 lanes per device).

        Returns:
          A ``RunResult`` in the order of ``hp``'s lanes.
        """
        ev = self.static.eval_every
        n_blocks = max(1, chunk_steps // ev)
        chunk_steps = n_blocks * ev
        hp = LaneHParams(*[np.asarray(x) for x in hp])
        n = hp.seed.shape[0]
        if n == 0:
            raise ValueError("no lanes to run")
        budget = hp.budget.astype(np.int64)
        grid = step_grid(int(budget.max()), ev, grid_points)
        cap = self._program_cap(n, max_lanes, chunk_steps)
        fingerprint = run_fingerprint(self.static, hp, chunk_steps, grid_points, repack)
        loop = hostloop.start(self, hp, budget, grid, cap, repack, fingerprint, checkpointer)
        loop.label, loop.n_blocks = label, n_blocks
        if loop.resumed_from is not None and progress is not None:
            progress(
                f"{label}resumed from the checkpoint at step {loop.step} "
                f"({loop.n_active} of {n} lanes running)"
            )
        clock = ChunkClock()
        while True:
            clock.start()
            n_active, n_grok, n_run_after, left = hostloop.advance(self, loop, clock)
            if progress is not None:
                rate = (loop.executed - loop.executed0) / max(time.perf_counter() - loop.t0, 1e-9)
                progress(
                    f"{label}step {loop.step:>7d}  grokked {n_grok}/{n}  running {n_active}  "
                    f"{rate:,.0f} lane-steps/s  ETA <= {left / max(rate, 1e-9):,.0f}s"
                )
            if n_active == 0:
                clock.close()
                break
            hostloop.reschedule(self, loop, n_active, n_run_after)
            # Between chunks only: checkpoint (the state that the next chunk will consume) / stop.
            hostloop.checkpoint_or_stop(self, loop, checkpointer, should_stop)
        return hostloop.result(self, loop, grid, chunk_steps, clock.timing)

    def _program_cap(self, n: int, max_lanes, chunk_steps: int) -> int:
        """The most lanes in a program (``run``'s ``max_lanes``), a multiple of the device count
        (so every bucket stays shardable)."""
        ndev = len(self.devices)
        if max_lanes == "auto":  # only worth compiling the estimate for large lane counts
            max_lanes = (
                self.lanes_that_fit(chunk_steps=chunk_steps)
                if n > 64 * ndev or memory_budget() is not None
                else None
            )
        return bucket(n, ndev) if max_lanes is None else max(ndev, (int(max_lanes) // ndev) * ndev)
