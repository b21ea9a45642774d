"""k-sparse parity: which properties of the norm at grokking transfer from modular arithmetic.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.parity                  # preset quick (default)
    python -m experiments.parity --preset paper   # the paper's grid (GPU)

The task: n bits in {-1, +1}, the label is the product of k = 3 fixed relevant bits; every seed
draws its own m training and n_test test rows. The model: an MLP on the bits with no embedding
(W1 n×H, GELU, W2 H×2; biases not decayed and not in the norm), full-batch AdamW. Free runs over
the data size (m at the reference n, n at the reference m) and over lr × wd at the reference
(n, m); then ||W|| held at rho·W_c from t_int (W_c = median norm at T_grok of the grokked free
lanes of the reference cell), on the same seeds. Medians of T_grok are Kaplan-Meier medians:
lanes that do not grok within the budget are right-censored, never dropped.

Reported (fit.json, from lanes.csv only): per cell W_c (median norm at grokking, seed CV) and
the median T_grok; W_c across wd, lr, m and n; the parity frontier (norm at grokking against
T_grok over wd) with the clamped cells placed on it; and a generated version of the paper's
Table 2, one row per property with the paper's entry, the measured values and whether the
property transfers (yes / no / inconclusive, by the thresholds defined in this module):
grokking occurs; the norm at grokking is set by weight decay; it is invariant to lr (~3 %); it
is not invariant to the amount of data; no regularization-unreachable above-norm delay (the
clamped rho > 1 delay is within what free training reaches by changing wd).

Presets (lane-steps are upper bounds: lanes stop ~10 % after grokking):
  paper  n=30, k=3, H=512, 2000 test rows, lr 1e-3, wd 1, t_int 1000, 16 seeds, 50k-step
         budget. Free: m in {600, 1000, 1500} at n=30 and n in {20, 40} at m=1000; lr in
         {5e-4, 1e-3, 2e-3} × wd in {0.3, 0.5, 1, 2, 3, 5} at n=30, m=1000 (the shared cell
         n=30, m=1000, lr 1e-3, wd 1 once); clamps at rho in {0.9, 1.3}. 384 lanes, 5 programs;
         GPU-sized (≤ 19.2 M lane-steps). On the 2-core CPU an n=30, m=1000 lane runs ~4 ms
         a step: 4 seeds of the reference cell there (60 s) grokked at steps 2190-3870 after
         memorising by step 200, at a median norm of 21.6 (paper W_c 20.6). Paper: parity
         groks with W_c ≈ 20.6 at n=30, m=1000; W_c is set by weight decay, invariant to lr
         (~3 %), not invariant to the amount of data; no regularization-unreachable
         above-norm delay.
  quick  scaled down: n=20 (not 30), m=500 (not 1000), H=128 (not 512), lr 3e-3 (not 1e-3),
         t_int 200 (not 1000), 8 seeds (not 16), 8000-step budget (not 50k); m in {350, 500,
         800} at n=20 and n in {16, 24} at m=500; lr in {1.5e-3, 3e-3, 6e-3} × wd in {0.3,
         0.5, 1, 2, 5} (no wd 3); clamps at rho in {0.9, 1.3}. 168 lanes. Measured 171 s on
         the 2-core CPU (shared with another job, so times are noisy). It showed every
         property of the paper's parity column: 143/152 free lanes grokked after fitting the
         train set (median T_grok/T_mem 6.4; 9 censored, 7 of them at lr 1.5e-3, wd 5);
         W_c = 13.4 at the reference cell; W_c fell from 16.6 to 7.3 as wd rose from 0.3 to
         5 (Spearman -1); across the 4× lr range W_c = 13.56 / 13.41 / 13.46 (CV 0.6 %)
         while T_grok moved 3.4×; across m = 350 / 500 / 800 W_c = 12.65 / 13.41 / 15.14
         (CV 9.3 %). Held at rho 0.9 the lanes grokked at 605 steps (1.02× the free
         frontier at that norm), at rho 1.3 at 1640 steps, within the 550-1810 that free
         training reaches over wd and 0.83× the frontier extrapolated to the held norm: no
         unreachable delay. The frontier is U-shaped in this model: wd 5 gives the lowest
         norm and a long delay again (slow memorisation).
  tiny   n=12, m=300, H=64, 300 test rows, lr {5e-3, 1e-2} × wd {0.5, 1, 2}, m {200, 300},
         2 seeds, 2000 steps: ~25-35 s on the 2-core CPU (mostly compilation); a test of the
         pipeline only.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys

import numpy as np

from grokjax import api, cli, experiment, fit, registry

from experiments import common
from experiments.common import fmt

CONFIG_FORMAT = 1

PRESETS = {
    "paper": dict(
        n_bits=30,
        m=1000,
        k_bits=3,
        n_test=2000,
        hidden=512,
        seeds=16,
        lr=1e-3,
        wd=1.0,
        t_int=1000,
        steps=50_000,
        m_values=[600, 1000, 1500],
        n_values=[20, 40],
        lrs=[5e-4, 1e-3, 2e-3],
        wds=[0.3, 0.5, 1.0, 2.0, 3.0, 5.0],
        rho=[0.9, 1.3],
    ),
    "quick": dict(
        n_bits=20,
        m=500,
        k_bits=3,
        n_test=2000,
        hidden=128,
        seeds=8,
        lr=3e-3,
        wd=1.0,
        t_int=200,
        steps=8000,
        m_values=[350, 500, 800],
        n_values=[16, 24],
        lrs=[1.5e-3, 3e-3, 6e-3],
        wds=[0.3, 0.5, 1.0, 2.0, 5.0],
        rho=[0.9, 1.3],
    ),
    "tiny": dict(
        n_bits=12,
        m=300,
        k_bits=3,
        n_test=300,
        hidden=64,
        seeds=2,
        lr=1e-2,
        wd=1.0,
        t_int=50,
        steps=2000,
        m_values=[200, 300],
        n_values=[],
        lrs=[5e-3, 1e-2],
        wds=[0.5, 1.0, 2.0],
        rho=[0.9, 1.3],
        chunk_steps=250,
    ),
}

# Table 2 criteria: what "transfers" means for each property, from the measured values.
GROK_FRACTION = 0.5  # (a) grokking occurs: at least half of the free lanes grok ...
MEMORISED_FIRST = 0.5  # ... and at least half of those fit the train set (T_mem) first
WD_FOLD = 1.10  # (b) set by wd: W_c moves >= 10 % across the wd range (the seed CV of
WD_RANK_CORR = 0.8  #     W_c is a few %), monotonically (|Spearman(wd, W_c)| >= 0.8)
LR_CV = 0.05  # (c) invariant to lr: CV of W_c across lr <= 5 % (paper ~3 %)
DATA_CV = 0.05  # (d) not invariant to data: CV of W_c across m > 5 %
REACH_SLACK = 1.25  # (e) the clamped rho > 1 median T_grok is reachable by free training if
#     it is <= 1.25 × the longest free median over wd (the spread of a
#     median over a few seeds) ...
OFF_FRONTIER = 2.0  # ... or lies within 2× of the free frontier (log T_grok linear in the
#     norm between, or beyond, the free wd cells) at the held norm


@dataclasses.dataclass
class Config(experiment.BaseConfig):
    experiment: str = "parity"
    config_format: int = CONFIG_FORMAT
    op: str = "parity"
    n_bits: int = 30  # reference number of bits n
    m: int = 1000  # reference number of training rows
    k_bits: int = 3
    n_test: int = 2000
    hidden: int = 512
    seeds: int = 16
    lr: float = 1e-3  # reference lr and wd (W_c for the clamps comes from this cell)
    wd: float = 1.0
    t_int: int = 1000
    steps: int = 50_000  # step budget of every lane
    m_values: list = dataclasses.field(default_factory=lambda: [600, 1000, 1500])
    n_values: list = dataclasses.field(default_factory=lambda: [20, 40])
    lrs: list = dataclasses.field(default_factory=lambda: [5e-4, 1e-3, 2e-3])
    wds: list = dataclasses.field(default_factory=lambda: [0.3, 0.5, 1.0, 2.0, 3.0, 5.0])
    rho: list = dataclasses.field(default_factory=lambda: [0.9, 1.3])

    def validate(self) -> None:
        from grokjax.data import PARITY, validate_parity

        if self.op != PARITY:
            raise cli.UsageError(f"--op must be {PARITY} for this experiment, got {self.op!r}")
        for n, m in self.sizes():
            try:
                validate_parity(n, self.k_bits, m, self.n_test)
            except ValueError as e:
                raise cli.UsageError(str(e)) from None
        if self.seeds < 1:
            raise cli.UsageError(f"--seeds must be >= 1, got {self.seeds}")
        if self.hidden < 1:
            raise cli.UsageError(f"--hidden must be >= 1, got {self.hidden}")
        experiment.positive("lr", self.lr)
        experiment.positive("lrs", self.lrs)
        experiment.positive("wd", self.wd, allow_zero=True)
        experiment.positive("wds", self.wds, allow_zero=True)
        experiment.positive("rho", self.rho)
        if self.steps < 1:
            raise cli.UsageError(f"--steps must be >= 1, got {self.steps}")
        if not 0 <= self.t_int < self.steps:
            raise cli.UsageError(f"t_int={self.t_int} is beyond the step budget ({self.steps})")
        experiment.BaseConfig.validate(self)

    def sizes(self) -> list:
        """(n, m) of every free cell at the reference lr and wd, reference first (each is
        its own program)."""
        out = (
            [(self.n_bits, self.m)]
            + [(self.n_bits, m) for m in self.m_values]
            + [(n, self.m) for n in self.n_values]
        )
        return list(dict.fromkeys((int(n), int(m)) for n, m in out))

    def grid(self) -> list:
        """(lr, wd) of the free cells at the reference (n, m); the reference (lr, wd) first."""
        out = [(self.lr, self.wd)] + [(lr, wd) for lr in self.lrs for wd in self.wds]
        uniq = []
        for c in out:
            if not any(math.isclose(c[0], u[0]) and math.isclose(c[1], u[1]) for u in uniq):
                uniq.append((float(c[0]), float(c[1])))
        return uniq


def cell_name(n: int, m: int, lr: float, wd: float) -> str:
    return f"n{n}-m{m}-lr{lr:g}-wd{wd:g}"


def static_of(cfg: Config, n: int, m: int):
    """The engine's Static for n bits and m training rows."""
    from grokjax.lane import Static
    from grokjax.models import ModelSpec

    return Static(
        model=ModelSpec(kind="bits", p=int(n), hidden=cfg.hidden, dtype=cfg.dtype),
        op="parity",
        n_train=int(m),
        n_test=cfg.n_test,
        k_bits=cfg.k_bits,
        **cfg.static_kwargs(),
    )


