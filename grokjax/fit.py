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

The statistics live in three modules below this one, re-exported here: the plain-value and
least-squares helpers and the Kaplan-Meier median (:mod:`grokjax.survival`), the delay law and
its steps (:mod:`grokjax.delay`) and its censored maximum-likelihood fit (:mod:`grokjax.tobit`).
The same numbers over a loaded run directory, with the lanes each one uses, are the measures
of :mod:`grokjax.measures`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from grokjax.delay import delay_law
from grokjax.survival import (
    _check_ci,
    _f,
    _key,
    _ols_line,
    _percentile_ci,
    _r2,
    _sorted_unique,
    censored_median,
    median_ci,
    py,
)
from grokjax.tobit import SIGMA_CEIL, SIGMA_FLOOR  # noqa: F401  (the Tobit fit's bounds)

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
