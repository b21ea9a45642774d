"""The held norm against the learning rate: a rho × lr matrix of T_grok.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.lr_matrix                  # preset quick (default)
    python -m experiments.lr_matrix --preset paper   # the paper's matrix (GPU)

A free control at every lr (W_c from the control at the reference lr, the first of --lrs);
then ||W|| is held at rho·W_c from t_int on, for every rho × lr, on the same seeds. Reported:
the median T_grok per cell (Kaplan-Meier, 95 % bootstrap CI, censored counts: lanes that do
not grok within the budget are right-censored, never dropped), alpha per lr (delay-law fit),
the norm effect (fold change of T_grok across rho at each lr) against the lr effect (fold
change across lr at each rho), and the norm at grokking against the held norm.

Presets (lane-steps are upper bounds):
  paper  p=59, fraction 0.4, MLP d=128 H=256, wd 1, t_int 500, 16 seeds, rho in {0.85, 1.00,
         1.15, 1.30} × lr in {1, 2, 4, 8}e-3, free controls at each lr. 320 lanes; budgets
         15k / 25k / 80k / 120k steps at rho 0.85 / 1.00 / 1.15 / 1.30 (free: 30k): GPU-sized
         (≈ 17 M lane-steps bound, ~2.5 M expected). As the paper: seeds 1000-1015 (the set
         dense_rho shares), clamps at rho × the fixed W_c = 54.6 (--fixed-wc; 0 = the run's own),
         and every cell also seen stopped at 30k steps (--view-steps). With a fixed W_c the
         lr columns are independent: run them as separate jobs (e.g. --lrs 1e-3 and --lrs
         2e-3,4e-3,8e-3) and the report pools them for the lr effect (grokjax.runs.pool,
         axis lr). Paper: at lr 1e-3 median T_grok 1492 → 27925 from rho
         0.85 to 1.30 (~19×), while lr moves T_grok only ~2×; grokked lanes sit at their
         held norm.
  quick  scaled down to the small model (p=31, d=64, H=128, fraction 0.7, t_int 50), 4 seeds,
         rho in {0.85, 1.00, 1.15, 1.30} × lr in {5e-3, 1e-2, 2e-2}: measured 285 s on the
         2-core CPU.
         What it showed: the README ("What the quick presets showed").
  tiny   p=23, d=32, H=64, 2 seeds, rho {0.9, 1.1} × lr {1e-2, 2e-2}:
         ~30 s on the 2-core CPU (mostly compilation); a test of the pipeline only.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from grokjax import api, cli, estimate, experiment, registry

from experiments import common
from experiments.common import fmt

CONFIG_FORMAT = 1

PRESETS = {
    "paper": dict(
        p=59,
        frac=0.4,
        d=128,
        hidden=256,
        seeds=16,
        wd=1.0,
        t_int=500,
        rho=[0.85, 1.0, 1.15, 1.3],
        lrs=[1e-3, 2e-3, 4e-3, 8e-3],
        steps=30_000,
        budget_rho=[0.85, 1.0, 1.15, 1.3],
        budget_steps=[15_000, 25_000, 80_000, 120_000],
        fixed_wc=54.6,
        view_steps=30_000,
        seed_base=1000,
    ),
    "quick": dict(
        p=31,
        frac=0.7,
        d=64,
        hidden=128,
        seeds=4,
        wd=1.0,
        t_int=50,
        rho=[0.85, 1.0, 1.15, 1.3],
        lrs=[5e-3, 1e-2, 2e-2],
        steps=3000,
        budget_rho=[0.85, 1.3],
        budget_steps=[3000, 10_000],
    ),
    "tiny": dict(
        p=23,
        frac=0.8,
        d=32,
        hidden=64,
        seeds=2,
        wd=1.0,
        t_int=50,
        rho=[0.9, 1.1],
        lrs=[1e-2, 2e-2],
        steps=1500,
        budget_rho=[0.9, 1.1],
        budget_steps=[1500, 2500],
        chunk_steps=250,
    ),
}


@dataclasses.dataclass
class Config(common.FixedWc, common.MLPConfig, common.RhoBudgets):
    experiment: str = "lr_matrix"
    config_format: int = CONFIG_FORMAT
    rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15, 1.3])
    lrs: list = dataclasses.field(default_factory=lambda: [1e-3, 2e-3, 4e-3, 8e-3])
    budget_rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15, 1.3])
    budget_steps: list = dataclasses.field(
        default_factory=lambda: [15_000, 25_000, 80_000, 120_000]
    )
    # > 0: also report every cell as if its lanes had stopped at view_steps (the paper's
    # 30k-step view of the rho = 1.30 cells), beside the uncensored cell
    view_steps: int = 0

    def validate(self) -> None:
        experiment.positive("rho", self.rho)
        experiment.positive("lrs", self.lrs)
        self.validate_budgets()
        self.validate_fixed_wc()
        if self.view_steps < 0:
            raise cli.UsageError(f"--view-steps must be >= 0, got {self.view_steps}")
        self.lr = float(self.lrs[0])  # the reference lr: W_c comes from its control
        common.MLPConfig.validate(self)
        self.check_t_int(self.rho)


def plan(cfg: Config):
    static = common.mlp_static(cfg)
    free = [dict(seed=s, lr=lr, cell=f"free-lr{lr:g}") for lr in cfg.lrs for s in cfg.seed_range()]

    def clamp(wc):
        wc = cfg.held_wc(wc, "clamp")
        return [
            dict(
                seed=s,
                lr=lr,
                **common.held(r, wc, cfg.t_int),
                budget=cfg.budget(r),
                cell=f"rho{r:g}-lr{lr:g}",
            )
            for lr in cfg.lrs
            for r in cfg.rho
            for s in cfg.seed_range()
        ]

    yield from common.free_then_clamp(
        cfg, static, free, clamp, ref=lambda r: math.isclose(r["lr"], cfg.lr)
    )


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """W_c at the reference lr; per lr its free cell, clamped cells, delay law and fold across
    rho; per rho the fold across lr."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import by, m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    clamp, free = lanes["arm"] == "clamp", lanes["arm"] == "free"
    return [
        m("Wc", ms.wc, free & np.isclose(lanes["lr"], cfg.lr) & ok),
        fitspec.value("reference_lr", cfg.lr),
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        m("free", by(ms.cell_times, "lr", cfg.lrs), free),
        m("cells", _cells, clamp, cfg=cfg),
        m("alpha_by_lr", by(ms.delay_law, "lr", cfg.lrs, nonempty=True), clamp & ok),
        m("norm_fold_by_lr", by(ms.fold_across, "lr", cfg.lrs, nonempty=True, key="rho"), clamp & ok),
        m("lr_fold_by_rho", by(ms.fold_across, "rho", cfg.rho, nonempty=True, key="lr"), clamp & ok),
    ]  # fmt: skip


