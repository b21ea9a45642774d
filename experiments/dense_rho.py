"""A dense scan of the held norm: alpha with its CI and R², and where the exponential saturates.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.dense_rho                  # preset quick (default)
    python -m experiments.dense_rho --preset paper   # the paper's scan (GPU)

Free controls give W_c; then ||W|| is held at rho·W_c from t_int on for every rho of the scan,
on the same seeds. The delay law ln T_grok = alpha·rho + c is fitted to the cell medians
within the fit range (Kaplan-Meier medians: lanes that do not grok within the budget are
right-censored, never dropped), with a bootstrap CI on alpha and R²; the cells above the range
are compared with the extrapolated line (ratio observed / extrapolated).

Presets (lane-steps are upper bounds):
  paper  p=59, fraction 0.4, MLP d=128 H=256, lr 1e-3, wd 1, t_int 500, 16 seeds,
         rho in {0.85, 0.90, ..., 1.30}, fit over [0.85, 1.25]. 176 lanes, budgets 15k at
         rho 0.85 rising log-linearly to 120k at 1.30 (free: 30k): GPU-sized (≈ 9 M
         lane-steps bound). Paper: alpha = 7.64 [7.47, 7.81], R² = 0.994; the rho = 1.30
         delay is ≈ 0.7 of the extrapolation (saturation).
  quick  scaled down to the small model (p=31, d=64, H=128, fraction 0.7, lr 1e-2, t_int 50),
         4 seeds, the same ten rho: measured 125 s on the 2-core CPU.
         What it showed: the README ("What the quick presets showed").
  tiny   p=23, d=32, H=64, 2 seeds, rho in {0.9, 1.0, 1.1, 1.2}, fit over [0.9, 1.1]:
         ~30 s on the 2-core CPU (mostly compilation); a test of the pipeline only.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from grokjax import api, cli, estimate, experiment, registry

from experiments import common
from experiments.common import fmt

CONFIG_FORMAT = 1
RHOS = [round(0.85 + 0.05 * i, 2) for i in range(10)]

PRESETS = {
    "paper": dict(
        p=59,
        frac=0.4,
        d=128,
        hidden=256,
        seeds=16,
        lr=1e-3,
        wd=1.0,
        t_int=500,
        rho=RHOS,
        fit_lo=0.85,
        fit_hi=1.25,
        steps=30_000,
        budget_rho=[0.85, 1.0, 1.15, 1.3],
        budget_steps=[15_000, 25_000, 80_000, 120_000],
        seed_base=1000,
    ),
    "quick": dict(
        p=31,
        frac=0.7,
        d=64,
        hidden=128,
        seeds=4,
        lr=1e-2,
        wd=1.0,
        t_int=50,
        rho=RHOS,
        fit_lo=0.85,
        fit_hi=1.25,
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
        lr=1e-2,
        wd=1.0,
        t_int=50,
        rho=[0.9, 1.0, 1.1, 1.2],
        fit_lo=0.9,
        fit_hi=1.1,
        steps=1500,
        budget_rho=[0.9, 1.2],
        budget_steps=[1500, 3000],
        chunk_steps=250,
    ),
}


@dataclasses.dataclass
class Config(common.MLPConfig, common.RhoBudgets):
    experiment: str = "dense_rho"
    config_format: int = CONFIG_FORMAT
    rho: list = dataclasses.field(default_factory=lambda: list(RHOS))
    fit_lo: float = 0.85
    fit_hi: float = 1.25
    budget_rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15, 1.3])
    budget_steps: list = dataclasses.field(
        default_factory=lambda: [15_000, 25_000, 80_000, 120_000]
    )

    RANGES = (("fit_lo", "fit_hi", "rho"),)

    def validate(self) -> None:
        experiment.positive("rho", self.rho)
        self.validate_budgets()
        if not self.fit_lo < self.fit_hi:
            raise cli.UsageError(
                f"--fit-lo must be below --fit-hi, got {self.fit_lo}, {self.fit_hi}"
            )
        common.MLPConfig.validate(self)
        self.check_t_int(self.rho)


def plan(cfg: Config):
    static = common.mlp_static(cfg)
    free = [dict(seed=s, cell="free") for s in cfg.seed_range()]

    def clamp(wc):
        return [
            dict(
                seed=s,
                **common.held(r, wc, cfg.t_int),
                budget=cfg.budget(r),
                cell=f"rho{r:g}",
            )
            for r in cfg.rho
            for s in cfg.seed_range()
        ]

    yield from common.free_then_clamp(cfg, static, free, clamp)


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """W_c of the free lanes; the delay law over the clamped cells inside the fit range, the
    cells above it against its extrapolation."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    free, clamp = lanes["arm"] == "free", (lanes["arm"] == "clamp") & ok
    rho = np.round(lanes["rho"], 6)
    inside = clamp & (rho >= cfg.fit_lo - 1e-9) & (rho <= cfg.fit_hi + 1e-9)
    above = sorted(set(rho[clamp & (rho > cfg.fit_hi + 1e-9)]))
    law = [
        m("delay_law", ms.delay_law, inside),
        m("beyond", ms.beyond, clamp, law=fitspec.Ref("delay_law"), rhos=above, rounded=True),
    ]
    return [
        m("Wc", ms.wc, free & ok),
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        fitspec.value("fit_range", [cfg.fit_lo, cfg.fit_hi]),
        *(law if inside.any() else [fitspec.value("delay_law", None), fitspec.value("beyond", [])]),
    ]


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """The run's figure: ``grokjax.plots.dense_rho_figure``, the one the report draws (with the
    paper's values on it)."""
    from grokjax import plots

    return plots.dense_rho_figure(lanes, fitted, curves, out, prefix)


def summary(fitted: dict, cfg: Config) -> str:
    w, law = fitted["Wc"], fitted.get("delay_law") or {}
    lines = [
        f"W_c = {fmt(w['median'], '{:.2f}')} ({w['n']} grokked controls); "
        f"{fitted['n_censored']} lanes censored, {fitted['n_diverged']} diverged"
    ]
    for c in law.get("cells", []):
        lines.append(
            f"  rho {c['rho']:.2f}: median T_grok {fmt(c['median'], '{:.0f}')} "
            f"({c['n_censored']}/{c['n']} censored)"
        )
    ci = law.get("alpha_ci") or [None, None]
    lines.append(
        f"alpha over [{cfg.fit_lo:g}, {cfg.fit_hi:g}] = {fmt(law.get('alpha'), '{:.2f}')}"
        f" [{fmt(ci[0], '{:.2f}')}, {fmt(ci[1], '{:.2f}')}], R² = "
        f"{fmt(law.get('r2'), '{:.4f}')}"
    )
    for b in fitted["beyond"]:
        lines.append(
            f"rho {b['rho']:.2f}: median {fmt(b['median'], '{:.0f}')} vs extrapolated "
            f"{fmt(b['extrapolated'], '{:.0f}')} (ratio {fmt(b['ratio'], '{:.2f}')})"
        )
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    return estimate.mlp_cost(
        cfg,
        [(None, cfg.lr, cfg.wd, cfg.steps)] + [(r, cfg.lr, cfg.wd, cfg.budget(r)) for r in cfg.rho],
    )


SPEC = registry.register(
    experiment.Spec(
        name="dense_rho",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        doc=__doc__,
        cost=cost,
        about="dense rho scan at p=59: alpha and saturation",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
