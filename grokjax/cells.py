"""The lanes of a loaded :class:`grokjax.runs.Run` grouped by setting, and the numbers of such
a group: W_c of a clamped cell's setting and the norm at T_grok of each parameter group; the
delay law and W_c of a group are the measures of :mod:`grokjax.measures` (re-exported here by
the names the tables and figures use).

Lane conventions (as in ``experiments/delay_sweep.py``): diverged lanes are left out of every
fit; a lane that did not grok is right-censored at ``steps_run``; ``W_c`` is the median
``norm_at_grok`` of the grokked free lanes. JAX-free.
"""

from __future__ import annotations

import math

import numpy as np

from grokjax import fit, measures, schema

__all__ = [
    "FREE_KEYS",
    "CLAMP_KEYS",
    "CONTROL_KEYS",
    "TOTAL",
    "THRESHOLD_COLUMNS",
    "sort_key",
    "same",
    "where",
    "groups",
    "values",
    "span",
    "free_groups",
    "clamp_groups",
    "rho_mask",
    "main_setting",
    "delay_law",
    "critical_norm",
    "wc_of",
    "norm_column",
    "norm_groups",
    "group_norm",
    "norm_cvs",
]

# the settings that make a cell (grokjax.schema): of free lanes, of clamped lanes (adding t_int
# and clamp_mode) and of the control arms (adding t_int)
FREE_KEYS = schema.cell_keys("free")
CLAMP_KEYS = schema.cell_keys("clamp")
CONTROL_KEYS = schema.cell_keys("control")
N_BOOT = measures.N_BOOT  # bootstrap replicates of the fits (grokjax.fit default)
N_BOOT_MEDIAN = measures.N_BOOT_MEDIAN  # bootstrap replicates of a cell median's CI
SEED = measures.SEED
TOTAL = "total"  # the norm group of the whole model: lanes.csv column norm_at_grok
# the norm when test accuracy first reaches 0.8 / 0.95: not a parameter group's norm (the
# reader maps their old names, norm_at_grok_80 / _95, to these; lanes built in memory may
# still carry the old ones)
THRESHOLD_COLUMNS = ("norm_at_test80", "norm_at_test95", "norm_at_grok_80", "norm_at_grok_95")


def sort_key(v):
    """Orders numbers first, then strings, then None."""
    if v is None:
        return (2, "")
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, str(v))


