"""An experiment's configuration: the shared fields (``BaseConfig``), the run options, the
``Spec`` that makes an experiment, and the checks every configuration gets (``config_for``)."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Generator

import numpy as np

from grokjax import cli
from grokjax.protocol import LOSSES

GEOMETRIC_POINTS = 360  # the paper's eval grid: 360 geometric points over a lane's budget
EVAL_SCHEDULES = ("every", "geometric")
# The engine counts steps in int32 and a grokked lane runs on for a 10 % margin: a budget,
# t_int or chunk beyond MAX_STEPS would wrap. Seeds per cell and lanes per run are capped so
# that a typo (--seeds 100000000) is refused at once instead of building tables for minutes.
MAX_STEPS = 10**9
MAX_SEEDS = 100_000
RESTART_HINT = "pass --fresh to move it aside or pick another --out"


@dataclasses.dataclass
class BaseConfig:
    """Fields every experiment's configuration has (subclasses add theirs, with defaults)."""

    experiment: str = ""
    config_format: int = 1
    preset: str = "quick"
    dtype: str = "float32"
    op: str = "add"
    eval_every: int = 10
    chunk_steps: int = 500
    out: str = ""
    seed_base: int = 0  # the lanes' seeds are seed_base, seed_base + 1, ...
    eval_schedule: str = "every"  # "every" eval point latches, or the paper's "geometric" grid
    loss: str = "log_softmax"  # how -log p_y is rounded (protocol.LOSSES)

    # Declarations read by the shared checks (check_fields) and the parser (make_parser); a
    # subclass adds to them (each is the union over the classes, as REPEATABLE is):
    # CHOICES: field -> the values it may take (shown by --help as {a,b}; for a list field,
    # each entry). MEMBERS: (field, among, when): the value of ``field`` must be one of
    # ``among``'s values (for a list, at least one entry must: a subset of the moduli may run)
    # while ``when`` is set (None: always). RANGES: (lo, hi, field): at least two values of
    # ``field`` lie in [lo, hi] (a fit over that range needs two cells).
    CHOICES = {
        "dtype": ("float32", "float64"),
        "eval_schedule": EVAL_SCHEDULES,
        "loss": LOSSES,
    }
    MEMBERS = ()
    RANGES = ()

    def seed_range(self) -> range:
        """The seeds of every cell: ``seeds`` consecutive ones from ``seed_base``."""
        return range(self.seed_base, self.seed_base + self.seeds)

    def static_kwargs(self) -> dict:
        """The ``Static`` fields of the eval cadence and schedule."""
        return dict(
            eval_every=self.eval_every,
            eval_grid=GEOMETRIC_POINTS if self.eval_schedule == "geometric" else 0,
            loss=self.loss,
        )

    def validate(self) -> None:
        """The checks every experiment shares (call from a subclass's ``validate``)."""
        if self.eval_schedule not in EVAL_SCHEDULES:
            raise cli.UsageError(
                f"--eval-schedule must be one of {', '.join(EVAL_SCHEDULES)}, "
                f"got {self.eval_schedule!r}"
            )
        if self.loss not in LOSSES:
            raise cli.UsageError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0 <= self.seed_base < 2**31 - 2**24:
            raise cli.UsageError(f"--seed-base must be in [0, 2^31 - 2^24), got {self.seed_base}")
        if self.dtype not in ("float32", "float64"):
            raise cli.UsageError(f"--dtype must be float32 or float64, got {self.dtype!r}")
        if self.eval_every < 1:
            raise cli.UsageError(f"eval_every must be >= 1, got {self.eval_every}")
        if (
            self.chunk_steps < 1
            or self.chunk_steps % self.eval_every
            or self.chunk_steps > MAX_STEPS
        ):
            raise cli.UsageError(
                f"--chunk-steps must be a positive multiple of eval_every "
                f"({self.eval_every}) up to {MAX_STEPS:,}, got "
                f"{self.chunk_steps}"
            )
        if self.out:
            cli.check_writable(self.out, "--out")


