"""The named measures: each number that fit.json or the report states, computed from a loaded
run (:class:`grokjax.runs.Run`) and a selection of its lanes. An experiment's fit and the
report's comparison with the paper call the same measure, so a number cannot come out of two
computations. JAX-free.

A selection is a boolean mask over the run's lanes or an array of lane indices. The lanes'
conventions are those of ``lanes.csv``: a lane that did not grok is right-censored at
``steps_run`` (:func:`times`); the lanes that enter the fits are :func:`usable` (not diverged,
a finite positive time). Which lanes a measure sees is the caller's selection; the measure
itself drops only what has no value: W_c is over the grokked lanes of the selection (a lane
that did not grok has no norm at T_grok); the norms at the accuracy thresholds and the delay
law count a lane without a value (a threshold never reached, no usable time) in
``n_missing``.

An experiment's fit works on the lanes it just wrote: :func:`as_run` wraps such a lanes dict
in a :class:`~grokjax.runs.Run` (no directory).
"""

from __future__ import annotations

import math

import numpy as np

from grokjax import fit, schema
from grokjax.runs import Run

__all__ = [
    "N_BOOT",
    "N_BOOT_MEDIAN",
    "SEED",
    "THRESHOLDS",
    "as_run",
    "lanes_of",
    "usable",
    "times",
    "wc",
    "wc_thresholds",
    "tgrok",
    "cell_times",
    "delay_law",
    "absolute_norm",
    "extrapolated",
    "power_law",
    "fold_across",
    "group_norm",
    "median_norm",
    "count",
    "n_censored",
    "median_time",
    "cells",
    "versus_law",
    "beyond",
    "power_law_across",
    "FIT_FORMAT",
    "fit_json",
]

N_BOOT = 1000  # bootstrap replicates of the fits (grokjax.fit's default)
N_BOOT_MEDIAN = 500  # bootstrap replicates of a cell median's CI
SEED = 0
# the layout version of fit.json (docs/fit_json.md); raised when a key changes meaning or place
FIT_FORMAT = 1
# the norm at T_grok at each test-accuracy threshold: (threshold, lanes.csv column)
THRESHOLDS = ((0.8, "norm_at_test80"), (0.9, "norm_at_grok"), (0.95, "norm_at_test95"))


def as_run(lanes: dict, config: dict | None = None, name: str = "") -> Run:
    """A :class:`Run` over an in-memory lanes dict (an experiment's fit over its lanes.csv)."""
    return Run(path="", name=name, config=dict(config or {}), lanes=lanes, curves={})


def lanes_of(run: Run, sel) -> np.ndarray:
    """The lane indices of a selection (a boolean mask or indices)."""
    sel = np.asarray(sel)
    return np.flatnonzero(sel) if sel.dtype == bool else sel.astype(int)


def usable(run: Run) -> np.ndarray:
    """The lanes that enter the fits: not diverged and with a finite positive time."""
    return run.ok()


def times(run: Run, sel) -> tuple[np.ndarray, np.ndarray]:
    """(T_grok where grokked else steps_run, censored) of the selected lanes."""
    idx = lanes_of(run, sel)
    t, c = run.times()
    return t[idx], c[idx]


def wc(run: Run, sel, n_boot: int = 2000) -> dict:
    """W_c: :func:`grokjax.fit.critical_norm` of the norm at T_grok over the grokked lanes of
    the selection (median, mean, seed CV, bootstrap CI, n; the lanes that did not grok have no
    norm at T_grok and are not counted)."""
    idx = lanes_of(run, sel)
    idx = idx[run.lanes["grokked"][idx]]
    return fit.critical_norm(run.lanes["norm_at_grok"][idx], n_boot=n_boot, seed=SEED)


def wc_thresholds(run: Run, sel) -> dict:
    """:func:`grokjax.fit.critical_norm_thresholds`: W_c at test accuracy 0.8, 0.9 (T_grok)
    and 0.95 over the selected lanes; a lane that never reached a threshold is counted in that
    threshold's ``n_missing``."""
    idx = lanes_of(run, sel)
    return fit.critical_norm_thresholds({thr: run.lanes[col][idx] for thr, col in THRESHOLDS})


