"""What the transformer experiment runs: its presets, its configuration and its plan of phases
(part 1 without LayerNorm, the free LayerNorm runs, the group clamps of the LayerNorm model)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from grokjax import cli, experiment

from experiments import common

CONFIG_FORMAT = 1
PARTS = ("noln", "ln_free", "ln_clamp")
GROUPS = ("embed", "attn", "mlp", "unembed")
LN_MODES = ("all", "final")  # LayerNorm of parts 2 and 3: before attention, MLP and unembedding
# (the paper's placement), or before the unembedding only

PRESETS = {
    "paper": dict(
        d=128,
        heads=4,
        hidden=512,
        frac=0.4,
        wd=1.0,
        seeds=16,
        p=59,
        lr=5e-4,
        t_int=600,
        rho=[0.85, 1.0, 1.15, 1.2],
        fit_lo=0.85,
        fit_hi=1.15,
        steps=30_000,
        budget_rho=[0.85, 1.0, 1.15, 1.2],
        budget_steps=[10_000, 40_000, 300_000, 400_000],
        ln_p=[53, 71, 97],
        ln_frac=[0.2, 0.25, 0.3, 0.4, 0.55],
        ln_seeds=12,
        ln_lr=1e-3,
        ln_steps=50_000,
        grid_p=71,
        grid_frac=0.4,
        grid_lr=[3e-4, 1e-3, 3e-3],
        grid_wd=[0.3, 1.0, 3.0],
        clamp_p=71,
        clamp_frac=0.4,
        clamps=[
            "unembed:0.85",
            "unembed:1.0",
            "unembed:1.15",
            "unembed:1.3",
            "embed:1.3",
            "mlp:0.85",
            "mlp:1.3",
        ],
        clamp_steps=100_000,
        ln_mode="all",
        scan_rho=[0.85, 0.95, 1.05, 1.15, 1.25, 1.35, 1.5],
        scan_steps=30_000,
        seed_base=4000,
    ),
    "quick": dict(
        d=64,
        heads=4,
        hidden=128,
        frac=0.6,
        wd=1.0,
        seeds=4,
        p=31,
        lr=2e-3,
        t_int=100,
        rho=[0.85, 0.95, 1.05],
        fit_lo=0.85,
        fit_hi=1.05,
        steps=6000,
        budget_rho=[0.85, 1.05],
        budget_steps=[3000, 12_000],
        ln_p=[23, 31],
        ln_frac=[0.5, 0.6, 0.7],
        ln_seeds=4,
        ln_lr=2e-3,
        ln_steps=6000,
        grid_p=31,
        grid_frac=0.6,
        grid_lr=[1e-3, 2e-3, 4e-3],
        grid_wd=[0.5, 1.0, 2.0],
        clamp_p=31,
        clamp_frac=0.6,
        clamps=[
            "unembed:0.85",
            "unembed:1.0",
            "unembed:1.15",
            "unembed:1.3",
            "embed:1.3",
            "mlp:0.85",
            "mlp:1.3",
        ],
        clamp_steps=6000,
    ),
    "tiny": dict(
        d=32,
        heads=4,
        hidden=64,
        frac=0.7,
        wd=1.0,
        seeds=2,
        p=23,
        lr=5e-3,
        t_int=50,
        rho=[0.85, 1.0],
        fit_lo=0.85,
        fit_hi=1.0,
        steps=2000,
        budget_rho=[0.85, 1.0],
        budget_steps=[1500, 2500],
        ln_p=[11, 13],
        ln_frac=[0.7],
        ln_seeds=2,
        ln_lr=3e-3,
        ln_steps=3000,
        grid_p=13,
        grid_frac=0.7,
        grid_lr=[3e-3],
        grid_wd=[1.0, 2.0],
        clamp_p=13,
        clamp_frac=0.7,
        clamps=["unembed:1.0", "mlp:1.2"],
        clamp_steps=3000,
        chunk_steps=250,
    ),
}


@dataclasses.dataclass
class Config(common.MLPConfig, common.RhoBudgets):
    """Part 1 uses the MLPConfig fields (p, frac, seeds, lr, wd, t_int, steps); the LayerNorm
    parts have their own (ln_*, grid_*, clamp_*)."""

    experiment: str = "transformer"
    config_format: int = CONFIG_FORMAT
    d: int = 128
    hidden: int = 512
    heads: int = 4
    p: int = 59
    lr: float = 5e-4
    t_int: int = 600
    parts: list = dataclasses.field(default_factory=lambda: list(PARTS))
    rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15, 1.2])
    fit_lo: float = 0.85
    fit_hi: float = 1.15
    budget_rho: list = dataclasses.field(default_factory=lambda: [0.85, 1.0, 1.15, 1.2])
    budget_steps: list = dataclasses.field(
        default_factory=lambda: [10_000, 40_000, 300_000, 400_000]
    )
    ln_p: list = dataclasses.field(default_factory=lambda: [53, 71, 97])
    ln_frac: list = dataclasses.field(default_factory=lambda: [0.2, 0.25, 0.3, 0.4, 0.55])
    ln_seeds: int = 12
    ln_lr: float = 1e-3
    ln_steps: int = 50_000
    grid_p: int = 71
    grid_frac: float = 0.4
    grid_lr: list = dataclasses.field(default_factory=lambda: [3e-4, 1e-3, 3e-3])
    grid_wd: list = dataclasses.field(default_factory=lambda: [0.3, 1.0, 3.0])
    clamp_p: int = 71
    clamp_frac: float = 0.4
    clamps: list = dataclasses.field(
        default_factory=lambda: [
            "unembed:0.85",
            "unembed:1.0",
            "unembed:1.15",
            "unembed:1.3",
            "embed:1.3",
            "mlp:0.85",
            "mlp:1.3",
        ]
    )
    clamp_steps: int = 100_000
    ln_mode: str = "final"
    # the no-LayerNorm scan: clamped lanes at these rho with one budget (scan_steps), beside the
    # delay-law cells (the paper's 30k-step view over rho 0.85-1.50)
    scan_rho: list = dataclasses.field(default_factory=list)
    scan_steps: int = 30_000

    CHOICES = {"ln_mode": LN_MODES, "parts": PARTS}
    RANGES = (("fit_lo", "fit_hi", "rho"),)

    def ln_seed_range(self) -> range:
        """The seeds of the LayerNorm parts: ln_seeds from seed_base."""
        return range(self.seed_base, self.seed_base + self.ln_seeds)

    def validate(self) -> None:
        from grokjax.data import validate_task

        if self.ln_mode not in LN_MODES:
            raise cli.UsageError(
                f"--ln-mode must be one of {', '.join(LN_MODES)}, got {self.ln_mode!r}"
            )
        if self.scan_rho:
            experiment.positive("scan-rho", self.scan_rho)
            if self.scan_steps <= self.t_int:
                raise cli.UsageError(
                    f"--scan-steps must exceed t_int ({self.t_int}), got {self.scan_steps}"
                )
        unknown = [x for x in self.parts if x not in PARTS]
        if unknown or not self.parts:
            raise cli.UsageError(
                f"--parts: unknown part(s) {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(PARTS)}"
            )
        if self.heads < 1 or self.d % self.heads:
            raise cli.UsageError(
                f"--d ({self.d}) must be a positive multiple of --heads ({self.heads})"
            )
        experiment.positive("rho", self.rho)
        self.validate_budgets()
        if not self.fit_lo < self.fit_hi:
            raise cli.UsageError(
                f"--fit-lo must be below --fit-hi, got {self.fit_lo}, {self.fit_hi}"
            )
        experiment.positive("ln-lr", self.ln_lr)
        experiment.positive("grid-lr", self.grid_lr)
        experiment.positive("grid-wd", self.grid_wd, allow_zero=True)
        if self.ln_seeds < 1:
            raise cli.UsageError(f"--ln-seeds must be >= 1, got {self.ln_seeds}")
        for name in ("ln_steps", "clamp_steps"):
            if getattr(self, name) <= self.t_int:
                raise cli.UsageError(
                    f"--{name.replace('_', '-')} must exceed t_int "
                    f"({self.t_int}), got {getattr(self, name)}"
                )
        tasks = [(p, f) for p in self.ln_p for f in self.ln_frac]
        tasks += [(self.grid_p, self.grid_frac), (self.clamp_p, self.clamp_frac)]
        for p, f in tasks:
            try:
                validate_task(p, self.op, f)
            except ValueError as e:
                raise cli.UsageError(str(e)) from None
        self.clamp_list()  # parses --clamps
        common.MLPConfig.validate(self)
        self.check_t_int(self.rho)

    def clamp_list(self) -> list[tuple[str, float]]:
        """``--clamps`` as (group, rho) pairs ("unembed:1.15" -> ("unembed", 1.15))."""
        out = []
        for item in self.clamps:
            group, _, rho = str(item).partition(":")
            try:
                r = float(rho)
            except ValueError:
                r = math.nan
            if group not in GROUPS or not (math.isfinite(r) and r > 0):
                raise cli.UsageError(
                    f"--clamps entries are GROUP:RHO with GROUP one of "
                    f"{', '.join(GROUPS)} and RHO > 0, got {item!r}"
                )
            out.append((group, r))
        return out


def attn_static(cfg: Config, p: int, frac: float, layernorm: str):
    from grokjax.lane import Static
    from grokjax.models import ModelSpec

    return Static(
        model=ModelSpec(
            kind="attn",
            p=int(p),
            d=cfg.d,
            hidden=cfg.hidden,
            heads=cfg.heads,
            layernorm=layernorm,
            dtype=cfg.dtype,
        ),
        op=cfg.op,
        frac=float(frac),
        **cfg.static_kwargs(),
    )


def _lane(**kw) -> dict:
    return dict(model="attn", **kw)


def plan(cfg: Config):
    """Part 1 (noln), then the free LayerNorm runs (ln_free), then the group clamps (ln_clamp),
    each as asked for in ``cfg.parts``."""
    if "noln" in cfg.parts:
        yield from _noln_phases(cfg)
    controls = {}  # (p, frac) -> PhaseOutcome of a free LayerNorm phase at lr ln_lr, wd
    if "ln_free" in cfg.parts:
        controls = yield from _ln_free_phases(cfg)
    if "ln_clamp" in cfg.parts:
        yield from _ln_clamp_phases(cfg, controls)


def _ln_fields(cfg: Config) -> dict:
    """The settings every LayerNorm lane shares (lr, wd and budget overridable per lane)."""
    return dict(layernorm=cfg.ln_mode, budget=cfg.ln_steps, lr=cfg.ln_lr, wd=cfg.wd)


def _noln_phases(cfg: Config):
    """Free controls without LayerNorm, then the lanes held at rho·W_c (and the rho scan)."""
    static = attn_static(cfg, cfg.p, cfg.frac, "none")
    free = [
        _lane(seed=s, layernorm="none", part="noln", cell="noln-free") for s in cfg.seed_range()
    ]

    def clamp(wc):
        return [
            _lane(
                seed=s,
                layernorm="none",
                part="noln",
                **common.held(r, wc, cfg.t_int),
                budget=cfg.budget(r),
                cell=f"noln-rho{r:g}",
            )
            for r in cfg.rho
            for s in cfg.seed_range()
        ] + [
            _lane(
                seed=s,
                layernorm="none",
                part="noln",
                **common.held(r, wc, cfg.t_int, arm="scan"),
                budget=cfg.scan_steps,
                cell=f"noln-scan-rho{r:g}",
            )
            for r in cfg.scan_rho
            for s in cfg.seed_range()
        ]

    yield from common.free_then_clamp(cfg, static, free, clamp, prefix="noln-")


def _ln_free_phases(cfg: Config):
    """Free LayerNorm runs over p × train fraction, then over lr × wd at one (p, fraction).
    Returns {(p, frac): PhaseOutcome} of the first kind."""
    ln = _ln_fields(cfg)
    controls = {}
    for p in cfg.ln_p:
        for f in cfg.ln_frac:
            rows = [
                _lane(seed=s, p=p, frac=f, part="ln_free", cell=f"ln-p{p}-f{f:g}", **ln)
                for s in cfg.ln_seed_range()
            ]
            name = f"ln-free-p{p}-f{f:g}"
            controls[(p, f)] = yield experiment.Phase(
                name,
                attn_static(cfg, p, f, cfg.ln_mode),
                common.lane_table(cfg, rows),
                f"[{name}] ",
            )
    # lr × wd at one (p, fraction); the reference cell is not run twice
    rows = [
        _lane(
            seed=s,
            p=cfg.grid_p,
            frac=cfg.grid_frac,
            part="ln_free",
            cell=f"ln-p{cfg.grid_p}-lr{lr:g}-wd{wd:g}",
            **dict(ln, lr=lr, wd=wd),
        )
        for lr in cfg.grid_lr
        for wd in cfg.grid_wd
        for s in cfg.ln_seed_range()
        if not (
            (cfg.grid_p, cfg.grid_frac) in controls
            and math.isclose(lr, cfg.ln_lr)
            and math.isclose(wd, cfg.wd)
        )
    ]
    if rows:
        yield experiment.Phase(
            "ln-lrwd",
            attn_static(cfg, cfg.grid_p, cfg.grid_frac, cfg.ln_mode),
            common.lane_table(cfg, rows),
            "[ln-lrwd] ",
        )
    return controls


def _ln_clamp_phases(cfg: Config, controls: dict):
    """Clamps of one parameter group at rho times that group's median norm at T_grok in the
    free LayerNorm controls at (clamp_p, clamp_frac), run first if ln_free did not."""
    key = (cfg.clamp_p, cfg.clamp_frac)
    static = attn_static(cfg, *key, cfg.ln_mode)
    control = controls.get(key)
    if control is None:
        rows = [
            _lane(
                seed=s,
                p=key[0],
                frac=key[1],
                part="ln_clamp",
                cell=f"ln-p{key[0]}-f{key[1]:g}",
                **_ln_fields(cfg),
            )
            for s in cfg.ln_seed_range()
        ]
        control = yield experiment.Phase(
            "ln-control", static, common.lane_table(cfg, rows), "[ln-control] "
        )
    wc = _group_norms(control)
    if wc is None:
        return
    rows = [
        _lane(
            seed=s,
            p=key[0],
            frac=key[1],
            part="ln_clamp",
            **common.held(r, wc[g], cfg.t_int, arm="group_clamp"),
            clamp_group=g,
            cell=f"ln-clamp-{g}-rho{r:g}",
            **dict(_ln_fields(cfg), budget=cfg.clamp_steps),
        )
        for g, r in cfg.clamp_list()
        for s in cfg.ln_seed_range()
    ]
    yield experiment.Phase("ln-clamp", static, common.lane_table(cfg, rows), "[ln-clamp] ")


def _group_norms(control) -> dict | None:
    """Median norm at T_grok per parameter group over the grokked controls (None, said, when
    none grokked)."""
    ref = {
        g: [r[f"norm_at_grok_{g}"] for r in control.rows if r["grokked"] and not r["diverged"]]
        for g in GROUPS
    }
    if not ref["unembed"]:
        print(
            "[ln-clamp] no LayerNorm control grokked within its budget: group norms "
            "unknown, skipping the group clamps",
            flush=True,
        )
        return None
    wc = {g: float(np.median(v)) for g, v in ref.items()}
    print(
        "[ln-clamp] group norms at T_grok of the controls: "
        + ", ".join(f"{g} {v:.3f}" for g, v in wc.items()),
        flush=True,
    )
    return wc
