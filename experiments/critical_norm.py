"""The critical norm W_c: free training over train fraction, modulus p, lr and wd.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.critical_norm                  # preset quick (default)
    python -m experiments.critical_norm --preset paper   # the paper's grid (GPU)

Every lane trains freely (no clamp); W_c of a cell is the median ||W|| at T_grok (test accuracy
>= 0.9) over its grokked seeds. Reported: W_c per cell with its seed CV, the CV of W_c across
train fractions (per p) and across learning rates (per wd), W_c at the thresholds 0.8 / 0.9 /
0.95, and the power law W_c ∝ p^b at the reference fraction. Lanes that do not grok within
the budget are counted as censored (their T_grok is a lower bound), never dropped.
curves.npz also holds each lane's Fourier concentration of the embedding (``fourier_gini``,
``spectral_entropy``), drawn in the figure for the reference cell.

Presets (lane-steps are upper bounds: lanes stop ~10 % after grokking):
  paper  p in {29, 41, 59, 79, 97} × fraction in {0.30, 0.35, 0.40, 0.50, 0.65}, plus
         {0.15, 0.20, 0.25} at p in {59, 79, 97}; 20 seeds; lr 1e-3, wd 1; and at p=59,
         fraction 0.5: lr in {3e-4, 1e-3, 3e-3} × wd in {0.3, 1, 3}; seeds 3000-3019; the
         paper's flat budgets 60k (100k at fractions <= 0.25; --low-frac-steps 0 gives 30k
         steps × (0.4/fraction)² (at most ×8) × max(1, 1e-3/lr) × max(1, p/59) instead). 840
         lanes, ≈ 58 M lane-steps bound, ~11 M expected (see --list of
         experiments.reproduce). W_c is reported as the median and the mean.
         Paper: W_c = 42 / 48 / 55 / 61 / 67 at p = 29 / 41 / 59 / 79 / 97 (b ≈ 0.38); W_c
         nearly independent of fraction and lr: at wd = 3, W_c ≈ 48.9 / 48.7 / 49.1 across a
         10× lr range while T_grok changes ~7×.
  quick  scaled down to the small model (d=64, H=128, lr 1e-2, wd 1, 4 seeds): p in {31, 43,
         59} × fraction in {0.5, 0.7}, and at p=31, fraction 0.7: lr in {5e-3, 1e-2, 2e-2} ×
         wd in {1, 3}. Measured 118 s on the 2-core CPU.
         What it showed: the README ("What the quick presets showed").
  tiny   p=23, d=32, H=64, fractions {0.7, 0.8}, lr 1e-2 × wd {1, 2}, 2 seeds, 1500 steps:
         ~25 s on the 2-core CPU (mostly compilation); a test of the pipeline only.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from grokjax import api, cli, experiment, fit, registry

from experiments import common
from experiments.common import fmt

CONFIG_FORMAT = 1

PRESETS = {
    "paper": dict(
        p=[29, 41, 59, 79, 97],
        frac=[0.30, 0.35, 0.40, 0.50, 0.65],
        low_frac=[0.15, 0.20, 0.25],
        low_frac_p=[59, 79, 97],
        seeds=20,
        lr=1e-3,
        wd=1.0,
        grid_p=59,
        grid_frac=0.5,
        grid_lr=[3e-4, 1e-3, 3e-3],
        grid_wd=[0.3, 1.0, 3.0],
        ref_frac=0.4,
        d=128,
        hidden=256,
        steps=60_000,
        low_frac_steps=100_000,
        seed_base=3000,
    ),
    "quick": dict(
        p=[31, 43, 59],
        frac=[0.5, 0.7],
        low_frac=[],
        low_frac_p=[],
        seeds=4,
        lr=1e-2,
        wd=1.0,
        grid_p=31,
        grid_frac=0.7,
        grid_lr=[5e-3, 1e-2, 2e-2],
        grid_wd=[1.0, 3.0],
        ref_frac=0.7,
        d=64,
        hidden=128,
        steps=4000,
    ),
    "tiny": dict(
        p=[23],
        frac=[0.7, 0.8],
        low_frac=[],
        low_frac_p=[],
        seeds=2,
        lr=1e-2,
        wd=1.0,
        grid_p=23,
        grid_frac=0.8,
        grid_lr=[1e-2],
        grid_wd=[1.0, 2.0],
        ref_frac=0.8,
        d=32,
        hidden=64,
        steps=1500,
        chunk_steps=250,
    ),
}


@dataclasses.dataclass
class Config(experiment.BaseConfig):
    experiment: str = "critical_norm"
    config_format: int = CONFIG_FORMAT
    p: list = dataclasses.field(default_factory=lambda: [29, 41, 59, 79, 97])
    frac: list = dataclasses.field(default_factory=lambda: [0.30, 0.35, 0.40, 0.50, 0.65])
    low_frac: list = dataclasses.field(default_factory=lambda: [0.15, 0.20, 0.25])
    low_frac_p: list = dataclasses.field(default_factory=lambda: [59, 79, 97])
    seeds: int = 20
    lr: float = 1e-3
    wd: float = 1.0
    grid_p: int = 59
    grid_frac: float = 0.5
    grid_lr: list = dataclasses.field(default_factory=lambda: [3e-4, 1e-3, 3e-3])
    grid_wd: list = dataclasses.field(default_factory=lambda: [0.3, 1.0, 3.0])
    ref_frac: float = 0.4
    d: int = 128
    hidden: int = 256
    steps: int = 30_000
    # > 0: the paper's flat budgets: ``steps`` for every lane, low_frac_steps at fractions
    # <= 0.25 (0: ``steps`` scaled up at small fractions, small lr and large p)
    low_frac_steps: int = 0

    # the low fractions run at the --low-frac-p moduli that are among --p (a subset is fine);
    # the power law in p is fitted at the reference fraction, one of the main grid's
    MEMBERS = (("low_frac_p", "p", "low_frac"), ("ref_frac", "frac", None))

    def validate(self) -> None:
        from grokjax.data import validate_task

        if not self.p or not self.frac:
            raise cli.UsageError("--p and --frac must not be empty")
        for p, f in self.cells_pf() + [(self.grid_p, self.grid_frac)]:
            try:
                validate_task(p, self.op, f)
            except ValueError as e:
                raise cli.UsageError(str(e)) from None
        experiment.positive("lr", [self.lr] + list(self.grid_lr))
        experiment.positive("wd", [self.wd] + list(self.grid_wd), allow_zero=True)
        for name, vals in (("low-frac", self.low_frac), ("ref-frac", [self.ref_frac])):
            if any(not 0.0 < f < 1.0 for f in vals):
                raise cli.UsageError(f"--{name} values must lie in (0, 1), got {vals}")
        if self.seeds < 1:
            raise cli.UsageError(f"--seeds must be >= 1, got {self.seeds}")
        if self.steps < 1 or self.d < 1 or self.hidden < 1:
            raise cli.UsageError("--steps, --d and --hidden must be >= 1")
        experiment.BaseConfig.validate(self)

    def cells_pf(self) -> list:
        """(p, fraction) pairs of the main grid."""
        out = []
        for p in self.p:
            fr = list(self.frac) + (list(self.low_frac) if p in self.low_frac_p else [])
            out += [(p, f) for f in sorted(set(fr))]
        return out

    def budget(self, p: int, frac: float, lr: float) -> int:
        if self.low_frac_steps > 0:
            return int(self.low_frac_steps if frac <= 0.25 + 1e-9 else self.steps)
        scale = min((0.4 / frac) ** 2, 8.0) if frac < 0.4 else 1.0
        scale *= max(1.0, self.lr / lr)  # a smaller lr than the reference one is slower
        return int(math.ceil(self.steps * scale * max(1.0, p / 59) / 100) * 100)

    def lanes(self) -> list:
        """(p, frac, lr, wd) per phase: the main grid, then the lr × wd grid."""
        main = [(p, f, self.lr, self.wd) for p, f in self.cells_pf()]
        grid = [(self.grid_p, self.grid_frac, lr, wd) for lr in self.grid_lr for wd in self.grid_wd]
        grid = [g for g in grid if not any(_same(g, m) for m in main)]
        return main, grid


def _same(a, b) -> bool:
    return a[0] == b[0] and all(math.isclose(x, y) for x, y in zip(a[1:], b[1:]))


def _cell(p, f, lr, wd) -> str:
    return f"p{p}-f{f:g}-lr{lr:g}-wd{wd:g}"


def phase_meta(cfg: Config, combos: list) -> dict:
    rows = [
        dict(
            p=p, frac=f, lr=lr, wd=wd, seed=s, budget=cfg.budget(p, f, lr), cell=_cell(p, f, lr, wd)
        )
        for p, f, lr, wd in combos
        for s in cfg.seed_range()
    ]
    return common.lane_table(cfg, rows)


def plan(cfg: Config):
    main, grid = cfg.lanes()
    for p, f, lr, wd in main:
        yield experiment.Phase(
            f"p{p}-f{f:g}",
            common.mlp_static(cfg, p, f),
            phase_meta(cfg, [(p, f, lr, wd)]),
            f"[p={p} frac={f:g}] ",
        )
    if grid:
        yield experiment.Phase(
            "lr-wd",
            common.mlp_static(cfg, cfg.grid_p, cfg.grid_frac),
            phase_meta(cfg, grid),
            f"[p={cfg.grid_p} lr × wd] ",
        )


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """Per cell its T_grok and W_c; W_c across fractions per p and across lr per wd; the power
    law of W_c in p at the reference fraction and on the per-p median over fractions."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    ok = ~run.lanes["diverged"]
    cells = [_cell_spec(run, key) for key in dict.fromkeys(run.lanes["cell"])]
    return [
        fitspec.rows("cells", cells),
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        m("across_frac", _across_frac, None, cells=Ref("cells"), cfg=cfg),
        m("across_lr", _across_lr, None, cells=Ref("cells"), cfg=cfg),
        m("Wc_by_p", _wc_by_p, None, cells=Ref("cells"), cfg=cfg),
        m("power_law", _power_law, None, cells=Ref("cells"), cfg=cfg),
        m("power_law_all_fracs", _power_law_all_fracs, None, cells=Ref("cells"), cfg=cfg),
    ]


