"""Figures made from stored results only (``lanes.csv``, ``curves.npz``, ``fit.json``): the
drawing functions (plain series in, PNG/PDF files out: :func:`trajectories`,
:func:`wc_scaling`, :func:`delay_law_groups`, :func:`norm_identity`, :func:`layernorm_cv`, ...)
and the report's figures over loaded runs (:func:`make_figures`). Matplotlib and numpy;
JAX-free.
"""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.figure import Figure

from grokjax import cells, compare, fit, paper, tables
from grokjax.fit import power_law
from grokjax.results import atomic_path
from grokjax.runs import Run

_py = fit.py  # a numpy scalar as a Python value (``delay_law`` takes a parameter named fit)

# Distinguishable in greyscale: markers and line styles differ as well as colours.
STYLES = [
    ("o", "-", "#1b3b6f"),
    ("s", "--", "#c0392b"),
    ("^", "-.", "#2e7d32"),
    ("D", ":", "#6a1b9a"),
    ("v", (0, (5, 1)), "#e08e0b"),
    ("P", (0, (3, 1, 1, 1)), "#555555"),
]


_SUBPLOTS_KW = ("sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw")


def subplots(nrows: int = 1, ncols: int = 1, **kw):
    """``pyplot.subplots`` without pyplot: a Figure no backend holds, so drawing (and importing
    this module) leaves matplotlib's backend and a notebook's figures as they were."""
    fig = Figure(**{k: v for k, v in kw.items() if k not in _SUBPLOTS_KW + ("gridspec_kw",)})
    sub = {k: v for k, v in kw.items() if k in _SUBPLOTS_KW + ("gridspec_kw",)}
    return fig, fig.subplots(nrows, ncols, **sub)


def save(fig, path: str, formats=("png",)) -> list[str]:
    """Saves ``fig`` atomically as ``path`` with each extension in ``formats``."""
    stem, _ = os.path.splitext(path)
    written = []
    for ext in formats:
        target = f"{stem}.{ext}"
        with atomic_path(target) as tmp:
            # no creation date in a PDF: the same figure gives the same bytes (a report
            # rebuilt from unchanged runs leaves its committed figures unchanged)
            meta = {"CreationDate": None} if ext == "pdf" else None
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata=meta)
        written.append(target)
    return written


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
            label += f": α={law['alpha']:.2f}, R²={law['r2']:.3f}"
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
    _plain_log_ticks(ax, "y")
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok (steps, test acc ≥ 0.9)")
    ax.set_title("Grokking delay under a pinned weight norm")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path, formats)


# ---------------------------------------------------------------------------------------------
# Report figures. Each function takes plain arrays prepared by ``grokjax.report`` (which selects
# lanes and fits with ``grokjax.fit``) and only draws; each returns the files written.
# ---------------------------------------------------------------------------------------------

FORMATS = ("png", "pdf")
NORM_LABEL = "‖W‖ (L2 norm of all weight matrices)"


def _style(k: int):
    return STYLES[k % len(STYLES)]


