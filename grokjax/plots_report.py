"""The report's figures over loaded runs (:func:`make_figures`): lanes selected and fitted
per run (``grokjax.cells``, ``grokjax.fit``), drawn with ``grokjax.plots_series``."""

from __future__ import annotations

import math
import os

import numpy as np

from grokjax import cells, compare, fit, paper, tables
from grokjax.fit import power_law
from grokjax.runs import Run
from grokjax.plots_paper import on_protocol, paper_alpha, paper_overlay, paper_wc
from grokjax.plots_series import (
    delay_law_groups,
    layernorm_cv,
    norm_identity,
    trajectories,
    wc_scaling,
)


LAW_RHO_MAX = 1.25  # the paper's law holds up to here and saturates above (rho 1.30)


def _size(run: Run, idx: np.ndarray) -> str:
    """The column that sizes the task of lanes ``idx``: p, or n_bits for parity (no p)."""
    has_p = any(v is not None for v in cells.values(run, idx, "p"))
    return "p" if has_p or "n_bits" not in run.lanes else "n_bits"


def _ref_p(run: Run, idx: np.ndarray, size: str = "p") -> int | None:
    """The p (or ``size``) a per-run figure is drawn at: 59 if the lanes have it, else the
    smallest."""
    ps = cells.values(run, idx, size)
    if not ps:
        return None
    return 59 if 59 in ps else ps[0]


def _ref_lr(run: Run, idx: np.ndarray):
    """The lr a per-run figure is drawn at: the first of the config's lrs the lanes have."""
    cfg = run.config.get("lr")
    lrs = cells.values(run, idx, "lr")
    if isinstance(cfg, list) and cfg:
        for v in cfg:
            if any(cells.same(v, x) for x in lrs):
                return next(x for x in lrs if cells.same(v, x))
    return lrs[0] if lrs else None


def _fig_trajectories(run: Run, path: str):
    """Accuracy and norm against step for a free lane and up to three clamped lanes."""

    if not run.curves:
        return (
            None,
            "no curves.npz in the run directory (runs committed under results/ before 2026-12-06 keep none)",
        )
    L = run.lanes
    usable = (run.arm("free") | run.arm("clamp")) & ~L["diverged"]
    keys = ("model", "layernorm", "frac", "n_train", "wd", "d", "hidden")
    idx = cells.main_setting(run, usable, keys)
    if not idx.size:
        return None, "no free or clamped lanes"
    size = _size(run, idx)
    p = _ref_p(run, idx, size)
    idx = idx[L[size][idx] == p]
    lr = _ref_lr(run, idx)
    idx = idx[np.isclose(L["lr"][idx], lr)]
    free = idx[L["arm"][idx] == "free"]
    clamp = idx[L["arm"][idx] == "clamp"]
    seeds = sorted({int(s) for s in L["seed"][idx]})
    seed = next((s for s in seeds if (L["seed"][free] == s).any()), seeds[0])
    chosen = []
    f = free[L["seed"][free] == seed]
    if f.size:
        chosen.append((f[0], "free"))
    cs = clamp[L["seed"][clamp] == seed]
    rhos = sorted({float(r) for r in L["rho"][cs]})
    if len(rhos) > 3:
        rhos = [rhos[0], min(rhos, key=lambda r: abs(r - 1.0)), rhos[-1]]
    for r in rhos:
        i = cs[np.isclose(L["rho"][cs], r)]
        if i.size:
            chosen.append((i[0], f"clamped, ρ = {r:g}"))
    if not chosen:
        return None, "no lane to draw"
    wc = cells.wc_of(
        run,
        {
            size: p,
            "lr": lr,
            "model": fit.py(L["model"][idx[0]]),
            "frac": fit.py(L["frac"][idx[0]]),
            "n_train": fit.py(L["n_train"][idx[0]]) if "n_train" in L else None,
            "wd": fit.py(L["wd"][idx[0]]),
        },
    )
    panels = []
    for i, label in chosen:
        st = run.curves["steps"][i]
        keep = st >= 0
        tgt = fit.py(L["target_norm"][i]) if L["arm"][i] == "clamp" else None
        panels.append(
            {
                "label": f"{label} (seed {int(L['seed'][i])})",
                "steps": st[keep],
                "train_acc": run.curves["train_acc"][i][keep],
                "test_acc": run.curves["test_acc"][i][keep],
                "norm": run.curves["norm"][i][keep],
                "t_mem": fit.py(L["T_mem"][i]),
                "t_grok": fit.py(L["T_grok"][i]),
                "wc": wc,
                "target": tgt,
            }
        )
    title = f"{run.name}: accuracy and weight norm (p={p}, lr={lr:g}, {fit.py(L['model'][idx[0]])})"
    return trajectories(panels, path, title=title), None


