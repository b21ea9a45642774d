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

This module gathers the names an experiment uses from where they live: the configuration
and its checks (``grokjax.config``), the command line (``grokjax.parser``), the run
directory (``grokjax.rundir``), phases (``grokjax.phases``), the dry run before any work
(``grokjax.dryrun``) and the driver (``grokjax.runner``).

What the paper-MLP experiments share beyond this (their configuration, step budgets, the lane
table, the free-then-clamp pair of phases) is the application's: ``experiments/common.py``.
"""

from grokjax.config import (
    BaseConfig,
    RunOptions,
    Spec,
    check_fields,
    check_links,
    config_for,
    positive,
)
from grokjax.dryrun import check_plan, static_memory
from grokjax.parser import field_arguments, make_parser, parse_run_args
from grokjax.phases import Phase, PhaseOutcome, group_mask, phase_hparams, run_phase
from grokjax.protocol import GRID_POINTS
from grokjax.rundir import check_run_dir, corrupt_dirs, is_complete, move_aside
from grokjax.runner import entry_points, main, main_cli, run, timing_report

__all__ = [
    "GRID_POINTS",
    "BaseConfig",
    "Phase",
    "PhaseOutcome",
    "RunOptions",
    "Spec",
    "check_fields",
    "check_links",
    "check_plan",
    "check_run_dir",
    "config_for",
    "corrupt_dirs",
    "entry_points",
    "field_arguments",
    "group_mask",
    "is_complete",
    "main",
    "main_cli",
    "make_parser",
    "move_aside",
    "parse_run_args",
    "phase_hparams",
    "positive",
    "run",
    "run_phase",
    "static_memory",
    "timing_report",
]
