"""The host loop's state book: what ``Engine.run`` records per lane between chunks (curves on
the step grid, latches, end steps, which lanes still run), kept on the device in the caller's
lane order, and the device programs that plan, update, refill and repack it, so that between
chunks the host reads a few scalars whatever the lane count."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from grokjax.lane import Latches, Metrics, Static, empty_latches, lane_end
from grokjax.protocol import HEADLINE

# Every per-lane scalar metric is recorded as a curve (group_norms separately, [lanes, S, G]).
CURVE_NAMES = tuple(f for f in Metrics._fields if f not in ("step", "group_norms"))


class Book(NamedTuple):
    """What the host loop records per lane, kept on the device in the caller's lane order."""

    curves: dict  # name -> [lanes, S] (group_norms [lanes, S, G]); NaN = not recorded
    latches: Latches  # [lanes, ...]: each lane's latches when it last ran
    lane_step: jax.Array  # int32 [lanes]: steps each lane has trained
    end: jax.Array  # int32 [lanes]: last step at which the lane may latch
    active: jax.Array  # bool [lanes]: still to run (waiting lanes too)


def fresh_book(static: Static, n: int, grid: np.ndarray, groups: int, budget) -> dict:
    """The host arrays of a book before any lane ran: nothing recorded, every lane active."""
    dtype = np.dtype(static.model.dtype)
    curves = {k: np.full((n, grid.size), np.nan, dtype) for k in CURVE_NAMES}
    curves["group_norms"] = np.full((n, grid.size, groups), np.nan, dtype)
    lat0 = jax.eval_shape(lambda: empty_latches(groups, dtype))
    return dict(
        curves=curves,
        # no events yet (-1 / NaN) for every lane, also those still waiting
        latches={
            k: np.full(
                (n,) + v.shape,
                -1 if np.issubdtype(v.dtype, np.integer) else np.nan,
                v.dtype,
            )
            for k, v in lat0._asdict().items()
        },
        lane_step=np.zeros(n),  # steps each lane has trained
        end=budget,  # per-lane end step (shrinks when a lane groks)
        active=np.ones(n, bool),
    )


def restored_book(host: dict, meta: dict, n: int) -> dict:
    """The host arrays of a book as a checkpoint stored them (``Engine._host_book``)."""
    return dict(
        curves={k: host["curves"][k] for k in (*CURVE_NAMES, "group_norms")},
        latches={k: host["latches"][k] for k in Latches._fields},
        lane_step=host.get("lane_step", np.full(n, meta["step"])),
        end=host["end"],
        active=host["active"].astype(bool),
    )


def device_book(book: dict, put: Callable) -> Book:
    """A book of host arrays as a ``Book`` placed by ``put`` (int32 steps, bool flags)."""
    return put(
        Book(
            {k: np.asarray(v) for k, v in book["curves"].items()},
            Latches(**{k: np.asarray(v) for k, v in book["latches"].items()}),
            np.asarray(book["lane_step"], np.int32),
            np.asarray(book["end"], np.int32),
            np.asarray(book["active"], bool),
        )
    )


class BookPrograms(NamedTuple):
    """The jitted device programs of the book (see ``book_programs``)."""

    gather_hp: Callable  # (hp_all, slots) -> the hyperparameters of the slots' lanes
    plan: Callable  # how far the next chunk may run, and which slots run
    update: Callable  # records, latches, end steps, finished lanes
    refill: Callable  # waiting lanes take freed slots
    repack: Callable  # the running lanes into a smaller program (a gather)