def same(a, b) -> bool:
    """Equal settings: numbers within a relative 1e-6, anything else by ==."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def where(lanes: dict, cond: dict, *, strict: bool = False) -> np.ndarray:
    """Boolean mask of the lanes whose columns equal every setting of ``cond`` (floats within
    a relative 1e-6 as :func:`same`, integer columns exactly, NaN and empty cells never equal).
    Settings that are None or not a scalar (a span over several values) constrain nothing, and
    neither does a column the lanes lack; with ``strict`` (a caller naming columns by hand)
    both raise instead, and a flag (``grokked=True``) is a setting."""
    n = len(next(iter(lanes.values()))) if lanes else 0
    keep = np.ones(n, dtype=bool)
    for k, v in cond.items():
        if k not in lanes:
            if strict:
                raise KeyError(f"no column {k!r}; columns: {', '.join(lanes)}")
            continue
        v = fit.py(v, clean=False)
        col = np.asarray(lanes[k])
        if isinstance(v, bool) and strict:  # a flag column named by hand (grokked=True)
            keep &= col == v
            continue
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float, str)):
            if strict:
                raise TypeError(f"{k}={v!r}: a setting is one number, string or flag")
            continue
        if isinstance(v, str) or col.dtype.kind not in "fiu":
            keep &= np.array([same(fit.py(x), v) for x in col], dtype=bool)
        elif col.dtype.kind in "iu":  # integers (seeds, p) are equal or not
            keep &= col == v
        else:
            a = col.astype(float)
            with np.errstate(invalid="ignore"):
                tol = np.maximum(1e-6 * np.maximum(np.abs(a), abs(float(v))), 1e-12)
                keep &= np.abs(a - float(v)) <= tol
    return keep


def groups(run, mask: np.ndarray, keys: tuple) -> list[tuple[dict, np.ndarray]]:
    """The lanes in ``mask`` grouped by their values of ``keys`` (sorted)."""
    out: dict = {}
    cols = [run.lanes.get(k) for k in keys]
    for i in np.nonzero(mask)[0]:
        k = tuple(None if c is None else fit.py(c[i]) for c in cols)
        out.setdefault(k, []).append(i)
    items = sorted(out.items(), key=lambda kv: tuple(sort_key(v) for v in kv[0]))
    return [(dict(zip(keys, k)), np.array(v, dtype=int)) for k, v in items]


def values(run, idx: np.ndarray, key: str) -> list:
    """The distinct values of column ``key`` over the lanes ``idx``, sorted ([None] if the run
    has no such column)."""
    vals = {fit.py(v) for v in run.lanes[key][idx]} if key in run.lanes else {None}
    return sorted(vals, key=sort_key)


def span(run, idx: np.ndarray, key: str):
    """The one value of ``key`` over the lanes ``idx``, or the tuple of its values."""
    vals = values(run, idx, key)
    return vals[0] if len(vals) == 1 else tuple(vals)


def free_groups(run) -> list[tuple[dict, np.ndarray]]:
    """The free lanes that enter the fits, grouped by :data:`FREE_KEYS`."""
    return groups(run, run.arm("free") & run.ok(), FREE_KEYS)


def clamp_groups(run, keys=CLAMP_KEYS, mask=None) -> list[tuple[dict, np.ndarray]]:
    """The clamped lanes (with a rho) that enter the fits, within ``mask``, grouped by
    ``keys``."""
    m = run.arm("clamp") & run.ok() & np.isfinite(run.lanes["rho"])
    if mask is not None:
        m &= mask
    return groups(run, m, keys)


def rho_mask(run, lo=None, hi=None) -> np.ndarray:
    """The lanes with a rho in [lo, hi] (either bound optional)."""
    r = run.lanes["rho"]
    m = np.isfinite(r)
    if lo is not None:
        m &= r >= lo - 1e-9
    if hi is not None:
        m &= r <= hi + 1e-9
    return m


def main_setting(run, mask: np.ndarray, keys) -> np.ndarray:
    """The lanes of ``mask`` at the most populated combination of ``keys``."""
    gs = groups(run, mask, keys)
    if not gs:
        return np.zeros(0, int)
    return max(gs, key=lambda g: g[1].size)[1]


# the measures over a group of lanes (grokjax.measures), by the names the tables and figures use
delay_law = measures.delay_law
critical_norm = measures.wc


def wc_of(run, cond: dict) -> float | None:
    """W_c for the clamped lanes of ``cond``: the free lanes at the same settings, else the
    held norms divided by rho."""
    free = run.arm("free") & run.ok()
    for k in FREE_KEYS:
        if k in cond and cond[k] is not None and not isinstance(cond[k], tuple):
            free &= np.array(
                [same(fit.py(v), cond[k]) if fit.py(v) is not None else False for v in run.lanes[k]]
            )
    if free.any():
        return critical_norm(run, np.nonzero(free)[0])["median"]
    m = run.arm("clamp") & (run.lanes["p"] == cond.get("p", np.nan))
    if m.any():
        return float(np.median(run.lanes["target_norm"][m] / run.lanes["rho"][m]))
    return None


def norm_column(group: str) -> str:
    """The lanes.csv column of a group's norm at T_grok (``total``: the whole model's)."""
    return "norm_at_grok" if group == TOTAL else f"norm_at_grok_{group}"


def norm_groups(run) -> list[str]:
    """The parameter groups whose norm at T_grok the run recorded (its ``norm_at_grok_<group>``
    columns, in column order), then :data:`TOTAL`."""
    prefix = "norm_at_grok_"
    return [
        k[len(prefix) :] for k in run.lanes if k.startswith(prefix) and k not in THRESHOLD_COLUMNS
    ] + [TOTAL]


group_norm = measures.group_norm


def norm_cvs(run, idx: np.ndarray, names) -> dict:
    """{group: CV across the lanes ``idx`` of its norm at T_grok} for each group in ``names``."""
    return {g: group_norm(run, idx, g)["cv"] for g in names}