def _plain_log_ticks(ax, which: str = "y") -> None:
    """Plain numbers (200, 300, ...) on a log axis. Minor ticks are labelled when the axis spans
    less than a decade, only the 2s and 5s up to ~2.5 decades, and not at all beyond, so labels
    never crowd."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    span = hi / lo if lo > 0 else np.inf
    if span < 10:
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    elif span < 300:

        def two_five(v, _):
            m = v / 10 ** np.floor(np.log10(v) + 1e-9)
            return f"{v:g}" if np.isclose(m, 2) or np.isclose(m, 5) else ""

        axis.set_minor_formatter(FuncFormatter(two_five))
    else:
        axis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis=which, which="both", labelsize=8)


def trajectories(
    panels: list[dict], path: str, formats=FORMATS, title: str | None = None
) -> list[str]:
    """Accuracy (top row) and weight norm (bottom row) against step on a log axis, one column
    per lane. Each panel dict: ``label``, ``steps``, ``train_acc``, ``test_acc``, ``norm``
    (1-D, NaN where not recorded), ``t_mem``, ``t_grok`` (steps or None), ``wc`` (the critical
    norm or None) and ``target`` (the held norm of a clamped lane, or None)."""
    if not panels:
        raise ValueError("trajectories: no lanes to draw")
    n = len(panels)
    fig, axes = subplots(
        2, n, figsize=(2.9 * n + 0.8, 5.6), sharex=True, sharey="row", squeeze=False
    )
    handles = {}

    def keep_handle(h):
        handles.setdefault(h.get_label(), h)

    for j, pnl in enumerate(panels):
        s = np.asarray(pnl["steps"], float)
        keep = (s > 0) & np.isfinite(np.asarray(pnl["test_acc"], float))
        s = s[keep]
        top, bot = axes[0, j], axes[1, j]
        keep_handle(
            top.plot(
                s,
                np.asarray(pnl["train_acc"], float)[keep],
                ls="--",
                color="#7f8fa6",
                lw=1.6,
                label="train accuracy",
            )[0]
        )
        keep_handle(
            top.plot(
                s,
                np.asarray(pnl["test_acc"], float)[keep],
                ls="-",
                color="#1b3b6f",
                lw=1.8,
                label="test accuracy",
            )[0]
        )
        keep_handle(
            top.axhline(0.9, color="0.6", lw=0.8, ls=(0, (1, 2)), label="test accuracy = 0.9")
        )
        keep_handle(
            bot.plot(
                s,
                np.asarray(pnl["norm"], float)[keep],
                ls="-",
                color="#1b3b6f",
                lw=1.8,
                label="‖W‖",
            )[0]
        )
        text = []
        if pnl.get("wc") is not None:
            keep_handle(
                bot.axhline(
                    pnl["wc"],
                    color="#c0392b",
                    ls="-.",
                    lw=1.3,
                    label="W_c (median ‖W‖ at T_grok, free lanes)",
                )
            )
            text.append(f"W_c = {pnl['wc']:.4g}")
        if pnl.get("target") is not None:
            keep_handle(
                bot.axhline(
                    pnl["target"], color="#2e7d32", ls=":", lw=1.8, label="held norm (clamp target)"
                )
            )
            text.append(f"held = {pnl['target']:.4g}")
        ttext = []
        for ax in (top, bot):
            if pnl.get("t_mem") is not None:
                keep_handle(
                    ax.axvline(
                        pnl["t_mem"],
                        color="0.35",
                        ls=":",
                        lw=1.3,
                        label="T_mem (train accuracy ≥ 0.99)",
                    )
                )
            if pnl.get("t_grok") is not None:
                keep_handle(
                    ax.axvline(
                        pnl["t_grok"],
                        color="#6a1b9a",
                        ls="--",
                        lw=1.3,
                        label="T_grok (test accuracy ≥ 0.9)",
                    )
                )
            ax.set_xscale("log")
            ax.grid(True, which="major", alpha=0.3)
        if pnl.get("t_mem") is not None:
            ttext.append(f"T_mem = {pnl['t_mem']:.0f}")
        ttext.append(
            f"T_grok = {pnl['t_grok']:.0f}"
            if pnl.get("t_grok") is not None
            else "T_grok: not reached"
        )
        box = dict(boxstyle="round,pad=0.25", fc="white", ec="0.7", alpha=0.9)
        top.text(
            0.03,
            0.55,
            "\n".join(ttext),
            transform=top.transAxes,
            fontsize=7.5,
            va="center",
            bbox=box,
        )
        if text:
            bot.text(
                0.97,
                0.05,
                "\n".join(text),
                transform=bot.transAxes,
                fontsize=7.5,
                ha="right",
                va="bottom",
                bbox=box,
            )
        top.set_title(pnl["label"], fontsize=10)
        bot.set_xlabel("training step (log scale)")
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].set_ylim(-0.03, 1.03)
    axes[1, 0].set_ylabel("‖W‖ (weight-matrix L2 norm)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="lower center",
        ncol=min(4, len(handles)),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return save(fig, path, formats)


def _powerline(ax, x, fitres, style, label):
    if not fitres or fitres.get("exponent") is None:
        return
    xs = np.geomspace(min(x), max(x), 50)
    ax.plot(
        xs,
        fitres["prefactor"] * xs ** fitres["exponent"],
        ls=style[1],
        color=style[2],
        lw=1.4,
        label=label,
    )


def wc_scaling(
    by_p: list[dict],
    by_frac: list[dict],
    path: str,
    formats=FORMATS,
    paper_points: dict | None = None,
    title: str | None = None,
) -> list[str]:
    """W_c against p and/or against the train fraction on log-log axes with power-law lines.

    Each series dict: ``label``, ``x``, ``median``, ``lo``, ``hi`` (per x), ``seeds_x``,
    ``seeds_y`` (per lane) and ``fit`` (a ``grokjax.fit.power_law`` dict or None).
    ``paper_points`` {p: Wc} is overlaid on the p panel when given."""
    panels = [(s, name) for s, name in ((by_p, "p"), (by_frac, "frac")) if s]
    if not panels:
        raise ValueError("wc_scaling: nothing to draw")
    nrows = max(len(s) for s, _ in panels) + (1 if paper_points else 0)
    fig, axes = subplots(
        1, len(panels), figsize=(5.0 * len(panels), 4.3 + 0.2 * nrows), squeeze=False
    )
    from matplotlib.lines import Line2D

    for ax, (series, name) in zip(axes[0], panels):
        handles = []
        for k, s in enumerate(series):
            st = _style(k)
            x = np.asarray(s["x"], float)
            y = np.asarray(s["median"], float)
            lo = np.asarray(s["lo"], float)
            hi = np.asarray(s["hi"], float)
            sx = np.asarray(s["seeds_x"], float)
            jit = np.exp(np.random.default_rng(k).uniform(-0.012, 0.012, sx.size))
            ax.scatter(
                sx * jit, s["seeds_y"], s=10, marker=st[0], color=st[2], alpha=0.45, linewidths=0
            )
            yerr = np.vstack(
                [np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)]
            )
            label = s["label"]
            f = s.get("fit")
            if f and f.get("exponent") is not None:
                ci = f.get("exponent_ci") or [None, None]
                label += f": W_c ∝ {name}^{f['exponent']:.3f}"
                if ci[0] is not None:
                    label += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
                xs = np.geomspace(x.min(), x.max(), 50)
                ax.plot(xs, f["prefactor"] * xs ** f["exponent"], ls=st[1], color=st[2], lw=1.4)
            ax.errorbar(
                x,
                y,
                yerr=yerr,
                fmt=st[0],
                mfc="white",
                mec=st[2],
                ecolor=st[2],
                ms=7,
                mew=1.5,
                capsize=3,
                elinewidth=1.2,
                ls="none",
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    marker=st[0],
                    mfc="white",
                    mec=st[2],
                    mew=1.5,
                    ls=st[1],
                    color=st[2],
                    label=label,
                )
            )
        if name == "p" and paper_points:
            px = sorted(paper_points)
            handles.append(
                ax.plot(
                    px,
                    [paper_points[q] for q in px],
                    ls="none",
                    marker="x",
                    ms=9,
                    mew=1.6,
                    color="0.15",
                    zorder=5,
                    label="paper's W_c",
                )[0]
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("modulus p (log scale)" if name == "p" else "train fraction (log scale)")
        ax.set_ylabel("W_c = ‖W‖ at T_grok (log scale)")
        ax.set_title("open: median with 95 % CI; small: seeds; lines: power-law fits", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(
            handles=handles,
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            frameon=False,
            handlelength=3,
        )
        _plain_log_ticks(ax, "x")
        _plain_log_ticks(ax, "y")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path, formats)


def delay_law_groups(
    series: list[dict],
    path: str,
    formats=FORMATS,
    collapse: dict | None = None,
    title: str | None = None,
) -> list[str]:
    """T_grok against rho (log y), one series per group (p or lr), and optionally the
    shared-alpha collapse.

    Each series dict: ``label``, ``rho``, ``t`` (per lane; the steps run where censored),
    ``censored`` (per lane), ``cells_rho``, ``cells_median`` (identifiable cell medians), and
    ``line`` = (alpha, intercept) of the group's own fit or None, ``line_label``.
    ``collapse``: {``alpha``, ``label``, ``points``: [{label, rho, y} per group, cell medians
    minus the group intercept], ``seeds``: [{rho, y}] or None}."""
    if not series:
        raise ValueError("delay_law_groups: nothing to draw")
    n = 2 if collapse else 1
    fig, axes = subplots(1, n, figsize=(5.3 * n, 4.2), squeeze=False)
    ax = axes[0, 0]
    rng = np.random.default_rng(0)
    all_rho = np.concatenate([np.asarray(s["rho"], float) for s in series])
    span = float(np.ptp(all_rho)) if all_rho.size else 0.0
    jit = 0.012 * (span if span > 0 else 1.0)
    for k, s in enumerate(series):
        marker, ls, color = _style(k)
        rho = np.asarray(s["rho"], float)
        t = np.asarray(s["t"], float)
        c = np.asarray(s["censored"], bool)
        j = rng.uniform(-jit, jit, rho.size)
        ax.scatter(
            rho[~c] + j[~c], t[~c], s=10, marker=marker, color=color, alpha=0.4, linewidths=0
        )
        if c.any():
            ax.scatter(
                rho[c] + j[c],
                t[c],
                s=26,
                marker="^",
                facecolors="none",
                edgecolors=color,
                label=f"{s['label']}: censored at budget",
            )
        ax.plot(
            s["cells_rho"],
            s["cells_median"],
            marker=marker,
            ls="none",
            mfc="white",
            mec=color,
            ms=8,
            mew=1.6,
        )
        if s.get("line") is not None and all(v is not None for v in s["line"]):
            a, c0 = s["line"]
            fr = np.asarray(s["cells_rho"], float)
            r = np.linspace(fr.min(), fr.max(), 50)
            ax.plot(
                r,
                np.exp(a * r + c0),
                ls=ls,
                color=color,
                lw=1.5,
                label=s.get("line_label") or s["label"],
            )
            if rho.max() > fr.max() or rho.min() < fr.min():  # extrapolation, thin and faint
                r = np.linspace(rho.min(), rho.max(), 50)
                ax.plot(r, np.exp(a * r + c0), ls=":", color=color, lw=0.9, alpha=0.6)
        else:
            ax.plot(
                [],
                [],
                marker=marker,
                ls="none",
                mfc="white",
                mec=color,
                label=f"{s['label']} (no fit)",
            )
        ov = s.get("paper")
        if ov:
            first = not any(x.get("paper") for x in series[:k])
            r = np.asarray(s["cells_rho"] or rho, float)
            draw_paper_law(
                ax,
                ov["alpha"],
                ov["c"],
                r.min(),
                min(r.max(), ov["hi"]),
                ov["label"] if first else None,
            )
            has_pts = any(x.get("paper", {}).get("points") for x in series[:k])
            draw_paper_points(ax, ov["points"], None if has_pts else "paper's medians")
    ax.set_yscale("log")
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok (steps to test acc ≥ 0.9, log scale)")
    ax.set_title("seeds (small), cell medians (open), fits (lines)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    _plain_log_ticks(ax, "y")
    if collapse:
        ax2 = axes[0, 1]
        for k, pts in enumerate(collapse["points"]):
            marker, _, color = _style(k)
            ax2.plot(
                pts["rho"],
                pts["y"],
                marker=marker,
                ls="none",
                mfc="white",
                mec=color,
                ms=8,
                mew=1.6,
                label=pts["label"],
            )
            if pts.get("seeds_rho") is not None:
                ax2.scatter(
                    pts["seeds_rho"],
                    pts["seeds_y"],
                    s=9,
                    marker=marker,
                    color=color,
                    alpha=0.3,
                    linewidths=0,
                )
        r = np.linspace(all_rho.min(), all_rho.max(), 50)
        ax2.plot(r, collapse["alpha"] * r, color="black", lw=1.5, label=collapse["label"])
        pa = collapse.get("paper_alpha")
        if pa:  # the paper's slope through the same points' centre
            xs = np.concatenate([np.asarray(q["rho"], float) for q in collapse["points"]])
            ys = np.concatenate([np.asarray(q["y"], float) for q in collapse["points"]])
            if xs.size:
                k0 = float(np.mean(ys - pa * xs))
                ax2.plot(
                    r, pa * r + k0, color=PAPER_COLOR, ls=(0, (6, 3)), lw=1.1,
                    label=f"paper α = {pa:g} (slope)",
                )  # fmt: skip
        ax2.set_xlabel("held norm ρ = ‖W‖ / W_c")
        ax2.set_ylabel("ln T_grok − c_p (shared-α intercept removed)")
        ax2.set_title("collapse onto one line", fontsize=9)
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path, formats)


def norm_identity(
    series: list[dict], path: str, formats=FORMATS, title: str | None = None
) -> list[str]:
    """‖W‖ at T_grok against the held norm, with the identity line, and the relative deviation.
    Each series dict: ``label``, ``target``, ``norm`` (per grokked clamped lane)."""
    if not series:
        raise ValueError("norm_identity: nothing to draw")
    fig, (ax, ax2) = subplots(1, 2, figsize=(10.0, 4.1))
    lo = min(float(np.min(s["target"])) for s in series)
    hi = max(float(np.max(s["target"])) for s in series)
    pad = 0.04 * (hi - lo if hi > lo else hi)
    ax.plot(
        [lo - pad, hi + pad],
        [lo - pad, hi + pad],
        color="0.4",
        ls="--",
        lw=1.2,
        label="identity y = x",
    )
    for k, s in enumerate(series):
        marker, _, color = _style(k)
        tgt = np.asarray(s["target"], float)
        nrm = np.asarray(s["norm"], float)
        ax.scatter(
            tgt, nrm, marker=marker, s=30, facecolors="none", edgecolors=color, label=s["label"]
        )
        ax2.scatter(
            tgt,
            1e6 * (nrm / tgt - 1.0),
            marker=marker,
            s=30,
            facecolors="none",
            edgecolors=color,
            label=s["label"],
        )
    ax.set_xlabel("held norm (target ‖W‖)")
    ax.set_ylabel("‖W‖ at T_grok")
    ax.set_title("each grokked clamped lane", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax2.axhline(0.0, color="0.4", ls="--", lw=1.2)
    ax2.set_xlabel("held norm (target ‖W‖)")
    ax2.set_ylabel("‖W‖ at T_grok / held norm − 1  (parts per million)")
    ax2.set_title("relative deviation", fontsize=9)
    ax2.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path, formats)


HATCHES = ["", "//", "..", "xx", "\\\\", "oo"]


def layernorm_cv(
    rows: list[dict], groups: list[str], path: str, formats=FORMATS, title: str | None = None
) -> list[str]:
    """Grouped bars: per parameter group, the CV across seeds of its norm at T_grok, one bar
    per LayerNorm setting. Each row dict: ``label`` and ``cv`` {group: CV as a fraction}."""
    if not rows or not groups:
        raise ValueError("layernorm_cv: nothing to draw")
    fig, ax = subplots(figsize=(1.3 * len(groups) * max(1, len(rows)) / 2 + 3.5, 4.0))
    width = 0.8 / len(rows)
    x = np.arange(len(groups))
    for k, r in enumerate(rows):
        _, _, color = _style(k)
        vals = [
            100 * r["cv"].get(g, np.nan) if r["cv"].get(g) is not None else np.nan for g in groups
        ]
        ax.bar(
            x + (k - (len(rows) - 1) / 2) * width,
            vals,
            width,
            color=color,
            alpha=0.75,
            hatch=HATCHES[k % len(HATCHES)],
            edgecolor="black",
            label=r["label"],
        )
    ax.set_xticks(x, groups)
    ax.set_xlabel("parameter group")
    ax.set_ylabel("CV across seeds of the norm at T_grok (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path, formats)


# ---------------------------------------------------------------------------------------------
# the report's figures, drawn from loaded runs (grokjax.runs.Run)
# ---------------------------------------------------------------------------------------------

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
    ps, fracs = cells.values(run, idx, "p"), cells.values(run, idx, "frac")
    if len(ps) < 2 and len(fracs) < 2:
        return (
            None,
            f"one p ({tables.fmt_val(ps[0])}) and one train fraction ({tables.fmt_val(fracs[0])})",
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
            lab = f"frac {ov:g}" if other == "frac" else f"p = {ov}"
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

    by_p = series("p", "frac", fracs)
    by_frac = series("frac", "p", ps)
    if not by_p and not by_frac:
        return None, "no setting with two or more p or fractions"
    cond = {
        "model": fit.py(L["model"][idx[0]]),
        "lr": fit.py(L["lr"][idx[0]]),
        "wd": fit.py(L["wd"][idx[0]]),
        "d": fit.py(L["d"][idx[0]]),
        "hidden": fit.py(L["hidden"][idx[0]]),
        "frac": fracs[0] if len(fracs) == 1 else tuple(fracs),
    }
    proto = {k: v for k, v in paper.MLP_PROTOCOL.items()}
    overlay = paper_wc("mlp") if not compare.mismatches(cond, proto) else None
    title = f"{run.name}: critical norm W_c ({cond['model']}, lr={cond['lr']:g}, wd={cond['wd']:g})"
    return wc_scaling(by_p, by_frac, path, paper_points=overlay, title=title), None


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
        lab += f", R² = {law['r2']:.3f}"
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

    def add(name, caption, fn, *args):
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

    for run in runs:
        stem = os.path.join(out, run.name)
        add(
            f"{run.name}_trajectories",
            "train/test accuracy and ‖W‖ against step (log x) for a "
            "free lane and clamped lanes of one seed; T_mem, T_grok and W_c marked",
            _fig_trajectories,
            run,
            f"{stem}_trajectories.png",
        )
        add(
            f"{run.name}_wc_scaling",
            "W_c against p and/or train fraction with power-law fits",
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
        add(
            f"{run.name}_norm_at_grok",
            "‖W‖ at T_grok against the held norm with the identity "
            "line, and the relative deviation",
            _fig_identity,
            run,
            f"{stem}_norm_at_grok.png",
        )
    add(
        "layernorm_cv",
        "per-group CV across seeds of the norm at T_grok with and without "
        "LayerNorm (attention model)",
        _fig_layernorm,
        runs,
        ln_rows if ln_rows is not None else tables.layernorm_table(runs),
        os.path.join(out, "layernorm_cv.png"),
    )
    add(
        "delay_law_models",
        "T_grok against ρ for the MLP and the attention model (no "
        "LayerNorm), each with its own fitted α",
        _fig_models,
        runs,
        os.path.join(out, "delay_law_models.png"),
    )
    return figs


# ---------------------------------------------------------------------------------------------
# the paper's values on the figures
# ---------------------------------------------------------------------------------------------

PAPER_COLOR = "0.15"
PAPER_ALPHA_KEYS = {"mlp": "alpha_p", "attn": "attn_alpha"}  # paper.py keys of the law's slope


def paper_alpha(model: str = "mlp", key: str | None = None) -> float | None:
    """The paper's slope alpha of ln T_grok against rho for ``model`` (the shared alpha 7.5
    of the MLP, 15.45 of the attention model), or the reference ``key``'s value."""
    key = key or PAPER_ALPHA_KEYS.get(model)
    return paper.PAPER[key].value if key in paper.PAPER else None


