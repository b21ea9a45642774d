"""Controls on how the norm is set: it is the norm held during training that sets the delay.

Run (from a checkout, after ``pip install -e .``):

    python -m experiments.norm_controls                  # preset quick (default)
    python -m experiments.norm_controls --preset paper   # the paper's controls (GPU)

Arms (all on the same seeds, hence the same initialisations and splits):
  (a) free training at several weight decays: the frontier of (norm at grokking, T_grok), with
      continuously clamped cells (||W|| held at rho·W_c from t_int) placed on it;
  (b) ``one_shot``: every weight matrix rescaled once, at t_int, to rho·W_c, then free
      (clamp_steps = 1);
  (c) ``group_one_shot``: one parameter group (embed, hidden, out) scaled once by 0.8 at t_int
      (target 0.8 × that group's norm at t_int, read from an auxiliary run of the same lanes to
      t_int that is not part of the results); in these lanes the headline ``norm`` columns
      cover that group only (``norm_at_grok_<group>`` columns hold every group's norm);
  (d) ``low_init``: every weight matrix scaled by init_scale < 1 at initialisation, then free.
W_c is the median norm at grokking of the free controls at the reference wd. Medians of
T_grok are Kaplan-Meier medians: lanes that do not grok within the budget are right-censored,
never dropped. Each control is reported as its median T_grok over that of the free control.

Presets (lane-steps are upper bounds):
  paper  p=59, fraction 0.4, MLP d=128 H=256, lr 1e-3, t_int 500, 16 seeds (2000-2015); wd in
         {1, 2, 3, 5, 8} (reference wd 1); clamped rho in {0.85, 0.90, 1.00, 1.15} (paper:
         7.3× from 0.90 to 1.15); one-shot rho in {0.70, 0.85, 1.00, 1.15, 1.30}; group factor
         0.8; low-norm init at ||W|| = 0.73 and 0.90 × W_c (--init-rho: the natural init,
         ≈ 19.3, rescaled up to below W_c); clamps and rescales at rho × the fixed W_c = 54.6;
         each group's share of ||W||² at t_int and at T_grok. 304 lanes (+16 run to t_int);
         ≈ 9 M lane-steps bound, ~1.9 M expected (~2.7 h on the 2-core CPU): there, run it as
         two 8-seed blocks (``--seeds 8``, then ``--seeds 8 --seed-base 2008``, each into its
         own directory), which the report pools into the 16-seed design. Paper: one-shot
         rescaling moves T_grok only ~1.2× across rho (the norm re-equilibrates); a one-shot ×0.8 of one group stays
         within ~3 % of the control; low-norm initialisation is washed out; the clamped cells
         lie off the free frontier.
  quick  scaled down to the small model (p=31, d=64, H=128, fraction 0.7, lr 1e-2, t_int 50),
         4 seeds, wd in {1, 2, 4}, init_scale 0.5: measured 72 s on the 2-core CPU.
         What it showed: the README ("What the quick presets showed").
  tiny   p=23, d=32, H=64, 2 seeds, wd {1, 2}, one group (embed), budgets 1.5-2k steps:
         ~40 s on the 2-core CPU (mostly compilation); a test of the pipeline only.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from grokjax import api, cli, estimate, experiment, registry

from experiments import common
from experiments.common import fmt

CONFIG_FORMAT = 1

PRESETS = {
    "paper": dict(
        p=59,
        frac=0.4,
        d=128,
        hidden=256,
        seeds=16,
        lr=1e-3,
        wd=1.0,
        t_int=500,
        wds=[1.0, 2.0, 3.0, 5.0, 8.0],
        clamp_rho=[0.85, 0.90, 1.0, 1.15],
        one_shot_rho=[0.70, 0.85, 1.0, 1.15, 1.30],
        group_factor=0.8,
        groups=["embed", "hidden", "out"],
        init_scales=[],
        init_rho=[0.73, 0.90],
        steps=30_000,
        budget_rho=[0.85, 1.0, 1.15],
        budget_steps=[15_000, 25_000, 80_000],
        fixed_wc=54.6,
        seed_base=2000,
    ),
    "quick": dict(
        p=31,
        frac=0.7,
        d=64,
        hidden=128,
        seeds=4,
        lr=1e-2,
        wd=1.0,
        t_int=50,
        wds=[1.0, 2.0, 4.0],
        clamp_rho=[0.85, 1.0, 1.15],
        one_shot_rho=[0.70, 0.85, 1.0, 1.15, 1.30],
        group_factor=0.8,
        groups=["embed", "hidden", "out"],
        init_scales=[0.5],
        steps=3000,
        budget_rho=[0.85, 1.15],
        budget_steps=[3000, 6000],
    ),
    "tiny": dict(
        p=23,
        frac=0.8,
        d=32,
        hidden=64,
        seeds=2,
        lr=1e-2,
        wd=1.0,
        t_int=50,
        wds=[1.0, 2.0],
        clamp_rho=[1.0],
        one_shot_rho=[0.8, 1.2],
        group_factor=0.8,
        groups=["embed"],
        init_scales=[0.5],
        steps=1500,
        budget_rho=[1.0],
        budget_steps=[2000],
        chunk_steps=250,
    ),
}


@dataclasses.dataclass
class Config(common.FixedWc, common.MLPConfig, common.RhoBudgets):
    experiment: str = "norm_controls"
    config_format: int = CONFIG_FORMAT
    wds: list = dataclasses.field(default_factory=lambda: [1.0, 2.0, 3.0, 5.0, 8.0])
    clamp_rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15])
    one_shot_rho: list = dataclasses.field(default_factory=lambda: [0.70, 0.85, 1.0, 1.15, 1.30])
    group_factor: float = 0.8
    groups: list = dataclasses.field(default_factory=lambda: ["embed", "hidden", "out"])
    init_scales: list = dataclasses.field(default_factory=lambda: [0.5, 0.7])
    # low-norm initialisation at a norm: every weight matrix rescaled at init so that ||W||
    # = init_rho·W_c (the paper's 0.73 and 0.90: above the natural init, below W_c)
    init_rho: list = dataclasses.field(default_factory=list)
    budget_rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15])
    budget_steps: list = dataclasses.field(default_factory=lambda: [15_000, 25_000, 80_000])

    def validate(self) -> None:
        experiment.positive("wds", self.wds, allow_zero=True)
        self.validate_fixed_wc()
        for name in ("clamp_rho", "one_shot_rho", "init_scales", "init_rho", "budget_steps"):
            vals = getattr(self, name)
            if vals:
                experiment.positive(name.replace("_", "-"), vals)
        experiment.positive("group-factor", self.group_factor)
        self.validate_budgets()
        unknown = [g for g in self.groups if g not in ("embed", "hidden", "out")]
        if unknown:
            raise cli.UsageError(
                f"--groups: unknown MLP group(s) {', '.join(unknown)}; "
                f"choose from embed, hidden, out"
            )
        if not any(math.isclose(w, self.wd) for w in self.wds):
            self.wds = [self.wd] + list(self.wds)  # the reference control is always run
        common.MLPConfig.validate(self)


def plan(cfg: Config):
    """Free controls over wd; then, in one phase, the low-init, group one-shot, clamped and
    one-shot arms (the group arms after a run of the same lanes to t_int)."""
    static = common.mlp_static(cfg)
    seeds = cfg.seed_range()
    free = yield experiment.Phase(
        "free",
        static,
        common.lane_table(
            cfg, [dict(seed=s, wd=wd, cell=f"free-wd{wd:g}") for wd in cfg.wds for s in seeds]
        ),
        "[free] ",
    )
    wc, n = common.reference_norm(free, lambda r: math.isclose(r["wd"], cfg.wd))
    rows = [
        dict(seed=s, arm="low_init", init_scale=k, cell=f"low_init-{k:g}")
        for k in cfg.init_scales
        for s in seeds
    ]
    fractions = {}
    if cfg.groups:
        fractions, group_rows = yield from _group_arms(cfg, static, seeds)
        rows += group_rows
    rows += _held_arms(cfg, free, wc, n, fractions)
    if rows:
        cols = sorted({k for r in rows for k in r if k.startswith("frac_")})
        rows = [{**{k: math.nan for k in cols}, **r} for r in rows]
        yield experiment.Phase("controls", static, common.lane_table(cfg, rows), "[controls] ")


def _group_arms(cfg: Config, static, seeds):
    """Runs the lanes to t_int (not recorded) for the groups' norms there; returns each seed's
    share of ||W||² per group at t_int (lanes.csv: frac_<group>_t_int) and the group one-shot
    rows (each group rescaled by group_factor at t_int)."""
    pre = yield experiment.Phase(
        "to-t_int",
        static,
        common.lane_table(cfg, [dict(seed=s, budget=cfg.t_int, cell="to-t_int") for s in seeds]),
        "[to t_int] ",
        record=False,
    )
    gn = pre.at_step("group_norms", cfg.t_int)  # [seeds, G]
    names = pre.result.groups
    share = gn**2 / np.sum(gn**2, axis=1, keepdims=True)
    fractions = {
        s: {f"frac_{g}_t_int": float(share[i, names.index(g)]) for g in names}
        for i, s in enumerate(seeds)
    }
    rows = [
        dict(
            seed=s,
            arm="group_one_shot",
            clamp_group=g,
            clamp_steps=1,
            t_int=cfg.t_int,
            clamp_mode="one_shot",
            one_shot_factor=cfg.group_factor,
            target_norm=float(cfg.group_factor * gn[i, names.index(g)]),
            cell=f"group_one_shot-{g}",
        )
        for g in cfg.groups
        for i, s in enumerate(seeds)
    ]
    return fractions, rows


def _held_arms(cfg: Config, free, wc: float | None, n: int, fractions: dict) -> list:
    """The arms at rho × W_c (low init, continuous clamp, one-shot rescale); none, said, when
    no reference control grokked."""
    if wc is None:
        print(
            "[free] no reference control grokked within its budget: W_c unknown, skipping "
            "the clamped and one-shot arms",
            flush=True,
        )
        return []
    print(f"[free] W_c = {wc:.3f} from {n} free controls", flush=True)
    wc = cfg.held_wc(wc, "free")
    seeds = cfg.seed_range()
    norm0 = free.at_step("norm", 0)[: len(seeds)]  # the natural init norm per seed
    rows = [
        dict(
            seed=s,
            arm="low_init",
            rho=r,
            init_scale=float(r * wc / norm0[i]),
            cell=f"low_init-rho{r:g}",
        )
        for r in cfg.init_rho
        for i, s in enumerate(seeds)
    ]
    rows += [
        dict(
            seed=s,
            **common.held(r, wc, cfg.t_int),
            budget=cfg.budget(r),
            cell=f"clamp-rho{r:g}",
            **fractions.get(s, {}),
        )
        for r in cfg.clamp_rho
        for s in seeds
    ]
    rows += [
        dict(
            seed=s,
            arm="one_shot",
            rho=r,
            target_norm=r * wc,
            t_int=cfg.t_int,
            clamp_steps=1,
            clamp_mode="one_shot",
            one_shot_factor=r,
            cell=f"one_shot-rho{r:g}",
        )
        for r in cfg.one_shot_rho
        for s in seeds
    ]
    return rows


def _frontier_line(frontier: list, clamped: list) -> dict | None:
    """The frontier line ln T = a·norm + b through the free cells (None with fewer than two
    distinct norms); each clamped cell gets its ``frontier_T_grok`` and ``ratio_to_frontier``."""
    fr = [c for c in frontier if c["median"] and c["norm_at_grok"]]
    if len(fr) < 2:
        return None
    x = np.array([c["norm_at_grok"] for c in fr])
    y = np.log([c["median"] for c in fr])
    if not np.ptp(x) > 0:
        return None
    a, b = np.polyfit(x, y, 1)
    for c in clamped:
        if c["median"]:
            pred = math.exp(a * c["held_norm"] + b)
            c["frontier_T_grok"] = pred
            c["ratio_to_frontier"] = c["median"] / pred
    return {"slope": float(a), "intercept": float(b)}


def fit_lanes(lanes: dict, cfg: Config) -> dict:
    """The measures of :func:`fit_spec` over the lanes."""
    from grokjax import fitspec, measures

    run = measures.as_run(lanes)
    return measures.fit_json(fitspec.evaluate(run, fit_spec(run, cfg)))


def fit_spec(run, cfg: Config) -> list:
    """W_c and T_grok of the free control at the reference wd; per arm its cells against the
    control; the frontier line through the free cells that the clamped cells are compared with."""
    from grokjax import measures as ms
    from grokjax.fitspec import Ref, m

    lanes = run.lanes
    ok = ~lanes["diverged"]
    arm = lanes["arm"]
    ctrl = (arm == "free") & np.isclose(lanes["wd"], cfg.wd)
    rho, wd = lanes["rho"], lanes["wd"]
    low_init = lambda i: (  # noqa: E731
        f"‖W‖={rho[i]:g}·W_c" if np.isfinite(rho[i]) else f"×{lanes['init_scale'][i]:g}"
    )
    cells = lambda a, key: m(a, _arm_cells, arm == a, control=Ref("control"), key=key)  # noqa: E731
    return [
        m("Wc", ms.wc, ctrl & ok),
        m("control", ms.cell_times, ctrl),
        m("n_lanes", ms.count, np.ones_like(ok)),
        m("n_censored", ms.n_censored, ok),
        m("n_diverged", ms.count, ~ok),
        m("frontier", _arm_cells, arm == "free", control=Ref("control"), key=lambda i: float(wd[i])),
        m("clamped", _clamped_cells, arm == "clamp", control=Ref("control")),
        m("frontier_line", lambda run, _s, frontier, clamped: _frontier_line(frontier, clamped),
          None, frontier=Ref("frontier"), clamped=Ref("clamped")),
        cells("one_shot", lambda i: float(rho[i])),
        m("one_shot_fold", _fold, None, cells=Ref("one_shot")),
        cells("group_one_shot", lambda i: str(lanes["clamp_group"][i])),
        cells("low_init", low_init),
    ]  # fmt: skip


def _group_norms(lanes: dict) -> tuple[list, np.ndarray]:
    """(the parameter groups with a norm at T_grok, ||W|| over every group at T_grok): the
    headline norm of a group_one_shot lane covers its clamped group only."""
    gcols = [
        k for k in lanes if k.startswith("norm_at_grok_") and k[13:] in ("embed", "hidden", "out")
    ]
    total = (
        np.sqrt(sum(lanes[k] ** 2 for k in gcols)) if gcols else np.full(len(lanes["p"]), np.nan)
    )
    return [k[13:] for k in gcols], total


def _arm_cells(run, sel_arm, control: dict, key) -> list:
    """The cells of one arm: cell blocks with ``key`` (of a lane index), the ratio of their
    median to the control's and the median norm over every group at T_grok."""
    from grokjax import measures

    lanes = run.lanes
    ok, cell = ~lanes["diverged"], lanes["cell"]
    _, total = _group_norms(lanes)
    res = []
    for name in dict.fromkeys(cell[sel_arm]):
        sel = cell == name
        c = measures.cell_times(run, sel)
        g = sel & ok & lanes["grokked"] & np.isfinite(total)
        c.update(
            cell=str(name),
            key=key(np.flatnonzero(sel)[0]),
            ratio_to_control=(
                c["median"] / control["median"]
                if c["median"] is not None and control["median"]
                else None
            ),
            norm_all_at_grok=float(np.median(total[g])) if g.any() else None,
        )
        res.append(c)
    return res


