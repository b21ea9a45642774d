"""The run directory: what an experiment writes and what figures and fits read back.

Files (all written atomically: a temporary file in the same directory, then ``os.replace``):

* ``config.json`` -- everything needed to rerun (the experiment's resolved configuration).
* ``lanes.csv``   -- one row per lane (columns declared in ``grokjax.schema``); empty cells
  for events that did not happen (a lane that never grokked has an empty ``T_grok`` and
  ``grokked = 0``: it is right-censored at ``steps_run``).
* ``curves.npz``  -- ``steps`` [S] and per-lane trajectories [lanes, S] on a geometric step
  grid (NaN where not recorded); ``group_norms`` is [lanes, S, G] with names in ``groups``.
* ``fit.json``    -- the fitted quantities (see ``grokjax.fit``); deterministic (no timings).
* ``timing.json`` -- wall time, devices, resumes: everything that differs between two runs
  of one configuration.

While a job runs (see ``grokjax/experiment.py``) the directory also holds ``phases/``
(one ``save_run_result`` file per finished phase, so a resumed job skips it) and
``checkpoints/`` (Orbax checkpoints of the phase in progress, see ``grokjax.checkpoint``).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile

import numpy as np

from grokjax import schema
from grokjax.protocol import HEADLINE, THRESHOLDS, RunResult

LANE_COLUMNS = schema.STANDARD  # every run writes these, in this order, then any others sorted
RENAMED_COLUMNS = schema.RENAMED


@contextlib.contextmanager
def atomic_path(path: str):
    """Yields a temporary path next to ``path``; renames it over ``path`` on success."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
    )
    try:  # mkstemp makes it 0600; a written file gets the mode open() would give it
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def current_umask() -> int:
    """This process's umask, read without changing it where the system says it (Linux), else
    set and restored at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


DIGEST_EXCEPT = ("out",)  # a run directory may be moved: its path is not part of the digest


def config_digest(config: dict) -> str:
    """SHA-256 of a configuration as config.json stores it (without ``out``); fit.json keeps
    it as ``config_sha256`` so that a reader can tell a config.json edited after the run."""
    body = {k: v for k, v in config.items() if k not in DIGEST_EXCEPT}
    text = json.dumps(body, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _cell(v):
    """CSV cell: '' for missing (None, NaN, negative event steps are mapped by the caller)."""
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def lane_rows(meta: dict, result: RunResult, lane_offset: int = 0) -> list[dict]:
    """One dict per lane from per-lane metadata (columns of equal length) and a run result."""
    lat = result.latches
    n = len(result.steps_run)
    rows = []
    event = lambda t: int(t) if t >= 0 else None
    for i in range(n):
        tg = lat["t_grok"][i]
        row = {
            k: (v[i] if isinstance(v, (list, tuple, np.ndarray)) else v) for k, v in meta.items()
        }
        row.update(
            lane=lane_offset + i,
            T_mem=event(lat["t_mem"][i]),
            T_grok=event(tg[HEADLINE]),
            T_grok_80=event(tg[THRESHOLDS.index(0.8)]),
            T_grok_95=event(tg[THRESHOLDS.index(0.95)]),
            grokked=bool(tg[HEADLINE] >= 0),
            norm_at_mem=float(lat["norm_at_mem"][i]),
            norm_at_grok=float(lat["norm_at_grok"][i][HEADLINE]),
            norm_at_test80=float(lat["norm_at_grok"][i][THRESHOLDS.index(0.8)]),
            norm_at_test95=float(lat["norm_at_grok"][i][THRESHOLDS.index(0.95)]),
            collapse_at_grok=float(lat["collapse_at_grok"][i]),
            diverged=bool(lat["diverged_step"][i] >= 0),
            diverged_step=event(lat["diverged_step"][i]),
            steps_run=int(result.steps_run[i]),
        )
        for g, name in enumerate(result.groups):
            row[f"norm_at_grok_{name}"] = float(lat["group_norm_at_grok"][i][g])
        rows.append(row)
    return rows


def write_lanes_csv(path: str, rows: list[dict]) -> None:
    extra = sorted({k for r in rows for k in r} - set(LANE_COLUMNS))
    columns = list(LANE_COLUMNS) + extra
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in columns})
    write_text(path, buf.getvalue())


def _number(v: str) -> float:
    return float(v) if v != "" else np.nan


def read_lanes_csv(path: str, config: dict | None = None) -> dict[str, np.ndarray]:
    """Columns of ``lanes.csv`` as arrays, typed by the lane schema: floats with NaN for
    empty cells (event steps and counts included, so a censored ``T_grok`` is NaN), bools for
    flags, strings for labels (the declared label columns, and any undeclared column holding
    a cell that is not a number). A file written before a rename reads under the new names and
    meanings (:func:`grokjax.schema.upgrade`, given the run's ``config`` where known).

    Raises ValueError (one line) on a file that is not a whole table: a row with fewer or
    more cells than the header (a truncated or spliced file), a flag that is not 0/1, or a
    number column holding text."""
    with open(path, newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):  # write_lanes_csv ends every row with a newline
        raise ValueError(f"{path} ends in the middle of a row (a truncated or damaged file)")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    header = reader.fieldnames or []
    if not rows:
        raise ValueError(f"{path} holds no lanes")
    if len(set(header)) != len(header) or "" in header:
        raise ValueError(f"{path}: the header repeats or lacks a column name")
    for i, r in enumerate(rows):
        if None in r or any(v is None for v in r.values()):
            n = len(header) - sum(v is None for v in r.values()) + len(r.get(None) or [])
            raise ValueError(
                f"{path}: row {i + 2} has {n} cells, the header {len(header)} "
                f"(a truncated or damaged file)"
            )
    if any(RENAMED_COLUMNS.get(k) in header for k in header):
        raise ValueError(f"{path}: the header holds a column under both its old and new name")
    out = {}
    for k in header:
        vals = [r[k] for r in rows]
        k = RENAMED_COLUMNS.get(k, k)
        declared = schema.column(k)
        if declared is not None and declared.type is str:
            out[k] = np.array(vals, dtype=object)
        elif declared is not None and declared.type is bool:
            bad = [v for v in vals if v not in ("0", "1")]
            if bad:
                raise ValueError(f"{path}: column {k} holds {bad[0]!r}, not 0 or 1")
            out[k] = np.array([v == "1" for v in vals])
        else:
            try:
                out[k] = np.array([_number(v) for v in vals])
            except ValueError:
                if declared is not None:
                    raise ValueError(
                        f"{path}: column {k} holds text where numbers belong"
                    ) from None
                out[k] = np.array(vals, dtype=object)  # an undeclared column of labels
    return schema.upgrade(out, config)


# The value checks by column are the lane schema's (grokjax.schema: type and check); T_grok,
# the headline event, is at most steps_run (a grokked lane runs on).
_EVENT_COLUMNS = ("T_grok",)
_CHECKS = {
    "positive": (lambda v: v > 0, "must be > 0"),
    "nonnegative": (lambda v: v >= 0, "must be >= 0"),
    "fraction": (lambda v: (v > 0) & (v <= 1), "must lie in (0, 1]"),
}


def _required(lanes: dict, col: str, n: int) -> np.ndarray:
    """The rows where ``col`` must not be empty: every row for lane, seed and steps_run; for
    p every row that is not a parity lane (with an n_bits)."""
    if col in schema.REQUIRED_VALUES:
        return np.ones(n, bool)
    if col == "p":
        return np.isnan(np.asarray(lanes.get("n_bits", np.full(n, np.nan)), float))
    return np.zeros(n, bool)


def check_lane_values(lanes: dict, where: str = "lanes.csv") -> None:
    """Raises ValueError (one line naming the row and column) unless every value of ``lanes``
    (columns as :func:`read_lanes_csv` returns them) is one a run writes: counts and steps are
    whole numbers >= 0 and the lane, seed and steps_run never empty (nor p, but in a parity
    lane, which has n_bits instead); T_grok at most
    ``steps_run``; a lane is grokked exactly when it has a T_grok (diverged exactly when it has
    a diverged_step), and a grokked lane has a positive norm_at_grok; held norms, learning
    rates and initial scales positive, weight decay and norms >= 0, fractions in (0, 1]; every
    number finite. A value edited to nan, inf or -100 is refused, not fitted."""
    n = len(lanes.get("lane", lanes.get("p", [])))

    def bad(col: str, i: int, why: str):
        v = lanes[col][i]
        if isinstance(v, (bool, np.bool_)):
            held = f"holds {int(v)}"
        elif isinstance(v, (float, np.floating)) and np.isnan(v):
            held = "is empty (or nan)"
        else:
            held = f"holds {float(v):g}"
        raise ValueError(f"{where}: row {i + 2}, column {col} {held}: {why}")

    for col, vals in lanes.items():
        if vals.dtype == object or vals.dtype == bool:
            continue
        v = np.asarray(vals, float)
        given = ~np.isnan(v)
        for i in np.flatnonzero(given & ~np.isfinite(v)):
            bad(col, i, "not a finite number")
        declared = schema.column(col)
        if declared is None:
            continue
        if declared.type is int:
            for i in np.flatnonzero(given & ((v < 0) | (v != np.round(v)))):
                bad(col, i, "not a whole number >= 0")
            for i in np.flatnonzero(~given & _required(lanes, col, len(v))):
                bad(col, i, "empty")
        elif declared.check:
            ok, why = _CHECKS[declared.check]
            for i in np.flatnonzero(given & ~ok(v)):
                bad(col, i, why)
    if "p" in lanes:
        p = np.asarray(lanes["p"], float)
        for i in np.flatnonzero(~(p >= 1) & (~np.isnan(p) | _required(lanes, "p", len(p)))):
            bad("p", i, "must be >= 1")
    steps = np.asarray(lanes.get("steps_run", np.full(n, np.inf)), float)
    for col in _EVENT_COLUMNS:
        if col in lanes:
            v = np.asarray(lanes[col], float)
            for i in np.flatnonzero(~np.isnan(v) & (v > steps)):
                bad(col, i, f"after the lane's last step (steps_run {steps[i]:g})")
    for flag, event in (("grokked", "T_grok"), ("diverged", "diverged_step")):
        if flag in lanes and event in lanes:
            has = ~np.isnan(np.asarray(lanes[event], float))
            for i in np.flatnonzero(np.asarray(lanes[flag], bool) != has):
                bad(
                    event,
                    i,
                    f"{flag} is {int(lanes[flag][i])}, so {event} must be "
                    f"{'given' if lanes[flag][i] else 'empty'}",
                )
    if "grokked" in lanes and "norm_at_grok" in lanes:
        v = np.asarray(lanes["norm_at_grok"], float)
        for i in np.flatnonzero(np.asarray(lanes["grokked"], bool) & ~(v > 0)):
            bad("norm_at_grok", i, "a grokked lane's norm at T_grok must be > 0")


def write_curves(path: str, results: list[RunResult]) -> None:
    """Concatenates the curves of several runs (same grid length padded with NaN)."""
    S = max(r.grid.size for r in results)
    pad = lambda a, fill=np.nan: np.concatenate(
        [a, np.full(a.shape[:1] + (S - a.shape[1],) + a.shape[2:], fill, a.dtype)], axis=1
    )
    arrays = {}
    steps = []
    for r in results:
        g = np.concatenate([r.grid, np.full(S - r.grid.size, -1)])
        steps.append(np.broadcast_to(g, (len(r.steps_run), S)))
    arrays["steps"] = np.concatenate(steps).astype(np.int64)
    for k in results[0].curves:
        arrays[k] = np.concatenate([pad(r.curves[k]) for r in results])
    arrays["groups"] = np.array(results[0].groups)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())


def save_run_result(path: str, result: RunResult) -> None:
    """Stores a ``RunResult`` losslessly (atomically) so a resumed job can skip its phase."""
    arrays = {
        "steps_run": result.steps_run,
        "grid": result.grid,
        "groups": np.array(result.groups, dtype=str),
        "stats": np.array(json.dumps(result.stats, sort_keys=True)),
    }
    arrays.update({f"latch.{k}": v for k, v in result.latches.items()})
    arrays.update({f"curve.{k}": v for k, v in result.curves.items()})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())


def load_run_result(path: str) -> RunResult:
    """Inverse of ``save_run_result``; raises on a missing, truncated or foreign file."""
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        if not {"steps_run", "grid", "groups", "stats"} <= keys:
            raise ValueError(f"{path} is not a phase result")
        latches = {k[6:]: z[k] for k in z.files if k.startswith("latch.")}
        curves = {k[6:]: z[k] for k in z.files if k.startswith("curve.")}
        return RunResult(
            latches,
            z["steps_run"],
            z["grid"],
            curves,
            tuple(str(g) for g in z["groups"]),
            json.loads(str(z["stats"])),
        )