@dataclasses.dataclass
class RunOptions:
    """How the job runs, not what it computes (not part of ``config.json``)."""

    fresh: bool = False
    checkpoint_every_chunks: int = 0
    checkpoint_minutes: float = 5.0
    keep_checkpoints: int = 3
    # what a message about a run directory that cannot be continued advises (an entry point
    # without --fresh, such as reproduce, says what it accepts instead)
    restart_hint: str = RESTART_HINT
    lane_mode: str = "auto"  # engine.LANE_MODES: how a phase's lanes run (not results)

    def policy(self):
        from grokjax.checkpoint import Policy

        return Policy(self.checkpoint_every_chunks, self.checkpoint_minutes, self.keep_checkpoints)

    def validate(self) -> None:
        if self.checkpoint_every_chunks < 0:
            raise cli.UsageError(
                f"--checkpoint-every-chunks must be >= 0, got {self.checkpoint_every_chunks}"
            )
        if not (self.checkpoint_minutes >= 0 and math.isfinite(self.checkpoint_minutes)):
            raise cli.UsageError(
                f"--checkpoint-minutes must be >= 0, got {self.checkpoint_minutes}"
            )
        if not 1 <= self.keep_checkpoints <= 1000:
            raise cli.UsageError(
                f"--keep-checkpoints must be in [1, 1000], got {self.keep_checkpoints}"
            )
        if self.checkpoint_every_chunks > cli.INT32_MAX:
            raise cli.UsageError(
                f"--checkpoint-every-chunks must be at most "
                f"{cli.INT32_MAX}, got {self.checkpoint_every_chunks}"
            )
        if self.lane_mode not in ("auto", "walk", "vmap"):
            raise cli.UsageError(f"--lane-mode must be auto, walk or vmap, got {self.lane_mode!r}")


def positive(name: str, values, allow_zero: bool = False) -> None:
    """UsageError unless every value is finite and > 0 (>= 0 with ``allow_zero``)."""
    vals = values if isinstance(values, (list, tuple)) else [values]
    if not vals:
        raise cli.UsageError(f"--{name}: empty list")
    for v in vals:
        ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
        if not ok:
            raise cli.UsageError(
                f"--{name} values must be {'>= 0' if allow_zero else 'positive'}, got {values}"
            )


@dataclasses.dataclass
class Spec:
    """What makes one experiment; see the module docstring."""

    name: str
    config_cls: type
    presets: dict
    plan: Callable[[Any], Generator]  # cfg -> generator of Phase, receives PhaseOutcome
    fit: Callable[[dict, Any], dict]  # (lanes, cfg) -> fit.json
    figure: Callable[[dict, dict, dict, str], list]  # (lanes, fitted, curves, out_dir) -> files
    summary: Callable[[dict, Any], str]
    # (parser) -> None; dest = config field, default None. None: field_arguments(config_cls),
    # a --flag for every field beyond the base configuration's
    add_arguments: Callable | None = None
    doc: str = ""
    cost: Callable[[Any], str] | None = None  # cfg -> estimated cost (for reproduce --list)
    about: str = ""  # one line for the report's list of experiments
    section: bool = False  # the report gives it a section of its own (fit, summary, figure)

    @property
    def config_format(self) -> int:
        return self.config_cls().config_format


def flag(name: str) -> str:
    """The command-line flag of a configuration field (``t_int`` -> ``--t-int``)."""
    return "--" + name.replace("_", "-")


def repeatable(cfg) -> set:
    """List fields whose values may repeat: the union of ``REPEATABLE`` over the classes."""
    return {n for c in type(cfg).__mro__ for n in c.__dict__.get("REPEATABLE", ())}


def declared(cfg_cls, name: str):
    """The union over the classes of a declaration (``CHOICES``: a dict; ``MEMBERS``,
    ``RANGES``: tuples), base classes first."""
    if not isinstance(cfg_cls, type):
        cfg_cls = type(cfg_cls)
    if name == "CHOICES":
        out = {}
        for c in reversed(cfg_cls.__mro__):
            out.update(c.__dict__.get(name, {}))
        return out
    out = []
    for c in reversed(cfg_cls.__mro__):
        out += [x for x in c.__dict__.get(name, ()) if x not in out]
    return tuple(out)