def _fig_wc(run: Run, path: str):
    """W_c against p and against the train fraction, with power-law fits."""

    L = run.lanes
    base = run.arm("free") & run.ok()
    idx = cells.main_setting(run, base, ("model", "layernorm", "lr", "wd", "d", "hidden"))
    if not idx.size:
        return None, "no free lanes"
    size = _size(run, idx)  # parity: n_bits and n_train in place of p and frac
    amount = "frac" if size == "p" else "n_train"
    what = "train fraction" if size == "p" else "n_train"
    ps, fracs = cells.values(run, idx, size), cells.values(run, idx, amount)
    if len(ps) < 2 and len(fracs) < 2:
        return (
            None,
            f"one {size} ({tables.fmt_val(ps[0])}) and one {what} ({tables.fmt_val(fracs[0])})",
        )

    def series(along, other, other_vals):
        out = []
        for ov in other_vals:
            sub = idx[np.isclose(L[other][idx], ov)]
            xs = cells.values(run, sub, along)
            if len(xs) < 2:
                continue
            med, lo, hi, sx, sy = [], [], [], [], []
            for x in xs:
                cell = sub[np.isclose(L[along][sub], x)]
                w = cells.critical_norm(run, cell)
                med.append(np.nan if w["median"] is None else w["median"])
                lo.append(np.nan if w["ci"][0] is None else w["ci"][0])
                hi.append(np.nan if w["ci"][1] is None else w["ci"][1])
                g = cell[L["grokked"][cell]]
                sx += [x] * g.size
                sy += list(L["norm_at_grok"][g])
            pl = power_law(np.array(xs, float), np.array(med), seed=cells.SEED)
            lab = f"frac {ov:g}" if other == "frac" else f"{other} = {ov:g}"
            out.append(
                {
                    "label": lab,
                    "x": xs,
                    "median": med,
                    "lo": lo,
                    "hi": hi,
                    "seeds_x": sx,
                    "seeds_y": sy,
                    "fit": pl,
                }
            )
        return out

    by_p = series(size, amount, fracs)
    by_frac = series(amount, size, ps)
    if not by_p and not by_frac:
        return (
            None,
            f"no setting with two or more {size} or {'fractions' if size == 'p' else amount}",
        )
    cond = {
        "model": fit.py(L["model"][idx[0]]),
        "lr": fit.py(L["lr"][idx[0]]),
        "wd": fit.py(L["wd"][idx[0]]),
        "d": fit.py(L["d"][idx[0]]),
        "hidden": fit.py(L["hidden"][idx[0]]),
        "frac": fracs[0] if len(fracs) == 1 else tuple(fracs),
    }
    proto = {k: v for k, v in paper.MLP_PROTOCOL.items()}
    overlay = paper_wc("mlp") if size == "p" and not compare.mismatches(cond, proto) else None
    title = f"{run.name}: critical norm W_c ({cond['model']}, lr={cond['lr']:g}, wd={cond['wd']:g})"
    return wc_scaling(
        by_p, by_frac, path, paper_points=overlay, title=title, names=(size, amount)
    ), None