def on_protocol(cond: dict, protocol: dict | None = None) -> bool:
    """Whether the setting ``cond`` (model, frac, lr, wd, ...) is the paper's MLP protocol
    (:data:`grokjax.paper.MLP_PROTOCOL`): only then are the paper's absolute numbers drawn."""
    proto = paper.MLP_PROTOCOL if protocol is None else protocol
    for k, v in proto.items():
        if k not in cond or cond[k] is None:
            if k in ("d", "hidden"):  # not a lanes.csv column: checked when known
                continue
            return False
        ok = (
            math.isclose(float(cond[k]), float(v), rel_tol=1e-6)
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else str(cond[k]) == str(v)
        )
        if not ok:
            return False
    return True


def paper_medians(model: str, p: int) -> dict[float, float]:
    """{rho: the paper's median T_grok} at modulus ``p`` (the cell references of
    :mod:`grokjax.paper`; predictions of held-out runs are not the paper's and are left out)."""
    out = {}
    for r in paper.references():
        if r.measure != "cell_tgrok" or r.key.startswith("heldout"):
            continue
        if r.protocol.get("model") != model or r.protocol.get("p") != p:
            continue
        out[float(r.select["rho"])] = float(r.value)
    return dict(sorted(out.items()))


def paper_wc(model: str = "mlp") -> dict[int, float]:
    """{p: the paper's W_c} at its protocol (the ``free_wc`` references of :mod:`grokjax.paper`
    at one p; predictions of held-out runs are left out)."""
    out = {}
    for r in paper.references():
        q = r.protocol.get("p")
        if r.measure != "free_wc" or r.key.startswith("heldout") or not isinstance(q, int):
            continue
        if r.protocol.get("model") == model:
            out[q] = float(r.value)
    return dict(sorted(out.items()))