def _lane(cfg: Config, n: int, m: int, seed: int, **kw) -> dict:
    # (no p, no frac: those are a modular task's; see grokjax.schema)
    return dict(
        seed=seed,
        n_bits=n,
        n_train=m,
        k_bits=cfg.k_bits,
        n_test=cfg.n_test,
        model="bits",
        hidden=cfg.hidden,
        budget=cfg.steps,
        **kw,
    )


def free_rows(cfg: Config, n: int, m: int) -> list:
    """The free lanes of one (n, m) program; ``grids`` tags the sub-grids a cell belongs to
    ("size": data-amount cells at the reference lr, wd; "lr_wd": the lr × wd grid at the
    reference (n, m)); a cell in both is run once."""
    ref = (n, m) == (cfg.n_bits, cfg.m)
    combos = cfg.grid() if ref else [(cfg.lr, cfg.wd)]
    rows = []
    for lr, wd in combos:
        is_ref = math.isclose(lr, cfg.lr) and math.isclose(wd, cfg.wd)
        tags = "+".join(t for t, on in (("size", is_ref), ("lr_wd", ref)) if on)
        rows += [
            _lane(cfg, n, m, s, lr=lr, wd=wd, cell=cell_name(n, m, lr, wd), grids=tags)
            for s in cfg.seed_range()
        ]
    return rows


