"""Tests for the steps of grokjax.fit.delay_law and for fit's small statistics helpers
(median_ci, cv, fold, py)."""

import math

import numpy as np
import pytest
from scipy import stats

from grokjax import delay, fit, survival, tobit

RHOS = (1.0, 1.2, 1.4, 1.6)
ALPHA = 3.0
INTERCEPTS = {53: 4.0, 59: 4.5}


def exact_lanes(n_seeds=3, alpha=ALPHA):
    """Noise-free lanes: every lane of a cell has T = exp(alpha * rho + c_g)."""
    rho, t, grp = [], [], []
    for g, c in INTERCEPTS.items():
        for r in RHOS:
            rho += [r] * n_seeds
            grp += [g] * n_seeds
            t += [math.exp(alpha * r + c)] * n_seeds
    return np.array(rho), np.array(t), np.array(grp)


def noisy_lanes(seed=0, sigma=0.2, n_seeds=9):
    rng = np.random.default_rng(seed)
    rho, t, grp = exact_lanes(n_seeds)
    return rho, t * np.exp(sigma * rng.standard_normal(t.size)), grp


def steps(rho, t, grp=None, cens=None):
    """Lanes, cells and OLS law of the inputs, as delay_law computes them."""
    lanes = delay._delay_lanes(rho, t, grp, cens)
    r, tt, c, gidx, gkeys, _ = lanes
    cells = delay._delay_cells(r, tt, c, gidx, len(gkeys))
    return lanes, cells, delay._ols_law(cells, len(gkeys))


# --------------------------------------------------------------------------- lanes and cells


def test_delay_lanes_drops_missing_and_keeps_label_types():
    rho = [1.0, 1.2, np.inf, 1.4, 1.6]
    t = [10.0, np.nan, 30.0, -1.0, 50.0]
    grp = np.array([59.0, 53.0, 53.0, 59.0, 53.0])
    r, tt, c, gidx, gkeys, n_missing = delay._delay_lanes(rho, t, grp, None)
    assert n_missing == 3
    assert r.tolist() == [1.0, 1.6] and tt.tolist() == [10.0, 50.0] and not c.any()
    assert gkeys == ["53.0", "59.0"]  # sorted; float labels stay floats
    assert gidx.tolist() == [1, 0]
    assert delay._delay_lanes([1.0], [2.0], None, None)[4] == ["all"]
    with pytest.raises(ValueError, match="same length"):
        delay._delay_lanes([1.0, 2.0], [1.0], None, None)
    with pytest.raises(ValueError, match="censored"):
        delay._delay_lanes([1.0], [1.0], None, [True, False])
    with pytest.raises(ValueError, match="group"):
        delay._delay_lanes([1.0], [1.0], [1, 2], None)


def test_delay_cells_medians_order_and_identifiability():
    rho = np.array([1.2, 1.0, 1.2, 1.0, 1.0, 1.2, 1.0])
    t = np.array([30.0, 10.0, 40.0, 12.0, 14.0, 40.0, 100.0])
    cens = np.array([False, False, True, False, False, True, False])
    gidx = np.array([0, 0, 0, 0, 0, 0, 1])
    cells = delay._delay_cells(rho, t, cens, gidx, 2)
    assert cells["group"].tolist() == [0, 0, 1] and cells["rho"].tolist() == [1.0, 1.2, 1.0]
    assert [m.tolist() for m in cells["members"]] == [[1, 3, 4], [0, 2, 5], [6]]
    # uncensored cells: the plain median; two of three lanes censored: not identifiable
    assert cells["median"][0] == np.median([10.0, 12.0, 14.0]) and cells["median"][2] == 100.0
    assert cells["identifiable"].tolist() == [True, False, True]
    assert math.isnan(cells["median"][1]) and math.isnan(cells["log_median"][1])
    assert cells["log_median"][0] == math.log(12.0)


# --------------------------------------------------------------------------- OLS law


def test_ols_law_recovers_alpha_from_exact_exponential_data():
    _, cells, law = steps(*exact_lanes())
    assert law["alpha"] == pytest.approx(ALPHA, rel=1e-12)
    assert law["intercepts"] == pytest.approx(list(INTERCEPTS.values()), rel=1e-12)
    for (slope, intercept), c in zip(law["lines"], INTERCEPTS.values()):
        assert slope == pytest.approx(ALPHA, rel=1e-12) and intercept == pytest.approx(c, 1e-12)
    assert law["rss_shared"] < 1e-20 and law["rss_separate"] < 1e-20
    assert law["r2"] == pytest.approx(1.0) and law["r2_within"] == pytest.approx(1.0)
    assert law["fitted_log"] == pytest.approx(cells["log_median"], rel=1e-12)
    assert law["n_fit"] == 8 and law["group_n"] == [4, 4]
    assert law["k_shared"] == 4 and law["k_separate"] == 5  # alpha + 2 c + sigma; 2 lines + sigma