def _delay_series(
    run: Run, idx: np.ndarray, law: dict, group: str, label, with_paper: bool = True
) -> list[dict]:
    """The :func:`delay_law_groups` series of a fitted law, one per group of the law, each
    with the paper's alpha line (and its medians, at the paper's protocol) when the paper has
    an alpha for the model."""
    L = run.lanes
    t, c = run.times()
    out = []
    for gk, pg in law["per_group"].items():
        sel = idx[np.array([str(fit.py(v)) == gk for v in L[group][idx]])]
        cell_fits = [cl for cl in law["cells"] if cl["group"] == gk and cl["median"] is not None]
        line = (pg["alpha"], pg["intercept"]) if pg["alpha"] is not None else None
        ci = pg.get("alpha_ci") or [None, None]
        lab = label(gk)
        ll = None
        if line:
            ll = f"{lab}: α = {pg['alpha']:.2f}"
            if ci[0] is not None:
                ll += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
            if pg.get("r2") is not None:
                ll += f", R² = {pg['r2']:.3f}"
        ov = None
        if with_paper and sel.size:
            i = sel[0]
            cond = {k: fit.py(L[k][i]) for k in ("model", "frac", "lr", "wd", "d", "hidden")}
            proto = on_protocol(cond)
            if proto or group != "lr":  # per lr: only the paper's own lr gets its law
                ov = paper_overlay(
                    cond["model"],
                    fit.py(L["p"][i]),
                    [cl["rho"] for cl in cell_fits],
                    [cl["median"] for cl in cell_fits],
                    proto,
                )
        out.append(
            {
                "label": lab,
                "rho": L["rho"][sel],
                "t": t[sel],
                "censored": c[sel],
                "cells_rho": [cl["rho"] for cl in cell_fits],
                "cells_median": [cl["median"] for cl in cell_fits],
                "line": line,
                "line_label": ll,
                "paper": ov,
            }
        )
    return out


def _fig_delay(run: Run, path_p: str, path_lr: str):
    """The delay law per p (with the shared-alpha collapse) and, with several lr, per lr."""

    L = run.lanes
    made, skipped = [], []
    base = run.arm("clamp") & run.ok() & np.isfinite(L["rho"])
    idx = cells.main_setting(
        run, base, ("model", "layernorm", "frac", "wd", "d", "hidden", "t_int", "clamp_mode")
    )
    if not idx.size or len(cells.values(run, idx, "rho")) < 2:
        return [], [("delay law", "no clamped lanes at two or more rho")]
    model = fit.py(L["model"][idx[0]])
    lr = _ref_lr(run, idx)
    at_lr = idx[np.isclose(L["lr"][idx], lr)]
    # the line is fitted where the paper's law holds (rho <= 1.25: it saturates above); the
    # seeds of every rho are drawn
    in_law = at_lr[L["rho"][at_lr] <= LAW_RHO_MAX + 1e-9]
    size = _size(run, idx)
    law = cells.delay_law(
        run, in_law if len(cells.values(run, in_law, "rho")) >= 2 else at_lr, group=size
    )
    series = _delay_series(run, at_lr, law, size, lambda g: f"{size} = {g}")
    collapse = None
    if len(law["per_group"]) >= 2 and law["alpha"] is not None:
        t, _ = run.times()
        pts = []
        for gk, c0 in law["intercepts"].items():
            if c0 is None:
                continue
            cell_fits = [
                cl for cl in law["cells"] if cl["group"] == gk and cl["median"] is not None
            ]
            sel = at_lr[(L[size][at_lr] == int(gk)) & L["grokked"][at_lr]]
            pts.append(
                {
                    "label": f"{size} = {gk}",
                    "rho": [cl["rho"] for cl in cell_fits],
                    "y": [math.log(cl["median"]) - c0 for cl in cell_fits],
                    "seeds_rho": L["rho"][sel],
                    "seeds_y": np.log(t[sel]) - c0,
                }
            )
        ci = law["alpha_ci"]
        lab = f"shared α = {law['alpha']:.2f}"
        if ci[0] is not None:
            lab += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        lab += f", R² = {tables.fmt(law['r2'], '{:.3f}')}"
        collapse = {
            "alpha": law["alpha"],
            "label": lab,
            "points": pts,
            "paper_alpha": paper_alpha(model),
        }
    made += delay_law_groups(
        series,
        path_p,
        collapse=collapse,
        title=f"{run.name}: delay law per p (lr={lr:g}, {model}; fit over ρ ≤ {LAW_RHO_MAX:g})",
    )
    if len(cells.values(run, idx, "lr")) >= 2:
        p = _ref_p(run, idx, size)
        at_p = idx[L[size][idx] == p]
        law_lr = cells.delay_law(run, at_p, group="lr")
        s = _delay_series(run, at_p, law_lr, "lr", lambda g: f"lr = {float(g):g}")
        made += delay_law_groups(
            s, path_lr, title=f"{run.name}: delay law per lr ({size}={p}, {model})"
        )
    else:
        skipped.append(("delay law per lr", "one learning rate"))
    return made, skipped


