"""The experiments' own figures with the paper's values and CIs on them: delay_sweep's
:func:`delay_law`, and critical_norm, dense_rho, lr_matrix and norm_controls' figures, which the
report draws for them (:data:`EXPERIMENT_FIGURES`)."""

from __future__ import annotations

import math
import os

import numpy as np

from grokjax import fit, paper
from grokjax.tables import fmt
from grokjax.plots_base import (
    STYLES,
    plain_log_ticks,
    plain_ticks_at,
    relative_ylim,
    save,
    style,
    subplots,
)
from grokjax.plots_paper import (
    paper_overlay,
    PAPER_COLOR,
    draw_paper_law,
    draw_paper_points,
    on_protocol,
    paper_alpha,
    paper_line,
    paper_medians,
    paper_rho_max,
    paper_wc,
)


_py = fit.py  # a numpy scalar as a Python value (``delay_law`` takes a parameter named fit)


def delay_law(lanes: dict, fit: dict, path: str, formats=("png",)) -> list[str]:
    """T_grok against rho on a log axis, one series per p: seeds as points, cell medians as
    open markers, censored seeds as upward triangles at their budget, fitted lines from
    ``fit['per_p'][p]['delay_law']``."""
    clamp = lanes["arm"] == "clamp"
    ps = sorted(set(lanes["p"][clamp].astype(int)))
    fig, ax = subplots(figsize=(5.2, 4.0))
    rng = np.random.default_rng(0)
    for k, p in enumerate(ps):
        marker, ls, color = STYLES[k % len(STYLES)]
        sel = clamp & (lanes["p"] == p)
        rho = lanes["rho"][sel]
        t = lanes["T_grok"][sel]
        ok = np.isfinite(t)
        jitter = rng.uniform(-0.006, 0.006, rho.size)
        ax.scatter(
            rho[ok] + jitter[ok], t[ok], s=10, color=color, alpha=0.45, marker=marker, linewidths=0
        )
        cens = ~ok & ~lanes["diverged"][sel]
        if cens.any():
            ax.scatter(
                rho[cens] + jitter[cens],
                lanes["steps_run"][sel][cens],
                s=22,
                color=color,
                marker="^",
                facecolors="none",
                label=f"p={p} censored",
            )
        law = fit.get("per_p", {}).get(str(p), {}).get("delay_law")
        label = f"p={p}"
        if law and law.get("alpha") is not None:
            cell_fits = [c for c in law["cells"] if c.get("median") is not None]
            ax.plot(
                [c["rho"] for c in cell_fits],
                [c["median"] for c in cell_fits],
                marker=marker,
                ls="none",
                mfc="white",
                mec=color,
                ms=7,
                mew=1.5,
            )
            r = np.linspace(min(rho), max(rho), 50)
            c0 = next(iter(law["intercepts"].values()))
            label += f": α={law['alpha']:.2f}, R²={fmt(law['r2'], '{:.3f}')}"
            ax.plot(r, np.exp(law["alpha"] * r + c0), ls=ls, color=color, label=label)
            model = str(lanes["model"][sel][0]) if "model" in lanes else "mlp"
            cond = {k: _py(lanes[k][sel][0]) for k in ("model", "frac", "lr", "wd") if k in lanes}
            ov = paper_overlay(
                model,
                p,
                [c["rho"] for c in cell_fits],
                [c["median"] for c in cell_fits],
                on_protocol(cond),
            )
            if ov:
                draw_paper_law(
                    ax,
                    ov["alpha"],
                    ov["c"],
                    min(rho),
                    min(max(rho), ov["hi"]),
                    None if k else ov["label"],
                )
                draw_paper_points(ax, ov["points"], None if k else "paper's medians")
        else:
            ax.plot([], [], ls=ls, color=color, label=label)
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok (steps, test acc ≥ 0.9)")
    ax.set_title("Grokking delay under a pinned weight norm")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[1]:  # a run without clamped lanes has no series
        ax.legend(fontsize=8)
    return save(fig, path, formats)


def _times(lanes: dict, sel: np.ndarray):
    g = lanes["grokked"][sel]
    return np.where(g, lanes["T_grok"][sel], lanes["steps_run"][sel]).astype(float), ~g


