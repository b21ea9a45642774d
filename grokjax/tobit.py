"""The censored maximum-likelihood (Tobit, censored log-normal) delay law of
:func:`grokjax.delay.delay_law`: log T = alpha*rho + c_g + sigma*eps over the lanes, observed
lanes by their log-density and censored ones by their log survival function. JAX-free.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from grokjax.survival import _f, _shared_fit

# Bounds on the Tobit fit's sigma (log T units). The floor stands in for the resolution of
# T_grok (eval steps): a fit that wants a smaller sigma (zero residuals) reports the floor
# with ``sigma_floored`` and no standard errors.
SIGMA_FLOOR = 1e-3
SIGMA_CEIL = 1e3


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


def _tobit_optimise(theta0, args, lo: float, hi: float) -> optimize.OptimizeResult:
    """The maximum-likelihood parameters from ``theta0``: L-BFGS-B with log sigma kept in
    [lo, hi], then a trust-region Newton step where that did not converge inside the bounds."""
    bounds = [(None, None)] * (len(theta0) - 1) + [(lo, hi)]
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
    return res


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
    res = _tobit_optimise(theta0, args, lo, hi)
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
