"""What the parity experiment runs: its presets, its configuration and its plan (the reference
(n, m) program with its clamps, then one free program per other (n, m))."""

from __future__ import annotations

import dataclasses
import math

from grokjax import cli, experiment

from experiments import common

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


@dataclasses.dataclass
class Config(common.FixedWc, experiment.BaseConfig):
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
        self.validate_fixed_wc()
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
        wc = cfg.held_wc(wc, "clamp")
        return [
            _lane(
                cfg,
                n0,
                m0,
                s,
                lr=cfg.lr,
                wd=cfg.wd,
                **common.held(r, wc, cfg.t_int),
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