def plan(cfg: Config):
    n0, m0 = cfg.n_bits, cfg.m
    ref_cell = cell_name(n0, m0, cfg.lr, cfg.wd)

    def clamp(wc):
        return [
            _lane(
                cfg,
                n0,
                m0,
                s,
                lr=cfg.lr,
                wd=cfg.wd,
                rho=r,
                target_norm=r * wc,
                arm="clamp",
                t_int=cfg.t_int,
                clamp_mode="continuous",
                cell=f"clamp-rho{r:g}",
                grids="clamp",
            )
            for r in cfg.rho
            for s in cfg.seed_range()
        ]

    yield from common.free_then_clamp(
        cfg,
        static_of(cfg, n0, m0),
        free_rows(cfg, n0, m0),
        clamp,
        prefix=f"n{n0}-m{m0}-",
        ref=lambda r: r["cell"] == ref_cell,
    )
    for n, m in cfg.sizes()[1:]:
        yield experiment.Phase(
            f"n{n}-m{m}",
            static_of(cfg, n, m),
            common.lane_table(cfg, free_rows(cfg, n, m)),
            f"[n={n} m={m}] ",
        )


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _spearman(x, y) -> float | None:
    """Rank correlation of paired values (None with fewer than 3 pairs or a constant side)."""
    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    rx = np.argsort(np.argsort([a for a, _ in pairs])).astype(float)
    ry = np.argsort(np.argsort([b for _, b in pairs])).astype(float)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _listing(keys, values, label: str, spec: str = "{:g}") -> str:
    """'12.30 (wd 0.5), 11.00 (wd 1)' from parallel lists."""
    return ", ".join(f"{fmt(v, '{:.2f}')} ({label} {spec.format(k)})" for k, v in zip(keys, values))


