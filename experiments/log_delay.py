"""The logarithmic delay of a freely contracting norm, next to the pinned-norm exponential.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.log_delay                  # preset quick (default)
    python -m experiments.log_delay --preset paper   # GPU-sized

Free lanes over lr × wd × initial scale. Without a clamp, decoupled weight decay shrinks the
norm roughly as exp(-lr·wd·t) once the loss gradient is small, so the time from memorisation
(T_mem, train accuracy >= 0.99) to grokking should follow

    T_grok − T_mem ≈ c · ln(‖W‖ at T_mem / ‖W‖ at T_grok) / (lr · wd)

(``grokjax.fit.free_contraction_law``: OLS slope c with intercept and R², and the slope
through the origin). Reported per cell (lr, wd, init scale): the median observed delay and
the median of its ratio to the fitted law, and where the law fails (a cell off by more than
1.5×, a norm that grew instead of contracting, lanes without T_mem or T_grok: those that never
grokked are censored and counted, never dropped). A pinned-norm arm (||W|| held at rho·W_c from
t_int, reference lr and wd) gives the exponential law for the same figure.

Presets (lane-steps are upper bounds):
  paper  p=59, fraction 0.4, MLP d=128 H=256, t_int 500, 16 seeds; lr in {5e-4, 1e-3, 2e-3}
         × wd in {0.5, 1, 2} × init scale in {1, 1.5}; pinned rho in {0.85, 1.00, 1.15} at
         lr 1e-3, wd 1. 336 lanes; GPU-sized (≈ 11 M lane-steps bound). Paper: the delay of
         a freely contracting norm is logarithmic in the norm ratio, while a pinned norm gives
         T_grok ∝ exp(alpha·rho).
  quick  the paper MLP at p=59 (fraction 0.4, d=128, H=256, t_int 500), 3 seeds, lr in {1e-3,
         2e-3} × wd in {1, 2} × init scale {1}; pinned rho {0.85, 1.00}: measured 2 min 17 s on
         the 2-core CPU (3 min 16 s shared, before the host lane walk). It shows where the log
         law fails and what holds instead: between T_mem and T_grok the norm does not contract
         (ratio ‖W‖(T_mem)/‖W‖(T_grok) = 0.91-1.05: at T_mem the norm is already at or below W_c
         = 54.5), so the log factor cannot set the delay, yet the delay scales as the
         weight-decay timescale: T_grok − T_mem ∝ (lr·wd)^-1.06 [-1.17, -0.95] (R² 0.994),
         delay·lr·wd = 4.46 with a CV of 6 % across the four cells. The pinned arm gives the
         exponential (alpha 7.0). The small model (p=31, d=64, H=128, lr 5e-3..1e-2) behaves the
         same way (norm ratio 1.06-1.11, delay ∝ (lr·wd)^-0.79, CV 14 %).
  tiny   p=23, d=32, H=64, 2 seeds, lr {1e-2} × wd {1, 2}; pinned rho {0.9, 1.1}:
         ~20 s on the 2-core CPU; a test of the pipeline only.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys

import numpy as np

from grokjax import api, experiment, registry

from experiments import common
from experiments.common import fmt

CONFIG_FORMAT = 1
FAIL_FACTOR = 1.5  # a cell whose median delay is off the law by more than this "fails"

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
        lrs=[5e-4, 1e-3, 2e-3],
        wds=[0.5, 1.0, 2.0],
        init_scales=[1.0, 1.5],
        rho=[0.85, 1.0, 1.15],
        steps=30_000,
        budget_rho=[0.85, 1.0, 1.15],
        budget_steps=[15_000, 25_000, 80_000],
        seed_base=5000,
    ),
    "quick": dict(
        p=59,
        frac=0.4,
        d=128,
        hidden=256,
        seeds=3,
        lr=1e-3,
        wd=1.0,
        t_int=500,
        lrs=[1e-3, 2e-3],
        wds=[1.0, 2.0],
        init_scales=[1.0],
        rho=[0.85, 1.0],
        steps=12_000,
        budget_rho=[0.85, 1.0],
        budget_steps=[6000, 12_000],
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
        lrs=[1e-2],
        wds=[1.0, 2.0],
        init_scales=[1.0],
        rho=[0.9, 1.1],
        steps=1500,
        budget_rho=[0.9, 1.1],
        budget_steps=[1500, 2500],
        chunk_steps=250,
    ),
}


@dataclasses.dataclass
class Config(common.MLPConfig, common.RhoBudgets):
    experiment: str = "log_delay"
    config_format: int = CONFIG_FORMAT
    lrs: list = dataclasses.field(default_factory=lambda: [5e-4, 1e-3, 2e-3])
    wds: list = dataclasses.field(default_factory=lambda: [0.5, 1.0, 2.0])
    init_scales: list = dataclasses.field(default_factory=lambda: [1.0, 1.5])
    rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15])
    budget_rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15])
    budget_steps: list = dataclasses.field(default_factory=lambda: [15_000, 25_000, 80_000])

    def validate(self) -> None:
        experiment.positive("lrs", self.lrs)
        experiment.positive("wds", self.wds)
        experiment.positive("init-scales", self.init_scales)
        if self.rho:
            experiment.positive("rho", self.rho)
        self.validate_budgets()
        common.MLPConfig.validate(self)

    def is_reference(self, r: dict) -> bool:
        return (
            math.isclose(r["lr"], self.lr)
            and math.isclose(r["wd"], self.wd)
            and math.isclose(r["init_scale"], 1.0)
        )


def _cell(lr, wd, k) -> str:
    return f"free-lr{lr:g}-wd{wd:g}-init{k:g}"


def plan(cfg: Config):
    static = common.mlp_static(cfg)
    combos = [(lr, wd, k) for lr in cfg.lrs for wd in cfg.wds for k in cfg.init_scales]
    if not any(cfg.is_reference(dict(lr=lr, wd=wd, init_scale=k)) for lr, wd, k in combos):
        combos.insert(0, (cfg.lr, cfg.wd, 1.0))  # the pinned arm's W_c needs this control
    free = [
        dict(seed=s, lr=lr, wd=wd, init_scale=k, cell=_cell(lr, wd, k))
        for lr, wd, k in combos
        for s in cfg.seed_range()
    ]
    if not cfg.rho:
        yield experiment.Phase("free", static, common.lane_table(cfg, free), "[free] ")
        return

    def clamp(wc):
        return [
            dict(
                seed=s,
                **common.held(r, wc, cfg.t_int),
                budget=cfg.budget(r),
                cell=f"clamp-rho{r:g}",
            )
            for r in cfg.rho
            for s in cfg.seed_range()
        ]

    yield from common.free_then_clamp(cfg, static, free, clamp, ref=cfg.is_reference)


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """The free-contraction law over the grokked free lanes; per free cell its delay against
    the law (and why it fails); the delay's timescale in lr·wd; the clamped lanes' delay law."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    free = (lanes["arm"] == "free") & ok
    use = free & lanes["grokked"] & np.isfinite(lanes["T_mem"])
    clamp = (lanes["arm"] == "clamp") & ok
    return [
        m("law", _law, use),
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        m("cells", _cells, use, law=Ref("law")),
        m("failures", lambda run, _s, cells: [
            {"cell": c["cell"], "why": c["fails"]} for c in cells if c["fails"]
        ], None, cells=Ref("cells")),
        m("timescale", lambda run, _s, cells: _timescale(cells), None, cells=Ref("cells")),
        m("pinned", ms.delay_law, clamp) if clamp.any() else fitspec.value("pinned", None),
    ]  # fmt: skip