def _cell_spec(run, key: str) -> list:
    """The measures of one cell (a row of fit.json's ``cells``)."""
    from grokjax import fitspec
    from grokjax import measures as ms
    from grokjax.fitspec import m

    lanes = run.lanes
    sel = lanes["cell"] == key
    ok = sel & ~lanes["diverged"]
    i = np.flatnonzero(sel)[0]
    return [
        fitspec.value("cell", key),
        fitspec.value("p", int(lanes["p"][i])),
        *(fitspec.value(k, float(lanes[k][i])) for k in ("frac", "lr", "wd")),
        m("n", ms.count, sel),
        m("n_grokked", ms.count, ok & lanes["grokked"]),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, sel & lanes["diverged"]),
        m("T_grok", lambda run, s: {k: ms.cell_times(run, s)[k] for k in ("median", "ci")}, sel),
        m("Wc", ms.wc, ok),
        m("Wc_thresholds", ms.wc_thresholds, ok),
    ]


def _series(cs: list, key: str) -> dict:
    """W_c and T_grok of cells ``cs`` along setting ``key``, with their CV and fold."""
    meds = [c["Wc"]["median"] for c in cs]
    tg = [c["T_grok"]["median"] for c in cs]
    return {key: [c[key] for c in cs], "Wc": meds, "cv": fit.cv(meds), "T_grok": tg,
            "T_grok_fold": fit.fold(tg)}  # fmt: skip


