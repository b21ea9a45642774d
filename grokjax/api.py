"""The Python entry point: run any experiment from a script or a notebook, get its results back.

    >>> from grokjax import api
    >>> res = api.run("delay_sweep", preset="tiny", p=23, rho=[0.85, 1.0], seeds=3,
    ...               out="runs/my-sweep", progress=False)
    >>> res.lanes["T_grok"], res.fit["delay_law"]["alpha"]
    >>> df = res.to_pandas()          # with pandas installed

``run`` takes the experiment's name (or its ``Spec``), a preset and overrides of the preset's
fields by keyword, exactly as the command line takes ``--preset`` and ``--flag value``: an
unknown field is refused with an error naming it, and a scalar is accepted where the field
holds a list (``p=23`` is ``p=[23]``). With ``out=`` the run directory is kept and the call
resumes it exactly as rerunning the command does (``fresh=True`` moves it aside first); without
it the run goes to a temporary directory that is removed after loading. ``progress`` is
``True`` (lines on stdout: a terminal or a notebook cell), ``False`` (silent) or a path (the
lines go to that log file). Nothing global is left changed: JAX's x64 flag is restored after a
float64 run.

:func:`load` reads a run directory (any written by ``python -m experiments.NAME``, including
those committed under ``results/``) into the same :class:`Results`, without JAX.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np

from grokjax import cli, registry

__all__ = ["Results", "run", "load", "spec_of", "fields_of", "runner"]

# configuration fields that are not a setting of the run (set by the call itself)
_NOT_SETTINGS = ("experiment", "config_format", "preset", "out")
_RUN_OPTIONS = ("checkpoint_every_chunks", "checkpoint_minutes", "keep_checkpoints", "lane_mode")


@dataclasses.dataclass
class Results:
    """A run's results: ``lanes`` (lanes.csv as a dict of numpy columns), ``curves`` (per-lane
    trajectories of curves.npz, with ``steps``; empty when the run kept none), ``fit``
    (fit.json), ``config`` (config.json), ``timing`` (timing.json, when present) and ``out`` (the
    run directory, or None when it was temporary)."""

    lanes: dict
    curves: dict
    fit: dict
    config: dict
    timing: dict
    out: str | None

    @property
    def n_lanes(self) -> int:
        return len(next(iter(self.lanes.values()))) if self.lanes else 0

    def to_pandas(self):
        """The lane table as a ``pandas.DataFrame`` (pandas is not a dependency of grokjax)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame({k: np.asarray(v) for k, v in self.lanes.items()})

    def select(self, **where) -> np.ndarray:
        """Indices of the lanes whose columns equal ``where`` (:func:`grokjax.cells.where`:
        floats within a relative 1e-6, integers exactly): ``res.select(arm="clamp", rho=1.0)``.
        ``KeyError`` for a column the lanes lack, ``TypeError`` for a value that is not one
        number, string or flag."""
        from grokjax import cells

        return np.nonzero(cells.where(self.lanes, where, strict=True))[0]

    def __repr__(self) -> str:
        exp = self.config.get("experiment", "?")
        return f"Results({exp}, {self.n_lanes} lanes, out={self.out!r})"


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def load(path: str) -> Results:
    """The :class:`Results` of a run directory (JAX-free); ``ValueError`` with one line if it
    cannot be read."""
    from grokjax import runs

    run = runs.load_run(path)  # RunDirError (a ValueError) when damaged
    lanes = {k: v for k, v in run.lanes.items()}
    return Results(
        lanes=lanes,
        curves=dict(run.curves or {}),
        fit=_read_json(os.path.join(path, "fit.json")),
        config=dict(run.config),
        timing=_read_json(os.path.join(path, "timing.json")),
        out=path,
    )


