"""Figures made from stored results only (``lanes.csv``, ``curves.npz``, ``fit.json``): the
drawing functions (plain series in, PNG/PDF files out: :func:`trajectories`,
:func:`wc_scaling`, :func:`delay_law_groups`, :func:`norm_identity`, :func:`layernorm_cv`, ...)
and the report's figures over loaded runs (:func:`make_figures`). Matplotlib and numpy;
JAX-free.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from grokjax import cells, compare, fit, paper, tables  # noqa: E402
from grokjax.fit import power_law  # noqa: E402
from grokjax.results import atomic_path  # noqa: E402
from grokjax.runs import Run  # noqa: E402

# Distinguishable in greyscale: markers and line styles differ as well as colours.
STYLES = [
    ("o", "-", "#1b3b6f"),
    ("s", "--", "#c0392b"),
    ("^", "-.", "#2e7d32"),
    ("D", ":", "#6a1b9a"),
    ("v", (0, (5, 1)), "#e08e0b"),
    ("P", (0, (3, 1, 1, 1)), "#555555"),
]


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
    plt.close(fig)
    return written


def delay_law(lanes: dict, fit: dict, path: str, formats=("png",)) -> list[str]:
    """T_grok against rho on a log axis, one series per p: seeds as points, cell medians as
    open markers, censored seeds as upward triangles at their budget, fitted lines from
    ``fit['per_p'][p]['delay_law']``."""
    clamp = lanes["arm"] == "clamp"
    ps = sorted(set(lanes["p"][clamp].astype(int)))
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
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
        else:
            ax.plot([], [], ls=ls, color=color, label=label)
    ax.set_yscale("log")
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
    fig, axes = plt.subplots(
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
    fig, axes = plt.subplots(
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
    fig, axes = plt.subplots(1, n, figsize=(5.3 * n, 4.2), squeeze=False)
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
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.0, 4.1))
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
    fig, ax = plt.subplots(figsize=(1.3 * len(groups) * max(1, len(rows)) / 2 + 3.5, 4.0))
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


def _ref_p(run: Run, idx: np.ndarray) -> int | None:
    """The p a per-run figure is drawn at: 59 if the lanes have it, else the smallest."""
    ps = cells.values(run, idx, "p")
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
        return None, "no curves.npz in the run directory (results/ keeps only lanes.csv)"
    L = run.lanes
    usable = (run.arm("free") | run.arm("clamp")) & ~L["diverged"]
    idx = cells.main_setting(run, usable, ("model", "layernorm", "frac", "wd", "d", "hidden"))
    if not idx.size:
        return None, "no free or clamped lanes"
    p = _ref_p(run, idx)
    idx = idx[L["p"][idx] == p]
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
            "p": p,
            "lr": lr,
            "model": fit.py(L["model"][idx[0]]),
            "frac": fit.py(L["frac"][idx[0]]),
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
    overlay = paper.WC_BY_P if not compare.mismatches(cond, proto) else None
    title = f"{run.name}: critical norm W_c ({cond['model']}, lr={cond['lr']:g}, wd={cond['wd']:g})"
    return wc_scaling(by_p, by_frac, path, paper_points=overlay, title=title), None


def _delay_series(run: Run, idx: np.ndarray, law: dict, group: str, label) -> list[dict]:
    """The :func:`delay_law_groups` series of a fitted law, one per group of the law."""
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
    law = cells.delay_law(
        run, in_law if len(cells.values(run, in_law, "rho")) >= 2 else at_lr, group="p"
    )
    series = _delay_series(run, at_lr, law, "p", lambda g: f"p = {g}")
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
            sel = at_lr[(L["p"][at_lr] == int(gk)) & L["grokked"][at_lr]]
            pts.append(
                {
                    "label": f"p = {gk}",
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
        collapse = {"alpha": law["alpha"], "label": lab, "points": pts}
    made += delay_law_groups(
        series,
        path_p,
        collapse=collapse,
        title=f"{run.name}: delay law per p (lr={lr:g}, {model}; fit over ρ ≤ {LAW_RHO_MAX:g})",
    )
    if len(cells.values(run, idx, "lr")) >= 2:
        p = _ref_p(run, idx)
        at_p = idx[L["p"][idx] == p]
        law_lr = cells.delay_law(run, at_p, group="lr")
        s = _delay_series(run, at_p, law_lr, "lr", lambda g: f"lr = {float(g):g}")
        made += delay_law_groups(s, path_lr, title=f"{run.name}: delay law per lr (p={p}, {model})")
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