def tgrok(run: Run, sel, n_boot: int = N_BOOT_MEDIAN) -> dict:
    """Kaplan-Meier median T_grok of the selected lanes with its bootstrap CI
    (:func:`grokjax.fit.median_ci`: median, ci, n, n_censored)."""
    t, c = times(run, sel)
    return fit.median_ci(t, c, n_boot=n_boot, seed=SEED)


def cell_times(run: Run, sel, n_boot: int = N_BOOT_MEDIAN) -> dict:
    """One cell of lanes: :func:`tgrok` over its lanes that did not diverge, with the
    censored and diverged counts and the median norm at T_grok of its grokked lanes."""
    mask = np.zeros(len(run.lanes["grokked"]), bool)
    mask[lanes_of(run, sel)] = True
    diverged = run.lanes["diverged"]
    n_div = int((mask & diverged).sum())
    mask &= ~diverged
    out = (
        tgrok(run, mask, n_boot)
        if mask.any()
        else {"median": None, "ci": [None, None], "n": 0, "n_censored": 0}
    )
    g = mask & run.lanes["grokked"]
    out["norm_at_grok"] = float(np.median(run.lanes["norm_at_grok"][g])) if g.any() else None
    out["n_diverged"] = n_div
    return out


def delay_law(run: Run, sel, group: str | None = None, n_boot: int = N_BOOT, x: str = "rho"):
    """:func:`grokjax.fit.delay_law` of the selected lanes (censored at steps_run) against
    column ``x`` rounded to 1e-6 (``rho``, or ``target_norm``: the held norm itself), with an
    intercept per value of column ``group`` (an int column of grokjax.schema, p or n_bits, read as
    int); cached on the run."""
    idx = lanes_of(run, sel)
    key = ("delay", idx.tobytes(), group, n_boot, x)
    if key not in run.cache:
        t, c = times(run, idx)
        g = None
        if group is not None:
            col = run.lanes[group][idx]
            whole = getattr(schema.column(group), "type", None) is int  # p, n_bits: read as int
            g = col.astype(int) if whole else np.array([fit.py(v) for v in col], object)
        xs = np.round(run.lanes[x][idx], 6)
        run.cache[key] = fit.delay_law(xs, t, group=g, censored=c, n_boot=n_boot, seed=SEED)
    return run.cache[key]


def absolute_norm(run: Run, sel) -> dict:
    """The absolute-norm collapse: the delay law against the held norm itself (rho · W_c),
    one slope per unit of ‖W‖ shared by the p of the selection, an intercept per p; the
    report's absolute-norm R² is its ``r2``."""
    return delay_law(run, sel, group="p", x="target_norm")


def extrapolated(law: dict, rho: float) -> float | None:
    """The delay law's T_grok at ``rho`` (its first group's intercept): what a cell beyond the
    fitted rho range is compared with (fit.json's ``beyond``, the report's saturation)."""
    c0 = next(iter(law["intercepts"].values()), None)
    if law["alpha"] is None or c0 is None:
        return None
    return math.exp(law["alpha"] * rho + c0)


def power_law(per_p: dict, n_boot: int = N_BOOT) -> dict:
    """:func:`grokjax.fit.power_law` of a per-p summary {p: value} (W_c, the median ‖E‖ at
    T_grok): its exponent in p with the bootstrap CI over the values of p."""
    ps = np.array(list(per_p), float)
    vals = np.array([np.nan if v is None else v for v in per_p.values()], float)
    return fit.power_law(ps, vals, n_boot=n_boot, seed=SEED)


def fold_across(run: Run, sel, key: str) -> dict:
    """:func:`grokjax.fit.fold_change_across`: the largest over the smallest median T_grok
    across the values of column ``key`` (rho rounded to 1e-6) over the selected lanes."""
    idx = lanes_of(run, sel)
    t, c = times(run, idx)
    col = run.lanes[key][idx]
    return fit.fold_change_across(np.round(col, 6) if key == "rho" else col, key, t, c)


