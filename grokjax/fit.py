"""Statistics for the grokking delay law, on plain numpy arrays.

This module deliberately does not import jax: it is used to analyse saved
results (one entry per seed-run, a "lane") on any machine.  Every public
function returns a plain ``dict`` whose values are Python ``float``/``int``/
``bool``/``str``/``None`` or lists/dicts of those, so results can be written
with ``json.dumps(result, allow_nan=False)``.  Non-finite numbers (NaN, inf,
"not identifiable") are reported as ``None``.

Conventions shared by all functions

* Bootstrap intervals are percentile intervals drawn with
  ``numpy.random.default_rng(seed)``; the same inputs and seed always give the
  same interval.
* ``ci`` is the two-sided coverage (0.95 -> 2.5 % and 97.5 % percentiles).
* Dictionary keys that come from data (groups, thresholds, covariate values)
  are converted to ``str``.

Public functions: :func:`critical_norm`, :func:`critical_norm_thresholds`,
:func:`censored_median`, :func:`median_ci`, :func:`delay_law`, :func:`power_law`,
:func:`free_contraction_law`, :func:`fold_change`, :func:`fold_change_across`, the spreads
:func:`cv` and :func:`fold` of a list of cell summaries, and :func:`py` (plain Python values).

:func:`delay_law` is composed of steps that can be run on their own: the lanes
(:func:`_delay_lanes`), the cells and their Kaplan-Meier medians (:func:`_delay_cells`), the
least-squares law on the medians (:func:`_median_fits`, :func:`_ols_law`), the shared vs
separate slopes comparison (:func:`_model_comparison`), the bootstrap over lanes
(:func:`_law_bootstrap`) and the censored maximum-likelihood fit (:func:`_tobit_fit`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = [
    "critical_norm",
    "critical_norm_thresholds",
    "censored_median",
    "median_ci",
    "delay_law",
    "power_law",
    "free_contraction_law",
    "fold_change",
    "fold_change_across",
    "cv",
    "fold",
    "py",
]

# Survival values within this distance of 0.5 count as "exactly one half"
# (the even-n midpoint convention of the Kaplan-Meier median).
_HALF_TOL = 1e-9

# Bounds on the Tobit fit's sigma (log T units). The floor stands in for the resolution of
# T_grok (eval steps): a fit that wants a smaller sigma (zero residuals) reports the floor
# with ``sigma_floored`` and no standard errors.
SIGMA_FLOOR = 1e-3
SIGMA_CEIL = 1e3


# ---------------------------------------------------------------------------
# small helpers
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


# ---------------------------------------------------------------------------
# critical norm
# ---------------------------------------------------------------------------


def critical_norm(norms, n_boot: int = 2000, seed: int = 0, ci: float = 0.95) -> dict:
    """Summary of the weight norm at grokking across seeds.

    Args:
        norms: 1-D array, one critical norm per lane; NaNs are ignored and
            counted in ``n_missing``.
        n_boot: bootstrap resamples for the CI of the median.
        seed: RNG seed (deterministic CI).
        ci: two-sided coverage of the interval.

    Returns:
        dict with ``median``, ``mean``, ``std`` (sample std, ddof=1),
        ``cv`` (std/mean), ``ci`` ([lo, hi] percentile-bootstrap interval of the
        median), ``n`` (finite entries) and ``n_missing``.
    """
    _check_ci(ci)
    x = np.asarray(norms, dtype=float).ravel()
    good = x[np.isfinite(x)]
    n = int(good.size)
    out = {
        "median": None,
        "mean": None,
        "std": None,
        "cv": None,
        "ci": [None, None],
        "n": n,
        "n_missing": int(x.size - n),
    }
    if n == 0:
        return out
    mean = float(good.mean())
    std = float(good.std(ddof=1)) if n > 1 else math.nan
    out.update(
        median=_f(np.median(good)),
        mean=_f(mean),
        std=_f(std),
        cv=_f(std / mean) if mean != 0 else None,
    )
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        out["ci"] = _percentile_ci(np.median(good[idx], axis=1), ci)
    return out


def critical_norm_thresholds(
    norms_by_threshold: Mapping, n_boot: int = 2000, seed: int = 0, ci: float = 0.95
) -> dict:
    """Critical norm for several grokking-accuracy thresholds (robustness).

    Args:
        norms_by_threshold: mapping threshold -> 1-D array of critical norms,
            e.g. ``{0.8: a, 0.9: b, 0.95: c}``.
        n_boot, seed, ci: passed to :func:`critical_norm` (same seed for each).

    Returns:
        dict with ``per_threshold`` ({str(threshold): critical_norm dict}),
        ``medians`` ({str(threshold): median}), ``max_abs_spread``
        (max - min of the medians) and ``max_rel_spread``
        ((max - min) / mean of the medians; 0 for a single threshold, ``None``
        if no median is available).
    """
    per, meds = {}, {}
    for thr in sorted(norms_by_threshold, key=lambda v: (str(type(v)), v)):
        res = critical_norm(norms_by_threshold[thr], n_boot=n_boot, seed=seed, ci=ci)
        per[_key(thr)] = res
        meds[_key(thr)] = res["median"]
    vals = np.array([m for m in meds.values() if m is not None], dtype=float)
    if vals.size == 0:
        spread = rel = None
    else:
        spread = float(vals.max() - vals.min())
        rel = _f(spread / vals.mean()) if vals.mean() != 0 else None
    return {"per_threshold": per, "medians": meds, "max_abs_spread": spread, "max_rel_spread": rel}


# ---------------------------------------------------------------------------
# delay law
# ---------------------------------------------------------------------------


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


def _tobit_nll(theta, y, rho, gidx, cens, n_groups):
    """Negative log-likelihood, gradient and Hessian of the censored model."""
    alpha, c, log_s = theta[0], theta[1 : 1 + n_groups], theta[-1]
    s = math.exp(log_s)
    z = (y - alpha * rho - c[gidx]) / s
    obs = ~cens
    ll = np.empty_like(z)
    ll[obs] = stats.norm.logpdf(z[obs]) - log_s
    ll[cens] = stats.norm.logsf(z[cens])
    # derivatives of each lane's log-lik wrt mu and log sigma
    g_mu = np.empty_like(z)
    g_ls = np.empty_like(z)
    h_mm = np.empty_like(z)
    h_ml = np.empty_like(z)
    h_ll = np.empty_like(z)
    zo = z[obs]
    g_mu[obs] = zo / s
    g_ls[obs] = zo**2 - 1.0
    h_mm[obs] = -1.0 / s**2
    h_ml[obs] = -2.0 * zo / s
    h_ll[obs] = -2.0 * zo**2
    zc = z[cens]
    lam = np.exp(stats.norm.logpdf(zc) - stats.norm.logsf(zc))  # inverse Mills ratio
    dlam = lam * (lam - zc)
    g_mu[cens] = lam / s
    g_ls[cens] = lam * zc
    h_mm[cens] = -dlam / s**2
    h_ml[cens] = -(dlam * zc + lam) / s
    h_ll[cens] = -(dlam * zc**2 + lam * zc)
    k = n_groups + 2
    # d mu / d theta: alpha -> rho, c_g -> indicator
    grad = np.zeros(k)
    grad[0] = np.dot(g_mu, rho)
    grad[1 : 1 + n_groups] = np.bincount(gidx, weights=g_mu, minlength=n_groups)
    grad[-1] = g_ls.sum()
    hess = np.zeros((k, k))
    hess[0, 0] = np.dot(h_mm, rho * rho)
    hess[0, 1 : 1 + n_groups] = np.bincount(gidx, weights=h_mm * rho, minlength=n_groups)
    hess[1 : 1 + n_groups, 1 : 1 + n_groups] = np.diag(
        np.bincount(gidx, weights=h_mm, minlength=n_groups)
    )
    hess[0, -1] = np.dot(h_ml, rho)
    hess[1 : 1 + n_groups, -1] = np.bincount(gidx, weights=h_ml, minlength=n_groups)
    hess[-1, -1] = h_ll.sum()
    hess = np.triu(hess) + np.triu(hess, 1).T
    return -float(ll.sum()), -grad, -hess


def _tobit_fit(rho, t, gidx, cens, group_keys, ci):
    """Censored log-normal (Tobit) regression with shared alpha."""
    n_groups = len(group_keys)
    out = {
        "alpha": None,
        "alpha_se": None,
        "alpha_ci": [None, None],
        "intercepts": {k: None for k in group_keys},
        "intercepts_se": {k: None for k in group_keys},
        "sigma": None,
        "sigma_floored": False,
        "loglik": None,
        "converged": False,
        "n_lanes": int(t.size),
        "n_censored": int(cens.sum()),
        "excluded_groups": [],
    }
    # groups without a single observed lane have an unbounded intercept
    has_obs = np.bincount(gidx[~cens], minlength=n_groups) > 0
    out["excluded_groups"] = [group_keys[g] for g in range(n_groups) if not has_obs[g]]
    keep = has_obs[gidx]
    rho, t, gidx, cens = rho[keep], t[keep], gidx[keep], cens[keep]
    used = np.nonzero(has_obs)[0]
    remap = -np.ones(n_groups, int)
    remap[used] = np.arange(used.size)
    gi = remap[gidx]
    G = used.size
    if G == 0:
        return out
    y = np.log(t)
    # alpha needs some group with two distinct rho among its lanes
    alpha_ok = any(np.ptp(rho[gi == g]) > 0 for g in range(G))
    if not alpha_ok:
        return out
    a0, c0, yhat, _ = _shared_fit(rho, y, gi, G)
    # log sigma is kept in [log SIGMA_FLOOR, log SIGMA_CEIL]: with as many observed lanes as
    # mean parameters (one lane per cell, two cells) or identical times per cell the
    # likelihood grows without bound as sigma -> 0, and an unbounded line search may
    # overflow exp(log sigma).
    lo, hi = math.log(SIGMA_FLOOR), math.log(SIGMA_CEIL)
    s0 = min(max(float(np.std(y - yhat)), 1e-2), SIGMA_CEIL)
    theta0 = np.concatenate([[a0], c0, [math.log(s0)]])
    args = (y, rho, gi, cens, G)
    bounds = [(None, None)] * (1 + G) + [(lo, hi)]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        res = optimize.minimize(
            lambda th: _tobit_nll(th, *args)[:2],
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000},
        )
        interior = lo + 1e-6 < res.x[-1] < hi - 1e-6
        if not res.success and interior:  # second attempt with a trust-region Newton method
            try:
                res2 = optimize.minimize(
                    lambda th: _tobit_nll(th, *args)[0],
                    res.x,
                    jac=lambda th: _tobit_nll(th, *args)[1],
                    hess=lambda th: _tobit_nll(th, *args)[2],
                    method="trust-exact",
                )
                if np.all(np.isfinite(res2.x)) and lo <= res2.x[-1] <= hi and res2.fun <= res.fun:
                    res = res2
            except (ArithmeticError, ValueError, np.linalg.LinAlgError):
                pass
    theta = res.x
    floored = bool(theta[-1] <= lo + 1e-6)
    nll, grad, hess = _tobit_nll(theta, *args)
    if floored:  # a boundary optimum: no curvature-based standard errors
        se = np.full(theta.shape, np.nan)
    else:
        try:
            cov = np.linalg.inv(hess)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(theta.shape, np.nan)
    zq = stats.norm.ppf(0.5 + ci / 2.0)
    alpha = float(theta[0])
    ci_alpha = (
        [_f(alpha - zq * se[0]), _f(alpha + zq * se[0])] if math.isfinite(se[0]) else [None, None]
    )
    free_grad = grad[:-1] if floored else grad
    out.update(
        alpha=_f(alpha),
        alpha_se=_f(se[0]),
        alpha_ci=ci_alpha,
        sigma=_f(math.exp(theta[-1])),
        loglik=_f(-nll),
        sigma_floored=floored,
        converged=bool(res.success or np.max(np.abs(free_grad)) < 1e-5),
    )
    for j, g in enumerate(used):
        out["intercepts"][group_keys[g]] = _f(theta[1 + j])
        out["intercepts_se"][group_keys[g]] = _f(se[1 + j])
    return out


def _delay_lanes(rho, t_grok, group, censored):
    """The per-lane inputs of :func:`delay_law` as checked arrays, missing lanes dropped.

    Returns ``(rho, t, cens, gidx, gkeys, n_missing)``: ``gidx`` indexes the sorted unique
    groups and ``gkeys`` are their string keys; a lane is missing when ``t`` is non-finite or
    non-positive or ``rho`` is non-finite.
    """
    rho = np.asarray(rho, dtype=float).ravel()
    t = np.asarray(t_grok, dtype=float).ravel()
    n_all = t.size
    if rho.shape != t.shape:
        raise ValueError("rho and t_grok must have the same length")
    cens = np.zeros(n_all, bool) if censored is None else np.asarray(censored, dtype=bool).ravel()
    if cens.shape != t.shape:
        raise ValueError("censored must have the same length as t_grok")
    if group is None:
        groups_raw = ["all"] * n_all
    else:
        seq = group.ravel() if isinstance(group, np.ndarray) else group
        groups_raw = [py(g, clean=False) for g in seq]
    if len(groups_raw) != n_all:
        raise ValueError("group must have the same length as t_grok")

    ok = np.isfinite(t) & (t > 0) & np.isfinite(rho)
    n_missing = int(n_all - ok.sum())
    rho, t, cens = rho[ok], t[ok], cens[ok]
    groups_raw = [g for g, k in zip(groups_raw, ok) if k]
    uniq = _sorted_unique(groups_raw)
    gpos = {g: i for i, g in enumerate(uniq)}
    gidx = np.array([gpos[g] for g in groups_raw], dtype=int)
    return rho, t, cens, gidx, [_key(g) for g in uniq], n_missing


def _delay_cells(rho, t, cens, gidx, n_groups: int) -> dict:
    """The cells (unique group, rho) of the lanes and their Kaplan-Meier medians.

    Cells come group by group, rho ascending within a group (rho pooled by exact equality).
    Returns a dict of per-cell arrays: ``members`` (list of lane indices), ``group`` (group
    index), ``rho``, ``median`` (NaN where not identifiable), ``identifiable`` and
    ``log_median`` (NaN where not identifiable).
    """
    members, cell_g, cell_rho = [], [], []
    for g in range(n_groups):
        mg = gidx == g
        for r in np.unique(rho[mg]):
            members.append(np.nonzero(mg & (rho == r))[0])
            cell_g.append(g)
            cell_rho.append(float(r))
    med = (
        np.array([_km_median_rows(t[m][None, :], cens[m][None, :])[0] for m in members])
        if members
        else np.zeros(0)
    )
    ident = np.isfinite(med)
    return {
        "members": members,
        "group": np.array(cell_g, dtype=int),
        "rho": np.array(cell_rho, dtype=float),
        "median": med,
        "identifiable": ident,
        "log_median": np.where(ident, np.log(np.where(ident, med, 1.0)), np.nan),
    }


def _median_fits(cell_rho, cell_g, n_groups: int, y_cells, use):
    """Least squares on the log cell medians ``y_cells`` of the cells ``use``.

    Returns ``(alpha, intercepts, yhat, lines)``: the shared-slope model (alpha, one intercept
    per group, NaN for groups without a used cell; ``yhat`` its fitted values on the used
    cells) and each group's own line, ``lines[g] = (slope, intercept)`` (NaN with fewer than
    two used cells).
    """
    r, y, g = cell_rho[use], y_cells[use], cell_g[use]
    a, c, yhat, _ = (
        _shared_fit(r, y, g, n_groups)
        if use.any()
        else (math.nan, np.full(n_groups, np.nan), np.zeros(0), False)
    )
    lines = []
    for gg in range(n_groups):
        m = g == gg
        lines.append(_ols_line(r[m], y[m]) if m.sum() >= 2 else (math.nan, math.nan))
    return a, c, yhat, lines


def _ols_law(cells: dict, n_groups: int) -> dict:
    """The least-squares delay law on the identifiable cells of :func:`_delay_cells`.

    Returns a dict of plain numbers and arrays (NaN where undefined): ``alpha``,
    ``alpha_se`` (OLS), ``intercepts`` and ``lines`` (see :func:`_median_fits`),
    ``fitted_log`` and ``fitted_group_log`` (every cell: shared model, the group's own line),
    ``rss_shared``, ``rss_separate``, ``r2``, ``r2_within``, ``k_shared`` and ``k_separate``
    (parameter counts, error variance included), ``n_fit`` (cells fitted) and per group
    ``group_r2`` and ``group_n`` (its fitted cells).
    """
    G = n_groups
    cell_rho, cell_g = cells["rho"], cells["group"]
    ylog, ident = cells["log_median"], cells["identifiable"]
    alpha, cvec, yhat_use, per_lines = _median_fits(cell_rho, cell_g, G, ylog, ident)
    y_use, r_use, g_use = ylog[ident], cell_rho[ident], cell_g[ident]
    N = int(ident.sum())

    # fitted values for every cell (shared and per-group)
    fitted_log = alpha * cell_rho + cvec[cell_g] if cell_rho.size else np.zeros(0)
    fitted_group = np.array(
        [per_lines[g][0] * r + per_lines[g][1] for g, r in zip(cell_g, cell_rho)]
    )

    rss_shared = float(np.sum((y_use - yhat_use) ** 2)) if math.isfinite(alpha) else math.nan
    yhat_sep = np.empty(N)
    for gg in range(G):
        m = g_use == gg
        if not m.any():
            continue
        sl, ic = per_lines[gg]
        yhat_sep[m] = sl * r_use[m] + ic if math.isfinite(sl) else y_use[m].mean()
    rss_separate = float(np.sum((y_use - yhat_sep) ** 2)) if N else math.nan

    gmeans = np.zeros(N)
    for gg in range(G):
        m = g_use == gg
        if m.any():
            gmeans[m] = y_use[m].mean()
    r2 = _r2(y_use, yhat_use) if math.isfinite(alpha) else math.nan
    r2_within = _r2(y_use, yhat_use, gmeans) if math.isfinite(alpha) else math.nan

    # OLS standard error of the shared alpha
    groups_used = np.unique(g_use)
    k_shared = 1 + groups_used.size + 1
    m_g = [len(np.unique(r_use[g_use == gg])) for gg in groups_used]
    k_separate = int(sum(min(2, m) for m in m_g)) + 1
    alpha_se = math.nan
    dof = N - (k_shared - 1)
    if math.isfinite(alpha) and dof > 0:
        sxx = sum(
            float(np.sum((r_use[g_use == gg] - r_use[g_use == gg].mean()) ** 2))
            for gg in groups_used
        )
        alpha_se = math.sqrt(rss_shared / dof / sxx)

    group_r2, group_n = [], []
    for gg in range(G):
        m = g_use == gg
        sl, icp = per_lines[gg]
        group_r2.append(
            _r2(y_use[m], sl * r_use[m] + icp) if (m.sum() >= 2 and math.isfinite(sl)) else math.nan
        )
        group_n.append(int(m.sum()))
    return {
        "alpha": alpha,
        "alpha_se": alpha_se,
        "intercepts": cvec,
        "lines": per_lines,
        "fitted_log": fitted_log,
        "fitted_group_log": fitted_group,
        "rss_shared": rss_shared,
        "rss_separate": rss_separate,
        "r2": r2,
        "r2_within": r2_within,
        "k_shared": int(k_shared),
        "k_separate": int(k_separate),
        "n_fit": N,
        "group_r2": group_r2,
        "group_n": group_n,
    }


def _info_criteria(rss: float, k: int, n: int) -> tuple[float, float, float]:
    """(AIC, AICc, BIC) of a Gaussian least-squares fit with ``k`` parameters on ``n`` points.

    NaN when n = 0 or RSS is not finite; AICc is NaN when n <= k + 1.
    """
    if n == 0 or not math.isfinite(rss):
        return math.nan, math.nan, math.nan
    ll_term = n * math.log(max(rss, np.finfo(float).tiny) / n)
    aic = ll_term + 2 * k
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.nan
    return aic, aicc, ll_term + k * math.log(n)


def _preferred(shared: float, separate: float) -> str | None:
    """ "shared" or "separate", whichever criterion value is lower (ties -> "shared")."""
    if not (math.isfinite(shared) and math.isfinite(separate)):
        return None
    return "shared" if shared <= separate else "separate"


def _model_comparison(
    rss_shared: float, rss_separate: float, k_shared: int, k_separate: int, n: int
) -> dict:
    """Shared slope vs separate slopes on ``n`` fitted cells: AIC, AICc, BIC and the F-test.

    Returns the ``model_comparison`` dict of :func:`delay_law`.
    """
    aic_s, aicc_s, bic_s = _info_criteria(rss_shared, k_shared, n)
    aic_p, aicc_p, bic_p = _info_criteria(rss_separate, k_separate, n)
    df1, df2 = k_separate - k_shared, n - (k_separate - 1)
    f_stat = f_p = math.nan
    if df1 > 0 and df2 > 0 and math.isfinite(rss_shared) and rss_separate > 0:
        f_stat = ((rss_shared - rss_separate) / df1) / (rss_separate / df2)
        f_p = float(stats.f.sf(f_stat, df1, df2))
    return {
        "rss_shared": _f(rss_shared),
        "rss_separate": _f(rss_separate),
        "k_shared": int(k_shared),
        "k_separate": int(k_separate),
        "n_cells": n,
        "aic_shared": _f(aic_s),
        "aic_separate": _f(aic_p),
        "aicc_shared": _f(aicc_s),
        "aicc_separate": _f(aicc_p),
        "bic_shared": _f(bic_s),
        "bic_separate": _f(bic_p),
        "delta_aic": _f(aic_p - aic_s),
        "delta_aicc": _f(aicc_p - aicc_s),
        "delta_bic": _f(bic_p - bic_s),
        "preferred_aic": _preferred(aic_s, aic_p),
        "preferred_aicc": _preferred(aicc_s, aicc_p),
        "preferred_bic": _preferred(bic_s, bic_p),
        "f_stat": _f(f_stat),
        "f_pvalue": _f(f_p),
        "f_df": [int(df1), int(df2)],
    }


def _law_bootstrap(t, cens, cells: dict, n_groups: int, n_boot: int, seed: int):
    """Bootstrap replicates of the median fits, lanes resampled within each cell.

    Each replicate recomputes the cell medians and :func:`_median_fits` (cells unidentifiable
    in a replicate are left out of it). Returns ``(alpha, slopes)`` of shapes ``(n_boot,)``
    and ``(n_boot, n_groups)``; all NaN when ``n_boot`` is 0 or no identifiable cell holds
    two lanes (every replicate would equal the point fit: no interval).
    """
    boot_alpha = np.full(n_boot, np.nan)
    boot_group = np.full((n_boot, n_groups), np.nan)
    members = cells["members"]
    pairs = any(members[j].size >= 2 for j in np.flatnonzero(cells["identifiable"]))
    if n_boot <= 0 or not pairs:
        return boot_alpha, boot_group
    rng = np.random.default_rng(seed)
    bmed = np.empty((n_boot, len(members)))
    for j, m in enumerate(members):
        idx = rng.integers(0, m.size, size=(n_boot, m.size))
        bmed[:, j] = _km_median_rows(t[m][idx], cens[m][idx])
    with np.errstate(invalid="ignore", divide="ignore"):
        blog = np.log(bmed)
    for b in range(n_boot):
        use = np.isfinite(blog[b])
        a_b, _, _, lines_b = _median_fits(cells["rho"], cells["group"], n_groups, blog[b], use)
        boot_alpha[b] = a_b
        boot_group[b] = [line[0] for line in lines_b]
    return boot_alpha, boot_group


def _per_group_rows(law: dict, boot_group, gkeys: list, ci: float) -> dict:
    """The ``per_group`` dict of :func:`delay_law`: each group's own line and its interval."""
    out = {}
    for g, key in enumerate(gkeys):
        slope, intercept = law["lines"][g]
        out[key] = {
            "alpha": _f(slope),
            "alpha_ci": _percentile_ci(boot_group[:, g], ci),
            "intercept": _f(intercept),
            "r2": _f(law["group_r2"][g]),
            "n_cells": law["group_n"][g],
        }
    return out


def _cell_rows(t, cens, cells: dict, law: dict, gkeys: list) -> list[dict]:
    """The ``cells`` list of :func:`delay_law`: each cell's lanes, median and fitted values."""
    rows = []
    for j, m in enumerate(cells["members"]):
        cm = cens[m]
        ylog, fitted_log = cells["log_median"][j], law["fitted_log"][j]
        rows.append(
            {
                "group": gkeys[cells["group"][j]],
                "rho": float(cells["rho"][j]),
                "n": int(m.size),
                "n_censored": int(cm.sum()),
                "median": _f(cells["median"][j]),
                "identifiable": bool(cells["identifiable"][j]),
                "log_median": _f(ylog),
                "fitted_log": _f(fitted_log),
                "fitted": _f(math.exp(fitted_log)) if math.isfinite(fitted_log) else None,
                "fitted_group_log": _f(law["fitted_group_log"][j]),
                "residual_log": _f(ylog - fitted_log) if cells["identifiable"][j] else None,
                "max_censored_time": _f(t[m][cm].max()) if cm.any() else None,
            }
        )
    return rows


def delay_law(
    rho, t_grok, group=None, censored=None, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict:
    """Fit the delay law log T_grok = alpha * rho + c_group.

    Inputs are per-lane (one entry per seed-run).  Lanes are pooled into cells
    = unique (group, rho); each cell is summarised by its Kaplan-Meier median
    (:func:`censored_median`; rho values are pooled by exact equality, so round
    computed ratios before calling), and least squares on the log cell medians
    gives

    * a shared-slope model (one alpha, one intercept per group), and
    * separate per-group lines (alpha_g, c_g).

    Lanes that never grokked must be passed with ``t_grok`` = steps run (the
    budget) and ``censored=True``; they are never dropped.  A cell whose median
    is not identifiable (S(t) stays above 1/2, i.e. with a common budget at
    least half its lanes censored) is excluded from the median fits and listed
    in ``excluded_cells``.  Lanes with non-finite or non-positive ``t_grok`` or
    non-finite ``rho`` are treated as missing (``n_missing``).

    The shared alpha and each group alpha get percentile-bootstrap intervals:
    lanes are resampled with replacement within each cell, cell medians and
    fits are recomputed (cells unidentifiable in a replicate are left out of
    that replicate).

    Independently, ``mle`` is a censored maximum-likelihood (Tobit /
    censored log-normal) fit on the lanes: log T = alpha*rho + c_g + sigma*eps,
    eps ~ N(0, 1); observed lanes contribute the normal log-density, censored
    lanes the log survival function.  Groups with no observed lane are excluded
    from it (their intercept is unbounded).

    Model comparison (on the identifiable log cell medians, Gaussian errors):
    ``aic = N log(RSS/N) + 2k``, ``aicc = aic + 2k(k+1)/(N-k-1)`` (small-sample
    correction; ``None`` if N <= k+1), ``bic = N log(RSS/N) + k log N`` with N
    the number of fitted cells; parameter counts include the error variance:
    k_shared = 1 (alpha) + G + 1, k_separate = sum_g min(2, m_g) + 1, with G
    the groups having >= 1 fitted cell and m_g the distinct rho of group g.
    An F-test of shared vs separate slopes is included when defined.

    Args:
        rho: per-lane clamp ratio (held norm / Wc).
        t_grok: per-lane grokking step (or budget if censored).
        group: per-lane group label (int, float or str, e.g. modulus p);
            ``None`` means one group (reported as ``"all"``).
        censored: per-lane bool, True if the lane did not grok; ``None`` = none.
        n_boot: bootstrap replicates (0 disables the bootstrap CIs).
        seed: RNG seed; the same seed gives the same intervals.
        ci: two-sided coverage of all intervals.

    Returns:
        dict with keys

        * ``alpha``, ``alpha_se`` (OLS), ``alpha_ci`` (bootstrap), ``n_boot_valid``
        * ``intercepts`` {group: c}, ``r2`` (1 - RSS/TSS, TSS about the grand
          mean of all fitted cells), ``r2_within`` (TSS about group means)
        * ``per_group`` {group: {alpha, alpha_ci, intercept, r2, n_cells}}
        * ``cells``: list of {group, rho, n, n_censored, median, identifiable,
          log_median, fitted, fitted_log, fitted_group_log, residual_log,
          max_censored_time}; ``fitted``/``fitted_log`` come from the shared
          model, ``fitted_group_log`` from the group's own line
        * ``excluded_cells``: list of {group, rho} with unidentifiable median
        * ``n_lanes``, ``n_censored`` (lanes), ``n_missing``, ``n_cells_fit``
        * ``rss_shared``, ``rss_separate`` and ``model_comparison`` {rss_shared,
          rss_separate, k_shared, k_separate, n_cells, aic_shared, aic_separate,
          aicc_shared, aicc_separate, bic_shared, bic_separate, delta_aic,
          delta_aicc, delta_bic (all separate - shared; negative favours
          separate), preferred_aic, preferred_aicc, preferred_bic ("shared" or
          "separate"; ties -> "shared"), f_stat, f_pvalue, f_df [df1, df2]}
        * ``mle`` {alpha, alpha_se (inverse Hessian), alpha_ci (Wald),
          intercepts, intercepts_se, sigma (floored at SIGMA_FLOOR; then
          ``sigma_floored`` is True and the standard errors are None), loglik,
          converged, n_lanes,
          n_censored, excluded_groups}
    """
    _check_ci(ci)
    rho, t, cens, gidx, gkeys, n_missing = _delay_lanes(rho, t_grok, group, censored)
    G = len(gkeys)
    cells = _delay_cells(rho, t, cens, gidx, G)
    law = _ols_law(cells, G)
    comparison = _model_comparison(
        law["rss_shared"], law["rss_separate"], law["k_shared"], law["k_separate"], law["n_fit"]
    )
    boot_alpha, boot_group = _law_bootstrap(t, cens, cells, G, n_boot, seed)
    rows = _cell_rows(t, cens, cells, law, gkeys)
    return {
        "alpha": _f(law["alpha"]),
        "alpha_se": _f(law["alpha_se"]),
        "alpha_ci": _percentile_ci(boot_alpha, ci),
        "n_boot_valid": int(np.isfinite(boot_alpha).sum()),
        "intercepts": {gkeys[g]: _f(law["intercepts"][g]) for g in range(G)},
        "r2": _f(law["r2"]),
        "r2_within": _f(law["r2_within"]),
        "per_group": _per_group_rows(law, boot_group, gkeys, ci),
        "cells": rows,
        "excluded_cells": [
            {"group": c["group"], "rho": c["rho"]} for c in rows if not c["identifiable"]
        ],
        "n_lanes": int(t.size),
        "n_censored": int(cens.sum()),
        "n_missing": n_missing,
        "n_cells_fit": law["n_fit"],
        "rss_shared": comparison["rss_shared"],
        "rss_separate": comparison["rss_separate"],
        "model_comparison": comparison,
        "mle": _tobit_fit(rho, t, gidx, cens, gkeys, ci),
    }


# ---------------------------------------------------------------------------
# power law, free contraction, fold changes
# ---------------------------------------------------------------------------


def power_law(x, y, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> dict:
    """Fit y = a * x**b by least squares on (log x, log y).

    Pairs with non-finite or non-positive x or y are ignored.

    Args:
        x, y: 1-D arrays (e.g. modulus p and critical norm Wc).
        n_boot: bootstrap replicates over points (pairs resampled with
            replacement; replicates with constant x are skipped).
        seed: RNG seed (deterministic CI).
        ci: two-sided coverage.

    Returns:
        dict with ``exponent`` (b), ``exponent_se`` (OLS standard error),
        ``exponent_ci`` (percentile bootstrap over points; ``[None, None]`` if
        n < 3 or n_boot = 0), ``exponent_ci_t`` (b +- t_{n-2} * se),
        ``prefactor`` (a = exp(intercept)), ``log_prefactor``, ``r2``
        (on the logs) and ``n``.
    """
    _check_ci(ci)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError("x and y must have the same length")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    n = int(lx.size)
    out = {
        "exponent": None,
        "exponent_se": None,
        "exponent_ci": [None, None],
        "exponent_ci_t": [None, None],
        "prefactor": None,
        "log_prefactor": None,
        "r2": None,
        "n": n,
    }
    if n < 2:
        return out
    b, la = _ols_line(lx, ly)
    if not math.isfinite(b):
        return out
    resid = ly - (b * lx + la)
    se = math.nan
    if n > 2:
        se = math.sqrt(float(resid @ resid) / (n - 2) / float(np.sum((lx - lx.mean()) ** 2)))
        tq = stats.t.ppf(0.5 + ci / 2.0, n - 2)
        out["exponent_ci_t"] = [_f(b - tq * se), _f(b + tq * se)]
    out.update(
        exponent=_f(b),
        exponent_se=_f(se),
        prefactor=_f(math.exp(la)),
        log_prefactor=_f(la),
        r2=_f(_r2(ly, b * lx + la)),
    )
    if n_boot > 0 and n >= 3:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        bx, by = lx[idx], ly[idx]
        dx = bx - bx.mean(axis=1, keepdims=True)
        sxx = np.sum(dx * dx, axis=1)
        sxy = np.sum(dx * (by - by.mean(axis=1, keepdims=True)), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            bs = np.where(sxx > 1e-15, sxy / sxx, np.nan)
        out["exponent_ci"] = _percentile_ci(bs, ci)
    return out


def free_contraction_law(t_mem, t_grok, norm_at_mem, norm_at_grok, lr, wd) -> dict:
    """Logarithmic law for freely contracting norms.

    Regresses ``dt = t_grok - t_mem`` on
    ``x = log(norm_at_mem / norm_at_grok) / (lr * wd)`` across lanes.
    ``lr`` and ``wd`` may be scalars or per-lane arrays.  Lanes with any
    non-finite entry, non-positive norm or zero ``lr*wd`` are ignored.

    Args:
        t_mem, t_grok: per-lane memorisation and grokking steps.
        norm_at_mem, norm_at_grok: global weight norm at those steps.
        lr, wd: learning rate and weight decay (scalar or per lane).

    Returns:
        dict with ``slope``, ``intercept``, ``r2`` (OLS with intercept),
        ``slope0`` (least squares through the origin, sum(x*dt)/sum(x^2)),
        ``r2_0`` (1 - RSS0/sum(dt^2), uncentred), ``n`` and ``n_dropped``.
    """
    arrs = np.broadcast_arrays(
        *[np.asarray(a, dtype=float) for a in (t_mem, t_grok, norm_at_mem, norm_at_grok, lr, wd)]
    )
    tm, tg, nm, ng, lr_, wd_ = (a.ravel() for a in arrs)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.log(nm / ng) / (lr_ * wd_)
    dt = tg - tm
    ok = np.isfinite(x) & np.isfinite(dt) & (nm > 0) & (ng > 0)
    x, dt = x[ok], dt[ok]
    n = int(x.size)
    out = {
        "slope": None,
        "intercept": None,
        "r2": None,
        "slope0": None,
        "r2_0": None,
        "n": n,
        "n_dropped": int(ok.size - n),
    }
    if n == 0:
        return out
    sxx0 = float(x @ x)
    if sxx0 > 0:
        s0 = float(x @ dt) / sxx0
        ss0 = float(dt @ dt)
        out["slope0"] = _f(s0)
        out["r2_0"] = _f(1.0 - float(np.sum((dt - s0 * x) ** 2)) / ss0) if ss0 > 0 else None
    if n >= 2:
        sl, ic = _ols_line(x, dt)
        if math.isfinite(sl):
            out.update(slope=_f(sl), intercept=_f(ic), r2=_f(_r2(dt, sl * x + ic)))
    return out


def fold_change(t_a, t_b, censored_a=None, censored_b=None) -> dict:
    """Ratio of (Kaplan-Meier) medians, median(t_b) / median(t_a).

    Args:
        t_a, t_b: 1-D arrays of times for the two conditions.
        censored_a, censored_b: optional censoring flags (see
            :func:`censored_median`).

    Returns:
        dict with ``fold`` (median_b / median_a; ``None`` if either median is
        not identifiable or median_a is 0), ``median_a`` and ``median_b``.
    """
    ma = censored_median(t_a, censored_a)
    mb = censored_median(t_b, censored_b)
    fold = None if (ma is None or mb is None or ma == 0) else _f(mb / ma)
    return {"fold": fold, "median_a": ma, "median_b": mb}


def fold_change_across(values, key, t_grok, censored=None) -> dict:
    """Largest over smallest cell median of T_grok across the levels of a covariate.

    E.g. "the held norm moves T_grok ~19x across the rho range at fixed lr":
    pass the lanes of one lr with the covariate rho.  Restrict the lanes to the
    fixed settings before calling; every unique covariate value is one cell.

    Args:
        values: either a mapping of per-lane columns (then ``values[key]`` is
            the covariate), or the per-lane covariate array itself (then
            ``key`` is only a label and may be ``None``).
        key: column name / label of the covariate.
        t_grok: per-lane grokking times (budget where censored).
        censored: optional per-lane censoring flags.

    Returns:
        dict with ``key`` (str or None), ``fold`` (max / min of the identifiable
        cell medians; ``None`` with fewer than one identifiable cell),
        ``argmax`` and ``argmin`` (covariate values, as float when numeric,
        else str), ``medians`` {str(value): median or None},
        ``n_unidentifiable`` and ``lower_bound`` (True when some cell median is
        not identifiable, i.e. exceeds the budget; the true fold may then be
        larger).  Lanes with non-finite ``t_grok`` are ignored.
    """
    x = values[key] if isinstance(values, Mapping) else values
    x = [py(v, clean=False) for v in (x.ravel() if isinstance(x, np.ndarray) else x)]
    t = np.asarray(t_grok, dtype=float).ravel()
    c = np.zeros(t.shape, bool) if censored is None else np.asarray(censored, bool).ravel()
    if not (len(x) == t.size == c.size):
        raise ValueError("values, t_grok and censored must have the same length")
    ok = np.isfinite(t)
    levels = _sorted_unique([v for v, k in zip(x, ok) if k])
    meds = {}
    for lv in levels:
        m = ok & np.array([v == lv for v in x])
        meds[lv] = censored_median(t[m], c[m])
    good = {lv: m for lv, m in meds.items() if m is not None}
    n_unid = len(meds) - len(good)

    def lab(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _key(v)

    out = {
        "key": None if key is None else str(key),
        "fold": None,
        "argmax": None,
        "argmin": None,
        "medians": {_key(lv): m for lv, m in meds.items()},
        "n_unidentifiable": int(n_unid),
        "lower_bound": bool(n_unid > 0),
    }
    if good:
        hi = max(good, key=good.get)
        lo = min(good, key=good.get)
        out.update(
            fold=_f(good[hi] / good[lo]) if good[lo] > 0 else None, argmax=lab(hi), argmin=lab(lo)
        )
    return out


# ---------------------------------------------------------------------------
# spread of cell summaries across a series of cells
# ---------------------------------------------------------------------------


def cv(values, finite: bool = False) -> float | None:
    """Coefficient of variation std (ddof=1) / mean of ``values`` (e.g. W_c across cells).

    None entries are left out; None is returned with fewer than two values left or a zero
    mean. With ``finite`` non-finite entries are left out too (NaN/inf, and None read as NaN)
    and a non-finite ratio is reported as None; without it a NaN or inf entry gives a NaN
    or inf result. The two agree wherever every value is a finite number or None.
    """
    if finite:
        v = np.asarray(values, dtype=float).ravel()
        v = v[np.isfinite(v)]
    else:
        v = np.array([x for x in values if x is not None], float)
    if v.size < 2 or v.mean() == 0:
        return None
    ratio = float(v.std(ddof=1) / v.mean())
    return _f(ratio) if finite else ratio


def fold(values) -> float | None:
    """Largest over smallest of the positive entries of ``values`` (None and NaN left out).

    None with fewer than two positive entries; an inf entry gives inf (or NaN if all are inf).
    """
    v = [x for x in values if x is not None and x > 0]
    return float(max(v) / min(v)) if len(v) >= 2 else None