def _cells(lanes: dict, sel: np.ndarray) -> list:
    """One summary per distinct cell among the selected lanes, in lanes.csv order."""
    from grokjax import measures

    run = measures.as_run(lanes)
    ok = ~lanes["diverged"]
    out = []
    for key in dict.fromkeys(lanes["cell"][sel]):
        s = sel & (lanes["cell"] == key)
        i = np.flatnonzero(s)[0]
        g = s & ok & lanes["grokked"]
        t = measures.cell_times(run, s)
        mem = lanes["T_mem"][g]
        mem_first = g & np.isfinite(lanes["T_mem"]) & (lanes["T_mem"] < lanes["T_grok"])
        out.append(
            {
                "cell": str(key),
                "n_bits": int(lanes["n_bits"][i]),
                "m": int(lanes["n_train"][i]),
                "lr": float(lanes["lr"][i]),
                "wd": float(lanes["wd"][i]),
                "rho": _num(lanes["rho"][i]),
                "grids": str(lanes["grids"][i]),
                "n": int(s.sum()),
                "n_grokked": int(g.sum()),
                "n_memorised_first": int(mem_first.sum()),
                "n_censored": t["n_censored"],
                "n_diverged": t["n_diverged"],
                "T_grok": {"median": t["median"], "ci": t["ci"]},
                "T_mem_median": _num(np.median(mem[np.isfinite(mem)]))
                if np.isfinite(mem).any()
                else None,
                "Wc": measures.wc(run, s & ok),
                "held_norm": _num(np.median(lanes["target_norm"][s]))
                if lanes["arm"][i] == "clamp"
                else None,
                "max_steps_run": int(np.nanmax(lanes["steps_run"][s])),
            }
        )
    return out


def _series(cells: list, key: str) -> dict:
    """W_c and median T_grok of ``cells`` ordered by ``key``, with their CV and folds."""
    cs = sorted(cells, key=lambda c: c[key])
    wc = [c["Wc"]["median"] for c in cs]
    tg = [c["T_grok"]["median"] for c in cs]
    return {
        key: [c[key] for c in cs],
        "Wc": wc,
        "Wc_ci": [c["Wc"]["ci"] for c in cs],
        "Wc_seed_cv": [c["Wc"]["cv"] for c in cs],
        "T_grok": tg,
        "n_censored": [c["n_censored"] for c in cs],
        "n": [c["n"] for c in cs],
        "cv": fit.cv(wc),
        "fold": fit.fold(wc),
        "T_grok_fold": fit.fold(tg),
    }