def median_ratio_ci(t_a, c_a, t_b, c_b, n_boot: int = 500, seed: int = 0) -> list:
    """95 % percentile-bootstrap interval of median(a) / median(b) (Kaplan-Meier medians, both
    groups of lanes resampled independently); an end is None where unidentifiable."""
    t_a, c_a, t_b, c_b = (np.asarray(x) for x in (t_a, c_a, t_b, c_b))
    if t_a.size < 2 or t_b.size < 2:
        return [None, None]
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        i = rng.integers(0, t_a.size, t_a.size)
        j = rng.integers(0, t_b.size, t_b.size)
        ma, mb = fit.censored_median(t_a[i], c_a[i]), fit.censored_median(t_b[j], c_b[j])
        reps.append(np.inf if ma is None or not mb else ma / mb)
    lo, hi = np.quantile(np.array(reps, float), [0.025, 0.975], method="inverted_cdf")
    return [float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None]


def _cond_of(lanes: dict, i: int) -> dict:
    return {
        k: fit.py(lanes[k][i]) for k in ("model", "frac", "lr", "wd", "d", "hidden") if k in lanes
    }


def critical_norm_figure(
    lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = ""
) -> list:
    """critical_norm: (a) W_c against p per train fraction, medians with 95 % CIs, the power
    law and the paper's W_c; (b) W_c against lr per wd on a ±5 % axis with CIs, T_grok on the
    right; (c) ‖W‖ and the embedding's Fourier Gini over training, only when the run kept its
    curves.npz (a committed results/ run does not: the figure then has two panels)."""
    has_curves = bool(curves) and "steps" in curves
    across_lr = {
        wd: e for wd, e in fitted.get("across_lr", {}).items() if len(e.get("lr", [])) >= 2
    }
    kinds = ["p"] + (["lr"] if across_lr else []) + (["traj"] if has_curves else [])
    fig, axes = subplots(1, len(kinds), figsize=(4.9 * len(kinds), 4.3), squeeze=False)
    axes = dict(zip(kinds, axes[0]))
    cells_ = fitted["cells"]
    _wc_against_p(axes["p"], lanes, fitted)
    if across_lr:
        _wc_against_lr(axes["lr"], cells_, across_lr)
    if has_curves:
        _wc_trajectories(axes["traj"], lanes, cells_, curves)
    fig.tight_layout()
    return save(fig, os.path.join(out, f"{prefix}critical_norm.png"))


