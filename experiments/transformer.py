"""The attention model: the delay law without LayerNorm, and what a LayerNorm changes.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.transformer                  # preset quick (default)
    python -m experiments.transformer --preset paper   # the paper's protocol (GPU)
    python -m experiments.transformer --parts noln     # only part 1 (also: ln_free, ln_clamp)

The one-layer, 4-head attention model of ``grokjax.models`` (tokens [a, b, =], no biases,
parameter groups embed / attn / mlp / unembed), in three parts, all on the lane engine:

1. ``noln`` -- no LayerNorm: free controls give W_c (median ||W|| at T_grok over all weight
   matrices); then ||W|| is held at rho·W_c from t_int on, on the same seeds. The delay law
   ln T_grok = alpha·rho + c is fitted over [fit_lo, fit_hi] (Kaplan-Meier cell medians,
   censored lanes never dropped) and cells above the range are compared with the extrapolation.
2. ``ln_free`` -- with LayerNorm (``--ln-mode``: ``all`` before attention, the MLP and the
   unembedding, as the paper preset; ``final`` only before the unembedding, as the quick
   preset): free runs over train fraction × p and over lr × wd at one p. Reported: the CV of
   the norm at T_grok per parameter group, within cells (across seeds) and pooled over the
   fractions at each p, and the power law of the unembedding norm ||U|| at T_grok in p.
3. ``ln_clamp`` -- clamps of one parameter group of the LayerNorm model at rho times that
   group's norm at T_grok in the free controls (the clamp and the recorded headline norm then
   cover that group only; every group's norm is still recorded). Reported: median T_grok per
   clamp against the free control (fold change).

Presets (lane-steps are upper bounds: lanes stop ~10 % after grokking):
  paper  d=128, 4 heads, MLP width 512, fraction 0.4, wd 1, 16 seeds (12 in the LayerNorm
         parts). noln: p=59, lr 5e-4, t_int 600, rho in {0.85, 1.00, 1.15, 1.20}, fit over
         [0.85, 1.15], budgets 10k / 40k / 300k / 400k (free 30k) so that nothing should be
         censored. ln_free: p in {53, 71, 97} × fraction in {0.20, 0.25, 0.30, 0.40, 0.55},
         lr 1e-3, and at p=71, fraction 0.4: lr in {3e-4, 1e-3, 3e-3} × wd in {0.3, 1, 3};
         budget 50k. ln_clamp: p=71, lr 1e-3, unembed at rho {0.85, 1.00, 1.15, 1.30}, embed at
         1.30, mlp at {0.85, 1.30}, budget 100k. As the paper: seeds from 4000; the LayerNorm
         parts place a parameter-free LayerNorm before attention, the MLP and the unembedding
         (--ln-mode all; --ln-mode final keeps only the last); a 30k-step no-LayerNorm scan
         over rho 0.85-1.50 (--scan-rho, --scan-steps; paper: ~6× faster below W_c, a plateau
         from 1.15 on). GPU-sized (≈ 38 M lane-steps bound).
         Paper: no LayerNorm: W_c ≈ 36.9, medians 718 / 6608 / 73966 / 99920, alpha_2 = 15.45
         [14.84, 15.98], R² 0.999, the rho=1.20 delay ≈ 0.64× the extrapolation. With
         LayerNorm: the total norm at grokking drifts (CV 0.15-0.17), only ||U|| is
         concentrated (CV 0.03-0.05, ∝ p^0.77); group clamps have weak, non-specific effects
         (up to ~2×).
  quick  scaled down (d=64, MLP width 128, fraction 0.6, lr 2e-3, 4 seeds, t_int 100): noln at
         p=31, rho in {0.85, 0.95, 1.05}, fit over the three; ln_free at p in {23, 31} ×
         fraction in {0.5, 0.6, 0.7}, and at p=31, fraction 0.6: lr in {1e-3, 2e-3, 4e-3} × wd
         in {0.5, 1, 2}; ln_clamp at p=31 with the paper's seven clamps. 100 lanes; measured 6
         min 15 s on the 2-core CPU (8 min 19 s shared, before the host lane walk).
         What it showed: the README ("What the quick presets showed").
  tiny   p=23 (LayerNorm parts: 11, 13), d=32, MLP width 64, 2 seeds: a test of the
         pipeline only (~1 min on 2 cores, mostly compilation of its programs).
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from grokjax import api, experiment, fit, registry

from experiments.common import fmt
from experiments.transformer_plan import GROUPS, PRESETS, Config, plan

# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def _parts(lanes: dict) -> np.ndarray:
    """Each lane's part: the ``part`` column, else from its LayerNorm setting and arm."""
    if "part" in lanes:
        return lanes["part"]
    n = len(lanes["p"])
    ln = lanes.get("layernorm", np.full(n, "none", dtype=object))
    return np.where(
        ln == "none", "noln", np.where(lanes["arm"] == "group_clamp", "ln_clamp", "ln_free")
    ).astype(object)


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """The counts; then each part present (its lanes by :func:`_parts`) as one block of
    measures: :func:`_noln_spec`, :func:`_ln_free_spec`, :func:`_ln_clamp_spec`."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    part = _parts(lanes)
    lnm = lanes.get("layernorm", np.full(len(part), "none", dtype=object)) == cfg.ln_mode
    # part: (whether it ran, the lanes its measures take, its measures); the group clamps are
    # set against the free controls of the same LayerNorm setting
    parts = {
        "noln": (part == "noln", part == "noln", _noln_spec),
        "ln_free": (lnm & (part == "ln_free"), lnm & (part == "ln_free"), _ln_free_spec),
        "ln_clamp": (part == "ln_clamp", lnm, _ln_clamp_spec),
    }
    return [
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        *(
            fitspec.block(k, spec(run, cfg, sel)) if present.any() else fitspec.value(k, None)
            for k, (present, sel, spec) in parts.items()
        ),
    ]


def _noln_spec(run, cfg: Config, sel: np.ndarray) -> list:
    """W_c of the free lanes; the delay law over the clamped cells inside the fit range, the
    cells above it against its extrapolation; the budget scan's cells."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    free = sel & (lanes["arm"] == "free")
    clamp = sel & (lanes["arm"] == "clamp") & ok
    rho = np.round(lanes["rho"], 6)
    inside = clamp & (rho >= cfg.fit_lo - 1e-9) & (rho <= cfg.fit_hi + 1e-9)
    law = Ref("delay_law")
    return [
        m("Wc", ms.wc, free & ok),
        m("free", ms.cell_times, free),
        fitspec.value("fit_range", [cfg.fit_lo, cfg.fit_hi]),
        m("delay_law", ms.delay_law, inside) if inside.any() else fitspec.value("delay_law", None),
        m("cells", _rho_cells, clamp, law=law, hi=cfg.fit_hi),
        m("beyond", _beyond, None, cells=Ref("cells"), law=law, hi=cfg.fit_hi),
        m("scan", _rho_cells, sel & (lanes["arm"] == "scan") & ok, steps=True),
    ]