def frontier_at(points: list, norm: float) -> tuple[float | None, bool]:
    """The free frontier's T_grok at ``norm``: log T_grok linear in the norm between the two
    free cells that bracket it, or through the two nearest cells beyond the ends.
    ``points`` = [(W_c, median T_grok)] of the free wd cells. Returns (T, extrapolated)."""
    pts = sorted((w, t) for w, t in points if w is not None and t is not None and t > 0)
    if len(pts) < 2:
        return None, False
    x = np.array([p[0] for p in pts])
    y = np.log([p[1] for p in pts])
    if norm <= x[0]:
        i, extra = 0, norm < x[0]
    elif norm >= x[-1]:
        i, extra = len(x) - 2, norm > x[-1]
    else:
        i, extra = int(np.searchsorted(x, norm)) - 1, False
    if x[i + 1] == x[i]:
        return float(math.exp(y[i])), extra
    slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
    return float(math.exp(y[i] + slope * (norm - x[i]))), bool(extra)


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    from grokjax import measures

    run = measures.as_run(lanes)
    ok = ~lanes["diverged"]
    free, clamp = lanes["arm"] == "free", lanes["arm"] == "clamp"
    at_ref_nm = (lanes["n_bits"] == cfg.n_bits) & (lanes["n_train"] == cfg.m)
    ref_lr, ref_wd = np.isclose(lanes["lr"], cfg.lr), np.isclose(lanes["wd"], cfg.wd)
    ref = free & at_ref_nm & ref_lr & ref_wd
    cells = _cells(lanes, free)
    out = {
        "Wc": measures.wc(run, ref & ok),
        "reference": {"n_bits": cfg.n_bits, "m": cfg.m, "lr": cfg.lr, "wd": cfg.wd},
        "n_lanes": int(len(lanes["seed"])),
        "n_censored": int((~lanes["grokked"] & ok).sum()),
        "n_diverged": int((~ok).sum()),
        "cells": cells,
        "clamps": _cells(lanes, clamp) if clamp.any() else [],
    }
    # Each sub-analysis takes the cells of its sub-grid (the ``grids`` tags of lanes.csv).
    grid = [c for c in cells if "lr_wd" in c["grids"].split("+")]
    size = [c for c in cells if "size" in c["grids"].split("+")]
    out["across_wd"] = _series([c for c in grid if math.isclose(c["lr"], cfg.lr)], "wd")
    out["across_wd"]["spearman"] = _spearman(out["across_wd"]["wd"], out["across_wd"]["Wc"])
    out["across_lr"] = _series([c for c in grid if math.isclose(c["wd"], cfg.wd)], "lr")
    out["across_m"] = _series([c for c in size if c["n_bits"] == cfg.n_bits], "m")
    out["across_n"] = _series([c for c in size if c["m"] == cfg.m], "n_bits")
    # Frontier: the free wd cells (norm at grokking, T_grok); each clamped cell set against it.
    aw = out["across_wd"]
    points = list(zip(aw["Wc"], aw["T_grok"]))
    free_t = [t for t in aw["T_grok"] if t is not None]
    for c in out["clamps"]:
        t_front, extra = (
            frontier_at(points, c["held_norm"]) if c["held_norm"] is not None else (None, False)
        )
        t = c["T_grok"]["median"]
        c["frontier_T_grok"] = t_front
        c["frontier_extrapolated"] = extra
        c["over_frontier"] = (t / t_front) if (t is not None and t_front) else None
        c["over_longest_free"] = (t / max(free_t)) if (t is not None and free_t) else None
        g = clamp & np.isclose(lanes["rho"], c["rho"] or np.nan) & ok & lanes["grokked"]
        c["norm_over_held"] = (
            float(np.median(lanes["norm_at_grok"][g] / lanes["target_norm"][g]))
            if g.any()
            else None
        )
    out["table2"] = table2(out, lanes, cfg)
    return measures.fit_json(out)


