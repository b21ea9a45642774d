"""Plain values, least-squares helpers and the Kaplan-Meier median: the pieces every fit of
:mod:`grokjax.fit` and :mod:`grokjax.delay` shares. JAX-free; the conventions are
:mod:`grokjax.fit`'s (non-finite numbers reported as None, ``ci`` two-sided, data keys as str).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["py", "censored_median", "median_ci"]

# Survival values within this distance of 0.5 count as "exactly one half"
# (the even-n midpoint convention of the Kaplan-Meier median).
_HALF_TOL = 1e-9


# ---------------------------------------------------------------------------


def _f(x: Any) -> float | None:
    """Python float, or None when ``x`` is None or not finite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _key(v: Any) -> str:
    """String key of a data value (numpy scalars unwrapped first)."""
    if isinstance(v, np.generic):
        v = v.item()
    return str(v)


def py(v: Any, clean: bool = True) -> Any:
    """Plain Python value of ``v`` (a lane cell, a group label): numpy scalars unwrapped.

    With ``clean`` (the default) also None for None and non-finite floats, and ``int`` for
    integral floats below 1e15 in magnitude (a lane column read as floats gives back its
    integers: 59.0 -> 59). ``clean=False`` only unwraps, so labels keep their type (59.0
    stays 59.0, NaN stays NaN); :func:`delay_law` and :func:`fold_change_across` read their
    group and covariate labels that way.
    """
    if isinstance(v, np.generic):
        v = v.item()
    if not clean:
        return v
    if v is None:
        return None
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v.is_integer() and abs(v) < 1e15:
            return int(v)
    return v


def _percentile_ci(samples: np.ndarray, ci: float) -> list[float | None]:
    """Percentile interval of the finite entries of ``samples``."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return [None, None]
    lo, hi = np.percentile(s, [50.0 * (1.0 - ci), 50.0 * (1.0 + ci)])
    return [_f(lo), _f(hi)]


def _check_ci(ci: float) -> None:
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")


def _r2(y: np.ndarray, yhat: np.ndarray, ybar: np.ndarray | float | None = None) -> float:
    """Coefficient of determination 1 - RSS/TSS (TSS around ``ybar``)."""
    y = np.asarray(y, float)
    if ybar is None:
        ybar = y.mean()
    tss = float(np.sum((y - ybar) ** 2))
    rss = float(np.sum((y - yhat) ** 2))
    if tss <= 0.0:
        return math.nan
    return 1.0 - rss / tss


def _ols_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y on x (nan slope if x constant)."""
    xm, ym = x.mean(), y.mean()
    sxx = float(np.sum((x - xm) ** 2))
    if sxx <= 0.0:
        return math.nan, math.nan
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    return slope, float(ym - slope * xm)


# ---------------------------------------------------------------------------
# Kaplan-Meier median
# ---------------------------------------------------------------------------


