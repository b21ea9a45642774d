"""Figures, tables and the comparison with the paper, recomputed from run directories.

``build(run_dirs, out)`` reads each run directory (``config.json``, ``lanes.csv``,
``curves.npz``; ``fit.json`` is not needed: every statistic is recomputed from the lanes with
:mod:`grokjax.fit`) and writes into ``out``:

* ``report.md`` (and ``report.json`` with the same numbers at full precision): the runs with
  their censored / diverged lane counts, which experiments were run, every headline number next
  to the paper's value (:mod:`grokjax.paper`) with the relative difference and a status, the
  tables and the list of figures;
* tables as Markdown and CSV: ``tgrok_matrix``, ``alpha``, ``wc`` (and ``layernorm_cv`` when
  attention runs exist);
* figures as PNG and PDF (see :func:`make_figures`).

Statuses of a comparison: ``pass`` / ``FAIL`` (the run follows the paper's protocol and the
number is / is not within the stated tolerance), ``inconclusive`` (it follows the protocol but
the number is not identifiable, e.g. a median beyond the step budget), ``not comparable`` (the
closest run differs from the protocol: the differences are listed and the number is shown but
not judged) and ``not run`` (no run has the design the number needs).

Lane conventions (as in ``experiments/delay_sweep.py``): diverged lanes are left out of every
fit and counted; a lane that did not grok is right-censored at ``steps_run``; ``W_c`` is the
median ``norm_at_grok`` of the grokked free lanes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re

import numpy as np

from grokjax import fit, paper

__all__ = [
    "KNOWN_EXPERIMENTS",
    "REQUIRED_FILES",
    "REQUIRED_COLUMNS",
    "RunDirError",
    "Run",
    "load_run",
    "load_runs",
    "mismatches",
    "median_ci",
    "wc_table",
    "alpha_table",
    "tgrok_matrix",
    "layernorm_table",
    "compare",
    "make_figures",
    "render",
    "build",
    "fmt",
    "summary_lines",
    "run_counts",
    "experiment_sections",
]

KNOWN_EXPERIMENTS = {
    "delay_sweep": "clamped held-norm sweep: W_c, alpha per p and shared",
    "critical_norm": "free runs over fraction × p and lr × wd: W_c and its scaling",
    "lr_matrix": "rho × lr matrix of T_grok: norm effect against lr effect",
    "dense_rho": "dense rho scan at p=59: alpha and saturation",
    "norm_controls": "controls on how the norm is held",
    "log_delay": "logarithmic delay of a freely contracting norm",
    "transformer": "attention model with and without LayerNorm",
    "parity": "sparse parity task",
}
REQUIRED_FILES = ("config.json", "lanes.csv")
# curves.npz is optional: the run results committed under results/ keep only the small files
# (config.json, lanes.csv, fit.json, timing.json); their trajectory figures are skipped
REQUIRED_COLUMNS = (
    "p",
    "seed",
    "arm",
    "rho",
    "target_norm",
    "lr",
    "wd",
    "frac",
    "model",
    "T_mem",
    "T_grok",
    "grokked",
    "norm_at_grok",
    "diverged",
    "steps_run",
)
# Settings stored once in config.json but needed per lane (filled in when not a lane column).
CONFIG_FIELDS = ("d", "hidden", "heads", "layernorm")
FREE_KEYS = ("model", "layernorm", "d", "hidden", "frac", "lr", "wd", "p")
CLAMP_KEYS = FREE_KEYS + ("t_int", "clamp_mode")
N_BOOT = 1000  # bootstrap replicates of the fits (grokjax.fit default)
N_BOOT_MEDIAN = 500  # bootstrap replicates of a cell median's CI
SEED = 0


class RunDirError(ValueError):
    """A run directory that cannot be read (missing file, unreadable config, empty lanes)."""


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One run directory: its configuration, per-lane columns and curves."""

    path: str
    name: str
    config: dict
    lanes: dict
    curves: dict
    cache: dict = dataclasses.field(default_factory=dict, repr=False)  # fits, by lane subset

    @property
    def experiment(self) -> str:
        return str(self.config.get("experiment", "unknown"))

    @property
    def preset(self) -> str:
        return str(self.config.get("preset", ""))

    @property
    def n(self) -> int:
        return int(len(self.lanes["p"]))

    def times(self) -> tuple[np.ndarray, np.ndarray]:
        """(time, censored): T_grok where grokked, else steps_run with censored=True."""
        g = self.lanes["grokked"]
        return np.where(g, self.lanes["T_grok"], self.lanes["steps_run"]), ~g

    def ok(self) -> np.ndarray:
        """Lanes that enter the fits: not diverged and with a positive time."""
        t, _ = self.times()
        return ~self.lanes["diverged"] & np.isfinite(t) & (t > 0)

    def arm(self, name: str) -> np.ndarray:
        return self.lanes["arm"] == name


def _read_lanes(path: str) -> dict:
    from grokjax.results import read_lanes_csv

    return read_lanes_csv(path)


