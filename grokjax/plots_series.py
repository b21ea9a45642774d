"""The drawing functions: plain series in, PNG/PDF files out (trajectories, W_c scaling, the
delay law per group, the norm identity, LayerNorm CVs)."""

from __future__ import annotations


import numpy as np

from grokjax.plots_base import (
    FORMATS,
    HATCHES,
    plain_log_ticks,
    save,
    style,
    subplots,
    widen_log_y,
)
from grokjax.plots_paper import (
    PAPER_COLOR,
    draw_paper_law,
    draw_paper_points,
)


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
    for j, pnl in enumerate(panels):
        top, bot = axes[0, j], axes[1, j]
        _trajectory_lines(top, bot, pnl, handles)
        _trajectory_notes(top, bot, pnl)
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


def _trajectory_lines(top, bot, pnl: dict, handles: dict) -> None:
    """One lane's column of ``trajectories``: accuracies (top), ‖W‖ with W_c and the held norm
    (bottom), T_mem and T_grok on both; each legend entry's first handle kept in ``handles``."""

    def keep_handle(h):
        handles.setdefault(h.get_label(), h)

    s = np.asarray(pnl["steps"], float)
    keep = (s > 0) & np.isfinite(np.asarray(pnl["test_acc"], float))
    s = s[keep]
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
    keep_handle(top.axhline(0.9, color="0.6", lw=0.8, ls=(0, (1, 2)), label="test accuracy = 0.9"))
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
    if pnl.get("target") is not None:
        keep_handle(
            bot.axhline(
                pnl["target"], color="#2e7d32", ls=":", lw=1.8, label="held norm (clamp target)"
            )
        )
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


def _trajectory_notes(top, bot, pnl: dict) -> None:
    """The boxes of one lane's column: T_mem and T_grok (top), W_c and the held norm (bottom)."""
    text = []
    if pnl.get("wc") is not None:
        text.append(f"W_c = {pnl['wc']:.4g}")
    if pnl.get("target") is not None:
        text.append(f"held = {pnl['target']:.4g}")
    ttext = []
    if pnl.get("t_mem") is not None:
        ttext.append(f"T_mem = {pnl['t_mem']:.0f}")
    ttext.append(
        f"T_grok = {pnl['t_grok']:.0f}" if pnl.get("t_grok") is not None else "T_grok: not reached"
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
    names: tuple = ("p", "frac"),
) -> list[str]:
    """W_c against p and/or against the train fraction on log-log axes with power-law lines
    (``names``: the two columns, ``("n_bits", "n_train")`` for parity).

    Each series dict: ``label``, ``x``, ``median``, ``lo``, ``hi`` (per x), ``seeds_x``,
    ``seeds_y`` (per lane) and ``fit`` (a ``grokjax.fit.power_law`` dict or None).
    ``paper_points`` {p: Wc} is overlaid on the p panel when given."""
    panels = [(s, name) for s, name in zip((by_p, by_frac), names) if s]
    if not panels:
        raise ValueError("wc_scaling: nothing to draw")
    nrows = max(len(s) for s, _ in panels) + (1 if paper_points else 0)
    fig, axes = subplots(
        1, len(panels), figsize=(5.0 * len(panels), 4.3 + 0.2 * nrows), squeeze=False
    )
    for ax, (series, name) in zip(axes[0], panels):
        _wc_panel(ax, series, name, paper_points)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path, formats)


AXIS_LABELS = {
    "p": "modulus p",
    "frac": "train fraction",
    "n_bits": "parity bits n",
    "n_train": "training rows m",
}


def _wc_panel(ax, series: list[dict], name: str, paper_points: dict | None) -> None:
    """One panel of ``wc_scaling``: W_c against ``name`` (p or frac), seeds, medians with CIs,
    power-law lines and, on the p panel, the paper's W_c."""
    handles = [_wc_series(ax, k, s, name) for k, s in enumerate(series)]
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
    ax.set_xlabel(AXIS_LABELS.get(name, name) + " (log scale)")
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
    plain_log_ticks(ax, "x")
    plain_log_ticks(ax, "y")


def _wc_series(ax, k: int, s: dict, name: str):
    """Series ``k`` of a ``wc_scaling`` panel: seeds, medians with CIs, its power-law line.
    Returns its legend handle."""
    from matplotlib.lines import Line2D

    st = style(k)
    x = np.asarray(s["x"], float)
    y = np.asarray(s["median"], float)
    lo = np.asarray(s["lo"], float)
    hi = np.asarray(s["hi"], float)
    sx = np.asarray(s["seeds_x"], float)
    jit = np.exp(np.random.default_rng(k).uniform(-0.012, 0.012, sx.size))
    ax.scatter(sx * jit, s["seeds_y"], s=10, marker=st[0], color=st[2], alpha=0.45, linewidths=0)
    yerr = np.vstack([np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)])
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
    return Line2D(
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
        _delay_group(ax, k, s, series, rng, jit)
    ax.set_yscale("log")
    widen_log_y(ax)
    ax.set_xlabel("held norm ρ = ‖W‖ / W_c")
    ax.set_ylabel("T_grok (steps to test acc ≥ 0.9, log scale)")
    ax.set_title("seeds (small), cell medians (open), fits (lines)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    plain_log_ticks(ax, "y")
    if collapse:
        _collapse_panel(axes[0, 1], collapse, all_rho)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path, formats)


def _delay_group(ax, k: int, s: dict, series: list[dict], rng, jit: float) -> None:
    """Series ``k`` of ``delay_law_groups``: seeds (jittered by ``rng``), censored seeds, cell
    medians, the group's fit and the paper's law and medians where it has them."""
    marker, ls, color = style(k)
    rho = np.asarray(s["rho"], float)
    t = np.asarray(s["t"], float)
    c = np.asarray(s["censored"], bool)
    j = rng.uniform(-jit, jit, rho.size)
    ax.scatter(rho[~c] + j[~c], t[~c], s=10, marker=marker, color=color, alpha=0.4, linewidths=0)
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
        has_pts = any((x.get("paper") or {}).get("points") for x in series[:k])
        draw_paper_points(ax, ov["points"], None if has_pts else "paper's medians")


def _collapse_panel(ax2, collapse: dict, all_rho) -> None:
    """The collapse panel of ``delay_law_groups``: cell medians minus each group's intercept
    against rho, the shared slope and the paper's."""
    for k, pts in enumerate(collapse["points"]):
        marker, _, color = style(k)
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
        marker, _, color = style(k)
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
        _, _, color = style(k)
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