def _clamped_cells(run, sel_arm, control: dict) -> list:
    """The clamped cells (:func:`_arm_cells` by rho) with their held norm and each group's
    share of ||W||² at t_int (before the clamp) and at T_grok (after)."""
    lanes = run.lanes
    ok, cell = ~lanes["diverged"], lanes["cell"]
    groups, total = _group_norms(lanes)
    out = _arm_cells(run, sel_arm, control, lambda i: float(lanes["rho"][i]))
    for c in out:
        sel = cell == c["cell"]
        c["held_norm"] = float(np.median(lanes["target_norm"][sel]))
        g = sel & ok & lanes["grokked"] & np.isfinite(total)
        if all(f"frac_{n}_t_int" in lanes for n in groups) and g.any():
            c["norm_fractions"] = {
                n: {
                    "t_int": float(np.nanmedian(lanes[f"frac_{n}_t_int"][sel])),
                    "T_grok": float(np.median(lanes[f"norm_at_grok_{n}"][g] ** 2 / total[g] ** 2)),
                }
                for n in groups
            }
    return out


def _fold(run, _sel, cells: list) -> float | None:
    """The largest over the smallest median of ``cells`` (None with fewer than two)."""
    meds = [c["median"] for c in cells if c["median"]]
    return float(max(meds) / min(meds)) if len(meds) >= 2 else None