def _rho_cells(run, sel, law: dict | None = None, hi: float = math.inf, steps: bool = False):
    """One :func:`grokjax.measures.cell_times` block per rho (rounded to 1e-6) of the selected
    lanes, with its rho (and the largest step budget, ``steps``); a cell above ``hi`` also
    against the delay law's extrapolation (:func:`grokjax.measures.versus_law`)."""
    from grokjax import measures as ms

    rho = np.round(run.lanes["rho"], 6)
    out = []
    for r in sorted(set(rho[sel])):
        at = sel & (rho == r)
        c = ms.cell_times(run, at)
        c["rho"] = float(r)
        if steps:
            c["steps"] = int(np.max(run.lanes["budget"][at]))
        if law is not None and r > hi + 1e-9:
            ms.versus_law(c, law, c["rho"])
        out.append(c)
    return out


def _beyond(run, _sel, cells: list, law: dict | None, hi: float) -> list:
    """The cells above the fit range (against the law's extrapolation); none without a law."""
    return [c for c in cells if c["rho"] > hi + 1e-9] if law is not None else []


def _norm_stats(run, sel) -> dict:
    """Per group (and 'total'): median norm at T_grok and its CV across the selected lanes."""
    from grokjax import measures as ms

    out = {}
    for g in GROUPS + ("total",):
        w = ms.group_norm(run, sel, g)
        out[g] = {"median": w["median"], "cv": w["cv"]}
    return out


