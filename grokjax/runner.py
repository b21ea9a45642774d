"""The host loop: jit the vmapped lane chunk, drive it, record, repack, stop.

``Engine(static).run(hp)`` advances every lane ``chunk_steps`` at a time with no host round
trip inside a chunk. Between chunks it records trajectories on a geometric step grid, prints a
progress line, moves the lanes still running into a smaller program when enough have finished
(power-of-two buckets, so recompiles are few) and stops when every lane is done. The lane axis
is sharded over the local devices (padded to a multiple of their count).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import jax
import numpy as np

from grokjax.engine import HEADLINE, LaneHParams, Static, lane_end, make_lane_fns

@dataclasses.dataclass
class RunResult:
  """Host copies of every lane's outcome, indexed by the caller's lane order."""

  latches: dict          # name -> np.ndarray [lanes, ...]
  steps_run: np.ndarray  # steps each lane was trained when it left the program
  grid: np.ndarray       # [S] steps at which curves are recorded
  curves: dict           # name -> np.ndarray [lanes, S] (NaN where not recorded)
  groups: tuple
  stats: dict            # wall time, lane-steps executed/needed, compiles, ...


def step_grid(max_steps: int, eval_every: int, points: int = 120) -> np.ndarray:
  """A geometric grid of eval steps from 0 to max_steps (multiples of eval_every)."""
  g = np.geomspace(eval_every, max(max_steps, eval_every), points)
  g = np.unique(np.round(g / eval_every).astype(np.int64) * eval_every)
  return np.concatenate([[0], g])


def _bucket(n: int, multiple: int) -> int:
  """Smallest power of two >= n, rounded up to a multiple of the device count."""
  b = 1 << max(0, math.ceil(math.log2(max(n, 1))))
  return int(math.ceil(b / multiple) * multiple)


class Engine:
  """Jitted, vmapped lane programs for one ``Static`` (compiled once per lane bucket)."""

  def __init__(self, static: Static, devices=None):
    self.static = static
    self.fns = make_lane_fns(static)
    self.devices = list(devices if devices is not None else jax.local_devices())
    self._init = jax.jit(jax.vmap(self.fns.init))
    chunk = self.fns.chunk
    self._chunk = jax.jit(
        lambda state, hp, n_blocks: jax.vmap(
            lambda s, h: chunk(s, h, n_blocks), out_axes=(0, 1))(state, hp),
        static_argnums=2, donate_argnums=0)
    if len(self.devices) > 1:
      mesh = jax.sharding.Mesh(np.array(self.devices), ("lanes",))
      self._sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("lanes"))
    else:
      self._sharding = None

  def _put(self, tree):
    if self._sharding is None:
      return jax.device_put(tree, self.devices[0])
    return jax.device_put(tree, self._sharding)

  def init(self, hp: LaneHParams) -> LaneState:
    return self._init(self._put(hp))

  def chunk(self, state: LaneState, hp, n_blocks: int):
    return self._chunk(state, hp, n_blocks)

  def run(self, hp: LaneHParams, *, chunk_steps: int = 500, grid_points: int = 120,
          repack: bool = True, progress: Callable | None = print,
          label: str = "") -> RunResult:
    """Trains every lane until it has grokked (plus a margin), diverged or hit its budget.

    Args:
      hp: per-lane hyperparameters (numpy arrays, one row per lane).
      chunk_steps: steps per jitted call (rounded to a multiple of eval_every).
      grid_points: size of the geometric step grid on which curves are recorded.
      repack: move the lanes still running into a smaller program (power-of-two bucket
        sizes) when enough have finished. Results do not depend on it: a lane latches
        only up to its own end step (``lane_end``).
      progress: called with one line per chunk (None for silence).

    Returns:
      A ``RunResult`` in the order of ``hp``'s lanes.
    """
    static = self.static
    ev = static.eval_every
    n_blocks = max(1, chunk_steps // ev)
    chunk_steps = n_blocks * ev
    hp = LaneHParams(*[np.asarray(x) for x in hp])
    n = hp.seed.shape[0]
    if n == 0:
      raise ValueError("no lanes to run")
    budget = hp.budget.astype(np.int64)
    grid = step_grid(int(budget.max()), ev, grid_points)
    grid_pos = {int(s): i for i, s in enumerate(grid)}
    G = len(self.fns.groups)
    curve_names = ("train_loss", "train_acc", "test_loss", "test_acc", "norm", "collapse")
    curves = {k: np.full((n, grid.size), np.nan, np.float32) for k in curve_names}
    curves["group_norms"] = np.full((n, grid.size, G), np.nan, np.float32)
    latches_out: dict | None = None
    end = budget.copy()           # per-lane end step (shrinks when a lane groks)
    active = np.ones(n, bool)
    ndev = len(self.devices)
    take = lambda tree, idx: jax.tree.map(lambda x: np.asarray(x)[idx], tree)

    size = _bucket(n, ndev) if repack else -(-n // ndev) * ndev
    slots = np.concatenate([np.arange(n), np.zeros(size - n, np.int64)])  # slot -> lane
    real = np.arange(size) < n                                            # padding slots
    hp_dev = self._put(take(hp, slots))
    state = self._init(hp_dev)
    t0 = time.perf_counter()
    executed, step, shapes = 0, 0, set()
    while True:
      shapes.add(size)
      state, m = self._chunk(state, hp_dev, n_blocks)
      step += chunk_steps
      executed += chunk_steps * int(real.sum())
      lat, m = jax.device_get((state.latches, m))
      here = slots[real]
      # Curves: eval points on the grid, up to each lane's end step.
      for bi in range(n_blocks):
        s = int(m.step[bi, 0])
        gi = grid_pos.get(s)
        if gi is None:
          continue
        rec = real & (s <= end[slots])
        for k in curve_names:
          curves[k][slots[rec], gi] = getattr(m, k)[bi][rec]
        curves["group_norms"][slots[rec], gi] = m.group_norms[bi][rec]
      if latches_out is None:
        latches_out = {k: np.zeros((n,) + np.shape(v)[1:], np.asarray(v).dtype)
                       for k, v in lat._asdict().items()}
      for k, v in lat._asdict().items():
        latches_out[k][here] = np.asarray(v)[real]
      end[here] = lane_end(static, lat.t_grok[real, HEADLINE].astype(np.int64), budget[here])
      finished = (step > end[here]) | (lat.diverged_step[real] >= 0)
      active[here[finished]] = False
      n_active = int(active.sum())
      if progress is not None:
        rate = executed / max(time.perf_counter() - t0, 1e-9)
        n_grok = int((latches_out["t_grok"][:, HEADLINE] >= 0).sum())
        left = int(np.sum(np.maximum(end[active] - step, 0)))
        progress(f"{label}step {step:>7d}  grokked {n_grok}/{n}  running {n_active}  "
                 f"{rate:,.0f} lane-steps/s  ETA <= {left / rate:,.0f}s")
      if n_active == 0:
        break
      if repack and _bucket(n_active, ndev) < size:
        keep = np.flatnonzero(real & active[slots])
        size = _bucket(n_active, ndev)
        sel = np.concatenate([keep, np.full(size - keep.size, keep[0])])
        state = self._put(take(state, sel))
        slots, real = slots[sel], np.arange(size) < keep.size
        hp_dev = self._put(take(hp, slots))

    diverged = latches_out["diverged_step"] >= 0
    steps_run = np.where(diverged, latches_out["diverged_step"], end).astype(np.int64)
    stats = dict(wall_s=time.perf_counter() - t0, lane_steps_executed=executed,
                 lane_steps_needed=int(steps_run.sum()), programs=sorted(shapes),
                 chunk_steps=chunk_steps, lanes=n)
    return RunResult(latches_out, steps_run, grid, curves, self.fns.groups, stats)