def _wc_against_p(ax, lanes: dict, fitted: dict) -> None:
    """critical_norm (a): W_c against p per train fraction at the run's first lr and wd (the
    paper's protocol where it has it), with the power law and the paper's W_c."""
    cells_ = fitted["cells"]
    lr0, wd0 = float(lanes["lr"][0]), float(lanes["wd"][0])
    fracs = sorted({c["frac"] for c in cells_})
    ps_drawn = set()
    for k, f in enumerate(fracs):
        m, ls, col = style(k)
        cs = sorted(
            (
                c
                for c in cells_
                if math.isclose(c["frac"], f)
                and math.isclose(c["lr"], lr0)
                and math.isclose(c["wd"], wd0)
                and c["Wc"]["median"] is not None
            ),
            key=lambda c: c["p"],
        )
        if not cs:
            continue
        x = np.array([c["p"] for c in cs], float) * (1 + 0.012 * (k - (len(fracs) - 1) / 2))
        y = np.array([c["Wc"]["median"] for c in cs])
        lo = np.array([(c["Wc"]["ci"] or [None])[0] or c["Wc"]["median"] for c in cs])
        hi = np.array([(c["Wc"]["ci"] or [None, None])[1] or c["Wc"]["median"] for c in cs])
        ax.errorbar(
            x, y, yerr=[y - lo, hi - y], marker=m, ls=ls, color=col, capsize=2.5, ms=5,
            label=f"fraction {f:g} (median, 95 % CI)",
        )  # fmt: skip
        ps_drawn |= {c["p"] for c in cs}
    pl = fitted.get("power_law") or {}
    if pl.get("exponent") is not None and ps_drawn:
        ps = np.geomspace(min(ps_drawn), max(ps_drawn), 50)
        ci = pl.get("exponent_ci") or [None, None]
        lab = f"fit: W_c ∝ p^{pl['exponent']:.2f}"
        if ci[0] is not None:
            lab += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        ax.plot(ps, pl["prefactor"] * ps ** pl["exponent"], color="k", lw=1, label=lab)
    if on_protocol({**_cond_of(lanes, 0), "frac": 0.4}) and ps_drawn:
        wc_paper = paper_wc("mlp")
        ax.plot(
            sorted(wc_paper), [wc_paper[q] for q in sorted(wc_paper)], ls="none", marker="x",
            ms=8, mew=1.6, color=PAPER_COLOR, zorder=6, label="paper's W_c (fraction 0.4)",
        )  # fmt: skip
        ps_drawn |= set(wc_paper)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if ps_drawn:
        plain_ticks_at(ax, sorted(ps_drawn), "x")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("modulus p (log scale)")
    ax.set_ylabel("W_c = median ‖W‖ at T_grok (log scale)")
    ax.set_title(f"(a) W_c against p (lr {lr0:g}, wd {wd0:g})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _wc_against_lr(ax, cells_: list, across_lr: dict) -> None:
    """critical_norm (b): W_c against lr per wd with CIs on a relative axis, T_grok on the
    right."""
    ax2 = ax.twinx()
    all_wc, all_lr = [], []
    for k, (wd, e) in enumerate(sorted(across_lr.items(), key=lambda kv: float(kv[0]))):
        m, ls, col = style(k)
        pts = []
        for lr, w in zip(e["lr"], e["Wc"]):
            if w is None:
                continue
            cell = next(
                (
                    c
                    for c in cells_
                    if math.isclose(c["lr"], lr)
                    and math.isclose(c["wd"], float(wd))
                    and c["Wc"]["median"] is not None
                    and math.isclose(c["Wc"]["median"], w, rel_tol=1e-9)
                ),
                None,
            )
            ci = (cell or {}).get("Wc", {}).get("ci") or [None, None]
            pts.append((lr, w, ci[0] if ci[0] is not None else w, ci[1] or w))
        if pts:
            x, y, lo, hi = (np.array(v, float) for v in zip(*pts))
            cv = e.get("cv")
            lab = f"W_c, wd {float(wd):g}" + (f" (CV across lr {100 * cv:.1f} %)" if cv else "")
            ax.errorbar(
                x, y, yerr=[y - lo, hi - y], marker=m, ls=ls, color=col, capsize=2.5,
                ms=5, label=lab,
            )  # fmt: skip
            all_wc += list(lo) + list(hi)
            all_lr += list(x)
        okt = [(lr, t) for lr, t in zip(e["lr"], e["T_grok"]) if t is not None]
        if okt:
            ax2.plot(
                *zip(*okt), marker=m, ls=":", color=col, mfc="white", alpha=0.7,
                label=f"median T_grok, wd {float(wd):g}",
            )  # fmt: skip
    ax.set_xscale("log")
    ax2.set_yscale("log")
    relative_ylim(ax, all_wc, 0.05)
    if all_lr:
        plain_ticks_at(ax, all_lr, "x")
    plain_log_ticks(ax2, "y")
    ref = paper.PAPER.get("wc_lr_cv_wd3")
    note = f"y axis ±5 % of W_c; paper: CV across lr {100 * ref.value:g} % at wd 3" if ref else ""
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("W_c (solid; ±5 % axis)")
    ax2.set_ylabel("median T_grok (dotted, open; log scale)")
    ax.set_title("(b) W_c and T_grok against lr", fontsize=10)
    ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=7, color="0.3")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    ax.grid(True, alpha=0.3)


def _wc_trajectories(ax, lanes: dict, cells_: list, curves: dict) -> None:
    """critical_norm (c): ‖W‖ and the embedding's Fourier Gini over training, first fully
    grokked cell."""
    best = max(cells_, key=lambda c: c["n_grokked"])["cell"]
    idx = np.flatnonzero(lanes["cell"] == best)
    ax3 = ax.twinx()
    for j, i in enumerate(idx[:8]):
        s = curves["steps"][i]
        keep = (s >= 0) & np.isfinite(curves["norm"][i])
        ax.plot(
            np.maximum(s[keep], 1), curves["norm"][i][keep], color="#1b3b6f", lw=0.8,
            label="‖W‖" if j == 0 else None,
        )  # fmt: skip
        if "fourier_gini" in curves:
            ax3.plot(
                np.maximum(s[keep], 1), curves["fourier_gini"][i][keep], color="#c0392b",
                ls="--", lw=0.8, label="Fourier Gini" if j == 0 else None,
            )  # fmt: skip
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    ax.set_xlabel("step (log scale)")
    ax.set_ylabel("‖W‖ (solid)")
    ax3.set_ylabel("embedding Fourier Gini (dashed)")
    ax.set_title(f"(c) trajectories, {best}", fontsize=10)