def listed(v) -> str:
    return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) or "(none)"


def check_links(cfg) -> None:
    """The ``MEMBERS`` and ``RANGES`` declarations of ``cfg``'s classes (UsageError naming the
    flags): a value that must be one of another flag's values, a fit range that must hold two
    of its values. Values are compared as list entries are (``cli.same_value``)."""
    for field, among, when in declared(cfg, "MEMBERS"):
        if when is not None and not getattr(cfg, when):
            continue
        v, pool = getattr(cfg, field), getattr(cfg, among)
        pool = pool if isinstance(pool, (list, tuple)) else [pool]
        vals = v if isinstance(v, (list, tuple)) else [v]
        found = [x for x in vals if any(cli.same_value(x, y) for y in pool)]
        if not found:
            cause = f": the {flag(when)} cells would not run" if when else ""
            raise cli.UsageError(
                f"{flag(field)} {listed(vals)} is not among {flag(among)} {listed(pool)}{cause}"
            )
    for lo, hi, field in declared(cfg, "RANGES"):
        a, b, vals = getattr(cfg, lo), getattr(cfg, hi), getattr(cfg, field)
        inside = [x for x in vals if a - 1e-9 <= x <= b + 1e-9]
        if len(inside) < 2:
            raise cli.UsageError(
                f"{flag(lo)} {a:g} .. {flag(hi)} {b:g} holds {len(inside)} of {flag(field)} "
                f"{listed(vals)}; a fit over that range needs at least two"
            )


def check_fields(cfg) -> None:
    """The checks every field of every configuration gets, whatever its experiment: integers
    (and integer list entries) within the engine's int32 range, numbers finite, no repeated
    entry in a list (each entry is one cell; a repeat would pool two copies of the lanes as
    one cell), and at most ``MAX_SEEDS`` seeds per cell. UsageError naming the flag."""
    rep = repeatable(cfg)
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        vals = v if isinstance(v, (list, tuple)) else [v]
        for x in vals:
            if isinstance(x, bool) or x is None or isinstance(x, str):
                continue
            if isinstance(x, (int, np.integer)):
                if not -cli.INT32_MAX - 1 <= x <= cli.INT32_MAX:
                    raise cli.UsageError(
                        f"{flag(f.name)} {x} is beyond the engine's int32 "
                        f"range (at most {cli.INT32_MAX:,})"
                    )
            elif isinstance(x, (float, np.floating)):
                if not math.isfinite(x):
                    raise cli.UsageError(f"{flag(f.name)} must be a finite number, got {x}")
        if isinstance(v, (list, tuple)) and f.name not in rep:
            dup = cli.duplicates(list(v))
            if dup:
                raise cli.UsageError(
                    f"{flag(f.name)}: {', '.join(map(str, dup))} given twice "
                    f"in {','.join(map(str, v))} (each value is one cell)"
                )
        if (
            (f.name == "seeds" or f.name.endswith("_seeds"))
            and isinstance(v, int)
            and v > MAX_SEEDS
        ):
            raise cli.UsageError(f"{flag(f.name)} {v:,} is more than {MAX_SEEDS:,} seeds per cell")


def config_for(spec: Spec, preset: str, out: str = "", **overrides):
    """The configuration of ``preset`` with ``overrides``, validated (the generic checks of
    ``check_fields``, then the experiment's own ``validate``)."""
    if preset not in spec.presets:
        raise cli.UsageError(f"unknown preset {preset!r}; choose one of {', '.join(spec.presets)}")
    cfg = spec.config_cls(preset=preset, **spec.presets[preset])
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg.out = out or os.path.join("runs", f"{spec.name}-{cfg.preset}")
    check_fields(cfg)
    try:
        cfg.validate()
    except cli.UsageError:
        raise
    except (ValueError, TypeError, ArithmeticError) as e:  # a check that was not worded
        raise cli.UsageError(f"invalid configuration: {e}") from None
    check_fields(cfg)  # validate may fill in fields (the reference lr, wd, ...)
    check_links(cfg)
    return cfg
