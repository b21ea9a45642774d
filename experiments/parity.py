"""k-sparse parity: which properties of the norm at grokking transfer from modular arithmetic.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.parity                  # preset quick (default)
    python -m experiments.parity --preset paper   # the paper's grid (GPU)
    # ... or on a CPU in blocks of seeds, each clamped to the paper's W_c, pooled by the report:
    python -m experiments.parity --preset paper --seeds 4 --seed-base 0 --fixed-wc 20.6 \
        --out runs/parity-paper-s0            # then --seed-base 4, 8, 12

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
property transfers (yes / no / inconclusive, by the thresholds of experiments.parity_table):
grokking occurs; the norm at grokking is set by weight decay; it is invariant to lr (~3 %); it
is not invariant to the amount of data; no regularization-unreachable above-norm delay (the
clamped rho > 1 delay is within what free training reaches by changing wd).

Presets (lane-steps are upper bounds: lanes stop ~10 % after grokking):
  paper  n=30, k=3, H=512, 2000 test rows, lr 1e-3, wd 1, t_int 1000, 16 seeds, 50k-step
         budget. Free: m in {600, 1000, 1500} at n=30 and n in {20, 40} at m=1000; lr in
         {5e-4, 1e-3, 2e-3} × wd in {0.3, 0.5, 1, 2, 3, 5} at n=30, m=1000 (the shared cell
         n=30, m=1000, lr 1e-3, wd 1 once); clamps at rho in {0.9, 1.3}. 384 lanes, 5 programs;
         GPU-sized (≤ 19.2 M lane-steps). On the 2-core CPU in blocks of 4 seeds with
         --fixed-wc 20.6 (see above): seeds 0-3 took 1.55 M lane-steps, 71 min (shared with
         another job; results/parity-paper-s0): W_c 21.56 at n=30, m=1000, every Table 2
         property as in the paper, 17 of 88 free lanes censored at 50k (high wd at low lr,
         m=600, n=40). Paper: parity
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

import math
import os
import sys

import numpy as np

from grokjax import api, experiment, fit, registry

from experiments.common import fmt
from experiments.parity_plan import PRESETS, Config, plan
from experiments.parity_plan import cell_name  # noqa: F401 (experiments.parity.cell_name)
from experiments.parity_table import num as _num
from experiments.parity_table import table2

# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


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


def _cells(run, sel: np.ndarray) -> list:
    """One summary per distinct cell among the selected lanes, in lanes.csv order."""
    from grokjax import measures

    lanes = run.lanes
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


def _clamps(run, clamp: np.ndarray, cells: list, wd_series: dict) -> list:
    """The clamped cells (:func:`_cells`), each set against the free frontier (the W_c and
    median T_grok of the free wd cells, :func:`frontier_at`) and the longest free T_grok, with
    its median norm at T_grok over the held norm."""
    lanes = run.lanes
    ok = ~lanes["diverged"]
    aw = _across(run, None, cells, **wd_series)
    points = list(zip(aw["Wc"], aw["T_grok"]))
    free_t = [t for t in aw["T_grok"] if t is not None]
    out = _cells(run, clamp)
    for c in out:
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
    return out


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
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """W_c at the reference setting; one summary per free and per clamped cell (the clamped
    ones against the free frontier); the series across wd, lr, m and n_bits, each over the
    cells of its sub-grid (the ``grids`` tags of lanes.csv); the paper's Table 2."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    free, clamp = lanes["arm"] == "free", lanes["arm"] == "clamp"
    at_ref_nm = (lanes["n_bits"] == cfg.n_bits) & (lanes["n_train"] == cfg.m)
    ref_lr, ref_wd = np.isclose(lanes["lr"], cfg.lr), np.isclose(lanes["wd"], cfg.wd)
    ref = free & at_ref_nm & ref_lr & ref_wd
    cells = Ref("cells")
    across = {
        "across_wd": dict(grid="lr_wd", key="wd", match={"lr": cfg.lr}, spearman=True),
        "across_lr": dict(grid="lr_wd", key="lr", match={"wd": cfg.wd}),
        "across_m": dict(grid="size", key="m", match={"n_bits": cfg.n_bits}),
        "across_n": dict(grid="size", key="n_bits", match={"m": cfg.m}),
    }
    return [
        m("Wc", ms.wc, ref & ok),
        fitspec.value("reference", {"n_bits": cfg.n_bits, "m": cfg.m, "lr": cfg.lr, "wd": cfg.wd}),
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        m("cells", _cells, free),
        m("clamps", _clamps, clamp, cells=cells, wd_series=across["across_wd"]),
        *(m(k, _across, None, cells=cells, **a) for k, a in across.items()),
        m("table2", _table2, None, cfg=cfg, **{k: Ref(k) for k in ("clamps", *across)}),
    ]


def _across(run, _sel, cells: list, grid: str, key: str, match: dict, spearman=False) -> dict:
    """:func:`_series` over ``key`` of the cells of sub-grid ``grid`` whose settings ``match``
    (``math.isclose``); with ``spearman``, the rank correlation of ``key`` with W_c."""
    cs = [c for c in cells if grid in c["grids"].split("+")]
    out = _series([c for c in cs if all(math.isclose(c[k], v) for k, v in match.items())], key)
    if spearman:
        out["spearman"] = _spearman(out[key], out["Wc"])
    return out


def _table2(run, _sel, cfg: Config, **fitted) -> list:
    """:func:`experiments.parity_table.table2` of the series and clamps."""
    return table2(fitted, run.lanes, cfg)


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