def _km_median_rows(times: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Kaplan-Meier median of every row of a (B, n) array; NaN if unidentifiable.

    Lanes are sorted by time with events before censorings at tied times (the
    usual convention: a lane censored at t was still at risk at t).  Events are
    processed one at a time, which gives the same survival curve as the grouped
    (1 - d/r) product at tied times.  The median is the first event time where
    S(t) <= 1/2; if S equals 1/2 exactly there, it is the midpoint between that
    event time and the next event time (so that without censoring the result
    equals ``np.median`` for both odd and even n).  If S never reaches 1/2, or
    reaches exactly 1/2 with no later event, the median is NaN.
    """
    t = np.atleast_2d(np.asarray(times, dtype=float))
    c = np.atleast_2d(np.asarray(censored, dtype=bool))
    b, n = t.shape
    out = np.full(b, np.nan)
    if n == 0:
        return out
    order = np.lexsort((c, t), axis=-1)
    t = np.take_along_axis(t, order, axis=-1)
    ev = ~np.take_along_axis(c, order, axis=-1)
    at_risk = n - np.arange(n)
    surv = np.cumprod(np.where(ev, 1.0 - 1.0 / at_risk, 1.0), axis=-1)
    reached = ev & (surv <= 0.5 + _HALF_TOL)
    has = reached.any(axis=-1)
    rows = np.nonzero(has)[0]
    if rows.size == 0:
        return out
    first = np.argmax(reached[rows], axis=-1)
    t_first = t[rows, first]
    s_first = surv[rows, first]
    exact = s_first >= 0.5 - _HALF_TOL
    out[rows[~exact]] = t_first[~exact]
    pos = np.arange(n)
    for r, k, tk in zip(rows[exact], first[exact], t_first[exact]):
        later = np.nonzero(ev[r] & (pos > k))[0]
        if later.size:
            out[r] = 0.5 * (tk + t[r, later[0]])
    return out


def censored_median(times, censored=None) -> float | None:
    """Kaplan-Meier median of right-censored times.

    A censored entry is a lower bound (the lane reached its budget without the
    event, so ``time`` is the budget / steps run).  The median is the first
    event time at which the Kaplan-Meier survival S(t) drops to <= 1/2.  If S
    equals exactly 1/2 at that time, the midpoint between it and the next event
    time is used; with no censoring this equals ``np.median`` for odd and even
    n.  When S never falls to 1/2 (or sits at exactly 1/2 with no later event)
    the median is not identifiable and ``None`` is returned (read: "at least the
    budget").  When all censoring happens at or after every event time (e.g. a
    common step budget), this is exactly the case "at least half the lanes are
    censored".  Non-finite times are ignored.

    Args:
        times: 1-D array of event or censoring times.
        censored: boolean array, True where ``times`` is a lower bound.
            ``None`` means nothing is censored.

    Returns:
        The median as a Python float, or ``None`` if not identifiable / empty.
    """
    t = np.asarray(times, dtype=float).ravel()
    c = np.zeros(t.shape, bool) if censored is None else np.asarray(censored, bool).ravel()
    if c.shape != t.shape:
        raise ValueError("times and censored must have the same length")
    ok = np.isfinite(t)
    return _f(_km_median_rows(t[ok][None, :], c[ok][None, :])[0])


def median_ci(times, censored=None, n_boot: int = 500, seed: int = 0, ci: float = 0.95) -> dict:
    """Kaplan-Meier median (:func:`censored_median`) with a percentile-bootstrap interval over
    lanes. Replicates whose median is not identifiable count as +inf, so an upper bound beyond
    the budget is reported as None (unbounded). The interval takes the ``inverted_cdf``
    quantiles of the replicates (no interpolation); none with ``n_boot`` <= 0 or fewer than
    two lanes. Non-finite times are not dropped from the count ``n``.

    Returns {median, ci: [lo, hi], n, n_censored}."""
    t = np.asarray(times, float).ravel()
    c = np.zeros(t.shape, bool) if censored is None else np.asarray(censored, bool).ravel()
    med = censored_median(t, c)
    out = {"median": med, "ci": [None, None], "n": int(t.size), "n_censored": int(c.sum())}
    if n_boot <= 0 or t.size < 2:
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, t.size, size=(n_boot, t.size))
    reps = np.array([censored_median(t[i], c[i]) for i in idx], dtype=object)
    reps = np.array([np.inf if r is None else r for r in reps], dtype=float)
    lo, hi = np.quantile(reps, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
    out["ci"] = [float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None]
    return out


def _sorted_unique(values: list) -> list:
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _shared_fit(rho: np.ndarray, y: np.ndarray, gidx: np.ndarray, n_groups: int):
    """Least squares y = alpha*rho + c[g]; returns (alpha, c, yhat, rank_ok).

    Groups absent from ``gidx`` get intercept NaN.  ``rank_ok`` is False when
    alpha is not identified (no group with two distinct rho).
    """
    c = np.full(n_groups, np.nan)
    present = np.unique(gidx)
    # within-group demeaning: alpha = sum Sxy / sum Sxx
    sxy = sxx = 0.0
    for g in present:
        m = gidx == g
        xr, yr = rho[m], y[m]
        dx = xr - xr.mean()
        sxx += float(np.dot(dx, dx))
        sxy += float(np.dot(dx, yr - yr.mean()))
    if sxx <= 1e-15:
        return math.nan, c, np.full(y.shape, np.nan), False
    alpha = sxy / sxx
    for g in present:
        m = gidx == g
        c[g] = float(np.mean(y[m] - alpha * rho[m]))
    return alpha, c, alpha * rho + c[gidx], True