def test_ols_law_single_group_matches_linregress():
    rho, t, grp = noisy_lanes(seed=1)
    m = grp == 59
    _, cells, law = steps(rho[m], t[m])
    xs = np.array(RHOS)
    ys = np.log([np.median(t[m & (rho == r)]) for r in RHOS])
    lr = stats.linregress(xs, ys)
    assert law["alpha"] == pytest.approx(lr.slope, rel=1e-12)
    assert law["alpha_se"] == pytest.approx(lr.stderr, rel=1e-10)
    assert law["r2"] == pytest.approx(lr.rvalue**2, rel=1e-10)
    assert law["lines"][0] == pytest.approx((lr.slope, lr.intercept), rel=1e-12)
    assert law["group_r2"][0] == pytest.approx(lr.rvalue**2, rel=1e-10)


def test_median_fits_uses_only_the_selected_cells():
    _, cells, _ = steps(*exact_lanes())
    y = cells["log_median"].copy()
    y[0] = 99.0  # a wild cell, left out
    use = np.ones(y.size, bool)
    use[0] = False
    alpha, c, yhat, lines = delay._median_fits(cells["rho"], cells["group"], 2, y, use)
    assert alpha == pytest.approx(ALPHA, rel=1e-12) and yhat.size == 7
    assert lines[0][0] == pytest.approx(ALPHA, rel=1e-12)
    # one used cell in a group: no line of its own, the shared alpha is still identified
    use[:3] = False
    alpha, c, _, lines = delay._median_fits(cells["rho"], cells["group"], 2, y, use)
    assert math.isnan(lines[0][0]) and alpha == pytest.approx(ALPHA, rel=1e-12)
    nothing = np.zeros(y.size, bool)
    alpha, c, yhat, lines = delay._median_fits(cells["rho"], cells["group"], 2, y, nothing)
    assert math.isnan(alpha) and np.isnan(c).all() and yhat.size == 0


# --------------------------------------------------------------------------- model comparison


def test_model_comparison_formulas():
    rss_s, rss_p, k_s, k_p, n = 2.0, 0.5, 4, 6, 10
    mc = delay._model_comparison(rss_s, rss_p, k_s, k_p, n)
    aic_s = n * math.log(rss_s / n) + 2 * k_s
    aic_p = n * math.log(rss_p / n) + 2 * k_p
    assert mc["aic_shared"] == pytest.approx(aic_s) and mc["aic_separate"] == pytest.approx(aic_p)
    assert mc["aicc_shared"] == pytest.approx(aic_s + 2 * k_s * (k_s + 1) / (n - k_s - 1))
    assert mc["bic_separate"] == pytest.approx(n * math.log(rss_p / n) + k_p * math.log(n))
    assert mc["delta_aic"] == pytest.approx(aic_p - aic_s)
    assert mc["preferred_aic"] == ("shared" if aic_s <= aic_p else "separate")
    df1, df2 = k_p - k_s, n - (k_p - 1)
    f = ((rss_s - rss_p) / df1) / (rss_p / df2)
    assert mc["f_df"] == [df1, df2] and mc["f_stat"] == pytest.approx(f)
    assert mc["f_pvalue"] == pytest.approx(stats.f.sf(f, df1, df2))
    assert mc["n_cells"] == n and mc["rss_shared"] == rss_s
    tie = delay._model_comparison(1.0, 1.0, 3, 3, 8)
    assert tie["preferred_aic"] == tie["preferred_bic"] == "shared" and tie["f_stat"] is None
    empty = delay._model_comparison(math.nan, math.nan, 2, 1, 0)
    assert empty["aic_shared"] is None and empty["preferred_bic"] is None
    assert delay._model_comparison(1.0, 0.5, 3, 4, 4)["aicc_separate"] is None  # n <= k + 1


# --------------------------------------------------------------------------- bootstrap