def _fig_identity(run: Run, path: str):
    """The norm at T_grok of clamped lanes against the held norm."""

    L = run.lanes
    m = run.arm("clamp") & run.ok() & L["grokked"] & (L["target_norm"] > 0)
    if not m.any():
        return None, "no grokked clamped lanes"
    series = []
    for cond, idx in cells.groups(run, m, ("p", "clamp_mode", "model")):
        lab = f"p = {cond['p']}"
        if len(cells.values(run, np.nonzero(m)[0], "clamp_mode")) > 1:
            lab += f", {cond['clamp_mode']}"
        if len(cells.values(run, np.nonzero(m)[0], "model")) > 1:
            lab += f", {cond['model']}"
        series.append(
            {"label": lab, "target": L["target_norm"][idx], "norm": L["norm_at_grok"][idx]}
        )
    return norm_identity(series, path, title=f"{run.name}: ‖W‖ at T_grok vs held norm"), None


def _fig_layernorm(runs: list[Run], rows: list[dict], path: str):
    """Per-group CV of the norm at T_grok, one bar set per (run, LayerNorm setting, p): the
    free grokked attention lanes pooled over the train fractions at the most common lr and
    wd (the per-cell CVs are in the table)."""

    if not rows:
        return (
            None,
            "not run (needs the transformer experiment: attention runs with and without LayerNorm)",
        )
    groups = [k[3:] for k in rows[0] if k.startswith("cv_")]
    bars = []
    for run in runs:
        attn = run.lanes["model"] == "attn"
        good = attn & run.arm("free") & run.ok() & run.lanes["grokked"]
        if not good.any():
            continue
        main = cells.main_setting(run, good, ("lr", "wd"))
        lr, wd = fit.py(run.lanes["lr"][main[0]]), fit.py(run.lanes["wd"][main[0]])
        at = good & np.isclose(run.lanes["lr"], lr) & np.isclose(run.lanes["wd"], wd)
        for cond, idx in cells.groups(run, at, ("layernorm", "p")):
            if idx.size < 2:  # a CV needs two lanes
                continue
            cv = cells.norm_cvs(run, idx, groups)
            nf = len(cells.values(run, idx, "frac"))
            bars.append(
                {
                    "label": f"LayerNorm {cond['layernorm'] or 'unknown'}, p={cond['p']} "
                    f"(n={idx.size}, {nf} fraction{'s' if nf > 1 else ''}"
                    + (f", {run.name}" if len(runs) > 1 else "")
                    + ")",
                    "cv": cv,
                }
            )
    if not bars:
        return None, "no setting with two or more grokked free attention lanes"
    note = (
        None
        if len({r.get("layernorm") for r in rows}) > 1
        else "only one LayerNorm setting present"
    )
    return layernorm_cv(
        bars[:8], groups, path, title="Per-group CV of the norm at T_grok (attention model)"
    ), note


def _fig_models(runs: list[Run], path: str):
    """The delay law of each model kind without LayerNorm, side by side: per model kind the
    clamped lanes of the single setting (run, p, lr, ...) with the most values of rho (then
    the most lanes), with its fitted line."""

    keys = ("model", "layernorm", "p", "lr", "frac", "wd", "d", "hidden", "t_int", "clamp_mode")
    best = {}
    for run in runs:
        L = run.lanes
        ln = L.get("layernorm")
        plain = (
            np.ones(run.n, bool)
            if ln is None
            else np.array([fit.py(v) in (None, "none") for v in ln])
        )
        base = run.arm("clamp") & run.ok() & np.isfinite(L["rho"]) & plain
        for cond, idx in cells.groups(run, base, keys):
            score = (len(cells.values(run, idx, "rho")), idx.size)
            if score[0] >= 2 and score > best.get(cond["model"], ((0, 0),))[0]:
                best[cond["model"]] = (score, run, cond, idx)
    if len(best) < 2:
        return None, (
            "needs clamped runs of two model kinds without LayerNorm, e.g. "
            "delay_sweep (MLP) and transformer (attention)"
        )
    series = []
    for model in sorted(best):
        _, run, cond, idx = best[model]
        law = cells.delay_law(run, idx, group="model")
        series += _delay_series(
            run, idx, law, "model", lambda g: f"{g} ({run.name}, p={cond['p']}, lr={cond['lr']:g})"
        )
    return delay_law_groups(series, path, title="The delay law per model (no LayerNorm)"), None


