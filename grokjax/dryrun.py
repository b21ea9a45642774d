"""The dry run before any work: the plan walked with made-up outcomes, every phase's program,
lane columns and memory checked (``check_plan``)."""

from __future__ import annotations

import math

import numpy as np

from grokjax import cli
from grokjax.config import MAX_STEPS, Spec
from grokjax.phases import PhaseOutcome, group_mask
from grokjax.protocol import GRID_POINTS

MAX_LANES = 1_000_000
MAX_PROGRAMS = 100  # distinct models / tasks in one run (the paper's presets compile at most 34)


class _DryResult:
    """Stands in for a phase's RunResult in ``check_plan``."""

    def __init__(self, groups: tuple, n: int):
        self.groups, self.n = tuple(groups), n
        self.grid, self.curves, self.latches, self.stats = np.zeros(0, int), {}, {}, {}
        self.steps_run = np.zeros(n, int)


class _DryOutcome(PhaseOutcome):
    """A made-up outcome in which every lane grokked half-way through its budget with norm
    1 everywhere: enough for a plan to build its later phases."""

    def at_step(self, curve: str, step: int) -> np.ndarray:
        n, g = self.result.n, len(self.result.groups)
        return np.ones((n, g)) if curve == "group_norms" else np.ones(n)


def _dry_outcome(phase, groups: tuple) -> _DryOutcome:
    """Each lane's settings from the phase's table with the lane schema's made-up outcome
    (:func:`grokjax.schema.dry_outcome`): the columns a real run writes."""
    from grokjax import schema

    meta = phase.meta
    n = len(meta["seed"])
    rows = []
    for i in range(n):
        r = {k: (v[i] if isinstance(v, (list, tuple, np.ndarray)) else v) for k, v in meta.items()}
        r = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
        r.update(lane=i, **schema.dry_outcome(r.get("budget"), groups))
        rows.append(r)
    return _DryOutcome(rows, _DryResult(groups, n))


def _lane_where(meta: dict, i: int) -> str:
    """'p=59, rho=5' for lane ``i``: the columns that say which cell a lane is in."""
    parts = []
    for k in ("p", "n_bits", "arm", "rho", "lr", "wd", "frac", "n_train", "cell"):
        if k in meta:
            v = meta[k][i]
            v = v.item() if isinstance(v, np.generic) else v
            if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
                continue
            parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def _check_column(name: str, meta: dict, key: str, lo: int, hi: int, what: str) -> None:
    if key not in meta:
        return
    col = np.asarray(meta[key], dtype=float)
    bad = np.flatnonzero(~((col >= lo) & (col <= hi)))
    if bad.size:
        i = int(bad[0])
        raise cli.UsageError(
            f"phase {name}: a lane's {what} is {col[i]:.6g} "
            f"({_lane_where(meta, i)}); it must lie in [{lo:,}, {hi:,}]"
            + (
                " (the engine counts steps in int32): lower --rho, --steps or the step budgets"
                if hi == MAX_STEPS and col[i] > hi
                else ""
            )
        )


FLOAT_LIMIT = 1e30  # a lane's float hyperparameters are float32 on device (max 3.4e38)


def _check_float_column(name: str, meta: dict, key: str, what: str, dtype: str = "float32") -> None:
    """UsageError unless every value of the column is finite, at most ``FLOAT_LIMIT`` in size
    and, unless 0, representable in ``dtype`` (a learning rate of 1e-300 is 0 in float32: it
    would train nothing, and a held norm that small would mean no clamp)."""
    if key not in meta:
        return
    col = np.asarray(meta[key], dtype=float)
    bad = np.flatnonzero(~(np.isfinite(col) & (np.abs(col) <= FLOAT_LIMIT)))
    if bad.size:
        i = int(bad[0])
        raise cli.UsageError(
            f"phase {name}: a lane's {what} is {col[i]:.6g} "
            f"({_lane_where(meta, i)}); it must be finite and at most "
            f"{FLOAT_LIMIT:g} in size (lanes compute in float32)"
        )
    tiny = float(np.finfo(dtype).tiny)
    bad = np.flatnonzero((col != 0) & (np.abs(col) < tiny))
    if bad.size:
        i = int(bad[0])
        raise cli.UsageError(
            f"phase {name}: a lane's {what} is {col[i]:.6g} "
            f"({_lane_where(meta, i)}); it rounds to 0 in {dtype} (the smallest normal "
            f"{dtype} is {tiny:.3g})"
        )