def paper_line(
    alpha: float, rho, t=None, at: dict | None = None, rho_max: float = 1.15
) -> float | None:
    """The intercept c of ln T = alpha·rho + c: through the paper's medians ``at`` {rho: T}
    at rho <= ``rho_max`` (where its law was fitted) when given, else through the cell medians
    (``rho``, ``t``) of the run itself, so that only the slope is the paper's."""
    if at:
        pts = [(r, v) for r, v in at.items() if r <= rho_max + 1e-9] or list(at.items())
        rho, t = [r for r, _ in pts], [v for _, v in pts]
    rho = np.asarray(rho, float)
    t = np.asarray(t, float)
    ok = np.isfinite(rho) & np.isfinite(t) & (t > 0)
    if not ok.any():
        return None
    return float(np.mean(np.log(t[ok]) - alpha * rho[ok]))


def draw_paper_law(ax, alpha: float, c: float, lo: float, hi: float, label: str) -> None:
    r = np.linspace(lo, hi, 50)
    ax.plot(r, np.exp(alpha * r + c), color=PAPER_COLOR, ls=(0, (6, 3)), lw=1.1, label=label)


def draw_paper_points(ax, at: dict, label: str = "paper's medians", x_shift: float = 0.0) -> None:
    if at:
        ax.plot(
            np.array(list(at)) + x_shift,
            list(at.values()),
            ls="none",
            marker="x",
            ms=8,
            mew=1.6,
            color=PAPER_COLOR,
            zorder=6,
            label=label,
        )