def test_law_bootstrap_interval_contains_point_estimate_and_is_seeded():
    rho, t, grp = noisy_lanes(seed=2)
    (r, tt, c, gidx, gkeys, _), cells, law = steps(rho, t, grp)
    a1, s1 = delay._law_bootstrap(tt, c, cells, 2, 300, 7)
    a2, s2 = delay._law_bootstrap(tt, c, cells, 2, 300, 7)
    a3, _ = delay._law_bootstrap(tt, c, cells, 2, 300, 8)
    assert a1.shape == (300,) and s1.shape == (300, 2) and np.isfinite(a1).all()
    assert np.array_equal(a1, a2) and np.array_equal(s1, s2) and not np.array_equal(a1, a3)
    lo, hi = survival._percentile_ci(a1, 0.95)
    assert lo < law["alpha"] < hi and hi - lo < 2.0
    for g in range(2):
        lo, hi = survival._percentile_ci(s1[:, g], 0.95)
        assert lo < law["lines"][g][0] < hi
    # delay_law reports exactly these replicates
    res = fit.delay_law(rho, t, grp, n_boot=300, seed=7)
    assert res["alpha_ci"] == survival._percentile_ci(a1, 0.95)
    assert res["per_group"]["59"]["alpha_ci"] == survival._percentile_ci(s1[:, 1], 0.95)


def test_law_bootstrap_without_spread_or_replicates_is_nan():
    # identical lanes in a cell: every replicate is the point fit
    (r, tt, c, gidx, gkeys, _), cells, law = steps(*exact_lanes())
    a, s = delay._law_bootstrap(tt, c, cells, 2, 50, 0)
    assert a == pytest.approx(np.full(50, law["alpha"]), rel=1e-12)
    # one lane per cell, or no replicates: no interval
    (r, tt, c, gidx, gkeys, _), cells, _ = steps(*exact_lanes(n_seeds=1))
    a, s = delay._law_bootstrap(tt, c, cells, 2, 50, 0)
    assert a.shape == (50,) and np.isnan(a).all() and np.isnan(s).all()
    assert survival._percentile_ci(a, 0.95) == [None, None]
    a, s = delay._law_bootstrap(tt, c, cells, 2, 0, 0)
    assert a.shape == (0,) and s.shape == (0, 2)


# --------------------------------------------------------------------------- censored MLE


def test_tobit_without_censoring_is_least_squares_on_lanes():
    rho, t, grp = noisy_lanes(seed=3)
    r, tt, c, gidx, gkeys, _ = delay._delay_lanes(rho, t, grp, None)
    mle = tobit._tobit_fit(r, tt, gidx, c, gkeys, 0.95)
    X = np.column_stack([r] + [(gidx == g).astype(float) for g in range(2)])
    coef, rss, *_ = np.linalg.lstsq(X, np.log(tt), rcond=None)
    assert mle["converged"] and not mle["sigma_floored"]
    assert mle["alpha"] == pytest.approx(coef[0], rel=1e-6)
    assert [mle["intercepts"][k] for k in gkeys] == pytest.approx(coef[1:], rel=1e-6)
    assert mle["sigma"] == pytest.approx(math.sqrt(rss[0] / tt.size), rel=1e-5)  # ML sigma
    lo, hi = mle["alpha_ci"]
    assert lo < mle["alpha"] < hi


def test_tobit_censoring_moves_alpha_up_from_the_naive_fit():
    rho, t_true, grp = noisy_lanes(seed=4, sigma=0.3, n_seeds=30)
    budget = np.array([math.exp(ALPHA * max(RHOS) + INTERCEPTS[g]) for g in grp])
    cens = t_true >= budget
    t = np.minimum(t_true, budget)
    assert cens[rho == max(RHOS)].mean() > 0.3 and cens[rho < max(RHOS)].mean() < 0.1
    r, tt, c, gidx, gkeys, _ = delay._delay_lanes(rho, t, grp, cens)
    mle = tobit._tobit_fit(r, tt, gidx, c, gkeys, 0.95)
    naive = tobit._tobit_fit(r, tt, gidx, np.zeros_like(c), gkeys, 0.95)  # budgets as events
    truth = tobit._tobit_fit(r, t_true, gidx, np.zeros_like(c), gkeys, 0.95)  # nothing censored
    assert mle["converged"] and mle["n_censored"] == int(cens.sum())
    assert naive["alpha"] < mle["alpha"] - 0.1  # censoring at the top pulls a naive fit down
    assert abs(mle["alpha"] - truth["alpha"]) < 0.1
    assert mle["alpha_ci"][0] < ALPHA < mle["alpha_ci"][1]
    # a group without an observed lane is left out of the likelihood
    c2 = c | (gidx == 0)
    out = tobit._tobit_fit(r, tt, gidx, c2, gkeys, 0.95)
    assert out["excluded_groups"] == ["53"] and out["intercepts"]["53"] is None
    assert out["intercepts"]["59"] is not None


# --------------------------------------------------------------------------- composition


