"""The weight-norm grokking delay law: T_grok ∝ exp(alpha·rho) when ||W|| is held at rho·Wc.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.delay_sweep                   # preset quick (default)
    python -m experiments.delay_sweep --preset paper    # the paper's multi-p scan (GPU)
    python -m experiments.delay_sweep --help

Per modulus p: (1) free controls over the seeds give Wc = median ||W|| at T_grok and its CV;
(2) matched clamped lanes (same seeds, hence same init and split) hold ||W|| at rho·Wc from
t_int on; (3) log T_grok = alpha·rho + c is fitted per p and with one shared alpha; (4) the run
directory gets config.json, lanes.csv, curves.npz, fit.json and delay_law.png.

Presets (cost measured on the 2-core CPU of the CI machine unless stated):
  quick  the paper's own protocol at p=59 (MLP d=128, H=256, fraction 0.4, lr 1e-3, wd 1,
         t_int 500), 4 seeds, rho in {0.85, 0.95, 1.05}: a few CPU minutes. Expected:
         Wc ≈ 54.6 with CV ~1 %, T_grok rising ~exp(7.5·rho), alpha ≈ 7.5.
  paper  p in {31, 41, 53, 59, 71}, rho in {0.85, 1.00, 1.15} plus rho 1.30 at p = 41 and 59
         (reported against the law's extrapolation, not fitted), 12 seeds (0-11), budgets
         15k/25k/80k/160k steps (× max(1, p/59)); 264 lanes, expected ~4 M lane-steps (bound
         12.9 M; `reproduce --list`). Paper: alpha ≈ 7.5 shared, R² 0.996; at p=59 Wc ≈ 54.6
         and median T_grok ≈ 1.5k / 4.1k / 13.4k / 27.9k; T_grok against the held norm itself
         collapses across p (R² 0.988); ||E|| at grokking ∝ p^0.47 beside Wc ∝ p^0.44.
  tiny   a seconds-long smoke test on a small model (p=31, d=64, H=128, fraction 0.7,
         lr 1e-2, t_int 50): free lanes grok in ~300 steps. Not the paper's regime; it checks
         that every stage runs and writes its files.

Stopping and resuming. The job runs in phases (per p: free controls, then clamped lanes);
each finished phase is stored in ``<out>/phases/`` and the phase in progress is checkpointed
with Orbax in ``<out>/checkpoints/<phase>/`` between chunks (every --checkpoint-minutes, or
every --checkpoint-every-chunks chunks). SIGTERM or Ctrl-C finishes the current chunk, writes
a checkpoint and exits with 143 / 130; a SIGKILL loses at most the work since the last
checkpoint. Rerunning the same command continues (same lanes.csv and fit.json as an
uninterrupted run on the same machine); --fresh moves the old directory aside to
``<out>.old-<time>`` and starts over. A directory written by another configuration is refused.

Several hosts: set GROKJAX_DISTRIBUTED=1 (or the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
JAX_PROCESS_ID variables) and start the same command on every host with --out on a shared
file system. Every process runs all lanes over its local devices; process 0 alone writes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys

import numpy as np

from grokjax import api, cli, experiment, registry

from experiments import common

CONFIG_FORMAT = 2  # bump when config.json or the run directory layout changes meaning
PAPER_BUDGETS = {0.85: 15_000, 1.00: 25_000, 1.15: 80_000, 1.30: 160_000}  # at p <= 59

PRESETS = {
    "quick": dict(
        p=[59],
        rho=[0.85, 0.95, 1.05],
        seeds=4,
        lr=[1e-3],
        wd=1.0,
        frac=0.4,
        model="mlp",
        d=128,
        hidden=256,
        t_int=500,
        steps=None,
    ),
    "paper": dict(
        p=[31, 41, 53, 59, 71],
        rho=[0.85, 1.00, 1.15],
        seeds=12,
        lr=[1e-3],
        wd=1.0,
        frac=0.4,
        model="mlp",
        d=128,
        hidden=256,
        t_int=500,
        steps=None,
        extra_rho=[1.30],
        extra_rho_p=[41, 59],
        seed_base=0,
    ),
    "tiny": dict(
        p=[31],
        rho=[0.9, 1.0, 1.1],
        seeds=2,
        lr=[1e-2],
        wd=1.0,
        frac=0.7,
        model="mlp",
        d=64,
        hidden=128,
        t_int=50,
        steps=3000,
    ),
}


@dataclasses.dataclass
class SweepConfig(experiment.BaseConfig):
    """Everything that determines the results (stored as ``config.json``)."""

    experiment: str = "delay_sweep"
    config_format: int = CONFIG_FORMAT
    preset: str = "quick"
    p: list[int] = dataclasses.field(default_factory=lambda: [59])
    rho: list[float] = dataclasses.field(default_factory=lambda: [0.85, 0.95, 1.05])
    lr: list[float] = dataclasses.field(default_factory=lambda: [1e-3])
    wd: float = 1.0
    seeds: int = 4
    steps: int | None = None  # one budget for every lane; None = the rho-dependent default
    frac: float = 0.4
    model: str = "mlp"
    d: int = 128
    hidden: int = 256
    t_int: int = 500
    # held norms run only at the moduli in extra_rho_p, beside rho and outside the fitted law
    # (the paper's rho = 1.30 saturation cells at p = 41 and 59)
    extra_rho: list[float] = dataclasses.field(default_factory=list)
    extra_rho_p: list[int] = dataclasses.field(default_factory=list)

    CHOICES = {"model": ("mlp", "attn")}
    # (a subset of the moduli is fine: the paper preset run at --p 59 alone keeps its rho 1.30
    # cells there; extra cells at none of them would silently not run)
    MEMBERS = (("extra_rho_p", "p", "extra_rho"),)

    def rhos_at(self, p: int) -> list:
        """The held norms of the clamped lanes at modulus ``p``: rho, then the extras."""
        extra = [r for r in self.extra_rho if p in self.extra_rho_p and r not in self.rho]
        return list(self.rho) + extra

    def validate(self) -> None:
        from grokjax.models import MODELS

        if not self.p:
            raise cli.UsageError("--p: empty list of moduli")
        if not self.rho:
            raise cli.UsageError("--rho: empty list of held norms")
        if not self.lr:
            raise cli.UsageError("--lr: empty list of learning rates")
        common.validate_mlp(self, self.p, self.lr)
        experiment.positive("rho", self.rho)
        if self.extra_rho:
            experiment.positive("extra-rho", self.extra_rho)
        if self.steps is not None and self.steps < 1:
            raise cli.UsageError(f"--steps must be >= 1, got {self.steps}")
        if self.model not in MODELS:
            raise cli.UsageError(f"unknown --model {self.model!r}; choose one of {MODELS}")
        if self.t_int < 0:
            raise cli.UsageError(f"--t-int must be >= 0, got {self.t_int}")
        if self.t_int >= min(self.budget(r, p) for r in self.rho for p in self.p):
            raise cli.UsageError(f"t_int={self.t_int} is beyond the step budget")
        experiment.BaseConfig.validate(self)

    def budget(self, rho: float | None, p: int) -> int:
        """Step budget of a lane: --steps, else the paper's budgets interpolated
        log-linearly in rho (free lanes get the rho=1 budget), scaled by max(1, p/59)."""
        if self.steps is not None:
            return int(self.steps)
        xs = sorted(PAPER_BUDGETS)
        r = 1.0 if rho is None else rho
        logb = np.interp(r, xs, np.log([PAPER_BUDGETS[x] for x in xs]))
        if r > xs[-1]:  # extrapolate with the last segment's slope
            slope = (math.log(PAPER_BUDGETS[xs[-1]]) - math.log(PAPER_BUDGETS[xs[-2]])) / (
                xs[-1] - xs[-2]
            )
            logb = math.log(PAPER_BUDGETS[xs[-1]]) + slope * (r - xs[-1])
        # (a far extrapolation stays a finite, huge int: experiment.check_plan refuses budgets
        # beyond what the engine counts, naming the cell, instead of an OverflowError here)
        return int(round(math.exp(min(float(logb), 600.0)) * max(1.0, p / 59) / 100) * 100)


def add_arguments(ap) -> None:
    """The configuration's flags (experiment.field_arguments), with their help."""
    from grokjax.models import MODELS

    helps = dict(
        p="moduli, comma-separated (e.g. 41,59)",
        rho="held norms in units of Wc, comma-separated",
        lr="learning rates, comma-separated",
        wd="AdamW decoupled weight decay",
        seeds="seeds per cell",
        steps="step budget for every lane",
        frac="train fraction in (0, 1)",
        model=f"one of {', '.join(MODELS)}",
        d="embedding width",
        hidden="hidden (MLP) width",
        t_int="first clamped step",
        extra_rho="held norms run only at the --extra-rho-p moduli, outside the fit "
        "(paper preset: 1.30)",
        extra_rho_p="moduli that also run --extra-rho (paper preset: 41,59)",
    )
    experiment.field_arguments(SweepConfig, helps)(ap)