def _cells(run, clamp, cfg: Config) -> list:
    """The clamped (lr, rho) cells: cell blocks with the held norm, the median norm at T_grok
    over it and, past ``view_steps``, the cell as if stopped there."""
    from grokjax import measures

    lanes = run.lanes
    ok = ~lanes["diverged"]
    out = []
    for lr in cfg.lrs:
        for r in cfg.rho:
            sel = clamp & np.isclose(lanes["lr"], lr) & np.isclose(lanes["rho"], r)
            if not sel.any():
                continue
            c = measures.cell_times(run, sel)
            g = sel & ok & lanes["grokked"]
            held = lanes["target_norm"][sel]
            c.update(
                lr=lr,
                rho=r,
                held_norm=float(np.median(held)),
                norm_over_held=(
                    float(np.median(lanes["norm_at_grok"][g] / lanes["target_norm"][g]))
                    if g.any()
                    else None
                ),
            )
            if cfg.view_steps and np.max(lanes["budget"][sel]) > cfg.view_steps:
                view = measures.as_run(censored_at(lanes, cfg.view_steps))
                c["view"] = measures.cell_times(view, sel)
                c["view"]["steps"] = cfg.view_steps
            out.append(c)
    return out


def censored_at(lanes: dict, steps: int) -> dict:
    """The lanes as if each had stopped after ``steps`` steps: a later T_grok is censored."""
    out = dict(lanes)
    out["grokked"] = lanes["grokked"] & (lanes["T_grok"] <= steps)
    out["steps_run"] = np.minimum(lanes["steps_run"], steps)
    return out


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """The run's figure: ``grokjax.plots.lr_matrix_figure``, the one the report draws (with the
    paper's values on it)."""
    from grokjax import plots

    return plots.lr_matrix_figure(lanes, fitted, curves, out, prefix)


def summary(fitted: dict, cfg: Config) -> str:
    w = fitted["Wc"]
    lines = [
        f"W_c = {fmt(w['median'], '{:.2f}')} from the lr={cfg.lr:g} controls "
        f"({w['n']} grokked); {fitted['n_censored']} lanes censored, "
        f"{fitted['n_diverged']} diverged",
        "median T_grok [95 % CI] (censored/n):",
    ]
    for c in fitted["cells"]:
        lines.append(
            f"  rho {c['rho']:.2f} lr {c['lr']:g}: {fmt(c['median'], '{:.0f}')} "
            f"[{fmt(c['ci'][0], '{:.0f}')}, {fmt(c['ci'][1], '{:.0f}')}] "
            f"({c['n_censored']}/{c['n']}); norm/held "
            f"{fmt(c['norm_over_held'], '{:.4f}')}"
            + (
                f"; stopped at {c['view']['steps']}: {fmt(c['view']['median'], '{:.0f}')}"
                f" ({c['view']['n_censored']}/{c['view']['n']} censored)"
                if "view" in c
                else ""
            )
        )
    if cfg.fixed_wc:
        lines.insert(1, f"clamped to rho × the fixed W_c = {cfg.fixed_wc:g}")
    for lr, law in fitted["alpha_by_lr"].items():
        nf = fitted["norm_fold_by_lr"][lr]
        ci = law.get("alpha_ci") or [None, None]
        lines.append(
            f"lr {float(lr):g}: alpha = {fmt(law['alpha'], '{:.2f}')} "
            f"[{fmt(ci[0], '{:.2f}')}, {fmt(ci[1], '{:.2f}')}], norm effect "
            f"{fmt(nf['fold'], '{:.1f}')}×{' (lower bound)' if nf['lower_bound'] else ''}"
        )
    if len(fitted["alpha_by_lr"]) < 2:
        lines.append(
            "lr effect: one lr in this run (the report measures it on the lr columns pooled)"
        )
        return "\n".join(lines)
    for r, f in fitted["lr_fold_by_rho"].items():
        lines.append(
            f"rho {float(r):.2f}: lr effect {fmt(f['fold'], '{:.1f}')}×"
            f"{' (lower bound)' if f['lower_bound'] else ''}"
        )
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    return estimate.mlp_cost(
        cfg,
        [(None, lr, cfg.wd, cfg.steps) for lr in cfg.lrs]
        + [(r, lr, cfg.wd, cfg.budget(r)) for lr in cfg.lrs for r in cfg.rho],
    )


SPEC = registry.register(
    experiment.Spec(
        name="lr_matrix",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        add_arguments=experiment.field_arguments(Config, skip=("lr",)),  # lr = the first of --lrs
        doc=__doc__,
        cost=cost,
        about="rho × lr matrix of T_grok: norm effect against lr effect",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