def table2(fitted: dict, lanes: dict, cfg: Config) -> list:
    """The paper's Table 2 from measured values: one row per property (see the thresholds at
    the top of this module); ``transfers`` says whether the parity entry of the paper holds."""
    rows = []
    free = (lanes["arm"] == "free") & ~lanes["diverged"]
    n_free = int(free.sum())
    g = free & lanes["grokked"]
    first = g & np.isfinite(lanes["T_mem"]) & (lanes["T_mem"] < lanes["T_grok"])
    frac = g.sum() / n_free if n_free else None
    mem_frac = first.sum() / g.sum() if g.any() else None
    if frac is None:
        verdict = "inconclusive"
    elif frac >= GROK_FRACTION and mem_frac is not None and mem_frac >= MEMORISED_FIRST:
        verdict = "yes"
    elif frac == 0:
        verdict = "no"
    else:
        verdict = "inconclusive" if frac >= GROK_FRACTION else "no"
    delay = (
        np.median(lanes["T_grok"][first] / np.maximum(lanes["T_mem"][first], 1))
        if first.any()
        else None
    )
    rows.append(
        dict(
            property="grokking occurs",
            paper_parity="yes",
            paper_modular="yes",
            measured={
                "fraction_grokked": _num(frac),
                "fraction_memorised_first": _num(mem_frac),
                "median_T_grok_over_T_mem": _num(delay),
            },
            transfers=verdict,
            evidence=f"{int(g.sum())}/{n_free} free lanes grok (test acc >= 0.9); "
            f"{int(first.sum())} of them fit the train set first (median T_grok/T_mem "
            f"{fmt(_num(delay), '{:.1f}')})",
        )
    )

    aw = fitted["across_wd"]
    fold, rs = aw["fold"], aw["spearman"]
    n_wd = sum(w is not None for w in aw["Wc"])
    if n_wd < 3 or fold is None or rs is None:
        verdict = "inconclusive"
    else:
        verdict = "yes" if fold >= WD_FOLD and abs(rs) >= WD_RANK_CORR else "no"
    rows.append(
        dict(
            property="norm at grokking set by weight decay",
            paper_parity="yes",
            paper_modular="yes (p=59: W_c ≈ 55 at wd 1, ≈ 49 at wd 3)",
            measured={"wd": aw["wd"], "Wc": aw["Wc"], "fold": fold, "spearman": rs},
            transfers=verdict,
            evidence=f"W_c {_listing(aw['wd'], aw['Wc'], 'wd')}: fold {fmt(fold, '{:.2f}')}×, "
            f"Spearman(wd, W_c) {fmt(rs, '{:.2f}')}",
        )
    )

    al = fitted["across_lr"]
    n_lr = sum(w is not None for w in al["Wc"])
    cv = al["cv"]
    verdict = "inconclusive" if n_lr < 2 or cv is None else ("yes" if cv <= LR_CV else "no")
    rows.append(
        dict(
            property="invariant to learning rate",
            paper_parity="yes (~3 % across lr)",
            paper_modular="yes (W_c 48.9 / 48.7 / 49.1 across a 10× lr range at wd 3)",
            measured={
                "lr": al["lr"],
                "Wc": al["Wc"],
                "cv": cv,
                "T_grok": al["T_grok"],
                "T_grok_fold": al["T_grok_fold"],
            },
            transfers=verdict,
            evidence=f"at wd {cfg.wd:g}: W_c {_listing(al['lr'], al['Wc'], 'lr')}: CV "
            f"{fmt(cv and 100 * cv, '{:.1f}')} % while T_grok moves "
            f"{fmt(al['T_grok_fold'], '{:.1f}')}×",
        )
    )

    am = fitted["across_m"]
    n_m = sum(w is not None for w in am["Wc"])
    cv = am["cv"]
    verdict = "inconclusive" if n_m < 2 or cv is None else ("yes" if cv > DATA_CV else "no")
    rows.append(
        dict(
            property="not invariant to the amount of data",
            paper_parity="yes (W_c changes with m)",
            paper_modular="no: W_c nearly independent of the train fraction",
            measured={
                "m": am["m"],
                "Wc": am["Wc"],
                "cv": cv,
                "fold": am["fold"],
                "n_bits": fitted["across_n"]["n_bits"],
                "Wc_by_n": fitted["across_n"]["Wc"],
            },
            transfers=verdict,
            evidence=f"at n={cfg.n_bits}: W_c {_listing(am['m'], am['Wc'], 'm', '{}')}: CV "
            f"{fmt(cv and 100 * cv, '{:.1f}')} %, fold {fmt(am['fold'], '{:.2f}')}×",
        )
    )

    above = [c for c in fitted["clamps"] if c["rho"] is not None and c["rho"] > 1]
    free_t = [t for t in aw["T_grok"] if t is not None]
    if not above or not free_t:
        verdict, ev, measured = (
            "inconclusive",
            "no clamped rho > 1 cell or no free wd cell with a median T_grok",
            {},
        )
    else:
        c = max(above, key=lambda c: c["rho"])
        t, longest = c["T_grok"]["median"], max(free_t)
        within = t is not None and t <= REACH_SLACK * longest
        on_front = c["over_frontier"] is not None and c["over_frontier"] <= OFF_FRONTIER
        if t is None:
            verdict = "no"  # beyond the budget, which every free wd cell's median is within
        else:
            verdict = "yes" if within or on_front else "no"
        measured = {
            "rho": c["rho"],
            "held_norm": c["held_norm"],
            "T_grok": t,
            "free_T_grok_range": [min(free_t), longest],
            "frontier_T_grok": c["frontier_T_grok"],
            "over_frontier": c["over_frontier"],
            "frontier_extrapolated": c["frontier_extrapolated"],
        }
        ev = (
            f"held at rho {c['rho']:g} (norm {fmt(c['held_norm'], '{:.2f}')}): median "
            f"T_grok {fmt(t, '{:.0f}')}"
            f"{' (beyond the budget)' if t is None else ''}; free training over wd reaches "
            f"{min(free_t):.0f}-{longest:.0f}; the free frontier at that norm"
            f"{' (extrapolated)' if c['frontier_extrapolated'] else ''}: "
            f"{fmt(c['frontier_T_grok'], '{:.0f}')} (ratio {fmt(c['over_frontier'], '{:.2f}')})"
        )
    rows.append(
        dict(
            property="no regularization-unreachable above-norm delay",
            paper_parity="yes (clamped delays lie within the free wd frontier)",
            paper_modular="no: clamped cells lie off the free frontier",
            measured=measured,
            transfers=verdict,
            evidence=ev,
        )
    )
    return rows