def spec_of(experiment):
    """The ``Spec`` of ``experiment``: a Spec, or the name of a registered experiment (an
    experiment of ``experiments/`` is imported on first use)."""
    if not isinstance(experiment, str):
        return experiment
    try:
        return registry.get(experiment)
    except KeyError:
        pass
    try:
        importlib.import_module(f"experiments.{experiment}")
    except ModuleNotFoundError:
        pass
    try:
        return registry.get(experiment)
    except KeyError as e:
        raise ValueError(str(e).strip("'\"")) from None


def fields_of(spec) -> dict:
    """{field: preset-independent default} of the settings an experiment takes by keyword."""
    return {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(spec.config_cls)
        if f.name not in _NOT_SETTINGS
    }


def _overrides(spec, preset: str, given: dict) -> dict:
    """``given`` checked against the experiment's fields, scalars wrapped where the field (in
    the preset) holds a list."""
    known = fields_of(spec)
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        raise cli.UsageError(
            f"{spec.name}: unknown field(s) {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(known))}"
        )
    base = dict(known, **spec.presets.get(preset, {}))
    out = {}
    for k, v in given.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(base.get(k), list) and not isinstance(v, list):
            v = [v]
        out[k] = v
    return out


@contextlib.contextmanager
def _output(progress):
    """Where the run's lines go: stdout (True), nowhere (False) or a log file (a path)."""
    if progress is True:
        yield
        return
    if progress is False or progress is None:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
        return
    with open(os.fspath(progress), "a") as fh:
        with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield


@contextlib.contextmanager
def _x64_restored():
    import jax

    before = bool(jax.config.jax_enable_x64)
    try:
        yield
    finally:
        if bool(jax.config.jax_enable_x64) != before:
            jax.config.update("jax_enable_x64", before)


def run(
    experiment,
    preset: str = "quick",
    *,
    out: str | None = None,
    fresh: bool = False,
    progress: Any = True,
    **overrides,
) -> Results:
    """Runs ``experiment`` (name or Spec) at ``preset`` with ``overrides`` and returns its
    :class:`Results`. Run options (``lane_mode``, ``checkpoint_every_chunks``,
    ``checkpoint_minutes``, ``keep_checkpoints``) are taken by keyword as well. A bad value
    raises ``ValueError`` (``grokjax.cli.UsageError``) with the command line's one-line
    message, before any work."""
    from grokjax import config, runner

    spec = spec_of(experiment)
    if preset not in spec.presets:
        raise cli.UsageError(
            f"{spec.name}: unknown preset {preset!r}; choose one of {', '.join(spec.presets)}"
        )
    run_opts = {k: overrides.pop(k) for k in _RUN_OPTIONS if k in overrides}
    given = _overrides(spec, preset, overrides)
    temp = None
    if out is None:
        temp = tempfile.mkdtemp(prefix=f"grokjax-{spec.name}-")
        path = os.path.join(temp, "run")
    else:
        path = os.fspath(out)
        if not path:
            raise cli.UsageError("out must be a directory path (or None for a temporary run)")
    try:
        cfg = config.config_for(spec, preset, path, **given)
        opts = config.RunOptions(fresh=fresh, **run_opts)
        opts.validate()
        with _output(progress), _x64_restored():
            code = runner.run(
                spec, cfg, opts, command=f"grokjax.api.run({spec.name!r}, {preset!r})"
            )
        if code not in (0, None):
            raise RuntimeError(f"{spec.name} stopped before it finished (exit status {code})")
        res = load(path)
        if temp is not None:
            res.out = None
        return res
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def runner(spec):
    """``run`` bound to one experiment: ``delay_sweep.run(preset="tiny", p=23, seeds=3)``."""

    def run_spec(preset: str = "quick", **kwargs) -> Results:
        return run(spec, preset, **kwargs)

    run_spec.__doc__ = (
        f"Runs the {spec.name} experiment from Python (see grokjax.api.run): "
        f"presets {', '.join(spec.presets)}; returns its Results."
    )
    return run_spec
