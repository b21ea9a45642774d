"""Figures made from stored results only (``lanes.csv``, ``curves.npz``, ``fit.json``)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from grokjax.results import atomic_path  # noqa: E402

# Distinguishable in greyscale: markers and line styles differ as well as colours.
STYLES = [("o", "-", "#1b3b6f"), ("s", "--", "#c0392b"), ("^", "-.", "#2e7d32"),
          ("D", ":", "#6a1b9a"), ("v", (0, (5, 1)), "#e08e0b"), ("P", (0, (3, 1, 1, 1)), "#555555")]


def save(fig, path: str, formats=("png",)) -> list[str]:
    """Saves ``fig`` atomically as ``path`` with each extension in ``formats``."""
    stem, _ = os.path.splitext(path)
    written = []
    for ext in formats:
        target = f"{stem}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
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
        ax.scatter(rho[ok] + jitter[ok], t[ok], s=10, color=color, alpha=0.45, marker=marker,
                   linewidths=0)
        cens = ~ok & ~lanes["diverged"][sel]
        if cens.any():
            ax.scatter(rho[cens] + jitter[cens], lanes["steps_run"][sel][cens], s=22, color=color,
                       marker="^", facecolors="none", label=f"p={p} censored")
        law = fit.get("per_p", {}).get(str(p), {}).get("delay_law")
        label = f"p={p}"
        if law and law.get("alpha") is not None:
            cells = [c for c in law["cells"] if c.get("median") is not None]
            ax.plot([c["rho"] for c in cells], [c["median"] for c in cells], marker=marker,
                    ls="none", mfc="white", mec=color, ms=7, mew=1.5)
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