def _ln_free_spec(run, cfg: Config, sel: np.ndarray) -> list:
    """CVs of the group norms at T_grok: within cells, pooled over fractions at each p, over
    the lr × wd grid; and the power laws of ||U|| and of the total norm in p."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    free = sel & (lanes["arm"] == "free")
    good = free & ok & lanes["grokked"]
    ref_opt = np.isclose(lanes["lr"], cfg.ln_lr) & np.isclose(lanes["wd"], cfg.wd)
    cols = ("p", "frac", "lr", "wd")
    keys = sorted({tuple(float(v) for v in row) for row in zip(*(lanes[k][free] for k in cols))})

    def cell(p, f, lr, wd):
        at = free & (lanes["p"] == p) & np.isclose(lanes["frac"], f)
        at &= np.isclose(lanes["lr"], lr) & np.isclose(lanes["wd"], wd)
        return [
            fitspec.value("p", int(p)),
            *(fitspec.value(k, v) for k, v in zip(cols[1:], (f, lr, wd))),
            m("n", ms.count, at),
            m("n_grokked", ms.count, at & good),
            m("median_T_grok", ms.median_time, at & ok),
            m("n_censored", ms.n_censored, at & ok),
            m("norms", _norm_stats, at & good),
        ]

    def pooled(p):
        at = good & ref_opt & (lanes["p"] == p)
        return [
            fitspec.value("p", p),
            fitspec.value("fracs", sorted({float(f) for f in lanes["frac"][at]})),
            m("n", ms.count, at),
            m("norms", _norm_stats, at),
        ]

    grid = good & (lanes["p"] == cfg.grid_p) & np.isclose(lanes["frac"], cfg.grid_frac)
    combos = {(float(a), float(b)) for a, b in zip(lanes["lr"][grid], lanes["wd"][grid])}
    grid_spec = [
        fitspec.value("p", cfg.grid_p),
        fitspec.value("frac", cfg.grid_frac),
        m("n", ms.count, grid),
        fitspec.value("n_settings", len(combos)),
        m("norms", _norm_stats, grid),
    ]
    return [
        fitspec.rows("cells", [cell(*k) for k in keys]),
        fitspec.rows(
            "pooled_by_p", [pooled(p) for p in sorted({int(p) for p in lanes["p"][free & ref_opt]})]
        ),
        fitspec.block("grid", grid_spec) if len(combos) > 1 else fitspec.value("grid", None),
        m("power_law", _power_laws, None, pooled=Ref("pooled_by_p")),
    ]


def _power_laws(run, _sel, pooled: list) -> dict:
    """The power laws in p of the median ||U|| and total norm at T_grok pooled at each p (with
    two p or more)."""
    from grokjax import measures as ms

    pooled = [r for r in pooled if r["n"]]
    if len(pooled) < 2:
        return {}
    return {
        g: ms.power_law({r["p"]: r["norms"][g]["median"] for r in pooled}, n_boot=200)
        for g in ("unembed", "total")
    }


def _ln_clamp_spec(run, cfg: Config, sel: np.ndarray) -> list:
    """The free control at the clamp setting; each group clamp's cell with its fold change
    against the control; the largest fold either way."""
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    lanes = run.lanes
    at = sel & (lanes["p"] == cfg.clamp_p) & np.isclose(lanes["frac"], cfg.clamp_frac)
    at &= np.isclose(lanes["lr"], cfg.ln_lr) & np.isclose(lanes["wd"], cfg.wd)
    control = at & (lanes["arm"] == "free") & ~lanes["diverged"]
    return [
        m("control", ms.cell_times, control),
        m("cells", _clamp_cells, at, control=control, cfg=cfg),
        m("max_fold", _max_fold, None, cells=Ref("cells")),
    ]


def _clamp_cells(run, at, control: np.ndarray, cfg: Config) -> list:
    """Each group clamp's cell (:func:`grokjax.measures.cell_times`) with its group, rho, fold
    change of T_grok against the control and held norm; none without a control."""
    from grokjax import measures as ms

    if not control.any():
        return []
    lanes = run.lanes
    ok = ~lanes["diverged"]
    tc, cc = ms.times(run, control)
    group = lanes.get("clamp_group", np.full(len(lanes["p"]), "all", dtype=object))
    out = []
    for g, r in cfg.clamp_list():
        cell = at & (lanes["arm"] == "group_clamp") & (group == g) & np.isclose(lanes["rho"], r)
        if not cell.any():
            continue
        c = ms.cell_times(run, cell)
        t, cz = ms.times(run, cell & ok)
        held = float(np.median(lanes["target_norm"][cell]))
        c.update(group=g, rho=r, fold=fit.fold_change(tc, t, cc, cz)["fold"], held_norm=held)
        out.append(c)
    return out


def _max_fold(run, _sel, cells: list) -> float | None:
    """The largest fold change of the clamps either way (max(fold, 1/fold))."""
    folds = [c["fold"] for c in cells if c["fold"] is not None]
    return float(max(max(folds), 1 / min(folds))) if folds else None


# ---------------------------------------------------------------------------------------------
# figure and summary
# ---------------------------------------------------------------------------------------------


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """Three panels: the no-LayerNorm delay law; the CV of each group's norm at T_grok under a
    final LayerNorm (pooled per p); the group clamps' fold change of T_grok."""

    from grokjax import plots

    fig, axes = plots.subplots(1, 3, figsize=(15, 4.2))
    _delay_panel(axes[0], lanes, fitted)
    _layernorm_cv_panel(axes[1], fitted)
    _group_clamp_panel(axes[2], fitted)
    fig.tight_layout()
    return plots.save(fig, os.path.join(out, f"{prefix}transformer.png"))