def book_programs(static: Static, init: Callable, lanes, rep) -> BookPrograms:
    """The book's device programs for ``static``'s lanes (``init``: one lane's initial state),
    with lane arrays on the sharding ``lanes`` and the book on ``rep`` (both None: one device)."""
    if rep is None:
        jit = lambda f, out, **kw: jax.jit(f, **kw)
    else:
        jit = lambda f, out, **kw: jax.jit(f, out_shardings=out, **kw)
    take = lambda tree, idx: jax.tree.map(lambda x: jnp.take(x, idx, axis=0), tree)

    def plan(book, slots, real, m_max):
        """[smallest steps left of a running slot, the k-th smallest (k: finishing lanes for a
        smaller bucket), running slots], and which slots run."""
        running = real & book.active[slots]
        left = jnp.where(running, book.end[slots] - book.lane_step[slots], 2**30)
        n_run = running.sum().astype(jnp.int32)
        k = n_run - jnp.clip(jnp.minimum(n_run - 1, m_max), 0)
        kth = jnp.sort(left)[jnp.clip(k - 1, 0, left.shape[0] - 1)]
        return jnp.stack([left.min(), kth, n_run]), running

    def update(book, lat, m, slot_step, slots, real, budget, grid):
        n = book.lane_step.shape[0]
        lane = jnp.where(real, slots, n)  # padding slots write nowhere (dropped)
        put = lambda whole, part: whole.at[lane].set(part, mode="drop")
        latches = jax.tree.map(put, book.latches, lat)
        lane_step = put(book.lane_step, slot_step)
        end_slot = lane_end(static, lat.t_grok[:, HEADLINE], budget[slots], jnp).astype(jnp.int32)
        end = put(book.end, end_slot)
        finished = (slot_step > end_slot) | (lat.diverged_step >= 0)
        active = book.active.at[jnp.where(real & finished, slots, n)].set(False, mode="drop")
        # Curves: eval points on the grid up to each lane's last step (its final end step, or
        # the step it diverged), so they do not depend on where chunks end.
        s = m.step
        gi = jnp.clip(jnp.searchsorted(grid, s), 0, grid.shape[0] - 1)
        last = jnp.where(lat.diverged_step >= 0, lat.diverged_step, end_slot)
        rec = real[None] & (s >= 0) & (grid[gi] == s) & (s <= last[None])
        row = jnp.where(rec, slots[None], n)
        curves = {k: v.at[row, gi].set(getattr(m, k), mode="drop") for k, v in book.curves.items()}
        new = Book(curves, latches, lane_step, end, active)
        left = jnp.where(active, jnp.maximum(end - lane_step, 0), 0).astype(jnp.float32).sum()
        summary = jnp.stack(
            [
                active.sum().astype(jnp.float32),
                (latches.t_grok[:, HEADLINE] >= 0).sum().astype(jnp.float32),
                (real & active[slots]).sum().astype(jnp.float32),
                left,
            ]
        )
        return new, summary

    def refill(state, book, slots, real, hp_all, queued, k, width):
        free = ~(real & book.active[slots])
        j = jnp.arange(width)
        idx = jnp.nonzero(free, size=width, fill_value=0)[0]
        into = jnp.where(j < k, idx, idx[k - 1])  # padding repeats the last pair
        new_lanes = queued + jnp.minimum(j, k - 1)
        new = jax.vmap(init)(take(hp_all, new_lanes))
        state = jax.tree.map(lambda x, y: x.at[into].set(y), state, new)
        slots, real = slots.at[into].set(new_lanes), real.at[into].set(True)
        return state, slots, real, take(hp_all, slots)

    def repack(state, book, slots, real, hp_all, size):
        keep = real & book.active[slots]
        n_keep = keep.sum()
        idx = jnp.nonzero(keep, size=size, fill_value=0)[0]
        sel = jnp.where(jnp.arange(size) < n_keep, idx, idx[0])
        slots = slots[sel]
        return take(state, sel), slots, jnp.arange(size) < n_keep, take(hp_all, slots)

    return BookPrograms(
        gather_hp=jit(take, lanes),
        plan=jit(plan, rep),
        update=jit(update, (rep, rep), donate_argnums=0),
        refill=jit(refill, (lanes, rep, rep, lanes), static_argnums=7, donate_argnums=0),
        repack=jit(repack, (lanes, rep, rep, lanes), static_argnums=5),
    )