def paper_overlay(model: str, p, rho, t, on_proto: bool, alpha_key: str | None = None):
    """What :func:`delay_law_groups` draws of the paper for one series: its alpha line (through
    the paper's medians at this p when the run is on the paper's protocol and the paper has
    them, else through the series' own cell medians) and those medians; None without a paper
    alpha for ``model``."""
    a = paper_alpha(model, alpha_key)
    if a is None:
        return None
    at = paper_medians(model, int(p)) if on_proto and p is not None else {}
    c = paper_line(a, rho, t, at)
    if c is None:
        return None
    how = "through the paper's medians" if at else "slope only"
    return {
        "alpha": a,
        "c": c,
        "points": at,
        "label": f"paper α = {a:g} ({how})",
        "hi": paper_rho_max(model, alpha_key),
    }


def paper_rho_max(model: str = "mlp", key: str | None = None) -> float:
    """The largest rho of the paper's alpha fit (1.15: above it the delay saturates)."""
    key = key or PAPER_ALPHA_KEYS.get(model)
    ref = paper.PAPER.get(key)
    return float(ref.select.get("rho_max", 1.15)) if ref else 1.15


# ---------------------------------------------------------------------------------------------
# axes a talk can show: plain tick labels, honest ranges
# ---------------------------------------------------------------------------------------------


