"""The delay law over several delay_sweep run directories pooled: the paper's four-moduli fits
when its moduli were run in separate jobs. JAX-free; reads only lanes.csv.

    python -m experiments.pool_sweeps RUN_DIR [RUN_DIR ...] [--p 41,53,59,71] [--rho-max 1.15]

Prints, over the clamped lanes at rho <= --rho-max of the chosen moduli: the shared alpha (one
alpha, an intercept per p) with its CI and R²; the same fit against the held norm itself
(rho·W_c); and the power laws in p of W_c and of ‖E‖ at T_grok (medians over the grokked free
lanes). Paper: alpha ≈ 7.5, R² 0.996; absolute norm R² 0.988; W_c ∝ p^0.44, ‖E‖ ∝ p^0.47.
"""

from __future__ import annotations

import sys

import numpy as np

from grokjax import cli, experiment
from grokjax.tables import fmt

COLUMNS = ("p", "rho", "target_norm", "T_grok", "steps_run", "grokked", "diverged", "arm")


def load(run_dirs: list[str]) -> dict:
    """The lanes of ``run_dirs``: one delay_sweep run, or several runs of one design split by
    modulus (:func:`grokjax.runs.pool`), joined. Runs that differ beyond p, or that share a
    modulus (the same cells twice, two seed sets in one cell), are refused."""
    from grokjax import runs

    try:
        loaded = runs.load_runs(run_dirs)
    except runs.RunDirError as e:
        raise cli.UsageError(str(e)) from None
    for r in loaded:
        if r.experiment != "delay_sweep":
            raise cli.UsageError(f"{r.path}: a {r.experiment} run, not a delay_sweep run")
    if len(loaded) == 1:
        lanes = loaded[0].lanes
    else:
        joined = runs.pool(loaded, "p")
        if len(joined) != 1 or joined[0].n != sum(r.n for r in loaded):
            raise cli.UsageError(
                "the runs are not one delay_sweep design split by p: they differ in more than "
                "p (seeds, seed base, budgets, ...) or share a modulus"
            )
        lanes = joined[0].lanes
    missing = [c for c in COLUMNS + ("norm_at_grok",) if c not in lanes]
    if missing:
        raise cli.UsageError(f"no column {missing[0]} in the runs' lanes.csv")
    return lanes


def pooled(lanes: dict, ps, rho_max: float = 1.15) -> dict:
    """The shared-alpha and absolute-norm fits and the W_c and ‖E‖ power laws over ``ps``."""
    from grokjax import measures

    run = measures.as_run(lanes)
    ok = ~lanes["diverged"] & np.isin(lanes["p"], ps)
    clamp = ok & (lanes["arm"] == "clamp") & (lanes["rho"] <= rho_max + 1e-9)
    out = {
        "p": [int(p) for p in ps],
        "shared": measures.delay_law(run, clamp, group="p"),
        "absolute_norm": measures.absolute_norm(run, clamp),
    }
    free = ok & (lanes["arm"] == "free") & lanes["grokked"]
    have = [p for p in ps if (free & (lanes["p"] == p)).any()]
    if len(have) >= 3:
        for key, col in (("Wc_power_law", "norm_at_grok"), ("E_power_law", "norm_at_grok_embed")):
            if col in lanes:
                med = {p: float(np.median(lanes[col][free & (lanes["p"] == p)])) for p in have}
                out[key] = measures.power_law(med)
    return out


def _ci(c) -> str:
    return "[" + ", ".join("n/a" if v is None else f"{v:.2f}" for v in c) + "]"


def summary(res: dict) -> str:
    s, a = res["shared"], res["absolute_norm"]
    lines = [
        f"p = {', '.join(map(str, res['p']))}: shared alpha {s['alpha']:.2f} {_ci(s['alpha_ci'])}, "
        f"R² {fmt(s['r2'], '{:.4f}')} ({s['n_lanes']} lanes, {s['n_censored']} censored)",
        f"against the held norm itself: slope {a['alpha']:.4f} per unit of ‖W‖, "
        f"R² {fmt(a['r2'], '{:.4f}')}",
    ]
    for key, name in (("Wc_power_law", "W_c"), ("E_power_law", "‖E‖ at T_grok")):
        if key in res:
            pl = res[key]
            lines.append(
                f"{name} ∝ p^{pl['exponent']:.3f} {_ci(pl['exponent_ci'])}, "
                f"R² {fmt(pl['r2'], '{:.3f}')}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = cli.Parser(prog="python -m experiments.pool_sweeps", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR", help="delay_sweep run directories")
    ap.add_argument("--p", type=cli.ints, default=[41, 53, 59, 71], help="moduli to pool")
    ap.add_argument("--rho-max", type=float, default=1.15, help="largest held norm in the fit")
    args = ap.parse_args(argv)
    experiment.positive("rho-max", args.rho_max)
    lanes = load(args.runs)
    absent = [p for p in args.p if not (lanes["p"] == p).any()]
    if absent:
        raise cli.UsageError(f"--p {','.join(map(str, absent))}: no lanes at that p in the runs")
    print(summary(pooled(lanes, args.p, args.rho_max)))
    return 0


def main_cli(argv=None) -> int:
    """``main`` with errors turned into one line on stderr and exit status 2."""
    return cli.main_guard("pool_sweeps", main, argv)


if __name__ == "__main__":
    sys.exit(main_cli())