def _base(cells: list, cfg: Config) -> list:
    """The cells at the reference lr and wd."""
    return [c for c in cells if math.isclose(c["lr"], cfg.lr) and math.isclose(c["wd"], cfg.wd)]


def _across_frac(run, _sel, cells: list, cfg: Config) -> dict:
    """W_c across train fractions, per p (reference lr and wd)."""
    base = _base(cells, cfg)
    return {
        str(p): _series(sorted((c for c in base if c["p"] == p), key=lambda c: c["frac"]), "frac")
        for p in sorted({c["p"] for c in base})
    }


def _across_lr(run, _sel, cells: list, cfg: Config) -> dict:
    """W_c across lr, per wd (the lr × wd grid and the main grid's matching cell)."""
    gp = [c for c in cells if c["p"] == cfg.grid_p and math.isclose(c["frac"], cfg.grid_frac)]
    return {
        repr(wd): _series(
            sorted((c for c in gp if math.isclose(c["wd"], wd)), key=lambda c: c["lr"]), "lr"
        )
        for wd in sorted({c["wd"] for c in gp})
    }


def _ref_cells(cells: list, cfg: Config) -> list:
    """The cells at the reference lr, wd and fraction, by p."""
    ref = (c for c in _base(cells, cfg) if math.isclose(c["frac"], cfg.ref_frac))
    return sorted(ref, key=lambda c: c["p"])


