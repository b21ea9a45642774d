"""One resumable runner for every experiment: an experiment is a sequence of lane grids.

An experiment module (``experiments/<name>.py``) describes

* its configuration, a dataclass derived from :class:`BaseConfig` (stored as ``config.json``),
  and its presets (``quick`` for a laptop CPU, ``paper`` for the paper's protocol, ``tiny``
  for tests);
* its *plan*: a generator that yields :class:`Phase` objects (a name, a ``Static`` and a
  per-lane metadata table) and receives each phase's :class:`PhaseOutcome` back, so that a
  later phase may depend on earlier results (clamp targets rho·Wc from the free phase);
* its fit (lanes -> ``fit.json``), figure and one-paragraph summary.

:func:`main` then does what every experiment shares: parsing (preset lookup, overrides, the
checkpoint / run options), refusing a run directory written by another configuration,
``--fresh``, one-line configuration errors, process-0-only writing, resumable phases (a
finished phase is stored in ``<out>/phases/<name>.npz``; the phase in progress is
checkpointed with Orbax in ``<out>/checkpoints/<name>/``), polite SIGTERM / SIGINT, and the
files ``config.json``, ``lanes.csv``, ``curves.npz``, ``fit.json``, ``timing.json`` plus the
experiment's figure.

Per-lane metadata columns understood by :func:`phase_hparams` (others are only written to
``lanes.csv``): ``seed``, ``lr``, ``wd``, ``target_norm`` (0 = free), ``t_int``, ``budget``,
``init_scale``, optional ``clamp_steps`` (default continuous) and optional ``clamp_group``
(``"all"`` or one parameter-group name: the group(s) the clamp and the headline norm cover).

What the paper-MLP experiments share beyond this (their configuration, step budgets, the lane
table, the free-then-clamp pair of phases) is the application's: ``experiments/common.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
import time
from typing import Any, Callable, Generator

import numpy as np

from grokjax import cli
from grokjax.protocol import LOSSES

GRID_POINTS = 120
GEOMETRIC_POINTS = 360  # the paper's eval grid: 360 geometric points over a lane's budget
EVAL_SCHEDULES = ("every", "geometric")
COMPARED_EXCEPT = ("out",)  # a run directory may be moved and resumed under another path
# The engine counts steps in int32 and a grokked lane runs on for a 10 % margin: a budget,
# t_int or chunk beyond MAX_STEPS would wrap. Seeds per cell and lanes per run are capped so
# that a typo (--seeds 100000000) is refused at once instead of building tables for minutes.
MAX_STEPS = 10**9
MAX_SEEDS = 100_000
MAX_LANES = 1_000_000
MAX_PROGRAMS = 100  # distinct models / tasks in one run (the paper's presets compile at most 34)
RESTART_HINT = "pass --fresh to move it aside or pick another --out"


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


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


def make_parser(spec: Spec) -> cli.Parser:
    ap = cli.Parser(
        prog=f"python -m experiments.{spec.name}", description=(spec.doc or "").split("\n\n")[0]
    )
    ap.add_argument(
        "--preset",
        default="quick",
        metavar="{" + ",".join(spec.presets) + "}",
        help="the configuration every other flag overrides (default: quick)",
    )
    (spec.add_arguments or field_arguments(spec.config_cls))(ap)
    ap.add_argument("--dtype", help="float32 (default) or float64 (the whole program in float64)")
    ap.add_argument("--op", help="operation (default add)")
    ap.add_argument(
        "--seed-base",
        dest="seed_base",
        type=int,
        help="first seed (default 0 or the preset's): seeds are seed_base, "
        "seed_base+1, ... so a run can draw a fresh seed set",
    )
    ap.add_argument(
        "--eval-schedule",
        dest="eval_schedule",
        help="every (default: T_grok latched at every eval, every 10 steps) or "
        f"geometric (the paper's {GEOMETRIC_POINTS}-point geometric grid over "
        "each lane's budget)",
    )
    ap.add_argument(
        "--loss",
        help="log_softmax (default, as the paper's cross-entropy) or margin (the same loss as "
        "softplus(logsumexp_{j≠y}(z_j − z_y)): no softmax collapse in float32)",
    )
    ap.add_argument(
        "--chunk-steps",
        dest="chunk_steps",
        type=int,
        help="steps per jitted call between host checks (default 500; part of the "
        "configuration: it decides when lanes are re-packed)",
    )
    ap.add_argument(
        "--out",
        help=f"run directory (default runs/{spec.name}-<preset>); an "
        "existing one with the same configuration is resumed",
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="move an existing run directory aside (to <out>.old-<time>) and start "
        "over instead of resuming it",
    )
    ap.add_argument(
        "--checkpoint-every-chunks",
        dest="checkpoint_every_chunks",
        type=int,
        default=0,
        help="checkpoint every N chunks (default 0: by time only)",
    )
    ap.add_argument(
        "--checkpoint-minutes",
        dest="checkpoint_minutes",
        type=float,
        default=5.0,
        help="checkpoint at least every M minutes of training (default 5; 0: off)",
    )
    ap.add_argument(
        "--keep-checkpoints",
        dest="keep_checkpoints",
        type=int,
        default=3,
        help="checkpoints kept per phase (default 3)",
    )
    ap.add_argument(
        "--lane-mode",
        dest="lane_mode",
        default="auto",
        metavar="{auto,walk,vmap}",
        help="auto (default: walk on one CPU device, else vmap), walk (the host "
        "runs one lane's program per lane) or vmap (all lanes in one program)",
    )
    _show_choices_and_defaults(ap, spec)
    return ap


def _preset_value(spec: Spec, preset: str, name: str):
    cfg = spec.config_cls()
    return spec.presets.get(preset, {}).get(name, getattr(cfg, name, None))


def _shown(v) -> str:
    if isinstance(v, (list, tuple)):
        return _listed(v) if v else "none"
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _show_choices_and_defaults(ap, spec: Spec) -> None:
    """--help of every configuration flag shows its choices (``CHOICES``, as {a,b}) and its
    value in the default preset, and in the other presets where that differs."""
    choices = declared(spec.config_cls, "CHOICES")
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    for action in ap._actions:
        name = action.dest
        if name not in fields or name in ("preset", "out"):
            continue
        if name in choices and action.metavar is None:
            action.metavar = "{" + ",".join(choices[name]) + "}"
        if action.help and "default" in action.help:
            continue
        vals = {p: _shown(_preset_value(spec, p, name)) for p in spec.presets}
        first = next(iter(vals)) if "quick" not in vals else "quick"
        others = [f"{p}: {v}" for p, v in vals.items() if p != first and v != vals[first]]
        default = f"default: {vals[first]}" + (f"; {', '.join(others)}" if others else "")
        action.help = f"{action.help or ''} ({default})".strip()


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


def _listed(v) -> str:
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
                f"{flag(field)} {_listed(vals)} is not among {flag(among)} {_listed(pool)}{cause}"
            )
    for lo, hi, field in declared(cfg, "RANGES"):
        a, b, vals = getattr(cfg, lo), getattr(cfg, hi), getattr(cfg, field)
        inside = [x for x in vals if a - 1e-9 <= x <= b + 1e-9]
        if len(inside) < 2:
            raise cli.UsageError(
                f"{flag(lo)} {a:g} .. {flag(hi)} {b:g} holds {len(inside)} of {flag(field)} "
                f"{_listed(vals)}; a fit over that range needs at least two"
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


def parse_run_args(spec: Spec, argv) -> tuple[Any, RunOptions]:
    """The configuration and run options of a command line, validated (UsageError if not)."""
    args = make_parser(spec).parse_args(argv)
    fields = {f.name for f in dataclasses.fields(spec.config_cls)} - {
        "experiment",
        "config_format",
        "preset",
        "out",
    }
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.out is not None:
        cli.check_writable(args.out, "--out")  # (an empty --out is refused, not the default)
    cfg = config_for(spec, args.preset, args.out or "", **overrides)
    opts = RunOptions(
        fresh=args.fresh,
        checkpoint_every_chunks=args.checkpoint_every_chunks,
        checkpoint_minutes=args.checkpoint_minutes,
        keep_checkpoints=args.keep_checkpoints,
        lane_mode=args.lane_mode,
    )
    opts.validate()
    return cfg, opts


# ---------------------------------------------------------------------------------------------
# the run directory
# ---------------------------------------------------------------------------------------------


def check_run_dir(cfg, config_format: int | None = None, hint: str = RESTART_HINT) -> None:
    """Refuses a run directory written by a different configuration or config format, or a
    non-empty directory that is not a run directory at all. ``hint`` says what to do instead
    (the entry point's own options)."""
    config_format = cfg.config_format if config_format is None else config_format
    path = os.path.join(cfg.out, "config.json")
    for sub in ("phases", "checkpoints"):
        p = os.path.join(cfg.out, sub)
        if os.path.lexists(p) and not os.path.isdir(p):
            raise cli.UsageError(
                f"{p} is not a directory (a run directory keeps its finished phases and "
                f"checkpoints there); {hint}"
            )
    if not os.path.exists(path):
        if os.path.isdir(cfg.out) and os.listdir(cfg.out):
            raise cli.UsageError(f"{cfg.out} is not empty and holds no config.json; {hint}")
        return
    try:
        with open(path) as f:
            old = json.load(f)
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError):
        raise cli.UsageError(f"{path} is unreadable; {hint}") from None
    if old.get("experiment", cfg.experiment) != cfg.experiment:
        raise cli.UsageError(
            f"{cfg.out} holds a run of experiment {old.get('experiment')!r}; {hint}"
        )
    if old.get("config_format", 1) != config_format:
        raise cli.UsageError(
            f"{cfg.out} was written by config format {old.get('config_format', 1)}, this "
            f"version writes format {config_format}; {hint}"
        )
    new = dataclasses.asdict(cfg)
    # a field that a run directory predates counts as its default (seed_base 0, ...)
    defaults = {f.name: getattr(type(cfg)(), f.name) for f in dataclasses.fields(cfg)}
    diff = sorted(
        k
        for k in set(old) | set(new)
        if k not in COMPARED_EXCEPT and old.get(k, defaults.get(k)) != new.get(k)
    )
    if diff:
        raise cli.UsageError(
            f"{cfg.out} holds a run with a different config (differs in: {', '.join(diff)}); {hint}"
        )


