"""The lane schema: every ``lanes.csv`` column declared once, with its type, its role (a
*setting* the lane ran with, an *event* step or flag, or a *measure*), what an empty cell means,
its default and a one-line description. JAX-free.

What derives from it: the columns every run writes and their order (:data:`STANDARD`,
``results.LANE_COLUMNS``), how the reader types each column and which values it refuses
(``results.read_lanes_csv`` / ``check_lane_values``), the columns a run directory must hold
(:data:`REQUIRED`), the settings config.json records once (:data:`CONFIG_FIELDS`), the
defaults of a phase's lane table (:func:`setting_defaults`), a dry run's made-up outcome
(:func:`dry_outcome`) and which settings make a cell (:func:`cell_keys`).

Renames (a run directory written before one still reads: :func:`upgrade` maps it):

* ``norm_at_grok_80`` / ``norm_at_grok_95`` -> ``norm_at_test80`` / ``norm_at_test95`` (the
  norm when test accuracy first reaches 0.8 / 0.95 is not a parameter group's norm).
* parity (model ``bits``) stored its bit count n in ``p`` and m / (m + n_test) in ``frac``,
  and its training rows in ``m``. It now writes ``n_bits`` and ``n_train``, with ``p`` and
  ``frac`` empty (p is the modulus of a modular task, frac its train fraction). An older
  parity lane reads as the new one: ``n_bits`` from ``p`` where it is not a column,
  ``n_train`` from ``m`` (or from frac and n_test, 2000 when not recorded), p and frac empty.

``python -m grokjax.schema`` prints the columns as a Markdown table (docs/usage.md holds it).
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from grokjax.protocol import FOREVER

ROLES = ("setting", "event", "measure")
PARITY_N_TEST = 2000  # test rows of a parity lane that recorded neither m nor n_test


@dataclasses.dataclass(frozen=True)
class Column:
    """One lanes.csv column (``name`` may hold ``{group}``: one column per parameter group)."""

    name: str
    type: type  # int, float, bool or str (empty cells read as NaN, or None for str)
    role: str  # "setting", "event" or "measure"
    doc: str
    empty: str = ""  # what an empty cell means ("" = never empty in a run's lanes)
    default: object = None  # a setting's value when a phase does not give one (None: cfg's)
    check: str = ""  # "positive", "nonnegative", "fraction" or "" (whole numbers are >= 0)
    standard: bool = False  # written by every run (else only when a phase gives it)
    config: bool = False  # recorded once in config.json when not a lane column
    cell: tuple = ()  # the arms whose cells it splits: "free", "clamp", "control"
    splits: bool = False  # lanes that differ in it are in different cells (also when not in cell)
    needed: bool = False  # a run directory's lanes.csv must hold it to be read
    always: bool = False  # never empty (p too, but in a parity lane: results.check_lane_values)
    dry: object = None  # a dry run's made-up value ("t": half the budget, "t/2": a quarter)


_ALL = ("free", "clamp", "control")
_T = "a step; empty when it did not happen within steps_run (right-censored)"

# Standard columns in the order every lanes.csv holds them, then the optional ones.
COLUMNS = (
    Column("lane", int, "setting", "row number 0, 1, ... in run order", standard=True, always=True),
    Column(
        "p",
        int,
        "setting",
        "modulus of a modular-arithmetic task",
        empty="not a modular task (parity: see n_bits)",
        standard=True,
        cell=_ALL,
        needed=True,
    ),
    Column(
        "seed",
        int,
        "setting",
        "the lane's seed (data split and init)",
        standard=True,
        needed=True,
        always=True,
    ),
    Column(
        "arm",
        str,
        "setting",
        "free, clamp or a control arm",
        default="free",
        standard=True,
        splits=True,
        needed=True,
    ),
    Column(
        "rho",
        float,
        "setting",
        "held norm as a multiple of W_c",
        empty="no held norm (a free lane)",
        default=math.nan,
        check="positive",
        standard=True,
        splits=True,
        needed=True,
    ),
    Column(
        "target_norm",
        float,
        "setting",
        "held norm (0: free)",
        default=0.0,
        check="nonnegative",
        standard=True,
        needed=True,
    ),
    Column(
        "lr",
        float,
        "setting",
        "learning rate",
        check="positive",
        standard=True,
        cell=_ALL,
        needed=True,
    ),
    Column(
        "wd",
        float,
        "setting",
        "weight decay",
        check="nonnegative",
        standard=True,
        cell=_ALL,
        needed=True,
    ),
    Column(
        "t_int",
        int,
        "setting",
        "step the clamp starts",
        default=0,
        standard=True,
        cell=("clamp", "control"),
    ),
    Column(
        "clamp_mode",
        str,
        "setting",
        "none, continuous or one_shot",
        default="none",
        standard=True,
        cell=("clamp",),
    ),
    Column(
        "init_scale",
        float,
        "setting",
        "initial weights' scale",
        default=1.0,
        check="positive",
        standard=True,
    ),
    Column(
        "frac",
        float,
        "setting",
        "train fraction of a modular task",
        empty="no train fraction (parity: see n_train)",
        check="fraction",
        standard=True,
        cell=_ALL,
        needed=True,
    ),
    Column(
        "model", str, "setting", "model kind", default="mlp", standard=True, cell=_ALL, needed=True
    ),
    Column("dtype", str, "setting", "float32 or float64", standard=True, splits=True),
    Column("budget", int, "setting", "step budget", standard=True),
    Column(
        "T_mem",
        int,
        "event",
        "first eval with train acc >= 0.99",
        _T,
        standard=True,
        dry="t/2",
        needed=True,
    ),
    Column(
        "T_grok",
        int,
        "event",
        "first eval with test acc >= 0.9",
        _T,
        standard=True,
        dry="t",
        needed=True,
    ),
    Column(
        "T_grok_80", int, "event", "first eval with test acc >= 0.8", _T, standard=True, dry="t"
    ),
    Column(
        "T_grok_95", int, "event", "first eval with test acc >= 0.95", _T, standard=True, dry="t"
    ),
    Column("grokked", bool, "event", "T_grok happened (0/1)", standard=True, dry=True, needed=True),
    Column(
        "norm_at_mem",
        float,
        "measure",
        "‖W‖ at T_mem",
        "did not memorise",
        check="nonnegative",
        standard=True,
        dry=1.0,
    ),
    Column(
        "norm_at_grok",
        float,
        "measure",
        "‖W‖ at T_grok",
        "did not grok",
        check="nonnegative",
        standard=True,
        dry=1.0,
        needed=True,
    ),
    Column(
        "norm_at_test80",
        float,
        "measure",
        "‖W‖ at T_grok_80",
        "test acc never reached 0.8",
        check="nonnegative",
        standard=True,
        dry=1.0,
    ),
    Column(
        "norm_at_test95",
        float,
        "measure",
        "‖W‖ at T_grok_95",
        "test acc never reached 0.95",
        check="nonnegative",
        standard=True,
        dry=1.0,
    ),
    Column(
        "collapse_at_grok",
        float,
        "measure",
        "softmax-collapse fraction at T_grok",
        "did not grok",
        check="nonnegative",
        standard=True,
        dry=0.0,
    ),
    Column(
        "diverged",
        bool,
        "event",
        "the loss went non-finite (0/1)",
        standard=True,
        dry=False,
        needed=True,
    ),
    Column("diverged_step", int, "event", "step it diverged", "did not diverge", standard=True),
    Column(
        "steps_run",
        int,
        "measure",
        "steps the lane trained",
        standard=True,
        dry="t",
        needed=True,
        always=True,
    ),
    # -- written when a phase gives them --------------------------------------------------
    Column(
        "norm_at_grok_{group}",
        float,
        "measure",
        "a parameter group's norm at T_grok",
        "did not grok",
        check="nonnegative",
        dry=1.0,
    ),
    Column(
        "cell", str, "setting", "the experiment's name for the lane's cell", default="", splits=True
    ),
    Column(
        "clamp_group",
        str,
        "setting",
        "parameter group clamped, or all",
        default="all",
        splits=True,
    ),
    Column("clamp_steps", int, "setting", "steps the clamp lasts", default=FOREVER),
    Column(
        "one_shot_factor",
        float,
        "setting",
        "one-shot rescale factor",
        "not a one-shot lane",
        default=math.nan,
    ),
    Column("d", int, "setting", "embedding width", "not recorded", config=True, cell=_ALL),
    Column("hidden", int, "setting", "hidden width", "not recorded", config=True, cell=_ALL),
    Column("heads", int, "setting", "attention heads", "not recorded", config=True),
    Column(
        "layernorm",
        str,
        "setting",
        "LayerNorm placement (none for the MLP)",
        "not recorded",
        config=True,
        cell=_ALL,
    ),
    Column("part", str, "setting", "the transformer experiment's part (noln, ln)"),
    Column("n_bits", int, "setting", "parity: bits n per input", "not parity", cell=_ALL),
    Column("n_train", int, "setting", "parity: training rows m", "not parity", cell=_ALL),
    Column("k_bits", int, "setting", "parity: bits k the label depends on", "not parity"),
    Column("n_test", int, "setting", "parity: test rows", "not parity"),
    Column("grids", str, "setting", "parity: sub-grids the cell belongs to (size, lr_wd, clamp)"),
    Column(
        "frac_{group}_t_int",
        float,
        "measure",
        "a group's share of ‖W‖² at t_int",
    ),
)
# old name -> new name (header renames; parity's meaning change is done by upgrade())
RENAMED = {"norm_at_grok_80": "norm_at_test80", "norm_at_grok_95": "norm_at_test95"}

STANDARD = tuple(c.name for c in COLUMNS if c.standard)
BY_NAME = {c.name: c for c in COLUMNS}
_PATTERNS = [
    (re.compile("^" + re.escape(c.name).replace(r"\{group\}", "[A-Za-z0-9]+") + "$"), c)
    for c in COLUMNS
    if "{group}" in c.name
]
REQUIRED_VALUES = tuple(c.name for c in COLUMNS if c.always)
REQUIRED = tuple(c.name for c in COLUMNS if c.needed)
CONFIG_FIELDS = tuple(c.name for c in COLUMNS if c.config)
# standard settings that split cells but that a run directory need not hold (written since
# the clamp arms were added): read as empty where a run has none, so its cells still key
ABSENT_EMPTY = tuple(c.name for c in COLUMNS if c.standard and c.cell and not c.needed)
# every setting that tells cells apart (a cell's lanes differ only in their seed), in
# declaration order: what the seeds-per-cell check of a run directory groups by
CELL_COLUMNS = tuple(c.name for c in COLUMNS if c.cell or c.splits)


def column(name: str) -> Column | None:
    """The declaration of column ``name`` (a per-group column by its pattern), else None."""
    if name in BY_NAME:
        return BY_NAME[name]
    return next((c for rx, c in _PATTERNS if rx.match(name)), None)


def names(type_: type) -> set:
    """The declared (non-pattern) column names of one type."""
    return {c.name for c in COLUMNS if c.type is type_ and "{" not in c.name}


# The order of a cell's key: the model first, p last (the report's groups sort this way).
_CELL_ORDER = ("model", "layernorm", "d", "hidden", "frac", "lr", "wd", "p", "n_bits", "n_train")
_CELL_ORDER += tuple(c.name for c in COLUMNS if c.cell and c.name not in _CELL_ORDER)


def cell_keys(arm: str) -> tuple:
    """The settings whose values make a cell of lanes of ``arm`` ("free", "clamp",
    "control"): two lanes are in one cell when they agree on all of them (and differ only in
    their seed)."""
    keys = [k for k in _CELL_ORDER if arm in BY_NAME[k].cell]
    # a clamp cell's key adds the clamp settings in declaration order after the free ones
    free = [k for k in keys if "free" in BY_NAME[k].cell]
    return tuple(free + [k for k in keys if k not in free])


def setting_defaults(cfg) -> dict:
    """A phase's lane-table defaults: each standard setting's declared default, else the
    configuration's field of that name (``budget``: its ``steps``); plus the optional
    settings that have a default (the clamp's group and duration, the one-shot factor, the
    cell's name)."""
    out = {}
    for c in COLUMNS:
        if c.role != "setting" or c.name in ("lane", "seed"):
            continue
        if c.default is not None:
            out[c.name] = c.default
        elif c.standard:
            out[c.name] = getattr(cfg, "steps" if c.name == "budget" else c.name, None)
    return out


def standard_settings(cfg, n: int, **given) -> dict:
    """The standard setting columns of ``n`` lanes (no ``lane``): ``given`` (an array, or one
    value for every lane), else :func:`setting_defaults`. Labels are object arrays."""
    defaults = setting_defaults(cfg)
    out = {}
    for c in COLUMNS:
        if not (c.standard and c.role == "setting") or c.name == "lane":
            continue
        v = given.pop(c.name) if c.name in given else defaults[c.name]
        if not isinstance(v, np.ndarray):
            v = np.full(n, v, dtype=object if isinstance(v, str) else None)
        out[c.name] = v
    if given:
        raise ValueError(f"not standard settings: {', '.join(sorted(given))}")
    return out


def dry_outcome(budget, groups: tuple) -> dict:
    """A dry run's made-up outcome columns of one lane with step budget ``budget``: every
    lane grokked half-way through its budget with norm 1 everywhere."""
    t = max(1, int(budget or 2) // 2)
    out = {}
    for c in COLUMNS:
        if c.role == "setting" or (c.dry is None and c.role == "measure"):
            continue
        v = {"t": t, "t/2": max(1, t // 2)}.get(c.dry, c.dry) if isinstance(c.dry, str) else c.dry
        if "{group}" in c.name:
            out.update({c.name.format(group=g): v for g in groups})
        else:
            out[c.name] = v
    return out


def _is_bits(lanes: dict) -> np.ndarray:
    n = len(next(iter(lanes.values())))
    model = lanes.get("model")
    return np.zeros(n, bool) if model is None else np.asarray(model == "bits", bool)


def upgrade(lanes: dict, config: dict | None = None) -> dict:
    """Maps columns read from a run directory written before a rename to their meaning now
    (in place; returns ``lanes``): parity lanes (model ``bits``) that stored n in ``p`` and
    m / (m + n_test) in ``frac`` get ``n_bits`` and ``n_train``, and p and frac empty."""
    if "n_train" in lanes or not lanes:
        return lanes
    bits = _is_bits(lanes)
    if "m" in lanes:
        lanes["n_train"] = np.asarray(lanes.pop("m"), float)
    if not bits.any():
        return lanes
    n = bits.size
    p = np.asarray(lanes.get("p", np.full(n, np.nan)), float)
    frac = np.asarray(lanes.get("frac", np.full(n, np.nan)), float)
    if "n_bits" not in lanes:
        lanes["n_bits"] = np.where(bits, p, np.nan)
    if "n_train" not in lanes:
        n_test = lanes.get("n_test")
        if n_test is None:
            n_test = np.full(n, float((config or {}).get("n_test", PARITY_N_TEST)))
        m = np.round(frac * np.asarray(n_test, float) / (1 - frac))
        lanes["n_train"] = np.where(bits, m, np.nan)
    for k, v in (("p", p), ("frac", frac)):
        if k in lanes:
            lanes[k] = np.where(bits, np.nan, v)
    return lanes


def markdown() -> str:
    """The columns as a Markdown table (name, type, role, empty cell, description)."""
    rows = ["| column | type | role | empty cell | description |", "|---|---|---|---|---|"]
    for c in COLUMNS:
        std = "" if c.standard else " (when given)"
        rows.append(
            f"| `{c.name}` | {c.type.__name__} | {c.role} | {c.empty or '-'} | {c.doc}{std} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