def figure(lanes: dict, fitted: dict, curves: dict, out: str, prefix: str = "") -> list:
    """The run's figure: ``grokjax.plots.norm_controls_figure``, the one the report draws (with the
    paper's values on it)."""
    from grokjax import plots

    return plots.norm_controls_figure(lanes, fitted, curves, out, prefix)


def summary(fitted: dict, cfg: Config) -> str:
    c0 = fitted["control"]
    lines = [
        f"control (free, wd={cfg.wd:g}): median T_grok {fmt(c0['median'], '{:.0f}')}, "
        f"W_c = {fmt(fitted['Wc']['median'], '{:.2f}')}; {fitted['n_censored']} lanes "
        f"censored, {fitted['n_diverged']} diverged"
    ]
    for key, what in (
        ("frontier", "free wd"),
        ("clamped", "clamp rho"),
        ("one_shot", "one-shot rho"),
        ("group_one_shot", f"one-shot ×{cfg.group_factor:g} of"),
        ("low_init", "init"),
    ):
        for c in fitted[key]:
            k = c["key"] if isinstance(c["key"], str) else f"{c['key']:g}"
            extra = (
                f", {fmt(c.get('ratio_to_frontier'), '{:.2f}')}× the frontier"
                if key == "clamped"
                else ""
            )
            lines.append(
                f"  {what} {k}: median T_grok {fmt(c['median'], '{:.0f}')} "
                f"({c['n_censored']}/{c['n']} censored), ‖W‖ at grok "
                f"{fmt(c['norm_all_at_grok'], '{:.2f}')}, "
                f"{fmt(c['ratio_to_control'], '{:.3f}')}× control{extra}"
            )
    lines.append(f"one-shot fold across rho: {fmt(fitted['one_shot_fold'], '{:.2f}')}×")
    shares = [c for c in fitted["clamped"] if c.get("norm_fractions")]
    if shares:
        names = list(shares[0]["norm_fractions"])
        lines.append(f"share of ‖W‖² ({' / '.join(names)}) at t_int -> at T_grok, clamped cells:")
        for c in shares:
            nf = c["norm_fractions"]
            before = " / ".join(f"{nf[n]['t_int']:.3f}" for n in names)
            after = " / ".join(f"{nf[n]['T_grok']:.3f}" for n in names)
            lines.append(f"  clamp rho {c['key']:g}: {before} -> {after}")
    return "\n".join(lines)