def dense_rho_figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """dense_rho: T_grok against rho, seeds and cell medians, the fitted law over the fit range
    with its extrapolation, the cells beyond it, and the paper's medians and alpha line (the
    paper's dense-scan alpha through its medians, on the paper's protocol)."""
    fig, ax = subplots(figsize=(5.8, 4.3))
    clamp = (lanes["arm"] == "clamp") & ~lanes["diverged"]
    g = clamp & lanes["grokked"]
    ax.scatter(
        lanes["rho"][g], lanes["T_grok"][g], s=9, alpha=0.35, color="#1b3b6f", linewidths=0,
        label="seeds",
    )  # fmt: skip
    cens = clamp & ~lanes["grokked"]
    if cens.any():
        ax.scatter(
            lanes["rho"][cens], lanes["steps_run"][cens], marker="^", s=20, facecolors="none",
            color="#c0392b", label="censored (at budget)",
        )  # fmt: skip
    law = fitted.get("delay_law") or {}
    lo_r, hi_r = fitted.get("fit_range", [None, None])
    cell_rho, cell_med = [], []
    if law.get("alpha") is not None:
        cs = [c for c in law["cells"] if c["median"] is not None]
        cell_rho, cell_med = [c["rho"] for c in cs], [c["median"] for c in cs]
        ax.plot(
            cell_rho, cell_med, "o", mfc="white", mec="#1b3b6f", ms=7, mew=1.5,
            label="cell medians (fit range)",
        )  # fmt: skip
        c0 = next(iter(law["intercepts"].values()))
        r = np.linspace(lo_r, hi_r, 50)
        ci = law.get("alpha_ci") or [None, None]
        lab = f"fit: α = {law['alpha']:.2f}"
        if ci[0] is not None:
            lab += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        lab += f", R² = {fmt(law['r2'], '{:.3f}')}"
        ax.plot(r, np.exp(law["alpha"] * r + c0), "-", color="#1b3b6f", lw=1.4, label=lab)
        hi = max([hi_r] + [b["rho"] for b in fitted.get("beyond", [])])
        if hi > hi_r:
            r = np.linspace(hi_r, hi, 20)
            ax.plot(r, np.exp(law["alpha"] * r + c0), ":", color="#1b3b6f", lw=1)
        for b in fitted.get("beyond", []):
            if b["median"] is not None:
                ratio = b.get("ratio")
                ax.plot(
                    [b["rho"]], [b["median"]], "s", color="#c0392b", ms=7,
                    label=f"ρ = {b['rho']:g}: "
                    + (f"{ratio:.2f}× the extrapolation" if ratio else "median"),
                )  # fmt: skip
    cond = _cond_of(lanes, 0)
    ps = sorted({int(v) for v in lanes["p"][clamp]})
    if on_protocol(cond) and len(ps) == 1:
        at = paper_medians(cond.get("model", "mlp"), ps[0])
        a = paper_alpha(key="alpha_dense") or paper_alpha(cond.get("model", "mlp"))
        c = paper_line(a, cell_rho, cell_med, at) if a else None
        if c is not None:
            draw_paper_law(ax, a, c, lo_r, hi_r, f"paper α = {a:g} (over its fit range)")
        draw_paper_points(ax, at)
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok (steps to test acc ≥ 0.9, log scale)")
    seeds = len({int(v) for v in lanes["seed"][clamp]})
    at_p = f"p = {ps[0]}, " if len(ps) == 1 else ""
    ax.set_title(f"Dense ρ scan: T_grok at a held norm ({at_p}{seeds} seeds per cell)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, os.path.join(out, f"{prefix}dense_rho.png"))


def lr_matrix_figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """lr_matrix: median T_grok (95 % CI) against rho per lr, with the paper's medians at its
    lr and its alpha line; the norm at grokking against the held norm."""
    fig, (ax, ax2) = subplots(1, 2, figsize=(10.5, 4.3))
    lrs = sorted({c["lr"] for c in fitted["cells"]})
    for k, lr in enumerate(lrs):
        m, ls, col = style(k)
        cs = [c for c in fitted["cells"] if c["lr"] == lr and c["median"] is not None]
        if not cs:
            continue
        x = np.array([c["rho"] for c in cs])
        y = np.array([c["median"] for c in cs])
        lo = np.array([c["ci"][0] if c["ci"][0] is not None else c["median"] for c in cs])
        hi = np.array([c["ci"][1] if c["ci"][1] is not None else c["median"] for c in cs])
        a = (fitted.get("alpha_by_lr", {}).get(repr(lr)) or {}).get("alpha")
        ax.errorbar(
            x + 0.004 * k, y, yerr=[y - lo, hi - y], marker=m, ls=ls, color=col, capsize=2,
            label=f"lr {lr:g}" + (f": α = {a:.2f}" if a is not None else ""),
        )  # fmt: skip
        for c in fitted["cells"]:
            if c["lr"] == lr and c["median"] is None:
                sel = (
                    (lanes["arm"] == "clamp")
                    & np.isclose(lanes["lr"], lr)
                    & np.isclose(lanes["rho"], c["rho"])
                )
                ax.plot(
                    [c["rho"] + 0.004 * k], [np.nanmax(lanes["steps_run"][sel])], "^", color=col,
                    mfc="white", ms=8, label=f"lr {lr:g}, ρ = {c['rho']:g}: median > budget",
                )  # fmt: skip
    cond = _cond_of(lanes, 0)
    ps = sorted({int(v) for v in lanes["p"]})
    proto = {k: v for k, v in paper.MLP_PROTOCOL.items() if k != "lr"}
    paper_lr = paper.MLP_PROTOCOL["lr"]
    if on_protocol(cond, proto) and len(ps) == 1 and any(math.isclose(v, paper_lr) for v in lrs):
        at = paper_medians(cond.get("model", "mlp"), ps[0])
        a = paper_alpha(cond.get("model", "mlp"))
        c = paper_line(a, [], [], at) if a and at else None
        if c is not None:
            rs = [c_["rho"] for c_ in fitted["cells"]]
            hi = min(max(rs), paper_rho_max(cond.get("model", "mlp")))
            draw_paper_law(ax, a, c, min(rs), hi, f"paper α = {a:g} (lr {paper_lr:g})")
        draw_paper_points(ax, at, f"paper's medians (lr {paper_lr:g})")
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("median T_grok (95 % CI; log scale)")
    ax.set_title("T_grok across ρ and lr", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    cl = (lanes["arm"] == "clamp") & lanes["grokked"] & ~lanes["diverged"]
    ax2.scatter(lanes["target_norm"][cl], lanes["norm_at_grok"][cl], s=10, color="#1b3b6f")
    if cl.any():
        lim = [lanes["target_norm"][cl].min() * 0.98, lanes["target_norm"][cl].max() * 1.02]
        ax2.plot(lim, lim, color="k", lw=0.8, ls="--", label="identity")
        ax2.legend(fontsize=7)
    ax2.set_xlabel("held norm ρ·W_c")
    ax2.set_ylabel("‖W‖ at T_grok")
    ax2.set_title("norm at grokking = held norm", fontsize=10)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    return save(fig, os.path.join(out, f"{prefix}lr_matrix.png"))


def norm_controls_figure(
    lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = ""
) -> list:
    """norm_controls: (a) the free weight-decay frontier and the clamped cells (medians with
    95 % CIs); (b-d) one-shot rescales, single-group rescales and low-norm inits as the ratio
    of their median T_grok to the free control's, each with a 95 % bootstrap CI over both
    cells' seeds, and the paper's values where it gives them."""
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 4.4))
    _frontier_panel(ax, fitted)
    _ratio_panel(ax2, lanes, fitted)
    fig.tight_layout()
    return save(fig, os.path.join(out, f"{prefix}norm_controls.png"))