# ---------------------------------------------------------------------------------------------
# figure, summary, cost
# ---------------------------------------------------------------------------------------------


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """(a) The parity frontier: norm at grokking against median T_grok over wd, clamped cells
    placed at their held norm; (b) W_c against lr at the reference wd, with T_grok."""

    from grokjax import plots

    fig, (ax, bx) = plots.subplots(1, 2, figsize=(11, 4.2))
    _frontier_panel(ax, fitted)
    _lr_panel(bx, fitted)
    fig.tight_layout()
    return plots.save(fig, os.path.join(out, f"{prefix}parity.png"))


def _frontier_panel(ax, fitted: dict) -> None:
    """Panel (a) of ``figure``: norm at grokking against median T_grok over wd, clamped cells
    at their held norm, and the free frontier there."""
    from grokjax import plots

    m0, ls0, c0 = plots.STYLES[0]
    aw = fitted["across_wd"]
    pts = [
        (w, t, d, ci)
        for w, t, d, ci in zip(aw["Wc"], aw["T_grok"], aw["wd"], aw["Wc_ci"])
        if w is not None and t is not None
    ]
    if pts:
        pts.sort()
        x = np.array([p[0] for p in pts])
        y = np.array([p[1] for p in pts])
        lo = np.array([p[3][0] if p[3][0] is not None else p[0] for p in pts])
        hi = np.array([p[3][1] if p[3][1] is not None else p[0] for p in pts])
        ax.errorbar(
            x,
            y,
            xerr=[x - lo, hi - x],
            marker=m0,
            ls=ls0,
            color=c0,
            capsize=2,
            label=f"free, wd varied (lr {fitted['reference']['lr']:g})",
        )
        for w, t, d, _ in pts:
            ax.annotate(f"wd {d:g}", (w, t), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for k, c in enumerate(fitted["clamps"]):
        m, _, col = plots.STYLES[(k + 1) % len(plots.STYLES)]
        t = c["T_grok"]["median"]
        if t is None:  # median beyond the budget: an open triangle at the budget
            ax.plot(
                [c["held_norm"]],
                [c["max_steps_run"]],
                "^",
                color=col,
                mfc="white",
                ms=9,
                label=f"clamped ρ={c['rho']:g}: median > budget",
            )
            continue
        ci = [v if v is not None else t for v in c["T_grok"]["ci"]]
        ax.errorbar(
            [c["held_norm"]],
            [t],
            yerr=[[t - ci[0]], [ci[1] - t]],
            marker=m,
            ms=9,
            color=col,
            mfc="white",
            capsize=2,
            ls="none",
            label=f"clamped ρ={c['rho']:g} (norm held)",
        )
    fronts = [c for c in fitted["clamps"] if c.get("frontier_T_grok") is not None]
    if fronts:  # where the free frontier is (log-linear between / beyond the wd cells)
        ax.plot(
            [c["held_norm"] for c in fronts],
            [c["frontier_T_grok"] for c in fronts],
            "x",
            color="k",
            ms=6,
            ls="none",
            label="free frontier at the held norm",
        )
    ax.set_yscale("log")
    plots.plain_log_ticks(ax, "y")
    ax.set_xlabel("‖W‖ at T_grok (free: W_c of the cell; clamped: held norm)")
    ax.set_ylabel("median T_grok (95 % CI)")
    ax.set_title("(a) parity frontier over weight decay")
    ax.legend(fontsize=7)


def _lr_panel(bx, fitted: dict) -> None:
    """Panel (b) of ``figure``: W_c against lr at the reference wd (±3 % band), T_grok on the
    right."""
    from grokjax import plots

    m0, ls0, c0 = plots.STYLES[0]
    al = fitted["across_lr"]
    idx = [i for i, w in enumerate(al["Wc"]) if w is not None]
    if idx:
        x = np.array([al["lr"][i] for i in idx])
        y = np.array([al["Wc"][i] for i in idx])
        ci = [al["Wc_ci"][i] for i in idx]
        lo = np.array([c[0] if c[0] is not None else v for c, v in zip(ci, y)])
        hi = np.array([c[1] if c[1] is not None else v for c, v in zip(ci, y)])
        cv = al["cv"]
        bx.errorbar(
            x,
            y,
            yerr=[y - lo, hi - y],
            marker=m0,
            ls=ls0,
            color=c0,
            capsize=2,
            label=f"W_c (CV {fmt(cv and 100 * cv, '{:.1f}')} %)",
        )
        mean = float(y.mean())
        bx.axhspan(0.97 * mean, 1.03 * mean, color="0.85", zorder=0, label="mean ± 3 %")
        bx.set_ylim(min(lo.min(), 0.9 * mean), max(hi.max(), 1.1 * mean))
    tx = bx.twinx()
    okt = [i for i, t in enumerate(al["T_grok"]) if t is not None]
    m1, _, c1 = plots.STYLES[1]
    tx.plot(
        [al["lr"][i] for i in okt],
        [al["T_grok"][i] for i in okt],
        marker=m1,
        ls=":",
        color=c1,
        mfc="white",
        label="median T_grok",
    )
    tx.set_yscale("log")
    plots.plain_log_ticks(tx, "y")
    tx.set_ylabel("median T_grok (dotted, open)")
    bx.set_xscale("log")
    plots.plain_log_ticks(bx, "x")
    bx.set_xlabel("learning rate")
    bx.set_ylabel("W_c (median ‖W‖ at T_grok)")
    bx.set_title(f"(b) W_c against lr at wd {fitted['reference']['wd']:g}")
    h1, l1 = bx.get_legend_handles_labels()
    h2, l2 = tx.get_legend_handles_labels()
    bx.legend(h1 + h2, l1 + l2, fontsize=7)


def summary(fitted: dict, cfg: Config) -> str:
    w = fitted["Wc"]
    lines = [
        f"W_c = {fmt(w['median'], '{:.2f}')} (CV {fmt(w['cv'] and 100 * w['cv'], '{:.1f}')}"
        f" %, {w['n']} grokked) at n={cfg.n_bits}, m={cfg.m}, lr {cfg.lr:g}, wd {cfg.wd:g};"
        f" {fitted['n_lanes']} lanes, {fitted['n_censored']} censored, "
        f"{fitted['n_diverged']} diverged",
        "cell: W_c (seed CV), median T_grok [95 % CI] (censored/n):",
    ]
    for c in fitted["cells"] + fitted["clamps"]:
        tg = c["T_grok"]
        extra = (
            f"; held {fmt(c['held_norm'], '{:.2f}')}, over the free frontier "
            f"{fmt(c.get('over_frontier'), '{:.2f}')}×"
            if c["held_norm"] is not None
            else ""
        )
        lines.append(
            f"  {c['cell']}: W_c {fmt(c['Wc']['median'], '{:.2f}')} "
            f"({fmt(c['Wc']['cv'] and 100 * c['Wc']['cv'], '{:.1f}')} %), T_grok "
            f"{fmt(tg['median'], '{:.0f}')} [{fmt(tg['ci'][0], '{:.0f}')}, "
            f"{fmt(tg['ci'][1], '{:.0f}')}] ({c['n_censored']}/{c['n']}){extra}"
        )
    lines.append("Table 2 (measured):")
    for r in fitted["table2"]:
        lines.append(f"  {r['property']}: {r['transfers']} -- {r['evidence']}")
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    n = cfg.seeds * (len(cfg.grid()) + len(cfg.sizes()) - 1 + len(cfg.rho))
    return (
        f"{n} lanes in {len(cfg.sizes())} programs, <= {n * cfg.steps / 1e6:.2f} M "
        f"lane-steps (budget bound)"
    )


SPEC = registry.register(
    experiment.Spec(
        name="parity",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        doc=__doc__,
        cost=cost,
        about="sparse parity task",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