def test_delay_law_is_the_composition_of_its_steps():
    rho, t, grp = noisy_lanes(seed=5)
    cens = t > np.quantile(t, 0.9)
    res = fit.delay_law(rho, t, grp, censored=cens, n_boot=0)
    (r, tt, c, gidx, gkeys, n_missing), cells, law = steps(rho, t, grp, cens)
    assert res["alpha"] == law["alpha"] and res["alpha_se"] == law["alpha_se"]
    assert res["n_cells_fit"] == law["n_fit"] and res["n_missing"] == n_missing
    assert res["model_comparison"] == delay._model_comparison(
        law["rss_shared"], law["rss_separate"], law["k_shared"], law["k_separate"], law["n_fit"]
    )
    assert res["mle"] == tobit._tobit_fit(r, tt, gidx, c, gkeys, 0.95)
    assert [cell["median"] for cell in res["cells"]] == [
        None if math.isnan(m) else m for m in cells["median"]
    ]
    keys = (
        "alpha alpha_se alpha_ci n_boot_valid intercepts r2 r2_within per_group cells"
        " excluded_cells n_lanes n_censored n_missing n_cells_fit rss_shared rss_separate"
        " model_comparison mle"
    )
    assert list(res) == keys.split()


# --------------------------------------------------------------------------- median_ci


def test_median_ci_interval_around_the_kaplan_meier_median():
    rng = np.random.default_rng(0)
    t = np.round(np.exp(rng.normal(5.0, 0.5, 41)))
    res = fit.median_ci(t)
    assert res["median"] == np.median(t) and res["n"] == 41 and res["n_censored"] == 0
    lo, hi = res["ci"]
    assert lo < res["median"] < hi
    assert lo in t and hi in t  # inverted_cdf: replicate medians, which are lane times here
    assert fit.median_ci(t) == res  # seeded
    lo50, hi50 = fit.median_ci(t, ci=0.5)["ci"]
    assert lo <= lo50 <= res["median"] <= hi50 <= hi
    # a budget below most lanes: median and upper bound beyond it are unbounded
    budget = np.quantile(t, 0.4)
    res = fit.median_ci(np.minimum(t, budget), t >= budget)
    assert res["median"] is None and res["ci"][1] is None and res["n_censored"] > 20
    assert fit.median_ci(t, n_boot=0)["ci"] == [None, None]
    assert fit.median_ci([5.0])["ci"] == [None, None] and fit.median_ci([5.0])["median"] == 5.0


# --------------------------------------------------------------------------- cv, fold, py


def test_cv_is_std_over_mean_of_the_values_given():
    v = [2.0, 3.0, 7.0, None]
    assert fit.cv(v) == pytest.approx(np.std([2, 3, 7], ddof=1) / np.mean([2, 3, 7]), rel=1e-15)
    assert fit.cv(v) == fit.cv(v, finite=True)
    assert fit.cv([1.0, None]) is None and fit.cv([]) is None and fit.cv([-1.0, 1.0]) is None
    with np.errstate(invalid="ignore"):
        assert math.isnan(fit.cv([1.0, 2.0, math.nan]))  # a NaN poisons it by default
    assert fit.cv(np.array([1.0, 2.0, np.nan]), finite=True) == fit.cv([1.0, 2.0])
    assert fit.cv([1.0, math.inf, 3.0], finite=True) == fit.cv([1.0, 3.0])
    assert fit.cv([5.0, math.nan], finite=True) is None  # one finite value
    assert isinstance(fit.cv([1, 2, 3]), float)


def test_fold_is_max_over_min_of_positive_values():
    assert fit.fold([2.0, None, 8.0, 4.0]) == 4.0
    assert fit.fold([0.0, -3.0, 2.0, 6.0, math.nan]) == 3.0
    assert fit.fold([2.0, None]) is None and fit.fold([]) is None
    assert fit.fold([1, 3]) == pytest.approx(3.0) and isinstance(fit.fold([1, 3]), float)


def test_py_plain_values():
    assert fit.py(np.float64(59.0)) == 59 and isinstance(fit.py(np.float64(59.0)), int)
    assert fit.py(2.5) == 2.5 and fit.py(np.int64(7)) == 7 and fit.py("a") == "a"
    assert fit.py(None) is None and fit.py(math.nan) is None and fit.py(np.float64(np.inf)) is None
    assert isinstance(fit.py(1e16), float) and fit.py(np.bool_(True)) is True
    # clean=False only unwraps numpy scalars
    kept = fit.py(np.float64(59.0), clean=False)
    assert kept == 59.0 and type(kept) is float
    assert math.isnan(fit.py(np.float64(np.nan), clean=False))
    assert type(fit.py(np.str_("x"), clean=False)) is str
