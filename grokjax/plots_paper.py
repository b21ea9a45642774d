"""The paper's values drawn on the figures: its delay-law slope, medians and W_c where the
run's protocol matches the paper's, as lines and points in one ink."""

from __future__ import annotations

import math

import numpy as np

from grokjax import paper


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