def group_norm(run: Run, sel, group: str = "total") -> dict:
    """:func:`grokjax.fit.critical_norm` (no bootstrap) of one parameter group's norm at T_grok
    (column ``norm_at_grok_<group>``; ``total``: the whole model's, ``norm_at_grok``) over the
    selected lanes: median, CV across the lanes, n."""
    col = "norm_at_grok" if group == "total" else f"norm_at_grok_{group}"
    return fit.critical_norm(run.lanes[col][lanes_of(run, sel)], n_boot=0)


def median_norm(run: Run, sel, column: str = "norm_at_grok_embed") -> float | None:
    """The median of ``column`` (a norm at T_grok, e.g. the embedding's ‖E‖) over the grokked
    lanes of the selection that recorded it; None if none did (or the run has no such
    column)."""
    if column not in run.lanes:
        return None
    idx = lanes_of(run, sel)
    v = run.lanes[column][idx[run.lanes["grokked"][idx]]]
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


def count(run: Run, sel) -> int:
    """The number of selected lanes."""
    return int(lanes_of(run, sel).size)


def n_censored(run: Run, sel) -> int:
    """The number of selected lanes that did not grok."""
    return int((~run.lanes["grokked"][lanes_of(run, sel)]).sum())


def median_time(run: Run, sel) -> float | None:
    """:func:`grokjax.fit.censored_median` T_grok of the selected lanes (no CI)."""
    return fit.censored_median(*times(run, sel))


def cells(run: Run, sel, key: str, values) -> list:
    """One :func:`cell_times` block per value of column ``key`` (matched with ``np.isclose``)
    over the selected lanes, each with ``key``: the value."""
    mask = np.zeros(len(run.lanes["grokked"]), bool)
    mask[lanes_of(run, sel)] = True
    col = run.lanes[key]
    return [{key: float(v), **cell_times(run, mask & np.isclose(col, v))} for v in values]


def versus_law(cell: dict, law: dict, rho: float) -> dict:
    """``cell`` (a :func:`cell_times` block) with ``rho``, the delay law's extrapolation to it
    (:func:`extrapolated`) and the ratio of its median to that; returns the cell."""
    pred = extrapolated(law, rho)
    cell.update(
        rho=float(rho),
        extrapolated=pred,
        ratio=(cell["median"] / pred if pred and cell["median"] else None),
    )
    return cell


def beyond(run: Run, sel, law: dict, rhos, rounded: bool = False) -> list:
    """The cells at held norms ``rhos`` beyond a delay law's range against its extrapolation
    (:func:`versus_law`); rho matched with ``np.isclose``, or exactly after rounding to 1e-6
    (``rounded``: ``rhos`` read from the lanes)."""
    mask = np.zeros(len(run.lanes["grokked"]), bool)
    mask[lanes_of(run, sel)] = True
    rho = run.lanes["rho"]
    at = (lambda r: np.round(rho, 6) == r) if rounded else (lambda r: np.isclose(rho, r))
    return [versus_law(cell_times(run, mask & at(r)), law, r) for r in rhos]


def power_law_across(run: Run, sel, blocks: dict, path: tuple, n_boot: int = N_BOOT):
    """:func:`power_law` in p of the value at ``path`` of each per-p block {p: block}; None
    unless every p has one."""
    per_p = {}
    for p, b in blocks.items():
        for k in path:
            b = None if b is None else b.get(k)
        if b is None:
            return None
        per_p[float(p)] = b
    return power_law(per_p, n_boot=n_boot)


def fit_json(fitted: dict) -> dict:
    """An experiment's fit as fit.json stores it: ``fitted`` with ``fit_format``
    (:data:`FIT_FORMAT`, the layout docs/fit_json.md describes)."""
    fitted["fit_format"] = FIT_FORMAT
    return fitted