def _delay_panel(ax, lanes: dict, fitted: dict) -> None:
    """Panel 1 of ``figure``: the no-LayerNorm delay law (lanes, cell medians, the fit)."""
    part = _parts(lanes)
    nl = fitted.get("noln")
    if nl:
        clamp = (part == "noln") & (lanes["arm"] == "clamp") & ~lanes["diverged"]
        g = clamp & lanes["grokked"]
        ax.scatter(
            lanes["rho"][g], lanes["T_grok"][g], s=9, alpha=0.4, color="#1b3b6f", label="lanes"
        )
        cens = clamp & ~lanes["grokked"]
        if cens.any():
            ax.scatter(
                lanes["rho"][cens],
                lanes["steps_run"][cens],
                marker="^",
                s=20,
                facecolors="none",
                color="#c0392b",
                label="censored (at budget)",
            )
        cells = [c for c in nl["cells"] if c["median"] is not None]
        ax.plot(
            [c["rho"] for c in cells],
            [c["median"] for c in cells],
            "o",
            mfc="white",
            mec="#1b3b6f",
            ms=7,
            label="cell medians",
        )
        law = nl.get("delay_law") or {}
        if law.get("alpha") is not None:
            c0 = next(iter(law["intercepts"].values()))
            r = np.linspace(nl["fit_range"][0], max(c["rho"] for c in nl["cells"]), 50)
            ax.plot(
                r,
                np.exp(law["alpha"] * r + c0),
                "-",
                color="k",
                lw=1,
                label=f"α₂={law['alpha']:.2f}, R²={fmt(law['r2'], '{:.3f}')}",
            )
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok (steps)")
    ax.set_title("attention, no LayerNorm: delay law")


def _layernorm_cv_panel(ax, fitted: dict) -> None:
    """Panel 2 of ``figure``: the CV of each group's norm at T_grok under a final LayerNorm."""
    from grokjax import plots

    lf = fitted.get("ln_free")
    if lf and lf["pooled_by_p"]:
        names = list(GROUPS) + ["total"]
        width = 0.8 / len(lf["pooled_by_p"])
        x = np.arange(len(names))
        for k, row in enumerate(lf["pooled_by_p"]):
            _, _, col = plots.STYLES[k % len(plots.STYLES)]
            vals = [
                100 * (row["norms"][g]["cv"] if row["norms"][g]["cv"] is not None else np.nan)
                for g in names
            ]
            ax.bar(
                x + (k - (len(lf["pooled_by_p"]) - 1) / 2) * width,
                vals,
                width,
                color=col,
                alpha=0.75,
                hatch=plots.HATCHES[k % len(plots.HATCHES)],
                edgecolor="black",
                label=f"p={row['p']} ({row['n']} lanes, {len(row['fracs'])} fractions)",
            )
        ax.set_xticks(x, names)
        ax.legend(fontsize=7)
    ax.set_ylabel("CV of the norm at T_grok (%)")
    ax.set_title("final LayerNorm: which norm is set at grokking")


def _group_clamp_panel(ax, fitted: dict) -> None:
    """Panel 3 of ``figure``: the group clamps' fold change of T_grok."""
    lc = fitted.get("ln_clamp")
    if lc and lc["cells"]:
        labels = [f"{c['group']}\nρ={c['rho']:g}" for c in lc["cells"]]
        vals = [c["fold"] if c["fold"] is not None else np.nan for c in lc["cells"]]
        ax.bar(np.arange(len(vals)), vals, color="#7f8c8d", edgecolor="black")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(vals)), labels, fontsize=7)
        ax.set_ylim(0, max(2.0, 1.1 * np.nanmax(vals)))
    ax.set_ylabel("median T_grok / free control")
    ax.set_title("final LayerNorm: group clamps")


def _pct(v) -> str:
    return fmt(None if v is None else 100 * v, "{:.1f}")


