"""Tests for grokjax.fit (pure numpy/scipy statistics; no jax needed)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import optimize, stats

from grokjax import tobit
from grokjax.fit import (
    censored_median,
    critical_norm,
    critical_norm_thresholds,
    delay_law,
    fold_change,
    fold_change_across,
    free_contraction_law,
    power_law,
)

RHOS = (0.85, 1.0, 1.15, 1.3)
INTERCEPTS = {97: 2.0, 113: 2.4, 127: 2.7, 149: 3.1}
ALPHA = 7.5


def synth(seed=0, sigma=0.1, n_seeds=16, alphas=None):
    """Per-lane synthetic delay-law data: log T = alpha_g*rho + c_g + sigma*eps."""
    rng = np.random.default_rng(seed)
    rho, t, grp = [], [], []
    for i, (g, c) in enumerate(INTERCEPTS.items()):
        a = ALPHA if alphas is None else alphas[i]
        for r in RHOS:
            rho += [r] * n_seeds
            grp += [g] * n_seeds
            t += list(np.exp(a * r + c + sigma * rng.standard_normal(n_seeds)))
    return np.array(rho), np.array(t), np.array(grp)


def censor_top(rho, t, grp, sigma, shift=0.25):
    """Censor at a per-group budget just above the true top-rho median."""
    budget = np.array([np.exp(ALPHA * max(RHOS) + INTERCEPTS[g] + shift * sigma) for g in grp])
    cens = t >= budget
    return np.minimum(t, budget), cens


# --------------------------------------------------------------------------- imports


def test_module_imports_without_jax():
    code = (
        "import sys, grokjax.fit; "
        "assert 'jax' not in sys.modules, 'jax was imported'; "
        "assert 'flax' not in sys.modules and 'optax' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------- KM median


def test_censored_median_equals_numpy_without_censoring():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 4, 7, 10, 15, 16):
        x = rng.exponential(size=n)
        assert censored_median(x) == pytest.approx(np.median(x), rel=0, abs=1e-12)
        assert censored_median(x, np.zeros(n, bool)) == pytest.approx(np.median(x), abs=1e-12)
    # ties
    x = np.array([1.0, 2.0, 2.0, 3.0])
    assert censored_median(x) == 2.0
    x = np.array([5.0, 5.0, 5.0, 5.0, 1.0, 9.0])
    assert censored_median(x) == np.median(x)


def test_censored_median_hand_computed_kaplan_meier():
    # t:    1   2(c)  3     4     5
    # S:   .8   .8   .8*2/3=.533  .533*1/2=.267 -> median 4 (np.median would be 3)
    assert censored_median([1, 2, 3, 4, 5], [0, 1, 0, 0, 0]) == 4.0
    # censored first: S(2)=3/4, S(3)=1/2 exactly -> midpoint of 3 and next event 4
    assert censored_median([1, 2, 3, 4, 5], [1, 0, 0, 0, 0]) == 3.5
    # order of input does not matter
    assert censored_median([5, 3, 1, 4, 2], [0, 0, 1, 0, 0]) == 3.5
    # half censored at the budget: S stays at 1/2 with no later event -> None
    assert censored_median([1, 2, 10, 10], [0, 0, 1, 1]) is None
    # majority censored -> None
    assert censored_median([1, 2, 10, 10, 10], [0, 0, 1, 1, 1]) is None
    # minority censored at the budget: median is an observed time
    assert censored_median([1, 2, 3, 10, 10], [0, 0, 0, 1, 1]) == 3.0
    # censored lane tied with an event: the event is processed first, so at
    # t=2 the risk set is 3: S(1)=3/4, S(2)=3/4*2/3=1/2 exactly -> (2+3)/2
    assert censored_median([1, 2, 2, 3], [0, 0, 1, 0]) == 2.5
    # (if the censoring came first the risk set would be 2 and S(2)=3/8 -> 2)
    assert censored_median([1, 2, 2, 3, 3], [0, 0, 1, 0, 0]) == 3.0
    # NaNs ignored, empty -> None
    assert censored_median([np.nan, 1.0, 3.0, 2.0]) == 2.0
    assert censored_median([]) is None


def test_censored_median_matches_scipy_ecdf_survival():
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(40):
        n = int(rng.integers(5, 30))
        t = np.round(rng.exponential(size=n), 3)
        c = rng.random(n) < 0.3
        if c.all() or (~c).sum() == 0:
            continue
        data = stats.CensoredData(uncensored=t[~c], right=t[c])
        sf = stats.ecdf(data).sf
        q, p = sf.quantiles, sf.probabilities
        below = np.nonzero(p <= 0.5 + 1e-9)[0]
        med = censored_median(t, c)
        if below.size == 0:
            assert med is None
            continue
        k = below[0]
        if abs(p[k] - 0.5) > 1e-9:
            assert med == pytest.approx(q[k])
            checked += 1
    assert checked >= 20


# --------------------------------------------------------------------------- critical norm


def test_critical_norm_against_numpy_and_nan_handling():
    rng = np.random.default_rng(5)
    x = 40.0 + 0.6 * rng.standard_normal(50)
    res = critical_norm(np.concatenate([x, [np.nan, np.nan]]), n_boot=500)
    assert res["n"] == 50 and res["n_missing"] == 2
    assert res["median"] == pytest.approx(np.median(x))
    assert res["mean"] == pytest.approx(np.mean(x))
    assert res["std"] == pytest.approx(np.std(x, ddof=1))
    assert res["cv"] == pytest.approx(np.std(x, ddof=1) / np.mean(x))
    lo, hi = res["ci"]
    assert lo < res["median"] < hi
    assert 0.005 < res["cv"] < 0.03
    json.dumps(res, allow_nan=False)
    # determinism and seed dependence
    assert critical_norm(x, n_boot=500, seed=1)["ci"] == critical_norm(x, n_boot=500, seed=1)["ci"]
    assert critical_norm(x, n_boot=500, seed=1)["ci"] != critical_norm(x, n_boot=500, seed=2)["ci"]


def test_critical_norm_thresholds_spread():
    rng = np.random.default_rng(6)
    base = 40.0 + 0.5 * rng.standard_normal(30)
    res = critical_norm_thresholds({0.8: base * 0.99, 0.9: base, 0.95: base * 1.01}, n_boot=200)
    assert set(res["per_threshold"]) == {"0.8", "0.9", "0.95"}
    m = np.median(base)
    assert res["medians"]["0.9"] == pytest.approx(m)
    assert res["max_abs_spread"] == pytest.approx(0.02 * m)
    assert res["max_rel_spread"] == pytest.approx(0.02, rel=1e-9)
    json.dumps(res, allow_nan=False)


# --------------------------------------------------------------------------- delay law


def test_delay_law_recovers_planted_parameters():
    rho, t, grp = synth(seed=0)
    res = delay_law(rho, t, grp, n_boot=300)
    assert abs(res["alpha"] - ALPHA) < 0.2
    lo, hi = res["alpha_ci"]
    assert lo < ALPHA < hi and lo < res["alpha"] < hi
    assert res["r2"] > 0.98
    assert set(res["intercepts"]) == {"97", "113", "127", "149"}
    for g, c in INTERCEPTS.items():
        assert res["intercepts"][str(g)] == pytest.approx(c, abs=0.25)
        pg = res["per_group"][str(g)]
        assert abs(pg["alpha"] - ALPHA) < 0.5
        assert pg["alpha_ci"][0] < pg["alpha"] < pg["alpha_ci"][1]
        assert pg["r2"] > 0.98 and pg["n_cells"] == 4
    assert len(res["cells"]) == 16 and res["n_censored"] == 0 and res["excluded_cells"] == []
    cell = res["cells"][0]
    for key in ("group", "rho", "n", "n_censored", "median", "fitted", "fitted_log"):
        assert key in cell
    assert cell["n"] == 16 and isinstance(cell["group"], str)
    mle = res["mle"]
    assert abs(mle["alpha"] - ALPHA) < 0.2 and mle["converged"]
    assert mle["sigma"] == pytest.approx(0.1, rel=0.25)
    assert mle["alpha_se"] > 0
    json.dumps(res, allow_nan=False)


def test_delay_law_least_squares_matches_linregress_and_polyfit():
    rho, t, grp = synth(seed=1, sigma=0.2)
    # one group: cell medians -> linregress on logs
    m = grp == 113
    res = delay_law(rho[m], t[m], n_boot=0)
    xs = np.array(RHOS)
    ys = np.log([np.median(t[m & (rho == r)]) for r in RHOS])
    lr = stats.linregress(xs, ys)
    assert res["alpha"] == pytest.approx(lr.slope, rel=1e-10)
    assert res["intercepts"]["all"] == pytest.approx(lr.intercept, rel=1e-10)
    assert res["r2"] == pytest.approx(lr.rvalue**2, rel=1e-10)
    assert res["per_group"]["all"]["alpha"] == pytest.approx(lr.slope, rel=1e-10)
    # shared alpha: least squares with group dummies solved independently
    res = delay_law(rho, t, grp, n_boot=0)
    groups = list(INTERCEPTS)
    X, y = [], []
    for g in groups:
        for r in RHOS:
            X.append([r] + [1.0 if g == h else 0.0 for h in groups])
            y.append(np.log(np.median(t[(grp == g) & (rho == r)])))
    coef, rss, *_ = np.linalg.lstsq(np.array(X), np.array(y), rcond=None)
    assert res["alpha"] == pytest.approx(coef[0], rel=1e-10)
    for j, g in enumerate(groups):
        assert res["intercepts"][str(g)] == pytest.approx(coef[1 + j], rel=1e-10)
        sl, ic = np.polyfit(RHOS, y[4 * j : 4 * j + 4], 1)
        assert res["per_group"][str(g)]["alpha"] == pytest.approx(sl, rel=1e-10)
        assert res["per_group"][str(g)]["intercept"] == pytest.approx(ic, rel=1e-10)
    assert res["rss_shared"] == pytest.approx(rss[0], rel=1e-8)
    yv = np.array(y)
    assert res["r2"] == pytest.approx(1 - rss[0] / np.sum((yv - yv.mean()) ** 2), rel=1e-10)


def test_delay_law_censored_mle_unbiased_naive_drop_biased_low():
    sigma = 0.3
    rho, t_true, grp = synth(seed=0, sigma=sigma, n_seeds=32)
    t, cens = censor_top(rho, t_true, grp, sigma)
    top = rho == max(RHOS)
    assert cens[top].mean() >= 0.2 and not cens[~top].any()
    res = delay_law(rho, t, grp, censored=cens, n_boot=200)
    assert res["n_censored"] == int(cens.sum())
    assert res["n_lanes"] == rho.size  # censored lanes kept
    mle = res["mle"]
    assert mle["converged"]
    assert abs(mle["alpha"] - ALPHA) < 0.25
    assert mle["alpha_ci"][0] < ALPHA < mle["alpha_ci"][1]
    assert mle["sigma"] == pytest.approx(sigma, rel=0.2)
    for g, c in INTERCEPTS.items():
        assert mle["intercepts"][str(g)] == pytest.approx(c, abs=0.3)
    # naive: drop the censored lanes -> top cells lose their slowest seeds
    naive = delay_law(rho[~cens], t[~cens], grp[~cens], n_boot=0)
    assert naive["alpha"] < ALPHA - 0.1
    assert naive["alpha"] < mle["alpha"] - 0.1
    # Kaplan-Meier cell medians (< half censored) are not biased the same way
    assert abs(res["alpha"] - ALPHA) < 0.3
    top_cells = [c for c in res["cells"] if c["rho"] == max(RHOS)]
    assert all(c["n_censored"] > 0 for c in top_cells)
    json.dumps(res, allow_nan=False)


def test_delay_law_unidentifiable_cells_are_excluded_and_reported():
    sigma = 0.1
    rho, t_true, grp = synth(seed=2, sigma=sigma)
    # budget below the top-rho median of every group -> > half censored there
    t, cens = censor_top(rho, t_true, grp, sigma, shift=-1.0)
    res = delay_law(rho, t, grp, censored=cens, n_boot=100)
    assert len(res["excluded_cells"]) == 4
    assert {c["rho"] for c in res["excluded_cells"]} == {max(RHOS)}
    assert res["n_cells_fit"] == 12
    top = [c for c in res["cells"] if not c["identifiable"]]
    assert all(c["median"] is None and c["max_censored_time"] is not None for c in top)
    assert all(c["fitted"] is not None for c in top)  # extrapolated prediction
    assert abs(res["alpha"] - ALPHA) < 0.3  # from the three remaining rho
    assert abs(res["mle"]["alpha"] - ALPHA) < 0.2  # MLE still uses the censored lanes
    json.dumps(res, allow_nan=False)


def test_model_comparison_shared_vs_separate():
    rho, t, grp = synth(seed=0)
    same = delay_law(rho, t, grp, n_boot=0)["model_comparison"]
    assert same["k_shared"] == 6 and same["k_separate"] == 9 and same["n_cells"] == 16
    assert same["preferred_bic"] == "shared" and same["preferred_aicc"] == "shared"
    assert same["f_pvalue"] > 0.05
    rho, t, grp = synth(seed=0, alphas=[5.0, 7.5, 10.0, 12.5])
    res = delay_law(rho, t, grp, n_boot=0)
    diff = res["model_comparison"]
    assert diff["preferred_bic"] == "separate" and diff["preferred_aic"] == "separate"
    assert diff["preferred_aicc"] == "separate"
    assert diff["f_pvalue"] < 1e-6
    assert diff["rss_shared"] > 100 * diff["rss_separate"]
    assert res["rss_shared"] == diff["rss_shared"]
    for g, a in zip(INTERCEPTS, [5.0, 7.5, 10.0, 12.5]):
        assert abs(res["per_group"][str(g)]["alpha"] - a) < 0.3


def test_delay_law_determinism_and_group_types():
    rho, t, grp = synth(seed=4)
    a = delay_law(rho, t, grp, n_boot=200, seed=7)
    b = delay_law(rho, t, grp, n_boot=200, seed=7)
    c = delay_law(rho, t, grp, n_boot=200, seed=8)
    assert a == b
    assert a["alpha_ci"] != c["alpha_ci"]
    # string and float groups give the same fit, keys are str
    s = delay_law(rho, t, [f"p{g}" for g in grp], n_boot=0)
    f = delay_law(rho, t, grp.astype(float), n_boot=0)
    assert s["alpha"] == pytest.approx(a["alpha"]) and f["alpha"] == pytest.approx(a["alpha"])
    assert set(s["intercepts"]) == {"p97", "p113", "p127", "p149"}
    assert set(f["intercepts"]) == {"97.0", "113.0", "127.0", "149.0"}
    # missing lanes are ignored and counted
    t2 = t.copy()
    t2[:3] = np.nan
    assert delay_law(rho, t2, grp, n_boot=0)["n_missing"] == 3


def test_tobit_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(0)
    n, G = 60, 3
    rho = rng.uniform(0.8, 1.3, n)
    gidx = rng.integers(0, G, n)
    y = 7.5 * rho + gidx * 0.3 + 0.2 * rng.standard_normal(n)
    cens = rng.random(n) < 0.3
    theta = np.array([7.0, 0.1, 0.2, 0.5, np.log(0.25)])
    args = (y, rho, gidx, cens, G)

    def f(th):
        return tobit._tobit_nll(th, *args)[0]

    def g(th):
        return tobit._tobit_nll(th, *args)[1]

    assert optimize.check_grad(f, g, theta) < 1e-5 * max(1.0, np.abs(g(theta)).max())
    h = tobit._tobit_nll(theta, *args)[2]
    eps = 1e-6
    num = np.array(
        [(g(theta + eps * e) - g(theta - eps * e)) / (2 * eps) for e in np.eye(theta.size)]
    )
    np.testing.assert_allclose(h, num, rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------- power law etc.


def test_power_law_recovers_exponent_and_matches_linregress():
    rng = np.random.default_rng(9)
    p = np.array([53, 59, 67, 71, 79, 83, 89, 97, 101, 113, 127, 149], float)
    wc = 3.2 * p**0.41 * np.exp(0.01 * rng.standard_normal(p.size))
    res = power_law(p, wc, n_boot=500)
    lr = stats.linregress(np.log(p), np.log(wc))
    assert res["exponent"] == pytest.approx(lr.slope, rel=1e-10)
    assert res["exponent_se"] == pytest.approx(lr.stderr, rel=1e-8)
    assert res["prefactor"] == pytest.approx(np.exp(lr.intercept), rel=1e-10)
    assert res["r2"] == pytest.approx(lr.rvalue**2, rel=1e-10)
    assert abs(res["exponent"] - 0.41) < 0.03
    for key in ("exponent_ci", "exponent_ci_t"):
        lo, hi = res[key]
        assert lo < 0.41 < hi
    assert res["n"] == 12
    assert power_law(p, wc, n_boot=500, seed=3) == power_law(p, wc, n_boot=500, seed=3)
    json.dumps(res, allow_nan=False)
    # bad points ignored
    assert power_law(np.append(p, [-1, np.nan]), np.append(wc, [1, 1]), n_boot=0)["n"] == 12


def test_free_contraction_law_recovers_planted_slope():
    rng = np.random.default_rng(2)
    n = 40
    lr = rng.choice([1e-3, 2e-3], n)
    wd = rng.choice([0.5, 1.0], n)
    t_mem = rng.uniform(200, 600, n)
    n_grok = 40.0 * np.ones(n)
    n_mem = n_grok * np.exp(rng.uniform(0.05, 0.4, n))
    x = np.log(n_mem / n_grok) / (lr * wd)
    t_grok = t_mem + 1.7 * x + 30.0 + 5.0 * rng.standard_normal(n)
    t_grok[0] = np.nan  # ignored
    res = free_contraction_law(t_mem, t_grok, n_mem, n_grok, lr, wd)
    assert res["n"] == n - 1 and res["n_dropped"] == 1
    ok = np.isfinite(t_grok)
    ref = stats.linregress(x[ok], (t_grok - t_mem)[ok])
    assert res["slope"] == pytest.approx(ref.slope, rel=1e-10)
    assert res["intercept"] == pytest.approx(ref.intercept, rel=1e-8)
    assert res["r2"] == pytest.approx(ref.rvalue**2, rel=1e-10)
    assert abs(res["slope"] - 1.7) < 0.05 and res["r2"] > 0.99
    assert abs(res["slope0"] - 1.7) < 0.1
    # scalar lr/wd broadcast
    res2 = free_contraction_law(t_mem, t_grok, n_mem, n_grok, 1e-3, 1.0)
    assert res2["n"] == n - 1
    json.dumps(res, allow_nan=False)


def test_fold_changes():
    a = np.array([100.0, 110.0, 90.0])
    b = np.array([1900.0, 2100.0, 2000.0])
    res = fold_change(a, b)
    assert res["fold"] == pytest.approx(20.0) and res["median_a"] == 100.0
    # across a covariate (mapping form and array form), with censoring
    rho, t, grp = synth(seed=0)
    m = grp == 97
    table = {"rho": rho[m]}
    fc = fold_change_across(table, "rho", t[m])
    meds = [np.median(t[m & (rho == r)]) for r in RHOS]
    assert fc["fold"] == pytest.approx(max(meds) / min(meds))
    assert fc["argmax"] == 1.3 and fc["argmin"] == 0.85
    assert fc["fold"] == pytest.approx(np.exp(ALPHA * 0.45), rel=0.15)
    assert fold_change_across(rho[m], None, t[m])["fold"] == fc["fold"]
    assert fc["lower_bound"] is False and set(fc["medians"]) == {str(r) for r in RHOS}
    cens = np.zeros(m.sum(), bool)
    cens[rho[m] == 1.3] = True  # top cell fully censored: not identifiable
    fc2 = fold_change_across(table, "rho", t[m], cens)
    assert fc2["lower_bound"] is True and fc2["n_unidentifiable"] == 1
    assert fc2["argmax"] == 1.15 and fc2["medians"]["1.3"] is None
    json.dumps(fc2, allow_nan=False)


# ---------------------------------------------------------------------------
# degenerate inputs: tiny sweeps must get finite numbers or None, never a crash
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rho,t,cens",
    [
        ([0.9, 1.1], [165.0, 635.0], [False, False]),  # one lane per cell, two cells
        ([0.9, 0.9, 1.1, 1.1], [165.0, 165.0, 635.0, 635.0], None),  # zero residuals, ties
        ([0.9, 1.0, 1.1], [200.0, 200.0, 200.0], None),  # zero variance in T
        ([1.0, 1.0], [300.0, 310.0], None),  # one cell: alpha undefined
        ([0.9, 1.1, 1.1], [165.0, 3000.0, 3000.0], [False, True, True]),  # a censored top cell
        ([0.9, 1.0, 1.1], [190.0, 300.0, 3000.0], [False, False, True]),
    ],
)
def test_delay_law_degenerate_inputs_are_finite_or_none(rho, t, cens):
    res = delay_law(
        np.array(rho), np.array(t), censored=None if cens is None else np.array(cens), seed=0
    )
    json.dumps(res, allow_nan=False)  # every number finite or None
    mle = res["mle"]
    if mle["sigma"] is not None:
        assert tobit.SIGMA_FLOOR * (1 - 1e-9) <= mle["sigma"] <= tobit.SIGMA_CEIL
    if mle["sigma_floored"]:
        assert mle["alpha_se"] is None and mle["alpha_ci"] == [None, None]


def test_delay_law_one_lane_per_cell_has_exact_alpha_and_no_interval():
    res = delay_law(
        np.array([0.9, 1.1]), np.array([165.0, 635.0]), censored=np.array([False, False]), seed=0
    )
    want = (np.log(635.0) - np.log(165.0)) / 0.2
    assert res["alpha"] == pytest.approx(want)
    assert res["alpha_ci"] == [None, None] and res["alpha_se"] is None
    assert res["mle"]["alpha"] == pytest.approx(want, rel=1e-4)
    assert res["mle"]["sigma_floored"] and res["mle"]["sigma"] == pytest.approx(tobit.SIGMA_FLOOR)


def test_tobit_never_overflows_on_wild_starting_residuals():
    # Huge spread in one cell and exact ties in the other: the line search must stay bounded.
    rho = np.array([0.9, 0.9, 1.1, 1.1, 1.3])
    t = np.array([10.0, 1e9, 635.0, 635.0, 2e9])
    res = delay_law(rho, t, censored=np.array([False, False, False, False, True]), seed=0)
    json.dumps(res, allow_nan=False)


def test_other_fits_on_degenerate_inputs():
    for out in (
        critical_norm([54.0]),
        critical_norm([54.0, 54.0]),
        critical_norm([]),
        critical_norm([0.0, 0.0]),
        critical_norm_thresholds({0.9: [54.0], 0.8: [np.nan]}),
        power_law([29.0, 41.0], [42.0, 48.0]),
        power_law([59.0, 59.0, 59.0], [5, 6, 7]),
        power_law([29.0, 41.0, 59.0], [50.0, 50.0, 50.0]),
        free_contraction_law([100], [200], [60.0], [50.0], 1e-3, 1.0),
        free_contraction_law([100, 100], [200, 200], [60.0, 60.0], [50.0, 50.0], 1e-3, 1.0),
        fold_change([100.0], [100.0]),
        fold_change([0.0], [5.0]),
        fold_change_across(np.array([1.0]), "rho", np.array([5.0])),
    ):
        json.dumps(out, allow_nan=False)
    assert critical_norm([54.0])["cv"] is None
    assert power_law([29.0, 41.0, 59.0], [50.0, 50.0, 50.0])["exponent"] == pytest.approx(0.0)
