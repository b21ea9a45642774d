"""A preregistered held-out prediction of T_grok at moduli the delay-law scan never saw.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.heldout predict   # JAX-free: results/heldout-prediction/prediction.json
    python -m experiments.heldout run       # the held-out lanes (delay_sweep, paper protocol)
    python -m experiments.heldout score     # JAX-free: score.json, score.md, heldout.png

``predict`` reads the committed four-modulus scan (delay_sweep paper runs at p = 41, 53, 59, 71,
rho 0.85 / 1.00 / 1.15, 12 seeds each) and writes, for p = 67 (inside the scanned range) and
p = 97 (outside it), each model's median T_grok per held norm with a 95 % band, and W_c(p)
from the power law over the scan's free lanes. Two models of the exponent compete:

* ``universal``: one alpha for every p (fitted on the scan: an intercept per p, one slope);
* ``drift``: alpha(p) linear in p (a slope per p, then a line through the four slopes);

each with log T_grok at rho = 1 extrapolated linearly in ``log_p`` or in ``p``. Bands resample
the seeds within every scan cell (the paper's preregistration); the wider ``band_cell`` adds
the seed noise of a 12-seed median at the new cell (drawn from the scan's own cells), which is
what a measured median can be compared with. ``variants`` repeats everything without the p = 41,
rho = 1.15 cell (float32 softmax collapse: alpha 9.19 there, and without the collapse the cell
does not grok within 80k steps, see the README), because it alone steepens the drift.

The prediction is committed on its own before any held-out lane runs: the git history is the
preregistration. ``run`` then trains p = 67 and 97 at the paper's protocol (free controls plus
rho 0.85 / 1.00 / 1.15, 12 seeds from seed 6000, budgets as the delay_sweep paper preset;
~0.35 M lane-steps expected, about an hour on the 2-core CPU) and ``score`` compares each
cell's measured Kaplan-Meier median with each model's bands and says which model the data
prefer (the smaller mean squared log error over the six cells).
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from grokjax import cli

SCAN_RUNS = (
    "results/delay_sweep-paper-p31p41",
    "results/delay_sweep-paper-p53p71",
    "results/delay_sweep-paper-p59",
)
SCAN_P = (41, 53, 59, 71)
RHOS = (0.85, 1.0, 1.15)
HELDOUT_P = (67, 97)
SEED_BASE = 6000
SEEDS = 12
PREDICTION = "results/heldout-prediction/prediction.json"
RUN_OUT = "runs/heldout-paper"
PAPER_ALPHA = 7.49  # the paper's universal exponent
COLLAPSE_CELL = (41, 1.15)  # float32 softmax collapse sets this cell's T_grok
N_BOOT = 2000
MODELS = tuple(f"{a}/{i}" for a in ("universal", "drift") for i in ("log_p", "p"))
FORMAT = 1


# ---------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------


def _km(t: np.ndarray, c: np.ndarray) -> float:
    from grokjax import fit

    m = fit.censored_median(t, c)
    return math.inf if m is None else float(m)


def cells(lanes: dict, ps, rhos) -> dict:
    """{(p, rho): (times, censored)} of the clamped lanes (censored lanes at their steps run;
    :func:`grokjax.measures.times`)."""
    from grokjax import measures

    run = measures.as_run(lanes)
    ok = ~np.asarray(lanes["diverged"], bool)
    out = {}
    for p in ps:
        for r in rhos:
            sel = ok & run.arm("clamp") & (lanes["p"] == p) & np.isclose(lanes["rho"], r)
            if sel.any():
                t, c = measures.times(run, sel)
                out[(int(p), float(r))] = (t.astype(float), c)
    return out


def free_norms(lanes: dict, p: int) -> np.ndarray:
    sel = (
        (np.asarray(lanes["arm"]) == "free")
        & np.asarray(lanes["grokked"], bool)
        & ~np.asarray(lanes["diverged"], bool)
        & (lanes["p"] == p)
    )
    return np.asarray(lanes["norm_at_grok"], float)[sel]


# ---------------------------------------------------------------------------
# the models
# ---------------------------------------------------------------------------


def _line(x, y) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(b), float(a)


def fit_models(meds: dict) -> dict:
    """Both exponent models on cell medians {(p, rho): median}: per model, the slope(s) and the
    per-p log T_grok at rho = 1 (``c``). Cells whose median is not identifiable are left out."""
    keys = [k for k, m in meds.items() if math.isfinite(m) and m > 0]
    ps = sorted({p for p, _ in keys})
    y = {k: math.log(meds[k]) for k in keys}
    # universal: one slope, an intercept per p (within-p centred least squares)
    num = den = 0.0
    for p in ps:
        ks = [k for k in keys if k[0] == p]
        rb = np.mean([k[1] for k in ks])
        yb = np.mean([y[k] for k in ks])
        num += sum((k[1] - rb) * (y[k] - yb) for k in ks)
        den += sum((k[1] - rb) ** 2 for k in ks)
    alpha = num / den
    c_uni = {}
    for p in ps:
        ks = [k for k in keys if k[0] == p]
        c_uni[p] = float(np.mean([y[k] - alpha * (k[1] - 1.0) for k in ks]))
    # drift: a slope and intercept per p
    a_p, c_dr = {}, {}
    for p in ps:
        ks = [k for k in keys if k[0] == p]
        a_p[p], c_dr[p] = _line([k[1] - 1.0 for k in ks], [y[k] for k in ks])
    return {"alpha": alpha, "c_universal": c_uni, "alpha_p": a_p, "c_drift": c_dr, "p": ps}


def predict_log(m: dict, model: str, p: float, rho: float) -> float:
    """log median T_grok of ``model`` ("universal/log_p", "drift/p", ...) at (p, rho)."""
    kind, along = model.split("/")
    ps = m["p"]
    x = np.log(ps) if along == "log_p" else np.asarray(ps, float)
    xp = math.log(p) if along == "log_p" else float(p)
    c = m["c_universal"] if kind == "universal" else m["c_drift"]
    b, a = _line(x, [c[q] for q in ps])
    if kind == "universal":
        slope = m["alpha"]
    else:
        bs, as_ = _line(ps, [m["alpha_p"][q] for q in ps])
        slope = as_ + bs * p
    return a + b * xp + slope * (rho - 1.0)


def _medians(cl: dict, idx: dict | None = None) -> dict:
    out = {}
    for k, (t, c) in cl.items():
        i = slice(None) if idx is None else idx[k]
        out[k] = _km(t[i], c[i])
    return out


def prediction(lanes: dict, scan_p=SCAN_P, drop: tuple = (), n_boot: int = N_BOOT, seed=0) -> dict:
    """Every model's predicted median (and bands) at the held-out moduli, from ``lanes``."""
    from grokjax import fit

    cl = {k: v for k, v in cells(lanes, scan_p, RHOS).items() if k not in drop}
    meds = _medians(cl)
    m = fit_models(meds)
    rng = np.random.default_rng(seed)
    keys = sorted(cl)
    draws = {mod: [] for mod in MODELS}
    noise = []
    for _ in range(n_boot):
        idx = {k: rng.integers(0, len(cl[k][0]), len(cl[k][0])) for k in keys}
        mb = _medians(cl, idx)
        fb = fit_models(mb)
        for mod in MODELS:
            draws[mod].append([predict_log(fb, mod, p, r) for p in HELDOUT_P for r in RHOS])
        k = keys[rng.integers(len(keys))]  # the seed noise of one 12-seed median
        if math.isfinite(mb[k]) and math.isfinite(meds[k]):
            noise.append(math.log(mb[k]) - math.log(meds[k]))
    noise = np.asarray(noise)
    out = {"fit": _fit_json(m), "models": {}}
    for mod in MODELS:
        d = np.asarray(draws[mod])
        dn = d + rng.choice(noise, size=d.shape)
        cells_out = []
        for j, (p, r) in enumerate((p, r) for p in HELDOUT_P for r in RHOS):
            cells_out.append(
                {
                    "p": p,
                    "rho": r,
                    "median": round(math.exp(predict_log(m, mod, p, r)), 1),
                    "band": [
                        round(float(math.exp(v)), 1) for v in np.percentile(d[:, j], [2.5, 97.5])
                    ],
                    "band_cell": [
                        round(float(math.exp(v)), 1) for v in np.percentile(dn[:, j], [2.5, 97.5])
                    ],
                }
            )
        out["models"][mod] = cells_out
    wc = {p: free_norms(lanes, p) for p in scan_p}
    law = fit.power_law(np.array(scan_p, float), np.array([np.median(wc[p]) for p in scan_p]))
    wboot = []
    for _ in range(n_boot):
        med = [np.median(rng.choice(wc[p], len(wc[p]))) for p in scan_p]
        b, a = _line(np.log(scan_p), np.log(med))
        wboot.append([math.exp(a + b * math.log(p)) for p in HELDOUT_P])
    wboot = np.asarray(wboot)
    out["Wc"] = {
        "exponent": law["exponent"],
        "prefactor": law["prefactor"],
        "scan": {str(p): round(float(np.median(wc[p])), 3) for p in scan_p},
        "predicted": [
            {
                "p": p,
                "Wc": round(law["prefactor"] * p ** law["exponent"], 3),
                "band": [round(float(v), 3) for v in np.percentile(wboot[:, j], [2.5, 97.5])],
            }
            for j, p in enumerate(HELDOUT_P)
        ],
    }
    return out