def static_memory(static, lanes: int = 1) -> dict:
    """A rough estimate of the memory of one lane of ``static``'s program and of the host
    arrays (curves, latches) of ``lanes`` lanes, in bytes (``memory.static_memory``)."""
    from grokjax import memory

    return memory.static_memory(static, lanes, GRID_POINTS)


def check_plan(spec: Spec, cfg, max_phases: int = 10_000) -> list:
    """Everything that needs the model, checked before anything is written: walks the plan
    with made-up outcomes (every lane groks) and checks every phase's ``Static`` (model,
    widths, task), its lane columns (seeds, step budgets, t_int, clamp durations within what
    the engine counts, known parameter groups), the lane count and a memory estimate.
    Returns the phases seen. UsageError (one line) on the first problem."""
    import contextlib
    import io
    from grokjax import lane, memory
    from grokjax.protocol import FOREVER

    phases, lanes, seen = [], 0, set()
    gen = spec.plan(cfg)
    sent = None
    with contextlib.redirect_stdout(io.StringIO()):
        while len(phases) < max_phases:
            try:
                phase = gen.send(sent) if sent is not None else next(gen)
            except StopIteration:
                break
            except cli.UsageError:
                raise
            except (ValueError, TypeError, ArithmeticError) as e:
                raise cli.UsageError(f"invalid configuration: {e}") from None
            except Exception:  # noqa: BLE001 -- the made-up outcome lacks what the plan reads:
                break  # what was checked so far stands, the run checks the rest
            name, static, meta = phase.name, phase.static, phase.meta
            try:
                static.validate()
            except ValueError as e:
                raise cli.UsageError(f"{e} (phase {name})") from None
            n = len(meta["seed"])
            lanes += n
            if lanes > MAX_LANES:
                raise cli.UsageError(
                    f"the run would have more than {MAX_LANES:,} lanes "
                    f"({lanes:,} by phase {name}); lower --seeds or the grid"
                )
            _check_column(name, meta, "seed", 0, cli.INT32_MAX, "seed")
            _check_column(name, meta, "budget", 1, MAX_STEPS, "step budget")
            _check_column(name, meta, "t_int", 0, MAX_STEPS, "t_int")
            _check_column(name, meta, "clamp_steps", 0, FOREVER, "clamp duration")
            for key, what in (
                ("lr", "learning rate"),
                ("wd", "weight decay"),
                ("target_norm", "held norm"),
                ("init_scale", "initial scale"),
            ):
                _check_float_column(name, meta, key, what, cfg.dtype)
            groups = lane.model_of(static).groups
            if "clamp_group" in meta:
                group_mask(groups, meta["clamp_group"])
            if static not in seen:
                seen.add(static)
                if len(seen) > MAX_PROGRAMS:
                    raise cli.UsageError(
                        f"the run would compile more than {MAX_PROGRAMS} programs (one per "
                        f"model and task; {len(seen)} by phase {name}), minutes of compiling "
                        f"before any training; run fewer list values at a time"
                    )
                try:
                    mem = static_memory(static, n)
                    memory.check_fits(
                        mem["total"],
                        f"one lane of phase {name} (model "
                        f"{static.model.kind}, p={static.model.p}; its data table "
                        f"{memory.fmt_bytes(mem['table'])})",
                    )
                    memory.check_fits(mem["host"], f"the curves of the {n:,} lanes of phase {name}")
                except ValueError as e:
                    raise cli.UsageError(str(e)) from None
            phases.append(phase)
            sent = _dry_outcome(phase, groups)
    gen.close()
    return phases