def is_complete(out: str) -> bool:
    """True when ``out`` holds the results of a finished run (fit.json is written last but
    one, before timing.json)."""
    return all(
        os.path.exists(os.path.join(out, f))
        for f in ("config.json", "lanes.csv", "curves.npz", "fit.json", "timing.json")
    )


def move_aside(out: str) -> str:
    """Renames ``out`` to ``<out>.old-<time>`` (never deletes anything); returns the new name."""
    base = f"{os.path.normpath(out)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    dest, k = base, 1
    while os.path.exists(dest):
        dest, k = f"{base}-{k}", k + 1
    os.replace(out, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Phase:
    """One grid of lanes run by one program: ``meta`` holds per-lane columns (equal length)."""

    name: str
    static: Any
    meta: dict
    label: str = ""
    record: bool = True  # False: an auxiliary phase, kept out of lanes.csv and curves.npz


@dataclasses.dataclass
class PhaseOutcome:
    """What the plan gets back for a phase: its lane rows (as in lanes.csv) and the result."""

    rows: list
    result: Any

    def column(self, key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in self.rows], float)

    def at_step(self, curve: str, step: int) -> np.ndarray:
        """A curve's values at ``step`` per lane (the step must be on the recorded grid)."""
        grid = np.asarray(self.result.grid)
        hit = np.flatnonzero(grid == step)
        if hit.size == 0:
            raise ValueError(f"step {step} is not on the recorded step grid")
        return np.asarray(self.result.curves[curve])[:, hit[0]]