def _wc_by_p(run, _sel, cells: list, cfg: Config) -> dict:
    return {str(c["p"]): c["Wc"]["median"] for c in _ref_cells(cells, cfg)}


def _power_law(run, _sel, cells: list, cfg: Config) -> dict | None:
    """W_c ∝ p^b at the reference fraction (None with fewer than two p)."""
    from grokjax import measures

    ref = _ref_cells(cells, cfg)
    wcs = {c["p"]: c["Wc"]["median"] or np.nan for c in ref}
    return measures.power_law(wcs) if len(ref) >= 2 else None


def _power_law_all_fracs(run, _sel, cells: list, cfg: Config) -> dict | None:
    """W_c ∝ p^b on the per-p median over fractions (None with fewer than two p)."""
    from grokjax import measures

    base = _base(cells, cfg)
    pooled = {
        p: [c["Wc"]["median"] for c in base if c["p"] == p and c["Wc"]["median"]]
        for p in sorted({c["p"] for c in base})
    }
    pooled = {p: float(np.median(v)) for p, v in pooled.items() if v}
    return measures.power_law(pooled) if len(pooled) >= 2 else None


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """The run's figure: ``grokjax.plots.critical_norm_figure``, the one the report draws (with the
    paper's values on it)."""
    from grokjax import plots

    return plots.critical_norm_figure(lanes, fitted, curves, out, prefix)


def summary(fitted: dict, cfg: Config) -> str:
    lines = [
        f"{fitted['n_lanes']} lanes, {fitted['n_censored']} censored, "
        f"{fitted['n_diverged']} diverged"
    ]
    for c in fitted["cells"]:
        w = c["Wc"]
        thr = c["Wc_thresholds"]["medians"]
        lines.append(
            f"{c['cell']}: W_c = {fmt(w['median'], '{:.2f}')} (mean "
            f"{fmt(w['mean'], '{:.2f}')}, CV "
            f"{fmt(w['cv'] and 100 * w['cv'], '{:.1f}')} %, {c['n_grokked']}/{c['n']} "
            f"grokked; at test acc 0.8/0.9/0.95: "
            f"{'/'.join(fmt(thr.get(k), '{:.1f}') for k in ('0.8', '0.9', '0.95'))}), "
            f"T_grok median {fmt(c['T_grok']['median'], '{:.0f}')}"
        )
    for p, e in fitted["across_frac"].items():
        lines.append(
            f"p={p}: CV of W_c across fractions {fmt(e['cv'] and 100 * e['cv'], '{:.1f}')}"
            f" %, T_grok fold {fmt(e['T_grok_fold'], '{:.1f}')}×"
        )
    for wd, e in fitted["across_lr"].items():
        lines.append(
            f"wd={float(wd):g}: W_c across lr {[fmt(w, '{:.1f}') for w in e['Wc']]} "
            f"(CV {fmt(e['cv'] and 100 * e['cv'], '{:.1f}')} %), T_grok fold "
            f"{fmt(e['T_grok_fold'], '{:.1f}')}×"
        )
    pl = fitted.get("power_law") or {}
    lines.append(
        f"W_c ∝ p^b at fraction {cfg.ref_frac:g}: b = {fmt(pl.get('exponent'), '{:.3g}')} "
        f"(R² {fmt(pl.get('r2'), '{:.3f}')})"
    )
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    from grokjax import estimate

    main, grid = cfg.lanes()
    lanes = [
        (p, None, lr, wd, f, cfg.budget(p, f, lr))
        for p, f, lr, wd in main + grid
        for _ in cfg.seed_range()
    ]
    return estimate.cost_line(
        len(lanes), sum(b for *_, b in lanes), lanes if (cfg.d, cfg.hidden) == (128, 256) else None
    )


SPEC = registry.register(
    experiment.Spec(
        name="critical_norm",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        doc=__doc__,
        cost=cost,
        about="free runs over fraction × p and lr × wd: W_c and its scaling",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
