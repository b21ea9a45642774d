"""Synthetic run directories in the format of ``grokjax.results`` (no training: seconds).

T_grok follows the paper's delay law by construction, ln T = alpha·rho + c_p + noise, with
c_p such that the paper's medians come out at p=59 (4077 steps at rho=1), a weak lr effect
(T ∝ lr^-1/3, so 2x across lr 1e-3..8e-3) and an optional saturation at rho=1.30. Free lanes
grok at ‖W‖ = W_c(p)·(1 + cv·noise). Used by tests/test_report.py and tests/test_plots.py.
"""

from __future__ import annotations

import math
import os

import numpy as np

from grokjax import results

GROUPS = {"mlp": ("embed", "hidden", "out"), "attn": ("embed", "attn", "mlp", "unembed")}


def make_run(path: str, *, experiment: str = "delay_sweep", model: str = "mlp",
             p=(59,), rho=(0.85, 1.0, 1.15), lr=(1e-3,), seeds: int = 8, frac: float = 0.4,
             wd: float = 1.0, d: int = 128, hidden: int = 256, t_int: int = 500,
             alpha: float = 7.5, wc=None, cv: float = 0.015, free_t: float = 5100.0,
             sigma: float = 0.08, saturation: float = 1.0, budget: int | None = None,
             layernorm: str | None = None, group_cv: float | None = None,
             diverge: int = 0, seed: int = 0, free: bool = True) -> str:
    """Writes config.json, lanes.csv and curves.npz into ``path`` and returns it.

    ``wc``: {p: W_c} (default: the paper's 54.6·(p/59)^0.41). ``budget``: one step budget
    (lanes beyond it are censored); default 4× the noiseless time. ``diverge``: the first
    ``diverge`` clamped lanes are marked diverged. ``group_cv``: seed CV of each group's norm
    at T_grok (default ``cv``)."""
    rng = np.random.default_rng(seed)
    wc = wc or {q: 54.6 * (q / 59) ** 0.41 for q in p}
    groups = GROUPS[model]
    rows, curves = [], []
    grid = np.unique(np.round(np.geomspace(1, 400_000, 90)).astype(int))
    grid = np.concatenate([[0], grid])

    fracs = tuple(frac) if isinstance(frac, (tuple, list)) else (frac,)

    def lane(q, s, arm, r, l, f):
        scale = (l / 1e-3) ** (-1 / 3)
        wcq = wc[q] * (f / fracs[0]) ** -0.25
        if arm == "free":
            t0 = free_t * (q / 59) * scale
            target = 0.0
        else:
            c = math.log(4077.0) - alpha * 1.0 + math.log(q / 59)
            t0 = math.exp(alpha * r + c) * scale
            if math.isclose(r, 1.30):
                t0 *= saturation
            target = r * wcq
        t = t0 * math.exp(sigma * rng.standard_normal())
        b = budget or int(4 * t0)
        t_mem = int(max(50, 0.1 * t0))
        grok = t <= b
        tg = int(round(t)) if grok else None
        norm_grok = (wcq * (1 + cv * rng.standard_normal()) if arm == "free" else target)
        gcv = cv if group_cv is None else group_cv
        gnorms = [norm_grok / math.sqrt(len(groups)) * (1 + gcv * rng.standard_normal())
                  for _ in groups]
        row = dict(p=q, seed=s, arm=arm, rho=None if arm == "free" else r, target_norm=target,
                   lr=l, wd=wd, t_int=t_int if arm == "clamp" else 0,
                   clamp_mode="continuous" if arm == "clamp" else "none", init_scale=1.0,
                   frac=f, model=model, dtype="float32", budget=b, T_mem=t_mem,
                   T_grok=tg, T_grok_80=None if tg is None else int(0.9 * tg),
                   T_grok_95=None if tg is None else int(1.1 * tg), grokked=grok,
                   norm_at_mem=1.3 * wcq, norm_at_grok=norm_grok if grok else None,
                   norm_at_grok_80=norm_grok if grok else None,
                   norm_at_grok_95=norm_grok if grok else None, collapse_at_grok=0.0,
                   diverged=False, diverged_step=None,
                   steps_run=min(int(1.3 * tg), b) if grok else b)
        for g, v in zip(groups, gnorms):
            row[f"norm_at_grok_{g}"] = v if grok else None
        end = row["steps_run"]
        st = grid.astype(float)
        ls = np.log1p(st)
        tr = 1 / (1 + np.exp(-6 * (ls - math.log(t_mem * 0.7))))
        te = 1 / (1 + np.exp(-8 * (ls - math.log(t) + 0.3)))
        peak = 1.3 * wcq
        if arm == "free":
            nrm = np.where(st < t_mem, 10 + (peak - 10) * st / t_mem,
                           peak * (wcq / peak) ** np.clip((st - t_mem) / max(t - t_mem, 1), 0, 2))
        else:
            nrm = np.where(st < t_int, 10 + (peak - 10) * np.minimum(st / t_mem, 1), target)
        rec = st <= end
        cur = {k: np.where(rec, v, np.nan) for k, v in
               dict(train_acc=tr, test_acc=te, train_loss=1 - tr, test_loss=1 - te, norm=nrm,
                    collapse=np.zeros_like(st)).items()}
        cur["steps"] = np.where(rec, grid, -1)
        cur["group_norms"] = np.stack([cur["norm"] / math.sqrt(len(groups))] * len(groups), -1)
        rows.append(row)
        curves.append(cur)

    for f in fracs:
        for q in p:
            for l in lr:
                if free:
                    for s in range(seeds):
                        lane(q, s, "free", None, l, f)
                for r in rho:
                    for s in range(seeds):
                        lane(q, s, "clamp", r, l, f)
    k = 0
    for row in rows:
        row["lane"] = len([r for r in rows if "lane" in r])
        if row["arm"] == "clamp" and k < diverge:
            row.update(diverged=True, diverged_step=700, grokked=False, T_grok=None,
                       T_grok_80=None, T_grok_95=None, steps_run=700, norm_at_grok=None)
            k += 1
    os.makedirs(path, exist_ok=True)
    cfg = dict(experiment=experiment, preset="synthetic", p=list(p), rho=list(rho), lr=list(lr),
               wd=wd, seeds=seeds, frac=list(fracs) if len(fracs) > 1 else frac, model=model,
               d=d, hidden=hidden, t_int=t_int)
    if layernorm is not None:
        cfg["layernorm"] = layernorm
    results.write_json(os.path.join(path, "config.json"), cfg)
    results.write_lanes_csv(os.path.join(path, "lanes.csv"), rows)
    arrays = {key: np.stack([c[key] for c in curves]) for key in curves[0]}
    arrays["steps"] = arrays["steps"].astype(np.int64)
    arrays["groups"] = np.array(groups)
    np.savez_compressed(os.path.join(path, "curves.npz"), **arrays)
    return path