def _law(run, use) -> dict:
    """:func:`grokjax.fit.free_contraction_law` over the lanes ``use``."""
    from grokjax import fit

    lanes = run.lanes
    cols = ("T_mem", "T_grok", "norm_at_mem", "norm_at_grok", "lr", "wd")
    return fit.free_contraction_law(*(lanes[k][use] for k in cols))


def _cells(run, use, law: dict) -> list:
    """Per free cell: its cell block, the median delay T_grok − T_mem of the lanes ``use``, the
    law's prediction and ``fails`` (why the cell does not follow the law)."""
    from grokjax import measures

    lanes = run.lanes
    ok = ~lanes["diverged"]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(lanes["norm_at_mem"] / lanes["norm_at_grok"]) / (lanes["lr"] * lanes["wd"])
    dt = lanes["T_grok"] - lanes["T_mem"]
    slope, icpt = law.get("slope"), law.get("intercept")
    cells = []
    for name in dict.fromkeys(lanes["cell"][lanes["arm"] == "free"]):
        sel = (lanes["cell"] == name) & ok
        i = np.flatnonzero(lanes["cell"] == name)[0]
        u = sel & use
        c = measures.cell_times(run, lanes["cell"] == name)
        c.update(
            cell=str(name),
            lr=float(lanes["lr"][i]),
            wd=float(lanes["wd"][i]),
            init_scale=float(lanes["init_scale"][i]),
            n_used=int(u.sum()),
            delay=float(np.median(dt[u])) if u.any() else None,
            x=float(np.median(x[u])) if u.any() else None,
            norm_ratio=(
                float(np.median(lanes["norm_at_mem"][u] / lanes["norm_at_grok"][u]))
                if u.any()
                else None
            ),
        )
        c["predicted"] = slope * c["x"] + icpt if slope is not None and c["x"] is not None else None
        c["ratio"] = (
            c["delay"] / c["predicted"]
            if c["predicted"] and c["predicted"] > 0 and c["delay"]
            else None
        )
        why = []
        if c["n_censored"]:
            why.append(f"{c['n_censored']} of {c['n']} lanes never grokked (censored)")
        if u.any() and np.any(x[u] <= 0):
            why.append("the norm grew between T_mem and T_grok")
        if c["ratio"] is not None and not (1 / FAIL_FACTOR <= c["ratio"] <= FAIL_FACTOR):
            why.append(f"delay {c['ratio']:.2f}× the law")
        if c["ratio"] is None and u.any():
            why.append("the law predicts no positive delay")
        c["fails"] = why
        cells.append(c)
    return cells


