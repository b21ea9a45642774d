"""The grokking delay law log T_grok = alpha * rho + c_group on per-lane arrays
(:func:`delay_law`, re-exported as :func:`grokjax.fit.delay_law`). JAX-free.

It is composed of steps that can be run on their own: the lanes (:func:`_delay_lanes`), the
cells and their Kaplan-Meier medians (:func:`_delay_cells`), the least-squares law on the
medians (:func:`_median_fits`, :func:`_ols_law`), the shared vs separate slopes comparison
(:func:`_model_comparison`), the bootstrap over lanes (:func:`_law_bootstrap`) and the
censored maximum-likelihood fit (:func:`grokjax.tobit._tobit_fit`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from grokjax.survival import (
    _check_ci,
    _f,
    _key,
    _km_median_rows,
    _ols_line,
    _percentile_ci,
    _r2,
    _shared_fit,
    _sorted_unique,
    py,
)
from grokjax.tobit import _tobit_fit

__all__ = ["delay_law"]


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
