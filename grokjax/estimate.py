"""What a run of the paper MLP will cost before it runs: expected lane-steps from the paper's
medians, not only the budget bound (lanes stop soon after they grok). JAX-free.

The model is a rough one, fitted to the paper's medians at p = 59 and 41 (lr 1e-3, wd 1,
fraction 0.4): free T_grok 5.1k / 10.6k, clamped T_grok(rho) = T_1·exp(7.5·(rho − 1)) with
T_1 4077 / 9718, saturating (×0.7) above rho 1.25. Across p both scale as (59/p)^2.2; a free
lane's delay as 1/(lr·wd) and (0.4/fraction)², except that free lanes at wd >= 8 run their
budget (:data:`FREE_WD_MAX`); a clamped lane's as lr^-1/3 (the lr moves T_grok ~2× over 8×).
It is meant for the paper MLP (d = 128, H = 256); a lane costs min(budget, T + max(200, 0.1·T))
steps (the engine's margin after grokking).
"""

from __future__ import annotations

import math

FREE_T59 = 5100.0  # paper: median free T_grok at p = 59, lr 1e-3, wd 1, fraction 0.4
CLAMP_T59 = 4077.0  # paper: median T_grok at rho 1.00
ALPHA = 7.5
P_EXPONENT = 2.2  # T_grok ∝ (59/p)^2.2 between the paper's p = 41 and 59 medians
SATURATION_RHO, SATURATION = 1.25, 0.7
# Paper-MLP lane-steps/s at p = 59 on the 2-core CPU the committed runs under results/ ran on
# (185-420 there, 253 over the 2 M lane-steps of dense_rho); a step's work grows with the p²
# pairs it trains and evaluates, so the rate at p is RATE·(59/p)² (p = 41: ~540, measured
# 500-670).
RATE = 260.0
# Free lanes at wd >= this do not grok within the paper's budgets: at p = 59, lr 1e-3 the
# frontier measured here groks at wd 1 / 2 / 3 / 5 (median 5095 / 2555 / 1760 / 1225, near
# 1/wd) but at wd 8 15 of 16 lanes had not grokked by 30k steps, so such lanes run their budget.
FREE_WD_MAX = 8.0


def rate(p: int, at59: float = RATE) -> float:
    """Expected paper-MLP lane-steps/s at modulus ``p`` on that CPU."""
    return at59 * (59.0 / p) ** 2


def t_grok(
    p: int, rho: float | None = None, lr: float = 1e-3, wd: float = 1.0, frac: float = 0.4
) -> float:
    """Expected median T_grok of a free (rho None) or clamped lane of the paper MLP."""
    scale = (59.0 / p) ** P_EXPONENT * max(1.0, (0.4 / frac) ** 2)
    if rho is None or not math.isfinite(rho):
        if wd >= FREE_WD_MAX:
            return math.inf
        return FREE_T59 * scale * 1e-3 / (lr * max(wd, 1e-3))
    t = CLAMP_T59 * scale * (1e-3 / lr) ** (1 / 3) * math.exp(ALPHA * (rho - 1.0))
    return t * (SATURATION if rho > SATURATION_RHO else 1.0)


def lane_steps(budget: int, t: float) -> float:
    """Steps a lane runs: to its T_grok plus the margin, or its budget."""
    return min(float(budget), t + max(200.0, 0.1 * t))


def _steps_and_seconds(lanes, at59: float) -> tuple[float, float]:
    """Expected lane-steps of ``lanes`` and their wall seconds at :func:`rate`, in one pass."""
    steps = seconds = 0.0
    for p, r, lr, wd, f, b in lanes:
        n = lane_steps(b, t_grok(p, r, lr, wd, f))
        steps += n
        seconds += n / rate(p, at59)
    return steps, seconds


def expected(lanes) -> float:
    """Expected lane-steps of ``lanes``: (p, rho or None, lr, wd, frac, budget) tuples."""
    return _steps_and_seconds(lanes, RATE)[0]


def hours(lanes, at59: float = RATE) -> float:
    """Expected wall hours of ``lanes`` (as :func:`expected`) at :func:`rate`."""
    return _steps_and_seconds(lanes, at59)[1] / 3600


def cost_line(n_lanes: int, bound: float, lanes=None, rate: float = RATE) -> str:
    """'N lanes, <= B M lane-steps (budget bound)', and with ``lanes`` the expected
    lane-steps and hours at ``rate`` lane-steps/s at p = 59 (scaled by (59/p)²)."""
    line = f"{n_lanes} lanes, <= {bound / 1e6:.2f} M lane-steps (budget bound)"
    if lanes is not None:
        e, sec = _steps_and_seconds(lanes, rate)
        line += (
            f", expected ~{e / 1e6:.2f} M from the paper's medians (~{sec / 3600:.1f} h "
            f"at {rate:.0f}·(59/p)² lane-steps/s, the 2-core CPU's rate)"
        )
    return line


def mlp_cost(cfg, cells, extra: int = 0) -> str:
    """The cost line of an MLP experiment at one (p, fraction) with ``cfg.seeds`` lanes per
    cell; ``cells``: (rho or None, lr, wd, budget) tuples; ``extra``: lane-steps of auxiliary
    runs (in the bound, not counted as lanes)."""
    lanes = [(cfg.p, r, lr, wd, cfg.frac, b) for r, lr, wd, b in cells for _ in range(cfg.seeds)]
    paper_mlp = (cfg.d, cfg.hidden) == (128, 256)
    line = cost_line(len(lanes), sum(b for *_, b in lanes) + extra, lanes if paper_mlp else None)
    return line