def lane_table(cfg: SweepConfig, p: int, arm: str, wc: float | None) -> dict:
    """Per-lane metadata of one phase at one p: free controls, or clamps at rho·Wc (the
    standard settings of the lane schema, the rest at their defaults)."""
    from grokjax import schema

    seeds = np.array(cfg.seed_range())
    if arm == "free":
        grid = [(lr, None) for lr in cfg.lr]
    else:
        grid = [(lr, rho) for lr in cfg.lr for rho in cfg.rhos_at(p)]
    rows = [(s, lr, rho) for lr, rho in grid for s in seeds]
    rho = np.array([np.nan if r[2] is None else r[2] for r in rows], float)
    return schema.standard_settings(
        cfg,
        len(rows),
        p=p,
        seed=np.array([r[0] for r in rows]),
        arm=arm,
        rho=rho,
        target_norm=np.zeros(len(rows)) if arm == "free" else rho * wc,
        lr=np.array([r[1] for r in rows], float),
        t_int=cfg.t_int if arm == "clamp" else 0,
        clamp_mode="continuous" if arm == "clamp" else "none",
        model=cfg.model,
        budget=np.array([cfg.budget(None if np.isnan(r) else r, p) for r in rho]),
    )


def fit_sweep(lanes: dict, cfg: SweepConfig) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: SweepConfig) -> list:
    """Wc per p from the free controls at the first lr; the delay law per p over the --rho
    cells and shared; the --extra-rho cells against the law's extrapolation."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    ref_lr = np.isclose(lanes["lr"], cfg.lr[0])
    in_law = np.isin(np.round(lanes["rho"], 6), np.round(cfg.rho, 6))
    clamp = ok & run.arm("clamp") & ref_lr & in_law
    shared = len(cfg.p) > 1 and clamp.any()
    per_p = {str(p): _per_p_spec(run, cfg, p, ok, ref_lr, in_law) for p in cfg.p}
    return [
        fitspec.value("reference_lr", cfg.lr[0]),
        m("n_diverged", ms.count, ~ok),
        fitspec.table("per_p", per_p),
        *(
            [
                m("shared", ms.delay_law, clamp, group="p"),
                # the absolute-norm collapse (the report's absolute_norm_r2 is its r2)
                m("absolute_norm", ms.absolute_norm, clamp),
            ]
            if shared
            else []
        ),
        *(
            [
                m("Wc_power_law", ms.power_law_across, None, blocks=fitspec.Ref("per_p"),
                  path=("Wc", "median"), omit_none=True),
                m("E_power_law", ms.power_law_across, None, blocks=fitspec.Ref("per_p"),
                  path=("E_at_grok_median",), omit_none=True),
            ]
            if shared and len(cfg.p) > 2
            else []
        ),
    ]  # fmt: skip


def _per_p_spec(run, cfg: SweepConfig, p: int, ok, ref_lr, in_law) -> list:
    """The measures of one modulus (fit.json's ``per_p[p]``)."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import m

    lanes = run.lanes
    at_p = ok & (lanes["p"] == p)
    free = at_p & run.arm("free") & ref_lr
    clamp_ref = at_p & run.arm("clamp") & ref_lr
    law = [
        m("delay_law", ms.delay_law, clamp_ref & in_law),
        m("cells", ms.cells, clamp_ref, key="rho", values=cfg.rho),
        m("beyond", ms.beyond, clamp_ref, law=fitspec.Ref("delay_law"),
          rhos=cfg.rhos_at(p)[len(cfg.rho) :]),
    ]  # fmt: skip
    by_lr = m(
        "delay_law_by_lr", fitspec.by(ms.delay_law, "lr", cfg.lr), at_p & run.arm("clamp") & in_law
    )
    return [
        m("Wc", ms.wc, free),
        m("Wc_thresholds", ms.wc_thresholds, free),
        m("free_T_grok_median", ms.median_time, free),
        m("free_T_grok", ms.cell_times, free),
        m("n_free", ms.count, free),
        m("n_free_censored", ms.n_censored, free),
        m("n_diverged", ms.count, (lanes["p"] == p) & lanes["diverged"]),
        m("E_at_grok_median", ms.median_norm, free, omit_none=True),
        *(law if (clamp_ref & in_law).any() else []),
        *([by_lr] if (clamp_ref & in_law).any() and len(cfg.lr) > 1 else []),
    ]


def plan(cfg: SweepConfig):
    """Per p: free controls, then (when some grokked) clamps at rho·Wc on the same seeds, Wc
    from the free controls at the first lr."""
    for p in cfg.p:
        yield from common.free_then_clamp(
            cfg,
            common.mlp_static(cfg, p, kind=cfg.model),
            lane_table(cfg, p, "free", None),
            lambda wc, p=p: lane_table(cfg, p, "clamp", wc),
            prefix=f"p{p}-",
            ref=lambda r: math.isclose(r["lr"], cfg.lr[0]),
            table=lambda columns: columns,  # lane_table already gives the columns
        )


def figure(lanes: dict, fitted: dict, curves: dict, out: str) -> list:
    from grokjax import plots

    return plots.delay_law(lanes, fitted, os.path.join(out, "delay_law.png"))


def summary(fitted: dict, cfg: SweepConfig) -> str:
    lines = []
    fmt = common.fmt
    ci = lambda c: "[" + ", ".join(fmt(v, "{:.2f}") for v in (c or [None, None])) + "]"
    for p, e in fitted["per_p"].items():
        wc = e["Wc"]
        line = (
            f"p={p}: Wc = {fmt(wc['median'], '{:.2f}')} (CV {fmt(wc['cv'] and 100 * wc['cv'], '{:.2f}')} %, "
            f"n={wc['n']}), free T_grok median {fmt(e['free_T_grok_median'], '{:.0f}')}"
        )
        law = e.get("delay_law")
        if law:
            meds = ", ".join(
                f"rho {c['rho']:.2f}: {fmt(c['median'], '{:.0f}')}"
                f"{' (' + str(c['n_censored']) + ' censored)' if c['n_censored'] else ''}"
                for c in law["cells"]
            )
            line += (
                f"\n  median T_grok {meds}\n  alpha = {fmt(law['alpha'], '{:.2f}')} "
                f"CI {ci(law['alpha_ci'])}, R² = {fmt(law['r2'], '{:.4f}')}"
            )
        lines.append(line)
    if "shared" in fitted:
        s = fitted["shared"]
        lines.append(
            f"shared alpha = {fmt(s['alpha'], '{:.2f}')} CI {ci(s['alpha_ci'])}, "
            f"R² = {fmt(s['r2'], '{:.4f}')}"
        )
    return "\n".join(lines)


def cost(cfg: SweepConfig) -> str:
    from grokjax import estimate

    lanes = [
        (p, r, lr, cfg.wd, cfg.frac, cfg.budget(r, p))
        for p in cfg.p
        for lr in cfg.lr
        for r in [None] + cfg.rhos_at(p)
        for _ in cfg.seed_range()
    ]
    paper_mlp = (cfg.model, cfg.d, cfg.hidden) == ("mlp", 128, 256)
    return estimate.cost_line(len(lanes), sum(b for *_, b in lanes), lanes if paper_mlp else None)


SPEC = registry.register(
    experiment.Spec(
        name="delay_sweep",
        config_cls=SweepConfig,
        presets=PRESETS,
        plan=plan,
        fit=lambda lanes, cfg: fit_sweep(lanes, cfg),
        figure=figure,
        summary=lambda fitted, cfg: summary(fitted, cfg),
        add_arguments=add_arguments,
        doc=__doc__,
        cost=cost,
        about="clamped held-norm sweep: W_c, alpha per p and shared",
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
