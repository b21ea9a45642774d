"""Phases: one grid of lanes run by one program, resumable from its phase file or checkpoints.

Per-lane metadata columns understood by :func:`phase_hparams` (others are only written to
``lanes.csv``): ``seed``, ``lr``, ``wd``, ``target_norm`` (0 = free), ``t_int``, ``budget``,
``init_scale``, optional ``clamp_steps`` (default continuous) and optional ``clamp_group``
(``"all"`` or one parameter-group name: the group(s) the clamp and the headline norm cover).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from grokjax import cli
from grokjax.config import RunOptions
from grokjax.protocol import GRID_POINTS


@dataclasses.dataclass
class Phase:
    """One grid of lanes run by one program: ``meta`` holds per-lane columns (equal length)."""

    name: str
    static: Any
    meta: dict
    label: str = ""
    record: bool = True  # False: an auxiliary phase, kept out of lanes.csv and curves.npz


@dataclasses.dataclass
class PhaseOutcome:
    """What the plan gets back for a phase: its lane rows (as in lanes.csv) and the result."""

    rows: list
    result: Any

    def column(self, key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in self.rows], float)

    def at_step(self, curve: str, step: int) -> np.ndarray:
        """A curve's values at ``step`` per lane (the step must be on the recorded grid)."""
        grid = np.asarray(self.result.grid)
        hit = np.flatnonzero(grid == step)
        if hit.size == 0:
            raise ValueError(f"step {step} is not on the recorded step grid")
        return np.asarray(self.result.curves[curve])[:, hit[0]]


def group_mask(groups: tuple, names) -> np.ndarray:
    """bool [lanes, G]: ``"all"`` or one group name per lane."""
    names = list(names)
    out = np.ones((len(names), len(groups)), bool)
    for i, g in enumerate(names):
        if g in (None, "", "all"):
            continue
        if g not in groups:
            raise cli.UsageError(
                f"unknown parameter group {g!r}; choose all or one of {', '.join(groups)}"
            )
        out[i] = [x == g for x in groups]
    return out


def phase_hparams(engine, meta: dict, cfg):
    """``LaneHParams`` of a phase's metadata table (see the module docstring)."""
    from grokjax.lane import make_hparams
    from grokjax.protocol import FOREVER

    n = len(meta["seed"])
    kw = {}
    if "clamp_steps" in meta:
        kw["clamp_steps"] = meta["clamp_steps"]
    if "clamp_group" in meta:
        kw["groups"] = group_mask(engine.fns.groups, meta["clamp_group"])
    kw.setdefault("clamp_steps", np.full(n, FOREVER))
    return make_hparams(
        len(engine.fns.groups),
        seed=meta["seed"],
        lr=meta["lr"],
        wd=meta["wd"],
        target_norm=meta["target_norm"],
        t_int=meta["t_int"],
        budget=meta["budget"],
        init_scale=meta["init_scale"],
        dtype=np.float64 if cfg.dtype == "float64" else np.float32,
        **kw,
    )


def run_phase(
    engine,
    meta: dict,
    cfg,
    label: str,
    *,
    name: str | None = None,
    opts: RunOptions | None = None,
    should_stop=None,
    writer: bool = True,
):
    """Runs one phase; with ``name`` it is resumable: a finished phase is loaded from
    ``<out>/phases/<name>.npz`` and an unfinished one continues from its newest checkpoint."""
    from grokjax import checkpoint, results
    from grokjax.engine import run_fingerprint

    hp = phase_hparams(engine, meta, cfg)
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if name is None:
        return engine.run(
            hp,
            chunk_steps=cfg.chunk_steps,
            grid_points=GRID_POINTS,
            label=label,
            progress=progress,
            should_stop=should_stop,
        )
    opts = opts or RunOptions()
    path = os.path.join(cfg.out, "phases", f"{name}.npz")
    fingerprint = run_fingerprint(engine.static, hp, cfg.chunk_steps, GRID_POINTS, True)
    if os.path.exists(path):
        try:
            res = results.load_run_result(path)
        except Exception as e:  # noqa: BLE001 -- a damaged phase file is recomputed
            print(
                f"{label}{path} is unreadable ({type(e).__name__}: {e}); running the phase again",
                flush=True,
            )
        else:
            if res.stats.get("fingerprint") != fingerprint:
                raise cli.UsageError(
                    f"{path} was written for other lanes (code or config "
                    f"changed); {opts.restart_hint}"
                )
            print(f"{label}finished earlier: loaded {path}", flush=True)
            res.stats["loaded"] = True
            stale = os.path.join(cfg.out, "checkpoints", name)
            if writer and os.path.isdir(stale):  # killed between saving the phase and cleanup
                checkpoint.LaneCheckpointer(stale, log=None).discard()
            return res
    ck = checkpoint.LaneCheckpointer(
        os.path.join(cfg.out, "checkpoints", name), opts.policy(), log=progress
    )
    try:
        res = engine.run(
            hp,
            chunk_steps=cfg.chunk_steps,
            grid_points=GRID_POINTS,
            label=label,
            progress=progress,
            checkpointer=ck,
            should_stop=should_stop,
        )
    except checkpoint.CheckpointMismatch as e:
        raise cli.UsageError(f"{e}; {opts.restart_hint}") from None
    finally:
        ck.close()
    if writer:
        results.save_run_result(path, res)
        ck.discard()  # the phase file now holds everything its checkpoints did
    return res
