"""What the paper-MLP experiments share: the MLP protocol's configuration, held-norm step
budgets, the lane table, the free-then-clamp pair of phases and the per-cell summaries.

The phase driver and run-directory handling they run on are ``grokjax.experiment``; this module
is the application's, beside the experiments that use it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import numpy as np

from grokjax import cli, tables
from grokjax.experiment import BaseConfig, Phase, PhaseOutcome, positive


@dataclasses.dataclass
class MLPConfig(BaseConfig):
    """The paper's MLP protocol (p=59, d=128, H=256, fraction 0.4, AdamW lr 1e-3, wd 1)."""

    p: int = 59
    frac: float = 0.4
    d: int = 128
    hidden: int = 256
    seeds: int = 16
    lr: float = 1e-3
    wd: float = 1.0
    t_int: int = 500
    steps: int = 30_000  # step budget of a free lane

    def validate(self) -> None:
        validate_mlp(self, [self.p], self.lr)
        if self.steps < 1:
            raise cli.UsageError(f"--steps must be >= 1, got {self.steps}")
        if not 0 <= self.t_int < self.steps:
            raise cli.UsageError(f"t_int={self.t_int} is beyond the step budget ({self.steps})")
        BaseConfig.validate(self)


def validate_mlp(cfg, ps, lrs) -> None:
    """UsageError (one line) unless the MLP protocol fields of ``cfg`` make a run: every
    modulus in ``ps`` a valid task at ``cfg.op`` and ``cfg.frac``, seeds and widths >= 1,
    learning rates ``lrs`` positive, weight decay >= 0."""
    from grokjax.data import validate_task

    for p in ps:
        try:
            validate_task(p, cfg.op, cfg.frac)
        except ValueError as e:
            raise cli.UsageError(str(e)) from None
    if cfg.seeds < 1:
        raise cli.UsageError(f"--seeds must be >= 1, got {cfg.seeds}")
    if cfg.d < 1 or cfg.hidden < 1:
        raise cli.UsageError(f"--d and --hidden must be >= 1, got {cfg.d}, {cfg.hidden}")
    positive("lr", lrs)
    positive("wd", cfg.wd, allow_zero=True)


class RhoBudgets:
    """For configurations with ``budget_rho`` / ``budget_steps`` (a clamped lane's step budget,
    log-linear in its held norm rho) and ``t_int``."""

    REPEATABLE = ("budget_steps",)  # paired with budget_rho: two held norms may share a budget

    def budget(self, rho: float) -> int:
        return interp_budget(rho, self.budget_rho, self.budget_steps)

    def validate_budgets(self) -> None:
        if len(self.budget_rho) != len(self.budget_steps) or not self.budget_rho:
            raise cli.UsageError("--budget-rho and --budget-steps must have the same length")
        positive("budget-rho", self.budget_rho)
        positive("budget-steps", self.budget_steps)

    def check_t_int(self, rhos) -> None:
        """UsageError unless t_int comes before the budget of every held norm in ``rhos``."""
        if self.t_int >= min(self.budget(r) for r in rhos):
            raise cli.UsageError(f"t_int={self.t_int} is beyond the step budget")


@dataclasses.dataclass
class FixedWc:
    """For configurations with ``fixed_wc``: > 0 holds the clamps (and rescales) at
    rho·fixed_wc instead of rho times the W_c of the run's own reference controls, which are
    still run and reported. The paper's rho × lr matrix and controls held 54.6; runs split into
    seed blocks that hold one fixed W_c are pooled by the report (``runs.POOL_AXES``)."""

    fixed_wc: float = 0.0

    def validate_fixed_wc(self) -> None:
        positive("fixed-wc", self.fixed_wc, allow_zero=True)

    def held_wc(self, measured: float, tag: str) -> float:
        """The W_c the clamps hold rho times: ``fixed_wc`` where set (said under ``[tag]``),
        else the ``measured`` one."""
        if not self.fixed_wc:
            return measured
        print(f"[{tag}] held norms target rho × the fixed W_c = {self.fixed_wc:g}", flush=True)
        return self.fixed_wc