def paper_like(root: str) -> list[str]:
    """A set of runs that follows the paper's protocol and reproduces its numbers."""
    return [
        make_run(os.path.join(root, "sweep"), p=(41, 53, 59, 71), seeds=12, seed=1),
        make_run(os.path.join(root, "dense"), experiment="dense_rho",
                 rho=tuple(np.round(np.arange(0.85, 1.2501, 0.05), 2)), seeds=6, seed=2,
                 free=False),
        make_run(os.path.join(root, "lrm"), experiment="lr_matrix",
                 rho=(0.85, 1.0, 1.15, 1.30), lr=(1e-3, 2e-3, 4e-3, 8e-3), seeds=6, seed=3,
                 saturation=0.7, budget=200_000),
        make_run(os.path.join(root, "crit"), experiment="critical_norm", p=(29, 41, 59, 79, 97),
                 rho=(), seeds=8, seed=4, wc={29: 42, 41: 48, 59: 54.6, 79: 61, 97: 67}),
        make_run(os.path.join(root, "attn"), experiment="transformer", model="attn", hidden=512,
                 layernorm="none", alpha=15.45, wc={59: 36.9}, seeds=6, seed=5, group_cv=0.02),
        make_run(os.path.join(root, "attn_ln"), experiment="transformer", model="attn",
                 hidden=512, layernorm="all", alpha=3.0, wc={59: 30.0}, seeds=6, seed=6,
                 group_cv=0.12, cv=0.08),
    ]