def _fit_json(m: dict) -> dict:
    return {
        "alpha_universal": round(m["alpha"], 4),
        "alpha_per_p": {str(p): round(v, 4) for p, v in m["alpha_p"].items()},
        "log_T_at_rho1_universal": {str(p): round(v, 4) for p, v in m["c_universal"].items()},
        "log_T_at_rho1_drift": {str(p): round(v, 4) for p, v in m["c_drift"].items()},
    }


def load_lanes(paths) -> dict:
    """The scan's lanes, pooled along p (:mod:`experiments.pool_sweeps`)."""
    from experiments import pool_sweeps

    return pool_sweeps.load(list(paths))


def predict(paths=SCAN_RUNS, out: str = PREDICTION, n_boot: int = N_BOOT) -> dict:
    lanes = load_lanes(paths)
    absent = [p for p in SCAN_P if not (lanes["p"] == p).any()]
    if absent:
        raise cli.UsageError(f"the scan runs hold no lanes at p = {absent[0]}")
    doc = {
        "format": FORMAT,
        "what": "preregistered median T_grok at held-out moduli, before any held-out lane ran",
        "scan_runs": [os.path.normpath(p) for p in paths],
        "scan_p": list(SCAN_P),
        "rho": list(RHOS),
        "heldout_p": list(HELDOUT_P),
        "protocol": "delay_sweep --preset paper (MLP d 128, H 256, frac 0.4, lr 1e-3, wd 1, "
        f"t_int 500), {SEEDS} seeds from {SEED_BASE}, clamp to rho x the run's own free W_c",
        "models": list(MODELS),
        "paper_alpha": PAPER_ALPHA,
        "n_boot": n_boot,
        "primary": "all",
        "variants": {
            "all": prediction(lanes, n_boot=n_boot),
            "without_p41_rho1.15": prediction(lanes, drop=(COLLAPSE_CELL,), n_boot=n_boot),
        },
    }
    from grokjax.results import write_json

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    write_json(out, doc)
    return doc


