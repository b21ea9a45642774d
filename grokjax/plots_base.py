"""What every figure shares: the greyscale-safe styles, bare Figures (no pyplot, no
backend switch), atomic saving, and tick labels a talk can show."""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.figure import Figure

from grokjax.results import atomic_path


# Distinguishable in greyscale: markers and line styles differ as well as colours.
STYLES = [
    ("o", "-", "#1b3b6f"),
    ("s", "--", "#c0392b"),
    ("^", "-.", "#2e7d32"),
    ("D", ":", "#6a1b9a"),
    ("v", (0, (5, 1)), "#e08e0b"),
    ("P", (0, (3, 1, 1, 1)), "#555555"),
]


HATCHES = ["", "//", "..", "xx", "\\\\", "oo"]


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


FORMATS = ("png", "pdf")


NORM_LABEL = "‖W‖ (L2 norm of all weight matrices)"


def style(k: int):
    return STYLES[k % len(STYLES)]


def widen_log_y(ax, factor: float = 2.0) -> None:
    """A log y axis spans at least ``factor`` around its centre: data that all sit at one
    value (every cell's T_grok equal) would otherwise leave it a zero-height range, which
    matplotlib's layout divides by."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < factor:
        c = math.sqrt(lo * hi)
        ax.set_ylim(min(lo, c / math.sqrt(factor)), max(hi, c * math.sqrt(factor)))


def plain_log_ticks(ax, which: str = "y") -> None:
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