def _frontier_panel(ax, fitted: dict) -> None:
    """norm_controls (a): the free weight-decay frontier and the clamped cells, medians with
    95 % CIs."""

    def errs(cs):
        y = np.array([c["median"] for c in cs], float)
        lo = np.array([c["ci"][0] if c["ci"][0] is not None else c["median"] for c in cs])
        hi = np.array([c["ci"][1] if c["ci"][1] is not None else np.nan for c in cs], float)
        hi = np.where(np.isfinite(hi), hi, y)
        return y, [y - lo, hi - y]

    fr = [c for c in fitted["frontier"] if c["median"] and c["norm_at_grok"]]
    if fr:
        y, e = errs(fr)
        ax.errorbar(
            [c["norm_at_grok"] for c in fr], y, yerr=e, fmt="o-", color="#1b3b6f", capsize=2.5,
            label="free, wd = " + ", ".join(f"{c['key']:g}" for c in fr),
        )  # fmt: skip
    cl = [c for c in fitted["clamped"] if c["median"]]
    if cl:
        y, e = errs(cl)
        ax.errorbar(
            [c["held_norm"] for c in cl], y, yerr=e, fmt="s", color="#c0392b", capsize=2.5,
            label="clamped (at the held norm)",
        )  # fmt: skip
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("‖W‖ at grokking (clamped: held norm)")
    ax.set_ylabel("median T_grok (95 % CI; log scale)")
    ax.set_title("(a) free frontier and clamped cells", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _ratio_panel(ax2, lanes: dict, fitted: dict) -> None:
    """norm_controls (b-d): each control cell's median T_grok over the free control's, with a
    95 % bootstrap CI over both cells' seeds, and the paper's values."""
    ok = ~lanes["diverged"]
    # the control: the frontier cell (free lanes at one wd) the fit took as control
    control = fitted.get("control") or {}
    match = [
        c
        for c in fitted["frontier"]
        if c["median"] == control.get("median") and c.get("n") == control.get("n")
    ]
    ctrl = (lanes["arm"] == "free") & ok
    if match:
        ctrl &= lanes["cell"] == match[0]["cell"]
    tc, cc = _times(lanes, ctrl)
    labels, vals, los, his, cols = [], [], [], [], []
    for key, name, col in (
        ("one_shot", "one-shot ρ = {}", "#2e7d32"),
        ("group_one_shot", "×0.8 {}", "#6a1b9a"),
        ("low_init", "init {}", "#e08e0b"),
    ):
        for c in fitted.get(key, []):
            labels.append(name.format(c["key"] if isinstance(c["key"], str) else f"{c['key']:g}"))
            r = c["ratio_to_control"]
            vals.append(r if r is not None else np.nan)
            sel = (lanes["cell"] == c["cell"]) & ok
            tk, ck = _times(lanes, sel)
            lo, hi = median_ratio_ci(tk, ck, tc, cc)
            los.append(lo if lo is not None else np.nan)
            his.append(hi if hi is not None else np.nan)
            cols.append(col)
    if vals:
        x = np.arange(len(vals))
        v = np.array(vals, float)
        lo = np.where(np.isfinite(los), v - np.array(los, float), 0)
        hi = np.where(np.isfinite(his), np.array(his, float) - v, 0)
        ax2.bar(x, v, color=cols, alpha=0.85)
        ax2.errorbar(x, v, yerr=[lo, hi], fmt="none", ecolor="k", capsize=3, lw=1)
        ax2.set_xticks(x)
        ax2.set_xticklabels(labels, rotation=50, ha="right", fontsize=7)
    ax2.axhline(1.0, color="k", lw=0.8)
    ref = paper.PAPER.get("one_shot_fold")
    gref = paper.PAPER.get("group_one_shot")
    notes = []
    if ref:
        notes.append(f"paper: one-shot rescales move T_grok ~{ref.value:g}× over ρ")
    if gref:
        notes.append(f"paper: a ×0.8 group rescale within ~{100 * gref.value:g} % of the control")
    if notes:
        ax2.text(0.02, 0.97, "\n".join(notes), transform=ax2.transAxes, fontsize=7, va="top")
    ax2.set_ylabel("median T_grok / free control (95 % CI)")
    ax2.set_title("(b-d) one-shot and init controls", fontsize=10)
    ax2.grid(True, axis="y", alpha=0.3)


# The report draws an experiment's own figure with these instead of the experiment's
# ``figure`` (same signature): they put the paper's values and CIs on it and drop empty panels.
EXPERIMENT_FIGURES = {
    "critical_norm": critical_norm_figure,
    "dense_rho": dense_rho_figure,
    "lr_matrix": lr_matrix_figure,
    "norm_controls": norm_controls_figure,
}