def load_run(path: str, name: str | None = None) -> Run:
    """Reads a run directory; raises :class:`RunDirError` with a one-line message."""
    if not os.path.isdir(path):
        raise RunDirError(f"{path}: not a run directory")
    for f in REQUIRED_FILES:
        if not os.path.isfile(os.path.join(path, f)):
            raise RunDirError(f"{path}: missing {f}")
    try:
        with open(os.path.join(path, "config.json")) as fh:
            config = json.load(fh)
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path}: unreadable config.json ({e})".replace("\n", " ")) from None
    if not isinstance(config, dict):
        raise RunDirError(f"{path}: config.json is not a JSON object")
    _check_config(path, config)
    try:
        lanes = _read_lanes(os.path.join(path, "lanes.csv"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path}: unreadable lanes.csv ({e})".replace("\n", " ")) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in lanes]
    if missing:
        raise RunDirError(f"{path}: lanes.csv lacks column(s) {', '.join(missing)}")
    _check_lanes_match(path, config, lanes)
    curves = {}
    n = len(lanes["p"])
    if os.path.exists(os.path.join(path, "curves.npz")):
        try:
            with np.load(os.path.join(path, "curves.npz"), allow_pickle=False) as z:
                curves = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise RunDirError(f"{path}: unreadable curves.npz ({e})".replace("\n", " ")) from None
    for k in ("steps", "train_acc", "test_acc", "norm") if curves else ():
        if k not in curves:
            raise RunDirError(f"{path}: curves.npz lacks {k}")
        if curves[k].shape[0] != n:
            raise RunDirError(
                f"{path}: curves.npz has {curves[k].shape[0]} lanes, lanes.csv has {n}"
            )
    for k in CONFIG_FIELDS:
        if k in lanes:
            continue
        v = config.get(k)
        if v is None and k == "layernorm":
            # the MLP has no LayerNorm; for other models an unrecorded setting stays unknown
            lanes[k] = np.array(
                ["none" if m == "mlp" else None for m in lanes["model"]], dtype=object
            )
            continue
        if isinstance(v, (list, dict)):
            v = None  # swept but not recorded per lane: unknown per lane
        lanes[k] = np.array([v] * n, dtype=object)
    for k in ("t_int", "clamp_mode"):
        if k not in lanes:
            lanes[k] = np.array([None] * n, dtype=object)
    base = name or os.path.basename(os.path.normpath(os.path.abspath(path))) or "run"
    return Run(
        path=path,
        name=re.sub(r"[^A-Za-z0-9._-]+", "_", base),
        config=config,
        lanes=lanes,
        curves=curves,
    )


def _check_config(path: str, config: dict) -> None:
    """Refuses a config.json that is not the one the run wrote: its digest differs from the
    one fit.json recorded (``config_sha256``, written since issue 15; a run directory from
    before it is only checked against lanes.csv, see ``_check_lanes_match``)."""
    from grokjax.results import config_digest

    fit_path = os.path.join(path, "fit.json")
    digest = None
    if os.path.isfile(fit_path):
        try:
            with open(fit_path) as fh:
                fitted = json.load(fh)
            digest = fitted.get("config_sha256") if isinstance(fitted, dict) else None
        except (OSError, ValueError):
            digest = None
    if digest is not None:
        try:
            same = config_digest(config) == digest
        except (TypeError, ValueError):
            same = False
        if not same:
            raise RunDirError(
                f"{path}: config.json was changed after the run (it does not "
                f"match the configuration fit.json recorded); restore it or "
                f"rerun the experiment"
            )
        return


def _check_lanes_match(path: str, config: dict, lanes: dict) -> None:
    """Refuses a config.json that contradicts lanes.csv on a setting both record."""
    for key in ("dtype", "model"):
        v = config.get(key)
        if isinstance(v, str) and key in lanes:
            found = sorted({str(x) for x in lanes[key]} - {v})
            if found:
                raise RunDirError(
                    f"{path}: config.json says {key} {v!r} but lanes.csv holds "
                    f"{', '.join(found)}; one of them was edited"
                )


def load_runs(paths: list[str]) -> list[Run]:
    """Loads several run directories, giving each a unique name (for file names). The same
    directory given twice (under any spelling) is refused: it would count its lanes twice."""
    real = {}
    for p in paths:
        r = os.path.realpath(p)
        if r in real:
            raise RunDirError(
                f"{p}: the same run directory is given twice (also as "
                f"{real[r]}); it would be counted as two runs"
            )
        real[r] = p
    runs, seen = [], {}
    for p in paths:
        r = load_run(p)
        k = seen.get(r.name, 0)
        seen[r.name] = k + 1
        if k:
            r.name = f"{r.name}-{k + 1}"
        runs.append(r)
    return runs


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _py(v):
    """Plain Python value of a lane cell: None for NaN/None, int for integral floats."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:
        return None
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v.is_integer() and abs(v) < 1e15:
            return int(v)
    return v


def _sortable(v):
    if v is None:
        return (2, "")
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, str(v))


def _groups(run: Run, mask: np.ndarray, keys: tuple) -> list[tuple[dict, np.ndarray]]:
    """The lanes in ``mask`` grouped by their values of ``keys`` (sorted)."""
    out: dict = {}
    cols = [run.lanes.get(k) for k in keys]
    for i in np.nonzero(mask)[0]:
        k = tuple(None if c is None else _py(c[i]) for c in cols)
        out.setdefault(k, []).append(i)
    items = sorted(out.items(), key=lambda kv: tuple(_sortable(v) for v in kv[0]))
    return [(dict(zip(keys, k)), np.array(v, dtype=int)) for k, v in items]


def _uniq(run: Run, idx: np.ndarray, key: str) -> list:
    vals = {_py(v) for v in run.lanes[key][idx]} if key in run.lanes else {None}
    return sorted(vals, key=_sortable)


def fmt(v, digits: int = 4) -> str:
    """How the report writes a number: 4 significant digits, integers from 1000 up."""
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not math.isfinite(v):
        return "—"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _fmt_ci(ci) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _fmt_val(v) -> str:
    if isinstance(v, tuple):
        return "{" + ", ".join(_fmt_val(x) for x in v) + "}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _cond_text(cond: dict, keys=("model", "layernorm", "p", "frac", "lr", "wd", "rho")) -> str:
    parts = []
    for k in keys:
        if k not in cond or cond[k] is None:
            continue
        if k == "layernorm" and cond.get("model") == "mlp":
            continue
        parts.append(f"{k}={_fmt_val(cond[k])}")
    return ", ".join(parts)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def mismatches(cond: dict, protocol: dict) -> list[tuple[str, str]]:
    """Where a run's settings ``cond`` differ from the paper's ``protocol``.

    ``cond`` values are single values, tuples (the subset spans several values, all must be
    allowed) or None (not recorded: counts as a difference, since it cannot be checked).
    ``protocol`` values are single values or tuples meaning "any of these".
    Returns [(key, "key=value (paper value)")]; empty means comparable.
    """
    out = []
    for k, want in protocol.items():
        have = cond.get(k)
        if have is None:
            out.append((k, f"{k} not recorded (paper {_fmt_val(want)})"))
            continue
        allowed = want if isinstance(want, tuple) else (want,)
        haves = have if isinstance(have, tuple) else (have,)
        if not all(any(_same(h, w) for w in allowed) for h in haves):
            out.append((k, f"{k}={_fmt_val(have)} (paper {_fmt_val(want)})"))
    return out


def median_ci(
    times, censored=None, n_boot: int = N_BOOT_MEDIAN, seed: int = SEED, ci: float = 0.95
) -> dict:
    """Kaplan-Meier median (:func:`grokjax.fit.censored_median`) with a percentile-bootstrap
    interval over lanes. Replicates whose median is not identifiable count as +inf, so an
    upper bound beyond the budget is reported as None (unbounded).

    Returns {median, ci: [lo, hi], n, n_censored}."""
    t = np.asarray(times, float).ravel()
    c = np.zeros(t.shape, bool) if censored is None else np.asarray(censored, bool).ravel()
    med = fit.censored_median(t, c)
    out = {"median": med, "ci": [None, None], "n": int(t.size), "n_censored": int(c.sum())}
    if n_boot <= 0 or t.size < 2:
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, t.size, size=(n_boot, t.size))
    reps = np.array([fit.censored_median(t[i], c[i]) for i in idx], dtype=object)
    reps = np.array([np.inf if r is None else r for r in reps], dtype=float)
    lo, hi = np.quantile(reps, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
    out["ci"] = [float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None]
    return out


def _delay(run: Run, idx: np.ndarray, group: str | None = None, n_boot: int = N_BOOT) -> dict:
    """fit.delay_law on the lanes ``idx`` (censored at steps_run), grouped by a column."""
    key = ("delay", idx.tobytes(), group, n_boot)
    if key not in run.cache:
        t, c = run.times()
        g = None
        if group is not None:
            col = run.lanes[group][idx]
            g = col.astype(int) if group == "p" else np.array([_py(v) for v in col], dtype=object)
        run.cache[key] = fit.delay_law(
            run.lanes["rho"][idx], t[idx], group=g, censored=c[idx], n_boot=n_boot, seed=SEED
        )
    return run.cache[key]


def _wc(run: Run, idx: np.ndarray) -> dict:
    """fit.critical_norm of norm_at_grok over the grokked lanes among ``idx``."""
    g = idx[run.lanes["grokked"][idx]]
    return fit.critical_norm(run.lanes["norm_at_grok"][g], seed=SEED)


def _free_groups(run: Run) -> list[tuple[dict, np.ndarray]]:
    return _groups(run, run.arm("free") & run.ok(), FREE_KEYS)


def _clamp_groups(run: Run, keys=CLAMP_KEYS, mask=None) -> list[tuple[dict, np.ndarray]]:
    m = run.arm("clamp") & run.ok() & np.isfinite(run.lanes["rho"])
    if mask is not None:
        m &= mask
    return _groups(run, m, keys)


def _rho_mask(run: Run, lo=None, hi=None) -> np.ndarray:
    r = run.lanes["rho"]
    m = np.isfinite(r)
    if lo is not None:
        m &= r >= lo - 1e-9
    if hi is not None:
        m &= r <= hi + 1e-9
    return m


def _wc_of(run: Run, cond: dict) -> float | None:
    """W_c for the clamped lanes of ``cond``: the free lanes at the same settings, else the
    held norms divided by rho."""
    free = run.arm("free") & run.ok()
    for k in FREE_KEYS:
        if k in cond and cond[k] is not None and not isinstance(cond[k], tuple):
            free &= np.array(
                [_same(_py(v), cond[k]) if _py(v) is not None else False for v in run.lanes[k]]
            )
    if free.any():
        return _wc(run, np.nonzero(free)[0])["median"]
    m = run.arm("clamp") & (run.lanes["p"] == cond.get("p", np.nan))
    if m.any():
        return float(np.median(run.lanes["target_norm"][m] / run.lanes["rho"][m]))
    return None


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def run_counts(run: Run) -> dict:
    """Lane counts of one run: free, clamped, grokked, censored (not grokked, not diverged),
    diverged."""
    L = run.lanes
    return {
        "run": run.name,
        "experiment": run.experiment,
        "preset": run.preset,
        "path": run.path,
        "lanes": run.n,
        "free": int(run.arm("free").sum()),
        "clamped": int(run.arm("clamp").sum()),
        "other": int((~run.arm("free") & ~run.arm("clamp")).sum()),
        "grokked": int(L["grokked"].sum()),
        "censored": int((~L["grokked"] & ~L["diverged"]).sum()),
        "diverged": int(L["diverged"].sum()),
    }


def wc_table(runs: list[Run]) -> list[dict]:
    """W_c per run and setting (p, fraction, lr, wd, model): median, CV, bootstrap CI, n;
    also the Kaplan-Meier median T_grok of the free lanes."""
    rows = []
    for run in runs:
        t, c = run.times()
        for cond, idx in _free_groups(run):
            w = _wc(run, idx)
            m = median_ci(t[idx], c[idx], n_boot=0)
            rows.append(
                {
                    "run": run.name,
                    "experiment": run.experiment,
                    **cond,
                    "n_lanes": int(idx.size),
                    "n_grokked": int(w["n"]),
                    "Wc_median": w["median"],
                    "Wc_cv": w["cv"],
                    "Wc_ci_lo": w["ci"][0],
                    "Wc_ci_hi": w["ci"][1],
                    "Wc_n": w["n"],
                    "free_T_grok_median": m["median"],
                }
            )
    return rows


def alpha_table(runs: list[Run]) -> list[dict]:
    """The delay law per run: one row per (p, lr and other settings) with alpha, its bootstrap
    CI, R², the censored-MLE alpha and counts, and a ``shared`` row (one alpha, intercept per
    p) wherever a setting has several p."""
    rows = []
    for run in runs:
        for cond, idx in _clamp_groups(run):
            rhos = _uniq(run, idx, "rho")
            if len(rhos) < 2:
                continue
            law = _delay(run, idx)
            rows.append(_alpha_row(run, cond, idx, law, rhos))
        keys = tuple(k for k in CLAMP_KEYS if k != "p")
        for cond, idx in _clamp_groups(run, keys):
            ps = _uniq(run, idx, "p")
            if len(ps) < 2:
                continue
            law = _delay(run, idx, group="p")
            if law["alpha"] is None:
                continue
            rows.append(
                _alpha_row(run, dict(cond, p="shared"), idx, law, _uniq(run, idx, "rho"), ps=ps)
            )
    return rows


def _alpha_row(run, cond, idx, law, rhos, ps=None) -> dict:
    mle = law.get("mle") or {}
    return {
        "run": run.name,
        "experiment": run.experiment,
        **cond,
        "p_set": "" if ps is None else " ".join(str(p) for p in ps),
        "rho_min": min(rhos),
        "rho_max": max(rhos),
        "n_rho": len(rhos),
        "alpha": law["alpha"],
        "alpha_ci_lo": law["alpha_ci"][0],
        "alpha_ci_hi": law["alpha_ci"][1],
        "r2": law["r2"],
        "alpha_mle": mle.get("alpha"),
        "n_lanes": law["n_lanes"],
        "n_censored": law["n_censored"],
        "n_cells_fit": law["n_cells_fit"],
        "n_cells_excluded": len(law["excluded_cells"]),
    }


def tgrok_matrix(runs: list[Run], n_boot: int = N_BOOT_MEDIAN) -> list[dict]:
    """Median T_grok per (setting, rho, lr) cell, long format: Kaplan-Meier median with a
    bootstrap CI, lane counts and censored / diverged counts. Free lanes are the row
    rho="free"; clamped lanes are split by clamp_mode and t_int as well."""
    rows = []
    keys = tuple(k for k in CLAMP_KEYS if k not in ("lr", "t_int", "clamp_mode"))
    for run in runs:
        t, c = run.times()
        for cond, idx in _groups(run, run.arm("free") | run.arm("clamp"), keys):
            for cell_key, lanes in _groups(
                run, np.isin(np.arange(run.n), idx), ("arm", "clamp_mode", "t_int", "rho", "lr")
            ):
                div = run.lanes["diverged"][lanes]
                ok = lanes[~div & np.isfinite(t[lanes]) & (t[lanes] > 0)]
                m = median_ci(t[ok], c[ok], n_boot=n_boot)
                budget = float(np.max(t[ok][c[ok]])) if c[ok].any() else None
                rho = cell_key["rho"]
                rows.append(
                    {
                        "run": run.name,
                        "experiment": run.experiment,
                        **cond,
                        "arm": cell_key["arm"],
                        "clamp_mode": cell_key["clamp_mode"],
                        "t_int": cell_key["t_int"],
                        "rho": "free" if cell_key["arm"] == "free" else rho,
                        "lr": cell_key["lr"],
                        "n": int(lanes.size),
                        "n_censored": m["n_censored"],
                        "n_diverged": int(div.sum()),
                        "median": m["median"],
                        "ci_lo": m["ci"][0],
                        "ci_hi": m["ci"][1],
                        "censored_at": budget,
                    }
                )
    return rows


def layernorm_table(runs: list[Run]) -> list[dict]:
    """Per LayerNorm setting of attention runs (free grokked lanes per p): the CV across seeds
    of each parameter group's norm at T_grok and of the global norm."""
    rows = []
    for run in runs:
        attn = run.lanes["model"] == "attn"
        if not attn.any():
            continue
        groups = [
            k[len("norm_at_grok_") :]
            for k in run.lanes
            if k.startswith("norm_at_grok_") and k not in ("norm_at_grok_80", "norm_at_grok_95")
        ]
        for cond, idx in _groups(
            run, attn & run.arm("free") & run.ok() & run.lanes["grokked"], FREE_KEYS
        ):
            cv = {
                g: fit.critical_norm(run.lanes[f"norm_at_grok_{g}"][idx], n_boot=0)["cv"]
                for g in groups
            }
            cv["global"] = fit.critical_norm(run.lanes["norm_at_grok"][idx], n_boot=0)["cv"]
            rows.append(
                {
                    "run": run.name,
                    **cond,
                    "n": int(idx.size),
                    **{f"cv_{g}": v for g, v in cv.items()},
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# comparison with the paper
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Cand:
    run: Run
    cond: dict
    measured: float | None
    ci: list | None = None
    note: str = ""


def _model_ok(ref: paper.Reference, cond: dict) -> bool:
    """A run is a candidate for a reference only with the same kind of model (and LayerNorm),
    and at the reference's p when it ``requires_p``."""
    keys = ("model", "layernorm") + (("p",) if ref.requires_p else ())
    for k in keys:
        if k in ref.protocol and cond.get(k) is not None and not _same(cond[k], ref.protocol[k]):
            return False
    return True


def _span(run, idx, key):
    vals = _uniq(run, idx, key)
    return vals[0] if len(vals) == 1 else tuple(vals)


def _cands_free(ref, runs, what):
    out = []
    for run in runs:
        t, c = run.times()
        for cond, idx in _free_groups(run):
            if not _model_ok(ref, cond):
                continue
            if what == "tgrok":
                m = median_ci(t[idx], c[idx])
                note = f"n={m['n']}, {m['n_censored']} censored"
                if m["median"] is None:
                    note += f" (median beyond the budget {fmt(float(np.max(t[idx])))})"
                out.append(_Cand(run, cond, m["median"], m["ci"], note))
                continue
            w = _wc(run, idx)
            if what == "wc":
                out.append(_Cand(run, cond, w["median"], w["ci"], f"n={w['n']}"))
            elif w["n"] >= 2:  # cv
                out.append(_Cand(run, cond, w["cv"], None, f"n={w['n']}"))
    return out


def _cands_exponent(ref, runs):
    out = []
    need = ref.select.get("min_p", 3)
    for run in runs:
        keys = tuple(k for k in FREE_KEYS if k != "p")
        for cond, idx in _groups(run, run.arm("free") & run.ok(), keys):
            if not _model_ok(ref, cond):
                continue
            ps, wcs = [], []
            for p in _uniq(run, idx, "p"):
                w = _wc(run, idx[run.lanes["p"][idx] == p])["median"]
                if w is not None:
                    ps.append(p)
                    wcs.append(w)
            if len(ps) < need:
                continue
            pl = fit.power_law(np.array(ps, float), np.array(wcs), seed=SEED)
            out.append(
                _Cand(
                    run,
                    dict(cond, p=tuple(ps)),
                    pl["exponent"],
                    pl["exponent_ci"],
                    f"{len(ps)} values of p, R²={fmt(pl['r2'])}",
                )
            )
    return out


def _cands_alpha(ref, runs, shared):
    out = []
    sel = ref.select
    metric = "r2" if ref.key.endswith("_r2") else "alpha"
    for run in runs:
        mask = _rho_mask(run, sel.get("rho_min"), sel.get("rho_max"))
        keys = tuple(k for k in CLAMP_KEYS if k != "p") if shared else CLAMP_KEYS
        for cond, idx in _clamp_groups(run, keys, mask):
            if not _model_ok(ref, cond):
                continue
            if shared:
                want = ref.protocol.get("p")
                if isinstance(want, tuple):
                    inside = np.isin(run.lanes["p"][idx], want)
                    if len(_uniq(run, idx[inside], "p")) >= sel.get("min_p", 2):
                        idx = idx[inside]
                ps = [
                    p
                    for p in _uniq(run, idx, "p")
                    if len(_uniq(run, idx[run.lanes["p"][idx] == p], "rho")) >= 2
                ]
                if len(ps) < sel.get("min_p", 2):
                    continue
                idx = idx[np.isin(run.lanes["p"][idx], ps)]
                cond = dict(cond, p=tuple(ps))
            rhos = _uniq(run, idx, "rho")
            if len(rhos) < sel.get("min_rho", 2):
                continue
            law = _delay(run, idx, group="p" if shared else None)
            if law["alpha"] is None and metric == "alpha":
                out.append(
                    _Cand(
                        run,
                        cond,
                        None,
                        None,
                        f"alpha not identifiable ({len(law['excluded_cells'])} cells censored)",
                    )
                )
                continue
            note = (
                f"rho {fmt(min(rhos))}–{fmt(max(rhos))} ({len(rhos)} values), "
                f"{law['n_lanes']} lanes, {law['n_censored']} censored"
            )
            if law["excluded_cells"]:
                note += f", {len(law['excluded_cells'])} cells beyond the budget left out"
            if metric == "alpha":
                out.append(_Cand(run, cond, law["alpha"], law["alpha_ci"], note))
            else:
                out.append(_Cand(run, cond, law["r2"], None, note))
    return out


def _cands_cell(ref, runs):
    out = []
    r0 = ref.select["rho"]
    for run in runs:
        t, c = run.times()
        for cond, idx in _clamp_groups(run, mask=_rho_mask(run, r0, r0)):
            if not _model_ok(ref, cond):
                continue
            m = median_ci(t[idx], c[idx])
            note = f"n={m['n']}, {m['n_censored']} censored"
            if m["median"] is None:
                note += f" (median beyond the budget {fmt(float(np.max(t[idx])))})"
            out.append(_Cand(run, dict(cond, rho=r0), m["median"], m["ci"], note))
    return out


def _cands_norm_fold(ref, runs):
    out = []
    lo, hi = ref.select["rho_lo"], ref.select["rho_hi"]
    for run in runs:
        t, c = run.times()
        for cond, idx in _clamp_groups(run):
            if not _model_ok(ref, cond):
                continue
            a = idx[np.isclose(run.lanes["rho"][idx], lo)]
            b = idx[np.isclose(run.lanes["rho"][idx], hi)]
            if not (a.size and b.size):
                continue
            f = fit.fold_change(t[a], t[b], c[a], c[b])
            note = f"median {fmt(f['median_a'])} at rho={lo:g}, {fmt(f['median_b'])} at rho={hi:g}"
            out.append(_Cand(run, cond, f["fold"], None, note))
    return out


def _cands_lr_fold(ref, runs):
    out = []
    lrs = ref.select["lrs"]
    for run in runs:
        t, c = run.times()
        keys = tuple(k for k in CLAMP_KEYS if k != "lr")
        for cond, idx in _clamp_groups(run, keys):
            if not _model_ok(ref, cond):
                continue
            folds, rhos = [], []
            for rho in _uniq(run, idx, "rho"):
                cell = idx[np.isclose(run.lanes["rho"][idx], rho)]
                have = [lr for lr in lrs if np.isclose(run.lanes["lr"][cell], lr).any()]
                if len(have) < len(lrs):
                    continue
                cell = cell[np.isin(np.round(run.lanes["lr"][cell], 12), np.round(lrs, 12))]
                f = fit.fold_change_across(
                    np.round(run.lanes["lr"][cell], 12), "lr", t[cell], c[cell]
                )
                rhos.append(rho)
                folds.append(f["fold"])
            if not rhos:
                continue
            good = [f for f in folds if f is not None]
            med = float(np.median(good)) if good else None
            note = "per rho: " + ", ".join(f"{r:g}: {fmt(f)}" for r, f in zip(rhos, folds))
            out.append(_Cand(run, dict(cond, lr=tuple(lrs)), med, None, note))
    return out


def _cands_saturation(ref, runs):
    out = []
    r_hi, r_max = ref.select["rho"], ref.select["rho_max"]
    for run in runs:
        t, c = run.times()
        for cond, idx in _clamp_groups(run):
            if not _model_ok(ref, cond):
                continue
            top = idx[np.isclose(run.lanes["rho"][idx], r_hi)]
            low = idx[run.lanes["rho"][idx] <= r_max + 1e-9]
            if not top.size or len(_uniq(run, low, "rho")) < ref.select.get("min_rho", 2):
                continue
            law = _delay(run, low, n_boot=0)
            med = fit.censored_median(t[top], c[top])
            if law["alpha"] is None or med is None:
                out.append(_Cand(run, cond, None, None, "law or rho=1.30 median not identifiable"))
                continue
            pred = math.exp(law["alpha"] * r_hi + next(iter(law["intercepts"].values())))
            out.append(
                _Cand(
                    run,
                    cond,
                    med / pred,
                    None,
                    f"median {fmt(med)} vs extrapolated {fmt(pred)} "
                    f"(alpha={fmt(law['alpha'])} on rho ≤ {r_max:g})",
                )
            )
    return out


def _cands_wc_lr(ref, runs):
    """CV of W_c across the reference's lrs, per group of free lanes at the other settings."""
    out = []
    lrs = ref.select["lrs"]
    for run in runs:
        keys = tuple(k for k in FREE_KEYS if k != "lr")
        for cond, idx in _groups(run, run.arm("free") & run.ok(), keys):
            if not _model_ok(ref, cond):
                continue
            wcs = []
            for lr in lrs:
                sel = idx[np.isclose(run.lanes["lr"][idx], lr)]
                wcs.append(_wc(run, sel)["median"] if sel.size else None)
            if sum(w is not None for w in wcs) < 2 or not all(
                np.isclose(run.lanes["lr"][idx], lr).any() for lr in lrs
            ):
                continue
            good = np.array([w for w in wcs if w is not None])
            cv = float(good.std(ddof=1) / good.mean()) if len(good) == len(lrs) else None
            out.append(
                _Cand(
                    run,
                    dict(cond, lr=tuple(lrs)),
                    cv,
                    None,
                    "W_c per lr: " + ", ".join(f"{lr:g}: {fmt(w)}" for lr, w in zip(lrs, wcs)),
                )
            )
    return out


CONTROL_KEYS = FREE_KEYS + ("t_int",)


def _control_median(run: Run, cond: dict) -> float | None:
    """Median T_grok of the free lanes at the settings of ``cond`` (FREE_KEYS)."""
    t, c = run.times()
    m = run.arm("free") & run.ok()
    for k in FREE_KEYS:
        if cond.get(k) is not None and k in run.lanes:
            m &= np.array([_py(v) is not None and _same(_py(v), cond[k]) for v in run.lanes[k]])
    return fit.censored_median(t[m], c[m]) if m.any() else None


def _cands_one_shot(ref, runs):
    out = []
    for run in runs:
        t, c = run.times()
        for cond, idx in _groups(run, run.arm("one_shot") & run.ok(), CONTROL_KEYS):
            if not _model_ok(ref, cond) or len(_uniq(run, idx, "rho")) < 2:
                continue
            f = fit.fold_change_across(np.round(run.lanes["rho"][idx], 6), "rho", t[idx], c[idx])
            note = "medians: " + ", ".join(f"rho {k}: {fmt(v)}" for k, v in f["medians"].items())
            out.append(
                _Cand(
                    run,
                    cond,
                    f["fold"],
                    None,
                    note + (" (lower bound)" if f["lower_bound"] else ""),
                )
            )
    return out


def _cands_group(ref, runs):
    out = []
    for run in runs:
        t, c = run.times()
        for cond, idx in _groups(run, run.arm("group_one_shot") & run.ok(), CONTROL_KEYS):
            if not _model_ok(ref, cond):
                continue
            mc = _control_median(run, cond)
            devs = {}
            for g in _uniq(run, idx, "clamp_group"):
                sel = idx[run.lanes["clamp_group"][idx] == g]
                m = fit.censored_median(t[sel], c[sel])
                devs[g] = abs(m / mc - 1.0) if m is not None and mc else None
            measured = (
                max(devs.values()) if devs and all(v is not None for v in devs.values()) else None
            )
            out.append(
                _Cand(
                    run,
                    cond,
                    measured,
                    None,
                    f"control median {fmt(mc)}; "
                    + ", ".join(f"{g}: {fmt(v and 100 * v)} %" for g, v in devs.items()),
                )
            )
    return out


def _cands_ln_cv(ref, runs, column):
    """CV of a norm at T_grok over the grokked free lanes of one setting, pooled over the
    train fractions run at that setting (at least two)."""
    out = []
    for run, cond, idx in _ln_free_groups(ref, runs, column, ("frac",)):
        fracs = _uniq(run, idx, "frac")
        if len(fracs) < 2 or idx.size < 3:
            continue
        w = fit.critical_norm(run.lanes[column][idx], n_boot=0)
        out.append(
            _Cand(
                run,
                dict(cond, frac=tuple(fracs)),
                w["cv"],
                None,
                f"n={idx.size} over {len(fracs)} fractions, median {fmt(w['median'])}",
            )
        )
    return out


def _ln_free_groups(ref, runs, column, pooled):
    """(run, condition, lane indices) of the grokked free lanes of LayerNorm models whose
    runs have ``column``, grouped by the free-run keys except those ``pooled``."""
    keys = tuple(k for k in FREE_KEYS if k not in pooled)
    for run in runs:
        if column not in run.lanes:
            continue
        for cond, idx in _groups(run, run.arm("free") & run.ok() & run.lanes["grokked"], keys):
            if _model_ok(ref, cond) and cond.get("layernorm") not in (None, "none"):
                yield run, cond, idx


def _cands_ln_exponent(ref, runs):
    """Power law in p of the median unembedding norm at T_grok (free lanes pooled over the
    fractions at each p)."""
    out = []
    col = "norm_at_grok_unembed"
    for run, cond, idx in _ln_free_groups(ref, runs, col, ("p", "frac")):
        ps = _uniq(run, idx, "p")
        if len(ps) < ref.select.get("min_p", 2):
            continue
        med = [float(np.median(run.lanes[col][idx[run.lanes["p"][idx] == p]])) for p in ps]
        pl = fit.power_law(np.array(ps, float), np.array(med), seed=SEED)
        out.append(
            _Cand(
                run,
                dict(cond, p=tuple(ps), frac=_span(run, idx, "frac")),
                pl["exponent"],
                pl["exponent_ci"],
                "median ‖U‖ per p: " + ", ".join(f"{p}: {fmt(m)}" for p, m in zip(ps, med)),
            )
        )
    return out


def _cands_group_clamp(ref, runs):
    """Largest fold change (either way) of the median T_grok of a one-group clamp cell
    against the free control at the same settings."""
    out = []
    for run in runs:
        if "clamp_group" not in run.lanes:
            continue
        t, c = run.times()
        for cond, idx in _groups(run, run.arm("group_clamp") & run.ok(), CONTROL_KEYS):
            if not _model_ok(ref, cond):
                continue
            mc = _control_median(run, cond)
            folds = {}
            for g in _uniq(run, idx, "clamp_group"):
                for r in _uniq(run, idx[run.lanes["clamp_group"][idx] == g], "rho"):
                    sel = idx[
                        (run.lanes["clamp_group"][idx] == g) & np.isclose(run.lanes["rho"][idx], r)
                    ]
                    m = fit.censored_median(t[sel], c[sel])
                    folds[f"{g} ρ={r:g}"] = m / mc if (m is not None and mc) else None
            good = [f for f in folds.values() if f is not None]
            measured = max(max(good), 1 / min(good)) if good and len(good) == len(folds) else None
            out.append(
                _Cand(
                    run,
                    cond,
                    measured,
                    None,
                    f"control median {fmt(mc)}; "
                    + ", ".join(f"{k}: {fmt(v)}×" for k, v in folds.items()),
                )
            )
    return out


def _candidates(ref: paper.Reference, runs: list[Run]) -> list[_Cand]:
    k = ref.key
    if k in ("wc_lr_cv_wd3", "parity_lr_cv"):
        return _cands_wc_lr(ref, runs)
    if k == "one_shot_fold":
        return _cands_one_shot(ref, runs)
    if k == "group_one_shot":
        return _cands_group(ref, runs)
    if k in ("wc_cv",):
        return _cands_free(ref, runs, "cv")
    if k == "tgrok_free_p59":
        return _cands_free(ref, runs, "tgrok")
    if k == "wc_exponent":
        return _cands_exponent(ref, runs)
    if k.startswith("wc_p") or k in ("attn_wc", "parity_wc"):
        return _cands_free(ref, runs, "wc")
    if k.startswith("alpha_shared"):
        return _cands_alpha(ref, runs, shared=True)
    if k.startswith("alpha_") or k in ("attn_alpha", "attn_r2"):
        return _cands_alpha(ref, runs, shared=False)
    if k.startswith("tgrok_p59_rho") or k.startswith("attn_tgrok_rho"):
        return _cands_cell(ref, runs)
    if k == "ln_cv_total":
        return _cands_ln_cv(ref, runs, "norm_at_grok")
    if k == "ln_cv_unembed":
        return _cands_ln_cv(ref, runs, "norm_at_grok_unembed")
    if k == "ln_unembed_exponent":
        return _cands_ln_exponent(ref, runs)
    if k == "ln_group_clamp_fold":
        return _cands_group_clamp(ref, runs)
    if k == "norm_fold":
        return _cands_norm_fold(ref, runs)
    if k == "lr_fold":
        return _cands_lr_fold(ref, runs)
    if k in ("saturation", "attn_saturation"):
        return _cands_saturation(ref, runs)
    raise KeyError(f"no measurement for reference {k!r}")


def _seeds(run) -> int | None:
    """Seeds per cell of a run (its config's ``seeds``), for the paper-scale tolerances."""
    s = run.config.get("seeds")
    return int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None


def _schedule(run) -> str:
    """The eval schedule a run latched T_grok on (older runs: every eval point)."""
    return (
        ""
        if run.config.get("eval_schedule", "every") == "every"
        else (f"; eval {run.config['eval_schedule']}")
    )


def _row(ref, status, cand=None, note="") -> dict:
    m = None if cand is None else cand.measured
    judged = status in ("pass", "FAIL")
    seeds = None if cand is None else _seeds(cand.run)
    if judged and m is not None:
        status = "pass" if ref.passes(m, seeds) else "FAIL"
    return {
        "key": ref.key,
        "quantity": ref.quantity,
        "run": "" if cand is None else cand.run.name,
        "condition": "" if cand is None else _cond_text(cand.cond) + _schedule(cand.run),
        "seeds": seeds,
        "measured": m,
        "measured_ci": None if cand is None else cand.ci,
        "scale": ref.scale,
        "unit": ref.unit,
        "paper": ref.value,
        "paper_text": ref.text(),
        "rel_diff": ref.rel_diff(m) if (judged and m is not None) else None,
        "tolerance": ref.tolerance_at(seeds).describe(ref),
        "status": status,
        "note": note,
    }


def compare(runs: list[Run], refs: list[paper.Reference] | None = None) -> list[dict]:
    """One or more rows per paper reference: measured value, paper value, relative difference,
    tolerance and status (see the module docstring)."""
    rows = []
    for ref in refs or paper.references():
        cands = _candidates(ref, runs)
        if not cands:
            rows.append(
                _row(
                    ref,
                    "not run",
                    note=f"needs {ref.needs or 'runs at this setting'}"
                    f" (experiment: {', '.join(ref.experiments)})",
                )
            )
            continue
        scored = [(c, mismatches(c.cond, ref.protocol)) for c in cands]
        match = [c for c, mm in scored if not mm]
        if match:
            for c in match:
                if c.measured is None:
                    rows.append(_row(ref, "inconclusive", c, c.note))
                else:
                    rows.append(_row(ref, "pass" if ref.passes(c.measured) else "FAIL", c, c.note))
            continue
        best, mm = min(scored, key=lambda cm: len(cm[1]))
        want_p = ref.protocol.get("p")
        if all(k == "p" for k, _ in mm) and not isinstance(want_p, tuple):
            rows.append(
                _row(
                    ref,
                    "not run",
                    note=f"no run at p={want_p} (closest: {mm[0][1]}; "
                    f"experiment: {', '.join(ref.experiments)})",
                )
            )
            continue
        rows.append(
            _row(
                ref,
                "not comparable",
                best,
                "not the paper's protocol: "
                + "; ".join(t for _, t in mm)
                + (f" [{best.note}]" if best.note else ""),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def _ref_p(run: Run, idx: np.ndarray) -> int | None:
    ps = _uniq(run, idx, "p")
    if not ps:
        return None
    return 59 if 59 in ps else ps[0]


def _ref_lr(run: Run, idx: np.ndarray):
    cfg = run.config.get("lr")
    lrs = _uniq(run, idx, "lr")
    if isinstance(cfg, list) and cfg:
        for v in cfg:
            if any(_same(v, x) for x in lrs):
                return next(x for x in lrs if _same(v, x))
    return lrs[0] if lrs else None


def _main_setting(run: Run, mask: np.ndarray, keys) -> np.ndarray:
    """The lanes of ``mask`` at the most populated combination of ``keys``."""
    groups = _groups(run, mask, keys)
    if not groups:
        return np.zeros(0, int)
    return max(groups, key=lambda g: g[1].size)[1]


def _fig_trajectories(run: Run, path: str):
    from grokjax import plots

    if not run.curves:
        return None, "no curves.npz in the run directory (results/ keeps only lanes.csv)"
    L = run.lanes
    usable = (run.arm("free") | run.arm("clamp")) & ~L["diverged"]
    idx = _main_setting(run, usable, ("model", "layernorm", "frac", "wd", "d", "hidden"))
    if not idx.size:
        return None, "no free or clamped lanes"
    p = _ref_p(run, idx)
    idx = idx[L["p"][idx] == p]
    lr = _ref_lr(run, idx)
    idx = idx[np.isclose(L["lr"][idx], lr)]
    free = idx[L["arm"][idx] == "free"]
    clamp = idx[L["arm"][idx] == "clamp"]
    seeds = sorted({int(s) for s in L["seed"][idx]})
    seed = next((s for s in seeds if (L["seed"][free] == s).any()), seeds[0])
    chosen = []
    f = free[L["seed"][free] == seed]
    if f.size:
        chosen.append((f[0], "free"))
    cs = clamp[L["seed"][clamp] == seed]
    rhos = sorted({float(r) for r in L["rho"][cs]})
    if len(rhos) > 3:
        rhos = [rhos[0], min(rhos, key=lambda r: abs(r - 1.0)), rhos[-1]]
    for r in rhos:
        i = cs[np.isclose(L["rho"][cs], r)]
        if i.size:
            chosen.append((i[0], f"clamped, ρ = {r:g}"))
    if not chosen:
        return None, "no lane to draw"
    wc = _wc_of(
        run,
        {
            "p": p,
            "lr": lr,
            "model": _py(L["model"][idx[0]]),
            "frac": _py(L["frac"][idx[0]]),
            "wd": _py(L["wd"][idx[0]]),
        },
    )
    panels = []
    for i, label in chosen:
        st = run.curves["steps"][i]
        keep = st >= 0
        tgt = _py(L["target_norm"][i]) if L["arm"][i] == "clamp" else None
        panels.append(
            {
                "label": f"{label} (seed {int(L['seed'][i])})",
                "steps": st[keep],
                "train_acc": run.curves["train_acc"][i][keep],
                "test_acc": run.curves["test_acc"][i][keep],
                "norm": run.curves["norm"][i][keep],
                "t_mem": _py(L["T_mem"][i]),
                "t_grok": _py(L["T_grok"][i]),
                "wc": wc,
                "target": tgt,
            }
        )
    title = f"{run.name}: accuracy and weight norm (p={p}, lr={lr:g}, {_py(L['model'][idx[0]])})"
    return plots.trajectories(panels, path, title=title), None


def _fig_wc(run: Run, path: str):
    from grokjax import plots

    L = run.lanes
    base = run.arm("free") & run.ok()
    idx = _main_setting(run, base, ("model", "layernorm", "lr", "wd", "d", "hidden"))
    if not idx.size:
        return None, "no free lanes"
    ps, fracs = _uniq(run, idx, "p"), _uniq(run, idx, "frac")
    if len(ps) < 2 and len(fracs) < 2:
        return None, f"one p ({_fmt_val(ps[0])}) and one train fraction ({_fmt_val(fracs[0])})"

    def series(along, other, other_vals):
        out = []
        for ov in other_vals:
            sub = idx[np.isclose(L[other][idx], ov)]
            xs = _uniq(run, sub, along)
            if len(xs) < 2:
                continue
            med, lo, hi, sx, sy = [], [], [], [], []
            for x in xs:
                cell = sub[np.isclose(L[along][sub], x)]
                w = _wc(run, cell)
                med.append(np.nan if w["median"] is None else w["median"])
                lo.append(np.nan if w["ci"][0] is None else w["ci"][0])
                hi.append(np.nan if w["ci"][1] is None else w["ci"][1])
                g = cell[L["grokked"][cell]]
                sx += [x] * g.size
                sy += list(L["norm_at_grok"][g])
            pl = fit.power_law(np.array(xs, float), np.array(med), seed=SEED)
            lab = f"frac {ov:g}" if other == "frac" else f"p = {ov}"
            out.append(
                {
                    "label": lab,
                    "x": xs,
                    "median": med,
                    "lo": lo,
                    "hi": hi,
                    "seeds_x": sx,
                    "seeds_y": sy,
                    "fit": pl,
                }
            )
        return out

    by_p = series("p", "frac", fracs)
    by_frac = series("frac", "p", ps)
    if not by_p and not by_frac:
        return None, "no setting with two or more p or fractions"
    cond = {
        "model": _py(L["model"][idx[0]]),
        "lr": _py(L["lr"][idx[0]]),
        "wd": _py(L["wd"][idx[0]]),
        "d": _py(L["d"][idx[0]]),
        "hidden": _py(L["hidden"][idx[0]]),
        "frac": fracs[0] if len(fracs) == 1 else tuple(fracs),
    }
    proto = {k: v for k, v in paper.MLP_PROTOCOL.items()}
    overlay = paper.WC_BY_P if not mismatches(cond, proto) else None
    title = f"{run.name}: critical norm W_c ({cond['model']}, lr={cond['lr']:g}, wd={cond['wd']:g})"
    return plots.wc_scaling(by_p, by_frac, path, paper_points=overlay, title=title), None


def _delay_series(run: Run, idx: np.ndarray, law: dict, group: str, label) -> list[dict]:
    L = run.lanes
    t, c = run.times()
    out = []
    for gk, pg in law["per_group"].items():
        sel = idx[np.array([str(_py(v)) == gk for v in L[group][idx]])]
        cells = [cl for cl in law["cells"] if cl["group"] == gk and cl["median"] is not None]
        line = (pg["alpha"], pg["intercept"]) if pg["alpha"] is not None else None
        ci = pg.get("alpha_ci") or [None, None]
        lab = label(gk)
        ll = None
        if line:
            ll = f"{lab}: α = {pg['alpha']:.2f}"
            if ci[0] is not None:
                ll += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
            if pg.get("r2") is not None:
                ll += f", R² = {pg['r2']:.3f}"
        out.append(
            {
                "label": lab,
                "rho": L["rho"][sel],
                "t": t[sel],
                "censored": c[sel],
                "cells_rho": [cl["rho"] for cl in cells],
                "cells_median": [cl["median"] for cl in cells],
                "line": line,
                "line_label": ll,
            }
        )
    return out


LAW_RHO_MAX = 1.25  # the paper's law holds up to here and saturates above (rho 1.30)


def _fig_delay(run: Run, path_p: str, path_lr: str):
    from grokjax import plots

    L = run.lanes
    made, skipped = [], []
    base = run.arm("clamp") & run.ok() & np.isfinite(L["rho"])
    idx = _main_setting(
        run, base, ("model", "layernorm", "frac", "wd", "d", "hidden", "t_int", "clamp_mode")
    )
    if not idx.size or len(_uniq(run, idx, "rho")) < 2:
        return [], [("delay law", "no clamped lanes at two or more rho")]
    model = _py(L["model"][idx[0]])
    lr = _ref_lr(run, idx)
    at_lr = idx[np.isclose(L["lr"][idx], lr)]
    # the line is fitted where the paper's law holds (rho <= 1.25: it saturates above); the
    # seeds of every rho are drawn
    in_law = at_lr[L["rho"][at_lr] <= LAW_RHO_MAX + 1e-9]
    law = _delay(run, in_law if len(_uniq(run, in_law, "rho")) >= 2 else at_lr, group="p")
    series = _delay_series(run, at_lr, law, "p", lambda g: f"p = {g}")
    collapse = None
    if len(law["per_group"]) >= 2 and law["alpha"] is not None:
        t, _ = run.times()
        pts = []
        for gk, c0 in law["intercepts"].items():
            if c0 is None:
                continue
            cells = [cl for cl in law["cells"] if cl["group"] == gk and cl["median"] is not None]
            sel = at_lr[(L["p"][at_lr] == int(gk)) & L["grokked"][at_lr]]
            pts.append(
                {
                    "label": f"p = {gk}",
                    "rho": [cl["rho"] for cl in cells],
                    "y": [math.log(cl["median"]) - c0 for cl in cells],
                    "seeds_rho": L["rho"][sel],
                    "seeds_y": np.log(t[sel]) - c0,
                }
            )
        ci = law["alpha_ci"]
        lab = f"shared α = {law['alpha']:.2f}"
        if ci[0] is not None:
            lab += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        lab += f", R² = {law['r2']:.3f}"
        collapse = {"alpha": law["alpha"], "label": lab, "points": pts}
    made += plots.delay_law_groups(
        series,
        path_p,
        collapse=collapse,
        title=f"{run.name}: delay law per p (lr={lr:g}, {model}; fit over ρ ≤ {LAW_RHO_MAX:g})",
    )
    if len(_uniq(run, idx, "lr")) >= 2:
        p = _ref_p(run, idx)
        at_p = idx[L["p"][idx] == p]
        law_lr = _delay(run, at_p, group="lr")
        s = _delay_series(run, at_p, law_lr, "lr", lambda g: f"lr = {float(g):g}")
        made += plots.delay_law_groups(
            s, path_lr, title=f"{run.name}: delay law per lr (p={p}, {model})"
        )
    else:
        skipped.append(("delay law per lr", "one learning rate"))
    return made, skipped


def _fig_identity(run: Run, path: str):
    from grokjax import plots

    L = run.lanes
    m = run.arm("clamp") & run.ok() & L["grokked"] & (L["target_norm"] > 0)
    if not m.any():
        return None, "no grokked clamped lanes"
    series = []
    for cond, idx in _groups(run, m, ("p", "clamp_mode", "model")):
        lab = f"p = {cond['p']}"
        if len(_uniq(run, np.nonzero(m)[0], "clamp_mode")) > 1:
            lab += f", {cond['clamp_mode']}"
        if len(_uniq(run, np.nonzero(m)[0], "model")) > 1:
            lab += f", {cond['model']}"
        series.append(
            {"label": lab, "target": L["target_norm"][idx], "norm": L["norm_at_grok"][idx]}
        )
    return plots.norm_identity(series, path, title=f"{run.name}: ‖W‖ at T_grok vs held norm"), None


def _fig_layernorm(runs: list[Run], rows: list[dict], path: str):
    """Per-group CV of the norm at T_grok, one bar set per (run, LayerNorm setting, p): the
    free grokked attention lanes pooled over the train fractions at the most common lr and
    wd (the per-cell CVs are in the table)."""
    from grokjax import plots

    if not rows:
        return (
            None,
            "not run (needs the transformer experiment: attention runs with and without LayerNorm)",
        )
    groups = [k[3:] for k in rows[0] if k.startswith("cv_")]
    bars = []
    for run in runs:
        attn = run.lanes["model"] == "attn"
        good = attn & run.arm("free") & run.ok() & run.lanes["grokked"]
        if not good.any():
            continue
        main = _main_setting(run, good, ("lr", "wd"))
        lr, wd = _py(run.lanes["lr"][main[0]]), _py(run.lanes["wd"][main[0]])
        at = good & np.isclose(run.lanes["lr"], lr) & np.isclose(run.lanes["wd"], wd)
        for cond, idx in _groups(run, at, ("layernorm", "p")):
            if idx.size < 2:  # a CV needs two lanes
                continue
            cv = {
                g: fit.critical_norm(
                    run.lanes["norm_at_grok" if g == "global" else f"norm_at_grok_{g}"][idx],
                    n_boot=0,
                )["cv"]
                for g in groups
            }
            nf = len(_uniq(run, idx, "frac"))
            bars.append(
                {
                    "label": f"LayerNorm {cond['layernorm'] or 'unknown'}, p={cond['p']} "
                    f"(n={idx.size}, {nf} fraction{'s' if nf > 1 else ''}"
                    + (f", {run.name}" if len(runs) > 1 else "")
                    + ")",
                    "cv": cv,
                }
            )
    if not bars:
        return None, "no setting with two or more grokked free attention lanes"
    note = (
        None
        if len({r.get("layernorm") for r in rows}) > 1
        else "only one LayerNorm setting present"
    )
    return plots.layernorm_cv(
        bars[:8], groups, path, title="Per-group CV of the norm at T_grok (attention model)"
    ), note


def _fig_models(runs: list[Run], path: str):
    """The delay law of each model kind without LayerNorm, side by side: per model kind the
    clamped lanes of the single setting (run, p, lr, ...) with the most values of rho (then
    the most lanes), with its fitted line."""
    from grokjax import plots

    keys = ("model", "layernorm", "p", "lr", "frac", "wd", "d", "hidden", "t_int", "clamp_mode")
    best = {}
    for run in runs:
        L = run.lanes
        ln = L.get("layernorm")
        plain = (
            np.ones(run.n, bool) if ln is None else np.array([_py(v) in (None, "none") for v in ln])
        )
        base = run.arm("clamp") & run.ok() & np.isfinite(L["rho"]) & plain
        for cond, idx in _groups(run, base, keys):
            score = (len(_uniq(run, idx, "rho")), idx.size)
            if score[0] >= 2 and score > best.get(cond["model"], ((0, 0),))[0]:
                best[cond["model"]] = (score, run, cond, idx)
    if len(best) < 2:
        return None, (
            "needs clamped runs of two model kinds without LayerNorm, e.g. "
            "delay_sweep (MLP) and transformer (attention)"
        )
    series = []
    for model in sorted(best):
        _, run, cond, idx = best[model]
        law = _delay(run, idx, group="model")
        series += _delay_series(
            run, idx, law, "model", lambda g: f"{g} ({run.name}, p={cond['p']}, lr={cond['lr']:g})"
        )
    return plots.delay_law_groups(
        series, path, title="The delay law per model (no LayerNorm)"
    ), None


def make_figures(runs: list[Run], out: str, ln_rows: list[dict] | None = None) -> list[dict]:
    """Writes the figures (PNG + PDF) into ``out``; returns [{name, files, caption} or
    {name, skipped}]. Per run: ``<run>_trajectories``, ``<run>_wc_scaling``,
    ``<run>_delay_law`` (per p, with the shared-alpha collapse when there are several p),
    ``<run>_delay_law_lr``, ``<run>_norm_at_grok``; over all runs: ``layernorm_cv``."""
    figs = []

    def add(name, caption, fn, *args):
        try:
            files, why = fn(*args)
        except ValueError as e:
            files, why = None, f"could not draw: {e}"
        if files:
            figs.append(
                {
                    "name": name,
                    "files": [os.path.basename(f) for f in files],
                    "caption": caption + (f" ({why})" if why else ""),
                }
            )
        else:
            figs.append({"name": name, "skipped": why})

    for run in runs:
        stem = os.path.join(out, run.name)
        add(
            f"{run.name}_trajectories",
            "train/test accuracy and ‖W‖ against step (log x) for a "
            "free lane and clamped lanes of one seed; T_mem, T_grok and W_c marked",
            _fig_trajectories,
            run,
            f"{stem}_trajectories.png",
        )
        add(
            f"{run.name}_wc_scaling",
            "W_c against p and/or train fraction with power-law fits",
            _fig_wc,
            run,
            f"{stem}_wc_scaling.png",
        )
        made, skipped = _fig_delay(run, f"{stem}_delay_law.png", f"{stem}_delay_law_lr.png")
        for stemname, cap in (
            (
                f"{run.name}_delay_law",
                "T_grok against ρ per p with fitted "
                "lines; with several p also the shared-α collapse "
                "(ln T_grok − c_p against ρ)",
            ),
            (f"{run.name}_delay_law_lr", "T_grok against ρ per lr with fitted lines"),
        ):
            files = [
                os.path.basename(f) for f in made if os.path.basename(f).startswith(stemname + ".")
            ]
            if files:
                figs.append({"name": stemname, "files": files, "caption": cap})
        for what, why in skipped:
            figs.append(
                {
                    "name": f"{run.name}_{'delay_law_lr' if 'lr' in what else 'delay_law'}",
                    "skipped": why,
                }
            )
        add(
            f"{run.name}_norm_at_grok",
            "‖W‖ at T_grok against the held norm with the identity "
            "line, and the relative deviation",
            _fig_identity,
            run,
            f"{stem}_norm_at_grok.png",
        )
    add(
        "layernorm_cv",
        "per-group CV across seeds of the norm at T_grok with and without "
        "LayerNorm (attention model)",
        _fig_layernorm,
        runs,
        ln_rows if ln_rows is not None else layernorm_table(runs),
        os.path.join(out, "layernorm_cv.png"),
    )
    add(
        "delay_law_models",
        "T_grok against ρ for the MLP and the attention model (no "
        "LayerNorm), each with its own fitted α",
        _fig_models,
        runs,
        os.path.join(out, "delay_law_models.png"),
    )
    return figs


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


def _md(headers: list[str], rows: list[list]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_cell(r.get(k)) for k in cols})
    return buf.getvalue()


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    if isinstance(v, tuple):
        return " ".join(str(x) for x in v)
    return v


def _measured_text(r: dict) -> str:
    if r["measured"] is None:
        return "—"
    s = r["scale"]
    txt = fmt(r["measured"] * s) + (f" {r['unit']}" if r["unit"] else "")
    ci = r.get("measured_ci")
    if ci and ci[0] is not None and ci[1] is not None:
        txt += f" [{fmt(ci[0] * s)}, {fmt(ci[1] * s)}]"
    elif ci and ci[0] is not None:
        txt += f" [{fmt(ci[0] * s)}, ∞)"
    return txt


def _tgrok_md(rows: list[dict]) -> str:
    """Markdown: one rho × lr matrix per (run, setting)."""
    if not rows:
        return "_no lanes_"
    parts = []
    keyf = lambda r: (
        r["run"],
        r.get("model"),
        r.get("layernorm"),
        r.get("d"),
        r.get("hidden"),
        r.get("frac"),
        r.get("wd"),
        r.get("p"),
    )
    blocks: dict = {}
    for r in rows:
        blocks.setdefault(keyf(r), []).append(r)
    for rs in blocks.values():
        clamp_kinds = {(r["clamp_mode"], r["t_int"]) for r in rs if r["arm"] == "clamp"}

        def label(r):
            if r["arm"] == "free":
                return "free"
            txt = "ρ = ?" if r["rho"] is None else f"{r['rho']:g}"
            if len(clamp_kinds) > 1:
                txt += f" ({r['clamp_mode']}, t_int={r['t_int']})"
            return txt

        order = lambda r: (
            r["arm"] != "free",
            str(r["clamp_mode"]),
            _sortable(r["t_int"]),
            _sortable(None if r["rho"] == "free" else r["rho"]),
        )
        lrs = sorted({r["lr"] for r in rs}, key=_sortable)
        labels = list(dict.fromkeys(label(r) for r in sorted(rs, key=order)))
        cell = {(label(r), r["lr"]): r for r in rs}
        body = []
        for lab in labels:
            line = [lab]
            for lr in lrs:
                r = cell.get((lab, lr))
                if r is None:
                    line.append("")
                    continue
                if r["median"] is None:
                    txt = f"> {fmt(r['censored_at'])}" if r["censored_at"] else "—"
                else:
                    txt = fmt(r["median"])
                    if r["ci_lo"] is not None:
                        txt += f" [{fmt(r['ci_lo'])}, {fmt(r['ci_hi']) if r['ci_hi'] else '∞'}]"
                txt += f" ({r['n_censored']}/{r['n']} cens."
                txt += f", {r['n_diverged']} div.)" if r["n_diverged"] else ")"
                line.append(txt)
            body.append(line)
        r0 = rs[0]
        head = (
            f"**{r0['run']}** — p={r0.get('p')}, {r0.get('model')}, "
            f"frac={_fmt_val(r0.get('frac'))}, wd={_fmt_val(r0.get('wd'))}"
        )
        parts.append(head + "\n\n" + _md(["ρ \\ lr"] + [f"{lr:g}" for lr in lrs], body))
    return "\n\n".join(parts)


def _alpha_md(rows: list[dict]) -> str:
    if not rows:
        return "_no clamped lanes at two or more rho_"
    body = [
        [
            r["run"],
            r.get("model"),
            r["p"] if r["p"] != "shared" else f"shared ({r['p_set']})",
            _fmt_val(r.get("lr")),
            f"{fmt(r['rho_min'])}–{fmt(r['rho_max'])} ({r['n_rho']})",
            fmt(r["alpha"]),
            _fmt_ci([r["alpha_ci_lo"], r["alpha_ci_hi"]]),
            fmt(r["r2"]),
            fmt(r["alpha_mle"]),
            r["n_lanes"],
            r["n_censored"],
            r["n_cells_excluded"],
        ]
        for r in rows
    ]
    return _md(
        [
            "run",
            "model",
            "p",
            "lr",
            "ρ range (values)",
            "α",
            "95% CI",
            "R²",
            "α (censored MLE)",
            "lanes",
            "censored",
            "cells left out",
        ],
        body,
    )


def _wc_md(rows: list[dict]) -> str:
    if not rows:
        return "_no free lanes_"
    body = [
        [
            r["run"],
            r.get("model"),
            r["p"],
            _fmt_val(r.get("frac")),
            _fmt_val(r.get("lr")),
            _fmt_val(r.get("wd")),
            fmt(r["Wc_median"]),
            fmt(None if r["Wc_cv"] is None else 100 * r["Wc_cv"]),
            _fmt_ci([r["Wc_ci_lo"], r["Wc_ci_hi"]]),
            f"{r['Wc_n']}/{r['n_lanes']}",
            fmt(r["free_T_grok_median"]),
        ]
        for r in rows
    ]
    return _md(
        [
            "run",
            "model",
            "p",
            "frac",
            "lr",
            "wd",
            "W_c (median)",
            "CV (%)",
            "95% CI",
            "n grokked / lanes",
            "free T_grok median",
        ],
        body,
    )


def _ln_md(rows: list[dict]) -> str:
    groups = [k[3:] for k in rows[0] if k.startswith("cv_")]
    body = [
        [r["run"], r.get("layernorm"), r["p"], r["n"]]
        + [fmt(None if r[f"cv_{g}"] is None else 100 * r[f"cv_{g}"]) for g in groups]
        for r in rows
    ]
    return _md(["run", "LayerNorm", "p", "n"] + [f"CV {g} (%)" for g in groups], body)


STATUS_ORDER = ("pass", "FAIL", "inconclusive", "not comparable", "not run")


def summary_lines(counts: list[dict], comparison: list[dict]) -> list[str]:
    lines = [
        f"{c['run']} ({c['experiment']}, {c['lanes']} lanes): {c['censored']} censored, "
        f"{c['diverged']} diverged"
        for c in counts
    ]
    tally = {s: sum(r["status"] == s for r in comparison) for s in STATUS_ORDER}
    lines.append("paper comparison: " + ", ".join(f"{v} {k}" for k, v in tally.items()))
    return lines


def render(data: dict) -> str:
    """report.md from the dict that :func:`build` assembles."""
    out = [
        "# grokjax report",
        "",
        "Every number below is recomputed from the runs' `lanes.csv` with `grokjax.fit` "
        "(diverged lanes left out, lanes that did not grok right-censored at their steps "
        "run); the paper's values come from `grokjax/paper.py` (arXiv 2606.13753).",
        "",
        "## Runs",
        "",
    ]
    out.append(
        _md(
            [
                "run",
                "experiment",
                "preset",
                "directory",
                "lanes",
                "free",
                "clamped",
                "other arms",
                "grokked",
                "censored",
                "diverged",
            ],
            [
                [
                    c["run"],
                    c["experiment"],
                    c["preset"],
                    f"`{c['path']}`",
                    c["lanes"],
                    c["free"],
                    c["clamped"],
                    c["other"],
                    c["grokked"],
                    c["censored"],
                    c["diverged"],
                ]
                for c in data["runs"]
            ],
        )
    )
    out += [
        "",
        "Censored: did not reach test accuracy 0.9 within the step budget (counted as "
        "right-censored at the steps run); diverged lanes are left out of every fit.",
    ]
    out += ["", "## Experiments", ""]
    out.append(
        _md(
            ["experiment", "status", "runs", "what it measures"],
            [
                [e["experiment"], e["status"], ", ".join(e["runs"]), e["about"]]
                for e in data["experiments"]
            ],
        )
    )
    out += [
        "",
        "## Headline numbers against the paper",
        "",
        "Status: **pass** / **FAIL** — the run follows the paper's protocol and the number "
        "is / is not within the tolerance; **inconclusive** — it follows the protocol but "
        "the number is not identifiable (e.g. a median beyond the step budget); **not "
        "comparable** — the closest run differs from the paper's protocol (differences "
        "listed; its number is shown, not judged); **not run** — no run has the design the "
        "number needs. Tolerances (ours; the paper gives point values): W_c within 5 %, "
        "alpha within 15 %, R² ≥ 0.98, median T_grok within 25 %, fold changes within a "
        "factor 1.5, W_c exponent within the paper's range ± 0.03, seed CV of W_c ≤ 3 %; "
        "a run on the paper's seed counts (≥ 12 seeds per cell) is held to W_c within 2 %, "
        "alpha within ±0.5 and median T_grok within 10 %. "
        "Relative difference = (measured − paper) / paper.",
        "",
    ]
    out.append(
        _md(
            [
                "quantity",
                "run",
                "condition",
                "seeds",
                "measured",
                "paper",
                "rel. diff",
                "tolerance",
                "status",
                "note",
            ],
            [
                [
                    r["quantity"],
                    r["run"],
                    r["condition"],
                    "" if r.get("seeds") is None else str(r["seeds"]),
                    _measured_text(r),
                    r["paper_text"],
                    "—" if r["rel_diff"] is None else f"{100 * r['rel_diff']:+.1f} %",
                    r["tolerance"],
                    f"**{r['status']}**",
                    r["note"],
                ]
                for r in data["comparison"]
            ],
        )
    )
    out += ["", "Summary: " + summary_lines(data["runs"], data["comparison"])[-1], ""]
    out += [
        "## Tables",
        "",
        "### Median T_grok (ρ × lr)",
        "",
        "Kaplan-Meier median (steps to test accuracy ≥ 0.9) with a 95 % bootstrap CI over "
        "lanes, and the censored (never grokked within the budget) / total lanes per cell. "
        "Files: `tgrok_matrix.md`, `tgrok_matrix.csv`.",
        "",
        data["tables_md"]["tgrok_matrix"],
        "",
        "### Delay-law slope α per p",
        "",
        "ln T_grok = α·ρ + c fitted to log cell medians per (p, lr); `shared` rows fit one α "
        "with an intercept per p. CIs: percentile bootstrap over lanes within cells. "
        "Files: `alpha.md`, `alpha.csv`.",
        "",
        data["tables_md"]["alpha"],
        "",
        "### Critical norm W_c per p",
        "",
        "W_c = median ‖W‖ at T_grok over the grokked free lanes; CV = std/mean across seeds; "
        "95 % bootstrap CI of the median. Files: `wc.md`, `wc.csv`.",
        "",
        data["tables_md"]["wc"],
        "",
    ]
    if data["tables_md"].get("layernorm_cv"):
        out += [
            "### LayerNorm: per-group CV of the norm at T_grok",
            "",
            data["tables_md"]["layernorm_cv"],
            "",
        ]
    if data["tables_md"].get("table2"):
        out += [
            "### Table 2: which properties of the norm at grokking transfer to sparse parity",
            "",
            "Generated from the parity runs' lanes (thresholds in experiments/parity.py; "
            "the modular column summarises the paper's MLP results). Files: `table2.md`, "
            "`table2.csv`.",
            "",
            data["tables_md"]["table2"],
            "",
        ]
    out += [
        "## Experiment results",
        "",
        "Each experiment's own summary (experiments/<name>.py), recomputed from its "
        "lanes.csv; medians are Kaplan-Meier medians with censored lanes counted.",
        "",
    ]
    for s in data.get("sections", []):
        title = f"### {s['experiment']}" + (f": {s['run']}" if s["run"] else "")
        out += [title, ""]
        if s["run"] is None:
            out += [s["text"], ""]
            continue
        out += ["```text", s["text"], "```", ""]
        out += [f"Figure: `{f}`" for f in s["figures"]] + [""]
    out += ["## Figures", ""]
    for f in data["figures"]:
        if "files" in f:
            out.append(f"- `{'`, `'.join(f['files'])}`: {f['caption']}")
        else:
            out.append(f"- {f['name']}: skipped — {f['skipped']}")
    out += ["", "## Sources of the paper's values", ""]
    out += [f"- `{r.key}` ({r.text()}): {r.source}" for r in paper.references()]
    return "\n".join(out) + "\n"


# Experiments whose own fit / summary / figure (experiments/<name>.py) the report reruns on
# the lanes read back from lanes.csv.
SECTION_EXPERIMENTS = (
    "critical_norm",
    "lr_matrix",
    "dense_rho",
    "norm_controls",
    "log_delay",
    "transformer",
    "parity",
)


def experiment_sections(runs: list[Run], out: str) -> list[dict]:
    """Per run of a :data:`SECTION_EXPERIMENTS` experiment: its fit recomputed from lanes.csv
    with the experiment's own fit function, its summary text and its figure (file names
    prefixed with the run name). Experiments without a run get a "not run" entry."""
    import importlib

    out_rows = []
    for name in SECTION_EXPERIMENTS:
        rs = [r for r in runs if r.experiment == name]
        if not rs:
            out_rows.append(
                {
                    "experiment": name,
                    "run": None,
                    "status": "not run",
                    "text": f"not run (python -m experiments.{name})",
                    "fit": None,
                    "figures": [],
                }
            )
            continue
        spec = importlib.import_module(f"experiments.{name}").SPEC
        fields = {f.name for f in dataclasses.fields(spec.config_cls)}
        for run in rs:
            cfg = spec.config_cls(**{k: v for k, v in run.config.items() if k in fields})
            lanes = _read_lanes(os.path.join(run.path, "lanes.csv"))
            for k in CONFIG_FIELDS:  # settings recorded once in config.json, per lane here
                if k not in lanes and k in run.lanes:
                    lanes[k] = run.lanes[k]
            try:
                fitted = spec.fit(lanes, cfg)
                text = spec.summary(fitted, cfg)
                figs = spec.figure(lanes, fitted, run.curves, out, prefix=f"{run.name}_") or []
            except (KeyError, ValueError, TypeError, IndexError) as e:
                # e.g. a run directory written before the experiment recorded its cell columns:
                # the generic tables above still use it; its own section says why it is absent
                out_rows.append(
                    {
                        "experiment": name,
                        "run": run.name,
                        "status": "unreadable",
                        "text": f"cannot recompute {name} from {run.path}/lanes.csv "
                        f"({type(e).__name__}: {e})".replace("\n", " "),
                        "fit": None,
                        "figures": [],
                    }
                )
                continue
            out_rows.append(
                {
                    "experiment": name,
                    "run": run.name,
                    "status": "run",
                    "text": text,
                    "fit": fitted,
                    "figures": [os.path.relpath(f, out) for f in figs],
                }
            )
    return out_rows


def table2_rows(sections: list[dict]) -> list[dict]:
    """The paper's Table 2 as generated by the parity runs' own fits (one row per run and
    property: the paper's entries for modular arithmetic and for parity, the measured
    evidence and whether the parity entry holds)."""
    rows = []
    for s in sections:
        if s["experiment"] != "parity" or not s.get("fit"):
            continue
        for r in s["fit"].get("table2", []):
            rows.append(
                {
                    "run": s["run"],
                    "property": r["property"],
                    "paper_modular": r.get("paper_modular"),
                    "paper_parity": r.get("paper_parity"),
                    "measured": r.get("evidence"),
                    "transfers": r.get("transfers"),
                }
            )
    return rows


def _table2_md(rows: list[dict]) -> str:
    return _md(
        [
            "property",
            "paper: modular MLP",
            "paper: parity",
            "measured (parity run)",
            "holds for parity here",
            "run",
        ],
        [
            [
                r["property"],
                r["paper_modular"],
                r["paper_parity"],
                r["measured"],
                f"**{r['transfers']}**",
                r["run"],
            ]
            for r in rows
        ],
    )


def _experiments(runs: list[Run]) -> list[dict]:
    rows = []
    names = list(KNOWN_EXPERIMENTS) + sorted({r.experiment for r in runs} - set(KNOWN_EXPERIMENTS))
    for e in names:
        rs = [r.name for r in runs if r.experiment == e]
        about = KNOWN_EXPERIMENTS.get(e, "not known to the report: only generic tables/figures")
        rows.append(
            {"experiment": e, "status": "run" if rs else "not run", "runs": rs, "about": about}
        )
    return rows


def build(run_dirs: list[str], out: str) -> dict:
    """Loads the runs, writes report.md, report.json, the tables and the figures into ``out``;
    returns the report data (``text`` holds report.md)."""
    from grokjax.results import write_text

    runs = load_runs(run_dirs)
    os.makedirs(out, exist_ok=True)
    counts = [run_counts(r) for r in runs]
    tables = {"tgrok_matrix": tgrok_matrix(runs), "alpha": alpha_table(runs), "wc": wc_table(runs)}
    ln_rows = layernorm_table(runs)
    if ln_rows:
        tables["layernorm_cv"] = ln_rows
    tables_md = {
        "tgrok_matrix": _tgrok_md(tables["tgrok_matrix"]),
        "alpha": _alpha_md(tables["alpha"]),
        "wc": _wc_md(tables["wc"]),
    }
    if ln_rows:
        tables_md["layernorm_cv"] = _ln_md(ln_rows)
    for k, rows in tables.items():
        write_text(os.path.join(out, f"{k}.csv"), _csv(rows))
        write_text(os.path.join(out, f"{k}.md"), tables_md[k] + "\n")
    data = {
        "runs": counts,
        "experiments": _experiments(runs),
        "comparison": compare(runs),
        "tables": tables,
        "tables_md": tables_md,
    }
    data["figures"] = make_figures(runs, out, ln_rows)
    data["sections"] = experiment_sections(runs, out)
    t2 = table2_rows(data["sections"])
    if t2:
        tables["table2"] = t2
        tables_md["table2"] = _table2_md(t2)
        write_text(os.path.join(out, "table2.csv"), _csv(t2))
        write_text(os.path.join(out, "table2.md"), tables_md["table2"] + "\n")
    text = render(data)
    write_text(os.path.join(out, "report.md"), text)
    js = {k: v for k, v in data.items() if k != "tables_md"}
    write_text(
        os.path.join(out, "report.json"),
        json.dumps(_jsonable(js), indent=1, allow_nan=False) + "\n",
    )
    data["text"] = text
    return data


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