class _DryResult:
    """Stands in for a phase's RunResult in ``check_plan``."""

    def __init__(self, groups: tuple, n: int):
        self.groups, self.n = tuple(groups), n
        self.grid, self.curves, self.latches, self.stats = np.zeros(0, int), {}, {}, {}
        self.steps_run = np.zeros(n, int)


class _DryOutcome(PhaseOutcome):
    """A made-up outcome in which every lane grokked half-way through its budget with norm
    1 everywhere: enough for a plan to build its later phases."""

    def at_step(self, curve: str, step: int) -> np.ndarray:
        n, g = self.result.n, len(self.result.groups)
        return np.ones((n, g)) if curve == "group_norms" else np.ones(n)


def _dry_outcome(phase, groups: tuple) -> _DryOutcome:
    meta = phase.meta
    n = len(meta["seed"])
    rows = []
    for i in range(n):
        r = {k: (v[i] if isinstance(v, (list, tuple, np.ndarray)) else v) for k, v in meta.items()}
        r = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
        t = max(1, int(r.get("budget") or 2) // 2)
        r.update(
            lane=i,
            T_mem=max(1, t // 2),
            T_grok=t,
            T_grok_80=t,
            T_grok_95=t,
            grokked=True,
            norm_at_mem=1.0,
            norm_at_grok=1.0,
            norm_at_test80=1.0,
            norm_at_test95=1.0,
            collapse_at_grok=0.0,
            diverged=False,
            diverged_step=None,
            steps_run=t,
        )
        r.update({f"norm_at_grok_{g}": 1.0 for g in groups})
        rows.append(r)
    return _DryOutcome(rows, _DryResult(groups, n))


def _lane_where(meta: dict, i: int) -> str:
    """'p=59, rho=5' for lane ``i``: the columns that say which cell a lane is in."""
    parts = []
    for k in ("p", "arm", "rho", "lr", "wd", "frac", "cell"):
        if k in meta:
            v = meta[k][i]
            v = v.item() if isinstance(v, np.generic) else v
            if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
                continue
            parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def _check_column(name: str, meta: dict, key: str, lo: int, hi: int, what: str) -> None:
    if key not in meta:
        return
    col = np.asarray(meta[key], dtype=float)
    bad = np.flatnonzero(~((col >= lo) & (col <= hi)))
    if bad.size:
        i = int(bad[0])
        raise cli.UsageError(
            f"phase {name}: a lane's {what} is {col[i]:.6g} "
            f"({_lane_where(meta, i)}); it must lie in [{lo:,}, {hi:,}]"
            + (
                " (the engine counts steps in int32): lower --rho, --steps or the step budgets"
                if hi == MAX_STEPS and col[i] > hi
                else ""
            )
        )


FLOAT_LIMIT = 1e30  # a lane's float hyperparameters are float32 on device (max 3.4e38)


def _check_float_column(name: str, meta: dict, key: str, what: str, dtype: str = "float32") -> None:
    """UsageError unless every value of the column is finite, at most ``FLOAT_LIMIT`` in size
    and, unless 0, representable in ``dtype`` (a learning rate of 1e-300 is 0 in float32: it
    would train nothing, and a held norm that small would mean no clamp)."""
    if key not in meta:
        return
    col = np.asarray(meta[key], dtype=float)
    bad = np.flatnonzero(~(np.isfinite(col) & (np.abs(col) <= FLOAT_LIMIT)))
    if bad.size:
        i = int(bad[0])
        raise cli.UsageError(
            f"phase {name}: a lane's {what} is {col[i]:.6g} "
            f"({_lane_where(meta, i)}); it must be finite and at most "
            f"{FLOAT_LIMIT:g} in size (lanes compute in float32)"
        )
    tiny = float(np.finfo(dtype).tiny)
    bad = np.flatnonzero((col != 0) & (np.abs(col) < tiny))
    if bad.size:
        i = int(bad[0])
        raise cli.UsageError(
            f"phase {name}: a lane's {what} is {col[i]:.6g} "
            f"({_lane_where(meta, i)}); it rounds to 0 in {dtype} (the smallest normal "
            f"{dtype} is {tiny:.3g})"
        )


def static_memory(static, lanes: int = 1) -> dict:
    """A rough estimate of the memory of one lane of ``static``'s program (``data.lane_bytes``)
    and of the host arrays (curves, latches) of ``lanes`` lanes, in bytes."""
    import jax
    from grokjax import data
    from grokjax.models import GROUPS, make_model

    spec, op = static.model, static.op
    itemsize = 8 if spec.dtype == "float64" else 4
    shapes = jax.eval_shape(make_model(spec).init, jax.random.key(0))
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
    width = max(spec.d, spec.hidden) * (3 if spec.kind == "attn" else 1)
    if op == data.PARITY:
        est = data.lane_bytes(
            n_rows=static.n_train + static.n_test,
            n_train=static.n_train,
            n_inputs=spec.p,
            n_classes=2,
            width=width,
            n_params=n_params,
            itemsize=itemsize,
        )
    else:
        est = data.lane_bytes(
            n_rows=data.num_examples(spec.p, op),
            n_train=data.num_train(spec.p, static.frac, op),
            n_inputs=2,
            n_classes=spec.p + 1,
            width=width,
            n_params=n_params,
            itemsize=itemsize,
            table=data.table_bytes(spec.p, op),
        )
    est["host"] = lanes * GRID_POINTS * (12 + len(GROUPS.get(spec.kind, ()))) * 8
    return est


def check_plan(spec: Spec, cfg, max_phases: int = 10_000) -> list:
    """Everything that needs the model, checked before anything is written: walks the plan
    with made-up outcomes (every lane groks) and checks every phase's ``Static`` (model,
    widths, task), its lane columns (seeds, step budgets, t_int, clamp durations within what
    the engine counts, known parameter groups), the lane count and a memory estimate.
    Returns the phases seen. UsageError (one line) on the first problem."""
    import contextlib
    import io
    from grokjax import data
    from grokjax.protocol import FOREVER
    from grokjax.models import GROUPS

    phases, lanes, seen = [], 0, set()
    gen = spec.plan(cfg)
    sent = None
    with contextlib.redirect_stdout(io.StringIO()):
        while len(phases) < max_phases:
            try:
                phase = gen.send(sent) if sent is not None else next(gen)
            except StopIteration:
                break
            except cli.UsageError:
                raise
            except (ValueError, TypeError, ArithmeticError) as e:
                raise cli.UsageError(f"invalid configuration: {e}") from None
            except Exception:  # noqa: BLE001 -- the made-up outcome lacks what the plan reads:
                break  # what was checked so far stands, the run checks the rest
            name, static, meta = phase.name, phase.static, phase.meta
            try:
                static.validate()
            except ValueError as e:
                raise cli.UsageError(f"{e} (phase {name})") from None
            n = len(meta["seed"])
            lanes += n
            if lanes > MAX_LANES:
                raise cli.UsageError(
                    f"the run would have more than {MAX_LANES:,} lanes "
                    f"({lanes:,} by phase {name}); lower --seeds or the grid"
                )
            _check_column(name, meta, "seed", 0, cli.INT32_MAX, "seed")
            _check_column(name, meta, "budget", 1, MAX_STEPS, "step budget")
            _check_column(name, meta, "t_int", 0, MAX_STEPS, "t_int")
            _check_column(name, meta, "clamp_steps", 0, FOREVER, "clamp duration")
            for key, what in (
                ("lr", "learning rate"),
                ("wd", "weight decay"),
                ("target_norm", "held norm"),
                ("init_scale", "initial scale"),
            ):
                _check_float_column(name, meta, key, what, cfg.dtype)
            groups = GROUPS.get(static.model.kind, ())
            if "clamp_group" in meta:
                group_mask(groups, meta["clamp_group"])
            if static not in seen:
                seen.add(static)
                if len(seen) > MAX_PROGRAMS:
                    raise cli.UsageError(
                        f"the run would compile more than {MAX_PROGRAMS} programs (one per "
                        f"model and task; {len(seen)} by phase {name}), minutes of compiling "
                        f"before any training; run fewer list values at a time"
                    )
                try:
                    mem = static_memory(static, n)
                    data.check_fits(
                        mem["total"],
                        f"one lane of phase {name} (model "
                        f"{static.model.kind}, p={static.model.p}; its data table "
                        f"{data.fmt_bytes(mem['table'])})",
                    )
                    data.check_fits(mem["host"], f"the curves of the {n:,} lanes of phase {name}")
                except ValueError as e:
                    raise cli.UsageError(str(e)) from None
            phases.append(phase)
            sent = _dry_outcome(phase, groups)
    gen.close()
    return phases


def group_mask(groups: tuple, names) -> np.ndarray:
    """bool [lanes, G]: ``"all"`` or one group name per lane."""
    names = list(names)
    out = np.ones((len(names), len(groups)), bool)
    for i, g in enumerate(names):
        if g in (None, "", "all"):
            continue
        if g not in groups:
            raise cli.UsageError(
                f"unknown parameter group {g!r}; choose all or one of {', '.join(groups)}"
            )
        out[i] = [x == g for x in groups]
    return out


def phase_hparams(engine, meta: dict, cfg):
    """``LaneHParams`` of a phase's metadata table (see the module docstring)."""
    from grokjax.lane import make_hparams
    from grokjax.protocol import FOREVER

    n = len(meta["seed"])
    kw = {}
    if "clamp_steps" in meta:
        kw["clamp_steps"] = meta["clamp_steps"]
    if "clamp_group" in meta:
        kw["groups"] = group_mask(engine.fns.groups, meta["clamp_group"])
    kw.setdefault("clamp_steps", np.full(n, FOREVER))
    return make_hparams(
        len(engine.fns.groups),
        seed=meta["seed"],
        lr=meta["lr"],
        wd=meta["wd"],
        target_norm=meta["target_norm"],
        t_int=meta["t_int"],
        budget=meta["budget"],
        init_scale=meta["init_scale"],
        dtype=np.float64 if cfg.dtype == "float64" else np.float32,
        **kw,
    )


def run_phase(
    engine,
    meta: dict,
    cfg,
    label: str,
    *,
    name: str | None = None,
    opts: RunOptions | None = None,
    should_stop=None,
    writer: bool = True,
):
    """Runs one phase; with ``name`` it is resumable: a finished phase is loaded from
    ``<out>/phases/<name>.npz`` and an unfinished one continues from its newest checkpoint."""
    from grokjax import checkpoint, results
    from grokjax.engine import run_fingerprint

    hp = phase_hparams(engine, meta, cfg)
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if name is None:
        return engine.run(
            hp,
            chunk_steps=cfg.chunk_steps,
            grid_points=GRID_POINTS,
            label=label,
            progress=progress,
            should_stop=should_stop,
        )
    opts = opts or RunOptions()
    path = os.path.join(cfg.out, "phases", f"{name}.npz")
    fingerprint = run_fingerprint(engine.static, hp, cfg.chunk_steps, GRID_POINTS, True)
    if os.path.exists(path):
        try:
            res = results.load_run_result(path)
        except Exception as e:  # noqa: BLE001 -- a damaged phase file is recomputed
            print(
                f"{label}{path} is unreadable ({type(e).__name__}: {e}); running the phase again",
                flush=True,
            )
        else:
            if res.stats.get("fingerprint") != fingerprint:
                raise cli.UsageError(
                    f"{path} was written for other lanes (code or config "
                    f"changed); {opts.restart_hint}"
                )
            print(f"{label}finished earlier: loaded {path}", flush=True)
            res.stats["loaded"] = True
            stale = os.path.join(cfg.out, "checkpoints", name)
            if writer and os.path.isdir(stale):  # killed between saving the phase and cleanup
                checkpoint.LaneCheckpointer(stale, log=None).discard()
            return res
    ck = checkpoint.LaneCheckpointer(
        os.path.join(cfg.out, "checkpoints", name), opts.policy(), log=progress
    )
    try:
        res = engine.run(
            hp,
            chunk_steps=cfg.chunk_steps,
            grid_points=GRID_POINTS,
            label=label,
            progress=progress,
            checkpointer=ck,
            should_stop=should_stop,
        )
    except checkpoint.CheckpointMismatch as e:
        raise cli.UsageError(f"{e}; {opts.restart_hint}") from None
    finally:
        ck.close()
    if writer:
        results.save_run_result(path, res)
        ck.discard()  # the phase file now holds everything its checkpoints did
    return res


def timing_report(phases: dict, wall_s: float, resumed: bool) -> dict:
    """The non-deterministic facts of a run (kept out of fit.json so that it is comparable)."""
    import jax

    out = {
        "wall_s": round(wall_s, 1),
        "resumed": bool(resumed),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": jax.local_device_count(),
        "processes": jax.process_count(),
        "phases": {},
    }
    for name, st in phases.items():
        out["phases"][name] = {
            "wall_s": round(float(st.get("wall_s", 0.0)), 2),
            "loaded_from_phase_file": bool(st.get("loaded", False)),
            "resumed_from_step": st.get("resumed_from_step"),
            "programs": st.get("programs"),
            "shards": st.get("shards"),
            "devices": st.get("devices"),
            "param_dtype": st.get("param_dtype"),
            "lane_mode": st.get("lane_mode"),
        }
    return out


def times(lanes: dict, sel=None) -> tuple[np.ndarray, np.ndarray]:
    """(T_grok where grokked else steps_run, censored) of the selected lanes."""
    sel = np.ones(len(lanes["grokked"]), bool) if sel is None else sel
    g = lanes["grokked"][sel]
    return np.where(g, lanes["T_grok"][sel], lanes["steps_run"][sel]), ~g


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------


def main(spec: Spec, argv=None) -> int:
    """Parses ``argv`` and runs the experiment (configuration errors raise UsageError)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, opts = parse_run_args(spec, argv)
    return run(spec, cfg, opts, command=f"python -m experiments.{spec.name} " + shlex.join(argv))


def _start_dir(cfg, fresh: bool, resuming: bool = False) -> tuple:
    """Moves an old run aside (``fresh``), creates ``cfg.out``, locks it against a second
    process (``cli.DirLock``) and writes config.json (not when ``resuming``: a resumed run
    directory keeps its config.json, with its ``out``, until the run finishes). Returns the
    directories it created (deepest last, for ``_undo_start``) and the lock. A directory that
    cannot be created, written or locked is a one-line UsageError and leaves nothing behind."""
    from grokjax import results

    created, lock = [], None
    try:
        if fresh and os.path.exists(cfg.out):
            cli.DirLock(cfg.out).acquire().release()  # not while another process runs in it
            print(f"--fresh: moved the existing {cfg.out} to {move_aside(cfg.out)}", flush=True)
        missing, d = [], os.path.abspath(cfg.out)
        while not os.path.exists(d):
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            os.mkdir(d)
            created.append(d)
        lock = cli.DirLock(cfg.out).acquire()
        if not resuming:
            results.write_json(os.path.join(cfg.out, "config.json"), dataclasses.asdict(cfg))
    except (OSError, cli.UsageError) as e:
        if lock is not None:
            lock.release()
        _undo_start(cfg, created, wrote_config=False)
        if isinstance(e, cli.UsageError):
            raise
        raise cli.UsageError(f"--out {cfg.out}: {e.strerror or e}") from None
    return created, lock


def _undo_start(cfg, created: list, wrote_config: bool = True) -> None:
    """Removes what a start that failed before any lane work wrote: its config.json (only if
    nothing else is in the directory) and the directories it created (only if empty)."""
    try:
        left = os.listdir(cfg.out) if os.path.isdir(cfg.out) else []
        if wrote_config and left == ["config.json"]:
            os.remove(os.path.join(cfg.out, "config.json"))
        for d in reversed(created):
            os.rmdir(d)
    except OSError:
        pass


def corrupt_dirs(out: str) -> list:
    """The ``<phase>.corrupt`` directories of unreadable checkpoints set aside in ``out``."""
    base = os.path.join(out, "checkpoints")
    if not os.path.isdir(base):
        return []
    return sorted(os.path.join(base, d) for d in os.listdir(base) if d.endswith(".corrupt"))


def run(spec: Spec, cfg, opts: RunOptions | None = None, command: str = "") -> int:
    """Runs (or resumes) the experiment of ``cfg`` and writes its run directory.

    Everything that can be checked is checked before anything is written: the run directory
    (``check_run_dir``) and the whole plan (``check_plan``: models, lane columns, memory). A
    start that still fails before its first phase finished removes what it wrote, so that the
    corrected command is not refused as "a different configuration"."""
    opts = opts or RunOptions()
    check_environment()
    if not opts.fresh:
        check_run_dir(cfg, spec.config_format, hint=opts.restart_hint)
    # (before any JAX computation: check_plan traces the models' shapes)
    cli.initialize_distributed()
    cli.check_backend()
    import jax

    if cfg.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    check_plan(spec, cfg)
    writer = jax.process_index() == 0
    resuming = os.path.exists(os.path.join(cfg.out, "config.json")) and not opts.fresh
    created, lock = _start_dir(cfg, opts.fresh, resuming) if writer else ([], None)
    try:
        if resuming and writer:
            print(f"resuming the run in {cfg.out} (to start over: {opts.restart_hint})", flush=True)
        try:
            return _run_phases(spec, cfg, opts, command, writer, resuming)
        except BaseException:
            if writer and not resuming:
                _undo_start(cfg, created)
            raise
    finally:
        if lock is not None:
            lock.release()


def check_environment() -> None:
    """The environment variables a run reads, checked before any work (UsageError naming the
    variable): the memory settings ``GROKJAX_MEMORY_LIMIT`` and ``GROKJAX_MEMORY_BUDGET`` and
    the multi-host settings (``cli.distributed_settings``)."""
    from grokjax import data

    for var in ("GROKJAX_MEMORY_LIMIT", "GROKJAX_MEMORY_BUDGET"):
        try:
            data.env_bytes(var)
        except ValueError as e:
            raise cli.UsageError(str(e)) from None
    cli.distributed_settings()


def _run_phases(
    spec: Spec, cfg, opts: RunOptions, command: str, writer: bool, resuming: bool
) -> int:
    from grokjax import results
    from grokjax.engine import Engine, Interrupted

    name = spec.name
    t0 = time.time()
    rows, runs, phases, engines = [], [], {}, {}

    with cli.StopSignals(name) as stop:
        try:
            plan = spec.plan(cfg)
            sent = None
            while True:
                try:
                    phase = plan.send(sent) if sent is not None else next(plan)
                except StopIteration:
                    break
                label = phase.label or f"[{phase.name}] "
                if stop():  # a signal that arrived while no phase was running
                    raise Interrupted(0, None, label)
                engine = engines.get(phase.static)
                if engine is None:
                    engine = engines[phase.static] = Engine(phase.static, lane_mode=opts.lane_mode)
                res = run_phase(
                    engine,
                    phase.meta,
                    cfg,
                    label=label,
                    name=phase.name,
                    opts=opts,
                    should_stop=stop,
                    writer=writer,
                )
                phases[phase.name] = res.stats
                new_rows = results.lane_rows(
                    phase.meta, res, lane_offset=len(rows) if phase.record else 0
                )
                if phase.record:
                    rows += new_rows
                    runs.append(res)
                sent = PhaseOutcome(new_rows, res)
        except Interrupted as e:
            where = (
                f"after step {e.step} of {e.label.strip()}; checkpoint written"
                if e.checkpoint_step is not None
                else f"before {e.label.strip()}; finished phases are saved"
            )
            print(
                f"{name}: stopped by {stop.name or 'request'} {where} in {cfg.out}\n"
                f"{name}: to resume, run the same command: {command}",
                file=sys.stderr,
                flush=True,
            )
            return stop.exit_code
    if not writer:
        return 0
    if not rows:
        raise cli.UsageError("no lanes were run (the plan yielded no phase)")
    # (from here on the run's results exist: a failure must not remove config.json)
    return _write_results(spec, cfg, rows, runs, phases, t0, resuming)


def _write_results(spec, cfg, rows, runs, phases, t0, resuming) -> int:
    from grokjax import results

    # (a resumed run directory that was moved now records where it is; the same bytes as the
    # config.json written at the start otherwise)
    results.write_json(os.path.join(cfg.out, "config.json"), dataclasses.asdict(cfg))
    results.write_lanes_csv(os.path.join(cfg.out, "lanes.csv"), rows)
    results.write_curves(os.path.join(cfg.out, "curves.npz"), runs)
    lanes = results.read_lanes_csv(os.path.join(cfg.out, "lanes.csv"))
    fitted = spec.fit(lanes, cfg)
    fitted["lane_steps_executed"] = int(sum(st["lane_steps_executed"] for st in phases.values()))
    fitted["lane_steps_needed"] = int(sum(st["lane_steps_needed"] for st in phases.values()))
    fitted["config_sha256"] = results.config_digest(dataclasses.asdict(cfg))
    results.write_json(os.path.join(cfg.out, "fit.json"), fitted)
    curves = dict(np.load(os.path.join(cfg.out, "curves.npz")))
    figs = spec.figure(lanes, fitted, curves, cfg.out) or []
    timing = timing_report(phases, time.time() - t0, resuming)
    results.write_json(os.path.join(cfg.out, "timing.json"), timing)
    print(spec.summary(fitted, cfg), flush=True)
    names = ["config.json", "lanes.csv", "curves.npz", "fit.json", "timing.json"] + [
        os.path.basename(f) for f in figs
    ]
    print(f"wrote {cfg.out}/{{{', '.join(names)}}} in {timing['wall_s']:.0f}s", flush=True)
    for d in corrupt_dirs(cfg.out):
        print(
            f"note: unreadable checkpoints were set aside in {d} (not used; delete it when "
            f"no longer needed)",
            flush=True,
        )
    return 0


def main_cli(spec: Spec, argv=None) -> int:
    """``main`` with configuration errors turned into one line on stderr and exit status 2."""
    return cli.main_guard(spec.name, lambda a: main(spec, a), argv)


def entry_points(spec: Spec) -> tuple[Callable, Callable]:
    """An experiment module's ``main`` (configuration errors raise UsageError) and
    ``main_cli`` (they become one line on stderr and exit status 2), bound to ``spec``:
    ``main, main_cli = experiment.entry_points(SPEC)``."""

    def spec_main(argv=None) -> int:
        return main(spec, argv)

    def spec_main_cli(argv=None) -> int:
        return main_cli(spec, argv)

    spec_main.__doc__ = f"Runs python -m experiments.{spec.name} with ``argv``."
    spec_main_cli.__doc__ = f"``main`` of {spec.name} with one-line errors and exit status 2."
    return spec_main, spec_main_cli


# ---------------------------------------------------------------------------------------------
# helpers for the MLP experiments
# ---------------------------------------------------------------------------------------------

BASE_FIELDS = tuple(f.name for f in dataclasses.fields(BaseConfig))


def field_arguments(cfg_cls, helps: dict | None = None, skip: tuple = ()) -> Callable:
    """An ``add_arguments`` that adds ``--field-name`` for every field of ``cfg_cls`` beyond
    :class:`BaseConfig`'s and ``skip`` (lists comma-separated; the element type from the
    annotation, ``list[int]``, or else from the default)."""
    helps = helps or {}

    def add(ap) -> None:
        cfg = cfg_cls()
        rep = repeatable(cfg)
        for f in dataclasses.fields(cfg_cls):
            if f.name in BASE_FIELDS or f.name in skip:
                continue
            v = getattr(cfg, f.name)
            ann = str(f.type).replace(" ", "")  # e.g. "list[int]", "int|None": says more than
            if ann.startswith("list[") and ann.endswith("]"):  # an empty or None default
                v = v if v else {"int": [0], "float": [0.0], "str": [""]}.get(ann[5:-1], [])
            elif v is None:
                parts = set(ann.split("|"))
                v = 0 if "int" in parts else 0.0 if "float" in parts else v
            if isinstance(v, list):
                ints = v and all(isinstance(x, int) for x in v)
                if f.name in rep:
                    typ = cli.int_values if ints else cli.float_values
                else:
                    typ = cli.ints if ints else cli.floats
                if v and all(isinstance(x, str) for x in v):
                    typ = cli.strings
            elif isinstance(v, bool):
                typ = cli.boolean
            elif isinstance(v, int):
                typ = int
            elif isinstance(v, float):
                typ = float
            else:
                typ = str
            ap.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                type=typ,
                help=helps.get(f.name, "overrides the preset's value"),
            )

    return add