def mlp_static(cfg, p: int | None = None, frac: float | None = None, kind: str = "mlp"):
    """The engine's Static for the model of ``cfg`` (the MLP unless ``kind`` says otherwise) at
    modulus ``p`` and train fraction ``frac``."""
    from grokjax.lane import Static
    from grokjax.models import ModelSpec

    p = cfg.p if p is None else p
    frac = cfg.frac if frac is None else frac
    return Static(
        model=ModelSpec(kind=kind, p=int(p), d=cfg.d, hidden=cfg.hidden, dtype=cfg.dtype),
        op=cfg.op,
        frac=float(frac),
        **cfg.static_kwargs(),
    )


def lane_table(cfg, lanes: list[dict]) -> dict:
    """Per-lane columns from one dict per lane, with the settings a lane does not give taken
    from the lane schema's defaults (:func:`grokjax.schema.setting_defaults`: free, continuous
    clamps over all groups, the configuration's p, lr, wd, frac, dtype and step budget). A
    setting without a value is refused unless the schema says what its empty cell means (a
    parity lane has no p and no frac)."""
    from grokjax import schema

    defaults = schema.setting_defaults(cfg)
    rows = [{**defaults, **r} for r in lanes]
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows]
        if any(v is None for v in vals):
            declared = schema.column(k)
            if declared is None or not declared.empty or any(v is not None for v in vals):
                raise ValueError(f"lane column {k!r} has no value for some lanes")
        out[k] = np.array(vals, dtype=object) if isinstance(vals[0], str) else np.array(vals)
    return out


def held(rho: float, wc: float, t_int: int, arm: str = "clamp") -> dict:
    """The settings of a lane whose weight norm is held at ``rho·wc`` after every step from
    ``t_int`` on (a continuous clamp), for the lane dicts of :func:`lane_table`."""
    return dict(rho=rho, target_norm=rho * wc, arm=arm, t_int=t_int, clamp_mode="continuous")


def reference_norm(outcome: PhaseOutcome, keep=lambda r: True) -> tuple[float | None, int]:
    """(median norm_at_grok over the grokked, not diverged rows that ``keep``, count)."""
    ref = [
        r["norm_at_grok"] for r in outcome.rows if r["grokked"] and not r["diverged"] and keep(r)
    ]
    return (float(np.median(ref)) if ref else None), len(ref)


def cell_times(lanes: dict, sel: np.ndarray, n_boot: int = 500) -> dict:
    """:func:`grokjax.measures.cell_times` of the selected lanes of a lanes dict."""
    from grokjax import measures

    return measures.cell_times(measures.as_run(lanes), sel, n_boot)


# how an experiment's summary writes a number: the report's fmt with a format string,
# "n/a" for None (fmt(v, "{:.2f}"))
fmt = functools.partial(tables.fmt, missing="n/a")


def interp_budget(rho: float, rhos, steps) -> int:
    """Step budget at held norm ``rho``: log-linear in rho through (rhos, steps), flat beyond
    the ends, rounded up to 100 steps."""
    order = np.argsort(rhos)
    x = np.asarray(rhos, float)[order]
    y = np.log(np.asarray(steps, float)[order])
    # (the 1e-9 keeps exp(log(b)) = b·(1 + ε) from rounding a budget of b up by 100 steps)
    return int(math.ceil(math.exp(float(np.interp(rho, x, y))) / 100 - 1e-9) * 100)


def free_then_clamp(
    cfg,
    static,
    free_rows: list,
    clamp_rows: Callable,
    *,
    prefix: str = "",
    ref=lambda r: True,
    table: Callable | None = None,
):
    """The usual pair of phases (use with ``yield from``): free controls, then the lanes that
    ``clamp_rows(wc)`` builds from W_c = median norm at T_grok of the grokked free rows that
    ``ref`` selects. ``table(rows)`` makes a phase's lane table from what the row builders give
    (default :func:`lane_table` over one dict per lane). Returns (free outcome, clamp outcome or
    None, wc)."""
    table = table or (lambda rows: lane_table(cfg, rows))
    free = yield Phase(f"{prefix}free", static, table(free_rows), f"[{prefix}free] ")
    wc, n = reference_norm(free, ref)
    if wc is None:
        print(
            f"[{prefix}free] no reference control grokked within its budget: W_c unknown, "
            f"skipping the clamped lanes",
            flush=True,
        )
        return free, None, None
    print(f"[{prefix}free] W_c = {wc:.3f} from {n} free controls", flush=True)
    clamp = yield Phase(f"{prefix}clamp", static, table(clamp_rows(wc)), f"[{prefix}clamp] ")
    return free, clamp, wc