def make_figures(runs: list[Run], out: str, ln_rows: list[dict] | None = None) -> list[dict]:
    """Writes the figures (PNG + PDF) into ``out``; returns [{name, files, caption} or
    {name, skipped}]. Per run: ``<run>_trajectories``, ``<run>_wc_scaling``,
    ``<run>_delay_law`` (per p, with the shared-alpha collapse when there are several p),
    ``<run>_delay_law_lr``, ``<run>_norm_at_grok``; over all runs: ``layernorm_cv``."""
    figs = []
    for run in runs:
        _run_figures(figs, run, out)
    _add(
        figs,
        "layernorm_cv",
        "per-group CV across seeds of the norm at T_grok with and without "
        "LayerNorm (attention model)",
        _fig_layernorm,
        runs,
        ln_rows if ln_rows is not None else tables.layernorm_table(runs),
        os.path.join(out, "layernorm_cv.png"),
    )
    _add(
        figs,
        "delay_law_models",
        "T_grok against ρ for the MLP and the attention model (no "
        "LayerNorm), each with its own fitted α",
        _fig_models,
        runs,
        os.path.join(out, "delay_law_models.png"),
    )
    return figs


def _add(figs: list, name: str, caption: str, fn, *args) -> None:
    """Draws one figure with ``fn(*args)`` -> (files, why) and records it in ``figs``."""
    try:
        files, why = fn(*args)
    except ValueError as e:
        files, why = None, f"could not draw: {e}"
    if files:
        figs.append(
            {
                "name": name,
                "files": [os.path.basename(f) for f in files],
                "caption": caption + (f" ({why})" if why else ""),
            }
        )
    else:
        figs.append({"name": name, "skipped": why})


def _run_figures(figs: list, run: Run, out: str) -> None:
    """The per-run figures of ``make_figures``, recorded in ``figs``."""
    stem = os.path.join(out, run.name)
    sizes = "p and/or train fraction"
    if _size(run, np.arange(run.n)) == "n_bits":
        sizes = "bit count n and/or training rows m"  # a parity run
    _add(
        figs,
        f"{run.name}_trajectories",
        "train/test accuracy and ‖W‖ against step (log x) for a "
        "free lane and clamped lanes of one seed; T_mem, T_grok and W_c marked",
        _fig_trajectories,
        run,
        f"{stem}_trajectories.png",
    )
    _add(
        figs,
        f"{run.name}_wc_scaling",
        f"W_c against {sizes} with power-law fits",
        _fig_wc,
        run,
        f"{stem}_wc_scaling.png",
    )
    made, skipped = _fig_delay(run, f"{stem}_delay_law.png", f"{stem}_delay_law_lr.png")
    for stemname, cap in (
        (
            f"{run.name}_delay_law",
            "T_grok against ρ per p with fitted "
            "lines; with several p also the shared-α collapse "
            "(ln T_grok − c_p against ρ)",
        ),
        (f"{run.name}_delay_law_lr", "T_grok against ρ per lr with fitted lines"),
    ):
        files = [
            os.path.basename(f) for f in made if os.path.basename(f).startswith(stemname + ".")
        ]
        if files:
            figs.append({"name": stemname, "files": files, "caption": cap})
    for what, why in skipped:
        figs.append(
            {
                "name": f"{run.name}_{'delay_law_lr' if 'lr' in what else 'delay_law'}",
                "skipped": why,
            }
        )
    _add(
        figs,
        f"{run.name}_norm_at_grok",
        "‖W‖ at T_grok against the held norm with the identity line, and the relative deviation",
        _fig_identity,
        run,
        f"{stem}_norm_at_grok.png",
    )