def cost(cfg: Config) -> str:
    # free-like lanes: the wd frontier, one-shot and group rescales, low-norm inits (each
    # estimated as a free lane at its wd); then the continuous clamps
    free = [(None, cfg.lr, wd, cfg.steps) for wd in cfg.wds]
    free += [(None, cfg.lr, cfg.wd, cfg.steps)] * (
        len(cfg.one_shot_rho) + len(cfg.groups) + len(cfg.init_scales) + len(cfg.init_rho)
    )
    clamp = [(r, cfg.lr, cfg.wd, cfg.budget(r)) for r in cfg.clamp_rho]
    # (+ the auxiliary run of every seed to t_int when --groups is set, not counted as lanes)
    return estimate.mlp_cost(cfg, free + clamp, extra=cfg.seeds * cfg.t_int * bool(cfg.groups))


SPEC = registry.register(
    experiment.Spec(
        name="norm_controls",
        config_cls=Config,
        presets=PRESETS,
        plan=plan,
        fit=fit_lanes,
        figure=figure,
        summary=summary,
        doc=__doc__,
        cost=cost,
        about="controls on how the norm is held",
        section=True,
    )
)

main, main_cli = experiment.entry_points(SPEC)
run = api.runner(SPEC)  # from Python: run(preset=..., **fields) -> grokjax.api.Results


if __name__ == "__main__":
    sys.exit(main_cli())