def prediction_table(doc: dict) -> str:
    lines = []
    for var, res in doc["variants"].items():
        f = res["fit"]
        lines.append(
            f"[{var}] universal alpha {f['alpha_universal']:.2f}; per-p alpha "
            + ", ".join(f"{p}: {a:.2f}" for p, a in f["alpha_per_p"].items())
        )
        for mod, cs in res["models"].items():
            lines.append(
                f"  {mod:16s} "
                + "  ".join(
                    f"p{c['p']} rho {c['rho']:.2f}: {c['median']:.0f} "
                    f"[{c['band'][0]:.0f}, {c['band'][1]:.0f}]"
                    for c in cs
                )
            )
        w = res["Wc"]
        lines.append(
            f"  W_c ∝ p^{w['exponent']:.3f}: "
            + ", ".join(
                f"p{c['p']} {c['Wc']:.2f} [{c['band'][0]:.2f}, {c['band'][1]:.2f}]"
                for c in w["predicted"]
            )
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# run and score
# ---------------------------------------------------------------------------


def run_argv(out: str) -> list[str]:
    return [
        "--preset",
        "paper",
        "--p",
        ",".join(map(str, HELDOUT_P)),
        "--rho",
        ",".join(f"{r:g}" for r in RHOS),
        "--extra-rho",
        "",
        "--seeds",
        str(SEEDS),
        "--seed-base",
        str(SEED_BASE),
        "--out",
        out,
    ]


def score(pred: dict, run_dirs, out: str) -> dict:
    """Each held-out cell's measured median against every model's bands."""
    lanes = _heldout_lanes(run_dirs)
    measured = _measured_cells(lanes)
    doc = {
        "format": FORMAT,
        "prediction": pred.get("_path"),
        "runs": list(run_dirs),
        "variants": {},
    }
    for var, res in pred["variants"].items():
        vout = {"models": {}, "Wc": []}
        for mod, cs in res["models"].items():
            vout["models"][mod] = _score_model(cs, measured)
        scored = {k: v for k, v in vout["models"].items() if v["rms_log_error"] is not None}
        vout["preferred"] = (
            min(scored, key=lambda k: scored[k]["rms_log_error"]) if scored else None
        )
        vout["Wc"] = [_score_wc(w, lanes) for w in res["Wc"]["predicted"]]
        doc["variants"][var] = vout
    os.makedirs(out, exist_ok=True)
    from grokjax.results import write_json, write_text

    write_json(os.path.join(out, "score.json"), doc)
    write_text(os.path.join(out, "score.md"), score_table(doc))
    figure(pred, lanes, doc, os.path.join(out, "heldout.png"))
    return doc


def _heldout_lanes(run_dirs) -> dict:
    """The lanes of the held-out run (its parts pooled); UsageError when the runs are not it."""
    from grokjax import runs

    try:
        loaded = runs.load_runs(list(run_dirs))
    except runs.RunDirError as e:
        raise cli.UsageError(str(e)) from None
    lanes = loaded[0].lanes if len(loaded) == 1 else runs.pool(loaded, "p")[0].lanes
    cfg = loaded[0].config
    if cfg.get("seed_base") != SEED_BASE or cfg.get("experiment") != "delay_sweep":
        raise cli.UsageError(
            f"{loaded[0].path}: not the held-out run (a delay_sweep run from seed {SEED_BASE})"
        )
    return lanes


def _measured_cells(lanes: dict) -> dict:
    """(p, rho) -> the cell's median T_grok with its CI, lane count and censored count."""
    from grokjax import fit

    measured = {}
    for k, (t, c) in cells(lanes, HELDOUT_P, RHOS).items():
        mc = fit.median_ci(t, c, n_boot=1000, seed=0)
        measured[k] = {
            "median": mc["median"],
            "ci": mc["ci"],
            "n": mc["n"],
            "censored": mc["n_censored"],
        }
    return measured


def _score_model(cs: list, measured: dict) -> dict:
    """One model's predicted cells against the measured medians: per cell the log error and
    whether it falls in the bands; overall the RMS log error and the counts inside."""
    rows, errs = [], []
    for c in cs:
        meas = measured.get((c["p"], float(c["rho"])))
        if meas is None or meas["median"] is None:
            rows.append(dict(c, measured=None))
            continue
        m = meas["median"]
        err = math.log(m / c["median"])
        errs.append(err)
        rows.append(
            dict(
                c,
                measured=m,
                measured_ci=meas["ci"],
                log_error=round(err, 4),
                inside_band=bool(c["band"][0] <= m <= c["band"][1]),
                inside_band_cell=bool(c["band_cell"][0] <= m <= c["band_cell"][1]),
            )
        )
    return {
        "cells": rows,
        "rms_log_error": round(math.sqrt(float(np.mean(np.square(errs)))), 4) if errs else None,
        "inside_band": sum(r.get("inside_band", False) for r in rows),
        "inside_band_cell": sum(r.get("inside_band_cell", False) for r in rows),
        "n": len(errs),
    }


def _score_wc(w: dict, lanes: dict) -> dict:
    """A predicted W_c against the median norm at T_grok of the free lanes at its p."""
    norms = free_norms(lanes, w["p"])
    meas = float(np.median(norms)) if norms.size else None
    return dict(
        w,
        measured=None if meas is None else round(meas, 3),
        rel_error=None if meas is None else round(meas / w["Wc"] - 1.0, 4),
        inside_band=None if meas is None else bool(w["band"][0] <= meas <= w["band"][1]),
    )


def score_table(doc: dict) -> str:
    lines = ["# Held-out prediction, scored", ""]
    for var, v in doc["variants"].items():
        lines += [f"## variant `{var}` (preferred: {v['preferred']})", ""]
        lines += [
            "| model | p | rho | predicted [95 % band] | band with cell noise | measured | log error | inside |"
        ]
        lines += ["|---|---:|---:|---|---|---:|---:|---|"]
        for mod, mv in v["models"].items():
            for c in mv["cells"]:
                meas = "n/a" if c.get("measured") is None else f"{c['measured']:.0f}"
                lines.append(
                    f"| {mod} | {c['p']} | {c['rho']:.2f} | {c['median']:.0f} "
                    f"[{c['band'][0]:.0f}, {c['band'][1]:.0f}] | "
                    f"[{c['band_cell'][0]:.0f}, {c['band_cell'][1]:.0f}] | {meas} | "
                    f"{c.get('log_error', 'n/a')} | {c.get('inside_band', 'n/a')} / "
                    f"{c.get('inside_band_cell', 'n/a')} |"
                )
            lines.append(
                f"| {mod} | | | rms log error {mv['rms_log_error']} | inside {mv['inside_band']} "
                f"/ {mv['n']} (cell noise: {mv['inside_band_cell']}) | | | |"
            )
        lines.append("")
        for w in v["Wc"]:
            lines.append(
                f"- W_c({w['p']}): predicted {w['Wc']:.2f} [{w['band'][0]:.2f}, {w['band'][1]:.2f}], "
                f"measured {w['measured']}, relative error {w['rel_error']}"
            )
        lines.append("")
    return "\n".join(lines)


def figure(pred: dict, lanes: dict, doc: dict, path: str) -> None:
    """The primary variant's bands per model with the measured seeds and medians."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    var = pred["primary"]
    res = pred["variants"][var]
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, len(HELDOUT_P), sharey=False)
    colors = {"universal": "tab:blue", "drift": "tab:orange"}
    cl = cells(lanes, HELDOUT_P, RHOS)
    for ax, p in zip(axes, HELDOUT_P):
        for j, mod in enumerate(MODELS):
            cs = [c for c in res["models"][mod] if c["p"] == p]
            x = np.array([c["rho"] for c in cs]) + (j - 1.5) * 0.008
            kind = mod.split("/")[0]
            ls = "-" if mod.endswith("log_p") else "--"
            ax.plot(x, [c["median"] for c in cs], ls, color=colors[kind], label=mod)
            lo = [c["band_cell"][0] for c in cs]
            hi = [c["band_cell"][1] for c in cs]
            ax.fill_between(x, lo, hi, color=colors[kind], alpha=0.08)
        for r in RHOS:
            if (p, r) in cl:
                t, c = cl[(p, r)]
                ax.scatter(np.full(t.size, r), t, s=8, color="k", alpha=0.35, marker="o")
        meas = doc["variants"][var]["models"][MODELS[0]]["cells"]
        pts = [(c["rho"], c["measured"]) for c in meas if c["p"] == p and c.get("measured")]
        if pts:
            ax.plot(*zip(*pts), "kD", ms=7, label="measured median")
        ax.set_yscale("log")
        ax.set_xlabel("held norm rho (× W_c)")
        ax.set_title(f"p = {p} (held out)")
    axes[0].set_ylabel("T_grok (steps)")
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = cli.Parser(prog="python -m experiments.heldout", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("predict", help="write the prediction from the committed scan (JAX-free)")
    pp.add_argument("--runs", type=cli.strings, default=list(SCAN_RUNS), help="the scan's runs")
    pp.add_argument("--out", default=PREDICTION, help=f"prediction file (default {PREDICTION})")
    pp.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap draws ({N_BOOT})")
    pr = sub.add_parser("run", help="train the held-out lanes (delay_sweep at p = 67, 97)")
    pr.add_argument("--out", default=RUN_OUT, help=f"run directory (default {RUN_OUT})")
    ps = sub.add_parser("score", help="score a held-out run against the prediction (JAX-free)")
    ps.add_argument("--prediction", default=PREDICTION, help=f"(default {PREDICTION})")
    ps.add_argument("--run", type=cli.strings, default=[RUN_OUT], help="held-out run dir(s)")
    ps.add_argument("--out", default="", help="where score.json goes (default: the run dir)")
    args, rest = ap.parse_known_args(argv)
    if args.cmd != "run" and rest:
        raise cli.UsageError(f"unrecognized arguments: {' '.join(rest)}")
    if args.cmd == "predict":
        if args.n_boot < 1:
            raise cli.UsageError("--n-boot must be >= 1")
        doc = predict(args.runs, args.out, args.n_boot)
        print(prediction_table(doc))
        print(f"wrote {args.out}")
        return 0
    if args.cmd == "run":
        from experiments import delay_sweep

        return delay_sweep.main(run_argv(args.out) + rest)
    try:
        with open(args.prediction) as fh:
            pred = json.load(fh)
    except (OSError, ValueError) as e:
        raise cli.UsageError(f"{args.prediction}: unreadable prediction ({e})") from None
    pred["_path"] = args.prediction
    doc = score(pred, args.run, args.out or args.run[0])
    print(score_table(doc))
    return 0


def main_cli(argv=None) -> int:
    return cli.main_guard("heldout", main, argv)


if __name__ == "__main__":
    sys.exit(main_cli())
