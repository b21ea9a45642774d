"""Run directories read back for the report: :class:`Run` and :func:`load_run` /
:func:`load_runs`, with the checks that refuse a directory whose files disagree.

A run directory holds ``config.json`` and ``lanes.csv`` (required) and ``curves.npz``
(optional: the results committed under results/ keep only the small files). Every failure is
a :class:`RunDirError` with a one-line message. JAX-free.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zipfile
from typing import Callable, NamedTuple

import numpy as np

from grokjax import schema

__all__ = [
    "REQUIRED_FILES",
    "REQUIRED_COLUMNS",
    "CONFIG_FIELDS",
    "RunDirError",
    "Run",
    "read_lanes",
    "read_curves",
    "fill_config_fields",
    "check_config",
    "check_lanes_match",
    "load_run",
    "load_runs",
    "POOL_AXES",
    "PoolAxis",
    "pool",
]

REQUIRED_FILES = ("config.json", "lanes.csv")
REQUIRED_COLUMNS = schema.REQUIRED
# Settings stored once in config.json but needed per lane (filled in when not a lane column).
CONFIG_FIELDS = schema.CONFIG_FIELDS


class RunDirError(ValueError):
    """A run directory that cannot be read (missing file, unreadable config, empty lanes)."""


@dataclasses.dataclass
class Run:
    """One run directory: its configuration, per-lane columns and curves."""

    path: str
    name: str
    config: dict
    lanes: dict
    curves: dict
    cache: dict = dataclasses.field(default_factory=dict, repr=False)  # fits, by lane subset

    @property
    def experiment(self) -> str:
        return str(self.config.get("experiment", "unknown"))

    @property
    def preset(self) -> str:
        return str(self.config.get("preset", ""))

    @property
    def n(self) -> int:
        return int(len(self.lanes["p"]))

    def times(self) -> tuple[np.ndarray, np.ndarray]:
        """(time, censored): T_grok where grokked, else steps_run with censored=True."""
        g = self.lanes["grokked"]
        return np.where(g, self.lanes["T_grok"], self.lanes["steps_run"]), ~g

    def ok(self) -> np.ndarray:
        """Lanes that enter the fits: not diverged and with a positive time."""
        t, _ = self.times()
        return ~self.lanes["diverged"] & np.isfinite(t) & (t > 0)

    def arm(self, name: str) -> np.ndarray:
        return self.lanes["arm"] == name


def check_lane_values(lanes: dict, where: str) -> None:
    """The lane schema (:func:`grokjax.results.check_lane_values`)."""
    from grokjax.results import check_lane_values as check

    check(lanes, where)


def read_lanes(path: str, config: dict | None = None) -> dict:
    """``lanes.csv`` as columns (:func:`grokjax.results.read_lanes_csv`), a run directory's
    written before a rename mapped to the names and meanings of now (given its ``config``)."""
    from grokjax.results import read_lanes_csv

    return read_lanes_csv(path, config)


def load_run(path: str, name: str | None = None) -> Run:
    """Reads a run directory; raises :class:`RunDirError` with a one-line message."""
    if not os.path.isdir(path):
        raise RunDirError(f"{path}: not a run directory")
    for f in REQUIRED_FILES:
        if not os.path.isfile(os.path.join(path, f)):
            raise RunDirError(f"{path}: missing {f}")
    try:
        with open(os.path.join(path, "config.json")) as fh:
            config = json.load(fh)
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path}: unreadable config.json ({e})".replace("\n", " ")) from None
    if not isinstance(config, dict):
        raise RunDirError(f"{path}: config.json is not a JSON object")
    check_config(path, config)
    try:
        lanes = read_lanes(os.path.join(path, "lanes.csv"), config)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path}: unreadable lanes.csv ({e})".replace("\n", " ")) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in lanes]
    if missing:
        raise RunDirError(f"{path}: lanes.csv lacks column(s) {', '.join(missing)}")
    try:
        check_lane_values(lanes, os.path.join(path, "lanes.csv"))
    except ValueError as e:
        raise RunDirError(f"{e} (an edited or damaged file; rerun the experiment)") from None
    check_lanes_match(path, config, lanes)
    curves = read_curves(path, len(lanes["p"]))
    fill_config_fields(lanes, config)
    base = name or os.path.basename(os.path.normpath(os.path.abspath(path))) or "run"
    return Run(
        path=path,
        name=re.sub(r"[^A-Za-z0-9._-]+", "_", base),
        config=config,
        lanes=lanes,
        curves=curves,
    )


def read_curves(path: str, n: int) -> dict:
    """``curves.npz`` of the run directory ``path`` with ``n`` lanes ({} when absent)."""
    curves = {}
    if os.path.exists(os.path.join(path, "curves.npz")):
        try:
            with np.load(os.path.join(path, "curves.npz"), allow_pickle=False) as z:
                curves = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            why = str(e) or type(e).__name__
            raise RunDirError(
                f"{path}: unreadable curves.npz ({why}; an emptied or truncated file: delete it "
                f"to read the run without curves, or rerun the experiment)".replace("\n", " ")
            ) from None
    for k in ("steps", "train_acc", "test_acc", "norm") if curves else ():
        if k not in curves:
            raise RunDirError(f"{path}: curves.npz lacks {k}")
        if curves[k].shape[0] != n:
            raise RunDirError(
                f"{path}: curves.npz has {curves[k].shape[0]} lanes, lanes.csv has {n}"
            )
    return curves


def fill_config_fields(lanes: dict, config: dict) -> None:
    """Adds the :data:`CONFIG_FIELDS` that config.json records once as lane columns (and
    empty :data:`grokjax.schema.ABSENT_EMPTY` columns, t_int and clamp_mode, where the run has
    none)."""
    n = len(lanes["p"])
    for k in CONFIG_FIELDS:
        if k in lanes:
            continue
        v = config.get(k)
        if v is None and k == "layernorm":
            # the MLP has no LayerNorm; for other models an unrecorded setting stays unknown
            lanes[k] = np.array(
                ["none" if m == "mlp" else None for m in lanes["model"]], dtype=object
            )
            continue
        if isinstance(v, (list, dict)):
            v = None  # swept but not recorded per lane: unknown per lane
        lanes[k] = np.array([v] * n, dtype=object)
    for k in schema.ABSENT_EMPTY:
        if k not in lanes:
            lanes[k] = np.array([None] * n, dtype=object)


def check_config(path: str, config: dict) -> None:
    """Refuses a config.json that is not the one the run wrote: its digest differs from the
    one fit.json recorded (``config_sha256``, written since issue 15; a run directory from
    before it is only checked against lanes.csv, see :func:`check_lanes_match`)."""
    from grokjax.results import config_digest

    fit_path = os.path.join(path, "fit.json")
    digest = None
    if os.path.isfile(fit_path):
        try:
            with open(fit_path) as fh:
                fitted = json.load(fh)
            digest = fitted.get("config_sha256") if isinstance(fitted, dict) else None
        except (OSError, ValueError):
            digest = None
    if digest is None:
        return
    try:
        same = config_digest(config) == digest
    except (TypeError, ValueError):
        same = False
    if not same:
        raise RunDirError(
            f"{path}: config.json was changed after the run (it does not "
            f"match the configuration fit.json recorded); restore it or "
            f"rerun the experiment"
        )


# The columns that say which cell a lane is in (a cell's lanes differ only in their seed).
CELL_COLUMNS = schema.CELL_COLUMNS


def _cell_name(lanes: dict, i: int) -> str:
    parts = []
    for k in CELL_COLUMNS:
        if k not in lanes:
            continue
        v = lanes[k][i]
        if v is None or v == "" or (isinstance(v, float) and np.isnan(v)):
            continue
        parts.append(f"{k}={v:g}" if isinstance(v, (float, np.floating)) else f"{k}={v}")
    return ", ".join(parts[:4])


def _seed_counts(config: dict) -> set:
    """The seeds per cell that config.json allows: its ``seeds`` and ``*_seeds`` counts."""
    return {
        int(v)
        for k, v in config.items()
        if (k == "seeds" or k.endswith("_seeds")) and isinstance(v, int) and not isinstance(v, bool)
    }


def check_lanes_match(path: str, config: dict, lanes: dict) -> None:
    """Refuses a lanes.csv that is not the one this run's config.json wrote: one row per lane
    (the ``lane`` column is 0, 1, ... in order: no row repeated, dropped or reordered), and
    in every cell (the lanes that differ only in their seed) the seeds ``seed_base``,
    ``seed_base + 1``, ... as many as one of config.json's seed counts says (a lanes.csv copied
    from a run with another ``--seed-base``, or a cell edited apart, is refused); and a
    config.json that contradicts lanes.csv on a setting both record."""
    hint = "lanes.csv was edited or copied from another run; rerun the experiment"
    n = len(lanes["p"])
    if "lane" in lanes:
        lane = np.asarray(lanes["lane"], float)
        off = np.flatnonzero(lane != np.arange(n))
        if off.size:
            i = int(off[0])
            raise RunDirError(
                f"{path}: lanes.csv row {i + 2} is lane {lane[i]:g}, expected lane {i} "
                f"(one row per lane, in order: a row repeated, dropped or moved); {hint}"
            )
    base = config.get("seed_base", 0)
    counts = _seed_counts(config)
    if isinstance(base, int) and not isinstance(base, bool) and counts:
        cells: dict = {}
        for i in range(n):
            key = tuple(repr(lanes[k][i]) for k in CELL_COLUMNS if k in lanes)
            cells.setdefault(key, []).append(i)
        for rows in cells.values():
            seeds = sorted(float(lanes["seed"][i]) for i in rows)
            if seeds != list(range(base, base + len(seeds))) or len(seeds) not in counts:
                shown = ", ".join(f"{s:g}" for s in seeds[:6]) + (", ..." if len(seeds) > 6 else "")
                want = " or ".join(
                    f"{base}..{base + c - 1}" if c > 1 else f"{base}" for c in sorted(counts)
                )
                raise RunDirError(
                    f"{path}: the cell {_cell_name(lanes, rows[0])} holds seeds {shown}, but "
                    f"config.json (seed_base {base}) gives every cell seeds {want}; {hint}"
                )
    for key in ("dtype", "model"):
        v = config.get(key)
        if isinstance(v, str) and key in lanes:
            found = sorted({str(x) for x in lanes[key]} - {v})
            if found:
                raise RunDirError(
                    f"{path}: config.json says {key} {v!r} but lanes.csv holds "
                    f"{', '.join(found)}; one of them was edited"
                )


def load_runs(paths: list[str]) -> list[Run]:
    """Loads several run directories, giving each a unique name (for file names). The same
    directory given twice (under any spelling) is refused: it would count its lanes twice."""
    real = {}
    for p in paths:
        r = os.path.realpath(p)
        if r in real:
            raise RunDirError(
                f"{p}: the same run directory is given twice (also as "
                f"{real[r]}); it would be counted as two runs"
            )
        real[r] = p
    runs, seen = [], {}
    for p in paths:
        r = load_run(p)
        k = seen.get(r.name, 0)
        seen[r.name] = k + 1
        if k:
            r.name = f"{r.name}-{k + 1}"
        runs.append(r)
    return runs


class PoolAxis(NamedTuple):
    """One axis along which a design may be run as separate jobs and pooled by :func:`pool`."""

    column: str  # the lane column whose values must not overlap between the parts
    fields: tuple  # the config.json fields that may differ between the parts besides "out"
    join: Callable  # the union of the parts' values on ``column`` -> the pooled config's fields
    requires: str | None = None  # a config.json field every part must set (truthy), if any


# p: a sweep run one modulus group at a time; lr: a rho × lr matrix run one lr column at a
# time; seed: any design run one block of seeds at a time (``--seeds 8 --seed-base 2008``
# beside ``--seeds 8``), which adds seeds to the same cells. lr and seed are one design only
# when every part clamps to the same fixed W_c (config ``fixed_wc`` > 0): with a run's own W_c
# each part would clamp to the norm of its own controls.
POOL_AXES = {
    "p": PoolAxis(
        "p", ("p", "extra_rho", "extra_rho_p"), lambda u: dict(p=sorted(int(p) for p in u))
    ),
    "lr": PoolAxis(
        "lr",
        ("lr", "lrs"),
        lambda u: dict(lrs=sorted(float(x) for x in u), lr=float(min(u))),
        requires="fixed_wc",
    ),
    "seed": PoolAxis(
        "seed",
        ("seeds", "seed_base"),
        lambda u: dict(seeds=len(u), seed_base=int(min(u))),
        requires="fixed_wc",
    ),
}


def pool(runs: list[Run], axis: str = "p") -> list[Run]:
    """Runs of one design split along ``axis`` (:data:`POOL_AXES`), joined: every group of two
    or more runs of one experiment whose config.json agree on everything but that axis'
    fields (and ``out``) and whose values on the axis do not overlap becomes one :class:`Run`
    over all their lanes (named ``a+b+...``, no curves, config holding the union: ``p``;
    ``lrs`` with ``lr`` its smallest; ``seeds`` their count with ``seed_base`` the smallest),
    so a fit across p (the shared alpha, the power laws in p) or across lr (the lr effect), or
    any number on more seeds, can use parts that were run as separate jobs. Runs that share a
    value are not pooled (the same cells twice would be two seed sets in one cell)."""
    try:
        column, fields, join, requires = POOL_AXES[axis]
    except KeyError:
        raise ValueError(f"no pool axis {axis!r} (axes: {', '.join(POOL_AXES)})") from None
    keys = fields + ("out",)
    groups: dict = {}
    for r in runs:
        if requires and not r.config.get(requires):
            continue
        same = {k: v for k, v in r.config.items() if k not in keys}
        key = (r.experiment, json.dumps(same, sort_keys=True, default=str))
        groups.setdefault(key, []).append(r)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        vals = [set(np.round(np.unique(r.lanes[column]), 12).tolist()) for r in members]
        union = set().union(*vals)
        if sum(len(v) for v in vals) != len(union):
            continue
        cols = [k for k in members[0].lanes if all(k in r.lanes for r in members[1:])]
        lanes = {k: np.concatenate([r.lanes[k] for r in members]) for k in cols}
        out.append(
            Run(
                path="",
                name="+".join(r.name for r in members),
                config=dict(members[0].config, **join(union)),
                lanes=lanes,
                curves={},
            )
        )
    return out