def plain_ticks_at(ax, values, which: str = "x") -> None:
    """Ticks of a log axis at exactly ``values``, labelled plainly (3e-04 -> 0.0003), and no
    minor labels, so neighbouring labels never collide."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    vals = sorted({float(v) for v in values})
    axis.set_major_locator(FixedLocator(vals))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _plain(v)))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _plain(v: float) -> str:
    """A number for a tick label without exponent notation where it stays short."""
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 1e5:
        return np.format_float_positional(float(f"{v:.3g}"), trim="-")
    return f"{v:.3g}"


def relative_ylim(ax, values, half_width: float = 0.05) -> None:
    """A linear y axis of ±``half_width`` (relative) around the values' median, widened to
    hold them all: a spread of 0.3 % then looks as small as it is."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if not v.size:
        return
    mid = float(np.median(v))
    lo = min(mid * (1 - half_width), float(v.min()) * 0.99)
    hi = max(mid * (1 + half_width), float(v.max()) * 1.01)
    ax.set_ylim(lo, hi)


# ---------------------------------------------------------------------------------------------
# the experiments' own figures (the report draws these for critical_norm, dense_rho, lr_matrix
# and norm_controls: see :data:`EXPERIMENT_FIGURES`)
# ---------------------------------------------------------------------------------------------


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
    # (a) against p, at the run's first lr and wd (the paper's protocol where it has it)
    ax = axes["p"]
    lr0, wd0 = float(lanes["lr"][0]), float(lanes["wd"][0])
    fracs = sorted({c["frac"] for c in cells_})
    ps_drawn = set()
    for k, f in enumerate(fracs):
        m, ls, col = _style(k)
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
    _plain_log_ticks(ax, "y")
    ax.set_xlabel("modulus p (log scale)")
    ax.set_ylabel("W_c = median ‖W‖ at T_grok (log scale)")
    ax.set_title(f"(a) W_c against p (lr {lr0:g}, wd {wd0:g})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    # (b) against lr, per wd: W_c with CIs on a relative axis, T_grok on the right
    if across_lr:
        ax = axes["lr"]
        ax2 = ax.twinx()
        all_wc, all_lr = [], []
        for k, (wd, e) in enumerate(sorted(across_lr.items(), key=lambda kv: float(kv[0]))):
            m, ls, col = _style(k)
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
        _plain_log_ticks(ax2, "y")
        ref = paper.PAPER.get("wc_lr_cv_wd3")
        note = (
            f"y axis ±5 % of W_c; paper: CV across lr {100 * ref.value:g} % at wd 3" if ref else ""
        )
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("W_c (solid; ±5 % axis)")
        ax2.set_ylabel("median T_grok (dotted, open; log scale)")
        ax.set_title("(b) W_c and T_grok against lr", fontsize=10)
        ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=7, color="0.3")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
        ax.grid(True, alpha=0.3)
    # (c) trajectories of the first fully grokked cell
    if has_curves:
        ax = axes["traj"]
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
        _plain_log_ticks(ax, "x")
        ax.set_xlabel("step (log scale)")
        ax.set_ylabel("‖W‖ (solid)")
        ax3.set_ylabel("embedding Fourier Gini (dashed)")
        ax.set_title(f"(c) trajectories, {best}", fontsize=10)
    fig.tight_layout()
    return save(fig, os.path.join(out, f"{prefix}critical_norm.png"))


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
        lab += f", R² = {law['r2']:.3f}"
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
    _plain_log_ticks(ax, "y")
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
        m, ls, col = _style(k)
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
    _plain_log_ticks(ax, "y")
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
    _plain_log_ticks(ax, "y")
    ax.set_xlabel("‖W‖ at grokking (clamped: held norm)")
    ax.set_ylabel("median T_grok (95 % CI; log scale)")
    ax.set_title("(a) free frontier and clamped cells", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    # (b-d) ratios to the control with bootstrap CIs
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
    fig.tight_layout()
    return save(fig, os.path.join(out, f"{prefix}norm_controls.png"))


# The report draws an experiment's own figure with these instead of the experiment's
# ``figure`` (same signature): they put the paper's values and CIs on it and drop empty panels.
EXPERIMENT_FIGURES = {
    "critical_norm": critical_norm_figure,
    "dense_rho": dense_rho_figure,
    "lr_matrix": lr_matrix_figure,
    "norm_controls": norm_controls_figure,
}