def _timescale(cells: list) -> dict | None:
    """Does 1/(lr·wd) set the free delay, whatever the norm does? The power law of the cells'
    median delay T_grok − T_mem in lr·wd (exponent -1 if so; init scale 1 only) and the
    spread across cells of delay·lr·wd (constant if so)."""
    from grokjax import fit

    cs = [c for c in cells if c["delay"] and c["delay"] > 0 and c["init_scale"] == 1.0]
    if len({c["lr"] * c["wd"] for c in cs}) < 2:
        return None
    eta = np.array([c["lr"] * c["wd"] for c in cs])
    delay = np.array([c["delay"] for c in cs])
    pl = fit.power_law(eta, delay, n_boot=200)
    prod = delay * eta
    return {
        "exponent": pl["exponent"],
        "exponent_ci": pl["exponent_ci"],
        "r2": pl["r2"],
        "n_cells": len(cs),
        "delay_x_lr_wd": float(np.median(prod)),
        "cv": float(prod.std(ddof=1) / prod.mean()) if len(cs) > 1 else None,
    }


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """(a) pinned norm: T_grok against rho (exponential); (b) free contraction: the delay
    T_grok − T_mem against ln(norm ratio)/(lr·wd) with the fitted line; (c) the delay against
    1/(lr·wd) (log-log) with the fitted power law."""

    from grokjax import plots

    fig, (ax, ax2, ax3) = plots.subplots(1, 3, figsize=(15, 4))
    clamp = (lanes["arm"] == "clamp") & lanes["grokked"] & ~lanes["diverged"]
    ax.scatter(lanes["rho"][clamp], lanes["T_grok"][clamp], s=10, color="#1b3b6f", alpha=0.5)
    law = fitted.get("pinned")
    if law and law.get("alpha") is not None:
        c0 = next(iter(law["intercepts"].values()))
        r = np.linspace(np.nanmin(lanes["rho"]), np.nanmax(lanes["rho"]), 50)
        ax.plot(
            r,
            np.exp(law["alpha"] * r + c0),
            color="k",
            lw=1,
            label=f"T ∝ exp({law['alpha']:.2f} ρ)",
        )
        ax.legend(fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok")
    ax.set_title("(a) pinned norm: exponential delay")
    free = (lanes["arm"] == "free") & lanes["grokked"] & ~lanes["diverged"]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(lanes["norm_at_mem"] / lanes["norm_at_grok"]) / (lanes["lr"] * lanes["wd"])
    dt = lanes["T_grok"] - lanes["T_mem"]
    cells = list(dict.fromkeys(lanes["cell"][free]))
    for k, name in enumerate(cells):
        m, _, col = plots.STYLES[k % len(plots.STYLES)]
        sel = free & (lanes["cell"] == name)
        ax2.scatter(x[sel], dt[sel], s=14, marker=m, color=col, label=str(name), alpha=0.7)
    fl = fitted.get("law") or {}
    if fl.get("slope") is not None:
        xs = np.array([np.nanmin(x[free]), np.nanmax(x[free])])
        ax2.plot(
            xs,
            fl["slope"] * xs + fl["intercept"],
            color="k",
            lw=1,
            label=f"slope {fl['slope']:.2f}, R² {fmt(fl['r2'], '{:.3f}')}",
        )
    ax2.set_xlabel("ln(‖W‖ at T_mem / ‖W‖ at T_grok) / (lr·wd)")
    ax2.set_ylabel("T_grok − T_mem")
    ax2.set_title("(b) free contraction: logarithmic delay")
    ax2.legend(fontsize=6)
    for k, name in enumerate(cells):
        m, _, col = plots.STYLES[k % len(plots.STYLES)]
        sel = free & (lanes["cell"] == name)
        ax3.scatter(
            1 / (lanes["lr"][sel] * lanes["wd"][sel]), dt[sel], s=14, marker=m, color=col, alpha=0.7
        )
    ts = fitted.get("timescale")
    if ts and ts.get("exponent") is not None:
        inv = 1 / (lanes["lr"][free] * lanes["wd"][free])
        xs = np.geomspace(inv.min(), inv.max(), 20)
        ax3.plot(
            xs,
            ts["delay_x_lr_wd"] * xs,
            color="k",
            lw=1,
            label=f"delay = {ts['delay_x_lr_wd']:.2f} / (lr·wd); fitted: "
            f"∝ (lr·wd)^{ts['exponent']:.2f}",
        )
        ax3.legend(fontsize=7)
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    ax3.set_xlabel("1 / (lr·wd)")
    ax3.set_ylabel("T_grok − T_mem")
    ax3.set_title("(c) the weight-decay timescale")
    fig.tight_layout()
    return plots.save(fig, os.path.join(out, f"{prefix}log_delay.png"))


def summary(fitted: dict, cfg: Config) -> str:
    law = fitted["law"]
    lines = [
        f"free contraction: T_grok − T_mem = {fmt(law['slope'], '{:.3f}')} · "
        f"ln(ratio)/(lr·wd) + {fmt(law['intercept'], '{:.0f}')}, R² = "
        f"{fmt(law['r2'], '{:.3f}')} (through 0: slope {fmt(law['slope0'], '{:.3f}')}, R² "
        f"{fmt(law['r2_0'], '{:.3f}')}; n = {law['n']}); {fitted['n_censored']} lanes "
        f"censored, {fitted['n_diverged']} diverged"
    ]
    for c in fitted["cells"]:
        lines.append(
            f"  {c['cell']}: median delay {fmt(c['delay'], '{:.0f}')}, norm ratio "
            f"{fmt(c['norm_ratio'], '{:.3f}')}, {fmt(c['ratio'], '{:.2f}')}× the law"
            + (f"  FAILS: {'; '.join(c['fails'])}" if c["fails"] else "")
        )
    ts = fitted.get("timescale")
    if ts:
        ci = ts.get("exponent_ci") or [None, None]
        lines.append(
            f"timescale: median delay ∝ (lr·wd)^{fmt(ts['exponent'], '{:.2f}')} "
            f"[{fmt(ci[0], '{:.2f}')}, {fmt(ci[1], '{:.2f}')}] over {ts['n_cells']} "
            f"cells (R² {fmt(ts['r2'], '{:.3f}')}); delay·lr·wd = "
            f"{fmt(ts['delay_x_lr_wd'], '{:.2f}')} (CV "
            f"{fmt(ts['cv'] and 100 * ts['cv'], '{:.0f}')} % across cells)"
        )
    p = fitted.get("pinned") or {}
    lines.append(
        f"pinned norm: alpha = {fmt(p.get('alpha'), '{:.2f}')}, R² = {fmt(p.get('r2'), '{:.4f}')}"
    )
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    n_free = cfg.seeds * len(cfg.lrs) * len(cfg.wds) * len(cfg.init_scales)
    n = n_free + cfg.seeds * len(cfg.rho)
    steps = n_free * cfg.steps + cfg.seeds * sum(cfg.budget(r) for r in cfg.rho)
    return f"{n} lanes, <= {steps / 1e6:.2f} M lane-steps (budget bound)"


SPEC = registry.register(
    experiment.Spec(
        name="log_delay",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        doc=__doc__,
        cost=cost,
        about="logarithmic delay of a freely contracting norm",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
