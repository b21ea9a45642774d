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
:func:`censored_median`, :func:`delay_law`, :func:`power_law`,
:func:`free_contraction_law`, :func:`fold_change`, :func:`fold_change_across`.
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
    "delay_law",
    "power_law",
    "free_contraction_law",
    "fold_change",
    "fold_change_across",
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


def _py(v: Any) -> Any:
    """Unwrap numpy scalars to Python scalars."""
    return v.item() if isinstance(v, np.generic) else v


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
        groups_raw = [_py(g) for g in seq]
    if len(groups_raw) != n_all:
        raise ValueError("group must have the same length as t_grok")

    ok = np.isfinite(t) & (t > 0) & np.isfinite(rho)
    n_missing = int(n_all - ok.sum())
    rho, t, cens = rho[ok], t[ok], cens[ok]
    groups_raw = [g for g, k in zip(groups_raw, ok) if k]
    uniq = _sorted_unique(groups_raw)
    gpos = {g: i for i, g in enumerate(uniq)}
    gidx = np.array([gpos[g] for g in groups_raw], dtype=int)
    gkeys = [_key(g) for g in uniq]
    G = len(uniq)

    # ---- cells -------------------------------------------------------------
    cell_members, cell_g, cell_rho = [], [], []
    for g in range(G):
        mg = gidx == g
        for r in np.unique(rho[mg]):
            cell_members.append(np.nonzero(mg & (rho == r))[0])
            cell_g.append(g)
            cell_rho.append(float(r))
    cell_g = np.array(cell_g, dtype=int)
    cell_rho = np.array(cell_rho, dtype=float)
    n_cells = len(cell_members)
    med = (
        np.array([_km_median_rows(t[m][None, :], cens[m][None, :])[0] for m in cell_members])
        if n_cells
        else np.zeros(0)
    )
    ident = np.isfinite(med)
    ylog = np.where(ident, np.log(np.where(ident, med, 1.0)), np.nan)

    # ---- point fits on identifiable cells ------------------------------------
    def fits(y_cells: np.ndarray, use: np.ndarray):
        """Shared alpha and per-group slopes from log cell medians."""
        r, y, g = cell_rho[use], y_cells[use], cell_g[use]
        a, c, yhat, ok_a = (
            _shared_fit(r, y, g, G)
            if use.any()
            else (math.nan, np.full(G, np.nan), np.zeros(0), False)
        )
        per = []
        for gg in range(G):
            m = g == gg
            per.append(_ols_line(r[m], y[m]) if m.sum() >= 2 else (math.nan, math.nan))
        return a, c, yhat, per

    alpha, cvec, yhat_use, per_lines = fits(ylog, ident)
    y_use, r_use, g_use = ylog[ident], cell_rho[ident], cell_g[ident]
    N = int(ident.sum())

    # fitted values for every cell (shared and per-group)
    fitted_log = alpha * cell_rho + cvec[cell_g] if n_cells else np.zeros(0)
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

    # ---- model comparison ----------------------------------------------------
    tiny = np.finfo(float).tiny

    def ic(rss, k):
        if N == 0 or not math.isfinite(rss):
            return math.nan, math.nan, math.nan
        ll_term = N * math.log(max(rss, tiny) / N)
        aic = ll_term + 2 * k
        aicc = aic + 2 * k * (k + 1) / (N - k - 1) if N - k - 1 > 0 else math.nan
        return aic, aicc, ll_term + k * math.log(N)

    aic_s, aicc_s, bic_s = ic(rss_shared, k_shared)
    aic_p, aicc_p, bic_p = ic(rss_separate, k_separate)
    df1, df2 = k_separate - k_shared, N - (k_separate - 1)
    f_stat = f_p = math.nan
    if df1 > 0 and df2 > 0 and math.isfinite(rss_shared) and rss_separate > 0:
        f_stat = ((rss_shared - rss_separate) / df1) / (rss_separate / df2)
        f_p = float(stats.f.sf(f_stat, df1, df2))

    def pref(a_s, a_p):
        if not (math.isfinite(a_s) and math.isfinite(a_p)):
            return None
        return "shared" if a_s <= a_p else "separate"

    comparison = {
        "rss_shared": _f(rss_shared),
        "rss_separate": _f(rss_separate),
        "k_shared": int(k_shared),
        "k_separate": int(k_separate),
        "n_cells": N,
        "aic_shared": _f(aic_s),
        "aic_separate": _f(aic_p),
        "aicc_shared": _f(aicc_s),
        "aicc_separate": _f(aicc_p),
        "bic_shared": _f(bic_s),
        "bic_separate": _f(bic_p),
        "delta_aic": _f(aic_p - aic_s),
        "delta_aicc": _f(aicc_p - aicc_s),
        "delta_bic": _f(bic_p - bic_s),
        "preferred_aic": pref(aic_s, aic_p),
        "preferred_aicc": pref(aicc_s, aicc_p),
        "preferred_bic": pref(bic_s, bic_p),
        "f_stat": _f(f_stat),
        "f_pvalue": _f(f_p),
        "f_df": [int(df1), int(df2)],
    }

    # ---- bootstrap ---------------------------------------------------------------
    boot_alpha = np.full(n_boot, np.nan)
    boot_group = np.full((n_boot, G), np.nan)
    # Resampling lanes within cells says nothing when no fitted cell holds two lanes (the
    # replicates all equal the point fit): no interval then.
    boot_ok = n_boot > 0 and any(cell_members[j].size >= 2 for j in np.flatnonzero(ident))
    if boot_ok:
        rng = np.random.default_rng(seed)
        bmed = np.empty((n_boot, n_cells))
        for j, m in enumerate(cell_members):
            idx = rng.integers(0, m.size, size=(n_boot, m.size))
            bmed[:, j] = _km_median_rows(t[m][idx], cens[m][idx])
        with np.errstate(invalid="ignore", divide="ignore"):
            blog = np.log(bmed)
        for b in range(n_boot):
            use = np.isfinite(blog[b])
            a_b, _, _, per_b = fits(blog[b], use)
            boot_alpha[b] = a_b
            boot_group[b] = [p[0] for p in per_b]

    # ---- assemble ------------------------------------------------------------------
    per_group = {}
    for gg in range(G):
        m = g_use == gg
        sl, icp = per_lines[gg]
        r2g = (
            _r2(y_use[m], sl * r_use[m] + icp) if (m.sum() >= 2 and math.isfinite(sl)) else math.nan
        )
        per_group[gkeys[gg]] = {
            "alpha": _f(sl),
            "alpha_ci": _percentile_ci(boot_group[:, gg], ci) if boot_ok else [None, None],
            "intercept": _f(icp),
            "r2": _f(r2g),
            "n_cells": int(m.sum()),
        }

    cells, excluded = [], []
    for j in range(n_cells):
        m = cell_members[j]
        cm = cens[m]
        cell = {
            "group": gkeys[cell_g[j]],
            "rho": float(cell_rho[j]),
            "n": int(m.size),
            "n_censored": int(cm.sum()),
            "median": _f(med[j]),
            "identifiable": bool(ident[j]),
            "log_median": _f(ylog[j]),
            "fitted_log": _f(fitted_log[j]),
            "fitted": _f(math.exp(fitted_log[j])) if math.isfinite(fitted_log[j]) else None,
            "fitted_group_log": _f(fitted_group[j]),
            "residual_log": _f(ylog[j] - fitted_log[j]) if ident[j] else None,
            "max_censored_time": _f(t[m][cm].max()) if cm.any() else None,
        }
        cells.append(cell)
        if not ident[j]:
            excluded.append({"group": cell["group"], "rho": cell["rho"]})

    return {
        "alpha": _f(alpha),
        "alpha_se": _f(alpha_se),
        "alpha_ci": _percentile_ci(boot_alpha, ci) if boot_ok else [None, None],
        "n_boot_valid": int(np.isfinite(boot_alpha).sum()),
        "intercepts": {gkeys[g]: _f(cvec[g]) for g in range(G)},
        "r2": _f(r2),
        "r2_within": _f(r2_within),
        "per_group": per_group,
        "cells": cells,
        "excluded_cells": excluded,
        "n_lanes": int(t.size),
        "n_censored": int(cens.sum()),
        "n_missing": n_missing,
        "n_cells_fit": N,
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
    x = [_py(v) for v in (x.ravel() if isinstance(x, np.ndarray) else x)]
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