def summary(fitted: dict, cfg: Config) -> str:
    lines = [
        f"{fitted['n_lanes']} lanes; {fitted['n_censored']} censored, "
        f"{fitted['n_diverged']} diverged"
    ]
    nl = fitted.get("noln")
    if nl:
        w, law = nl["Wc"], nl.get("delay_law") or {}
        ci = law.get("alpha_ci") or [None, None]
        lines.append(
            f"no LayerNorm (p={cfg.p}): W_c = {fmt(w['median'], '{:.2f}')} "
            f"(CV {_pct(w['cv'])} %, {w['n']} grokked), "
            f"free median T_grok {fmt(nl['free']['median'], '{:.0f}')}"
        )
        for c in nl["cells"]:
            lines.append(
                f"  rho {c['rho']:.2f}: median T_grok {fmt(c['median'], '{:.0f}')} "
                f"({c['n_censored']}/{c['n']} censored)"
                + (f", {fmt(c.get('ratio'), '{:.2f}')}× the extrapolation" if "ratio" in c else "")
            )
        lines.append(
            f"  alpha_2 over [{cfg.fit_lo:g}, {cfg.fit_hi:g}] = "
            f"{fmt(law.get('alpha'), '{:.2f}')} [{fmt(ci[0], '{:.2f}')}, "
            f"{fmt(ci[1], '{:.2f}')}], R² = {fmt(law.get('r2'), '{:.4f}')}"
        )
        for c in nl.get("scan", []):
            lines.append(
                f"  scan rho {c['rho']:.2f} ({c['steps']} steps): median T_grok "
                f"{fmt(c['median'], '{:.0f}')} ({c['n_censored']}/{c['n']} censored)"
            )
    lf = fitted.get("ln_free")
    if lf:
        lines.append(
            f"LayerNorm ({cfg.ln_mode}), free: CV of the norm at T_grok pooled over fractions "
            "(total / unembed / embed / attn / mlp):"
        )
        for r in lf["pooled_by_p"]:
            n = r["norms"]
            lines.append(
                f"  p={r['p']} ({r['n']} lanes): "
                + " / ".join(_pct(n[g]["cv"]) for g in ("total", "unembed", "embed", "attn", "mlp"))
                + f" %; median ||U|| {fmt(n['unembed']['median'], '{:.2f}')}"
            )
        if lf["grid"]:
            n = lf["grid"]["norms"]
            lines.append(
                f"  lr × wd at p={lf['grid']['p']} ({lf['grid']['n_settings']} "
                f"settings): CV total {_pct(n['total']['cv'])} %, unembed "
                f"{_pct(n['unembed']['cv'])} %"
            )
        for g, pl in lf["power_law"].items():
            lines.append(f"  {g} norm at T_grok ∝ p^{fmt(pl['exponent'], '{:.2f}')}")
    lc = fitted.get("ln_clamp")
    if lc:
        lines.append(
            f"LayerNorm ({cfg.ln_mode}), group clamps at p={cfg.clamp_p}: control median "
            f"{fmt(lc['control']['median'], '{:.0f}')}"
        )
        for c in lc["cells"]:
            lines.append(
                f"  {c['group']} at rho {c['rho']:g}: median "
                f"{fmt(c['median'], '{:.0f}')} ({c['n_censored']}/{c['n']} censored), "
                f"{fmt(c['fold'], '{:.2f}')}× the control"
            )
        lines.append(f"  largest effect {fmt(lc['max_fold'], '{:.2f}')}×")
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    n = steps = 0
    if "noln" in cfg.parts:
        n += cfg.seeds * (1 + len(cfg.rho) + len(cfg.scan_rho))
        steps += cfg.seeds * (
            cfg.steps + sum(cfg.budget(r) for r in cfg.rho) + cfg.scan_steps * len(cfg.scan_rho)
        )
    if "ln_free" in cfg.parts:
        k = len(cfg.ln_p) * len(cfg.ln_frac) + len(cfg.grid_lr) * len(cfg.grid_wd)
        if (
            cfg.grid_p in cfg.ln_p
            and any(math.isclose(f, cfg.grid_frac) for f in cfg.ln_frac)
            and any(math.isclose(x, cfg.ln_lr) for x in cfg.grid_lr)
            and any(math.isclose(x, cfg.wd) for x in cfg.grid_wd)
        ):
            k -= 1  # the reference lr × wd cell is the fraction scan's
        n += cfg.ln_seeds * k
        steps += cfg.ln_seeds * k * cfg.ln_steps
    if "ln_clamp" in cfg.parts:
        n += cfg.ln_seeds * len(cfg.clamps)
        steps += cfg.ln_seeds * len(cfg.clamps) * cfg.clamp_steps
    return f"{n} lanes, <= {steps / 1e6:.2f} M lane-steps (budget bound)"


SPEC = registry.register(
    experiment.Spec(
        name="transformer",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        doc=__doc__,
        cost=cost,
        about="attention model with and without LayerNorm",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
