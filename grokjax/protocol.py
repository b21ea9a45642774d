"""What a lane measures and returns, shared by the engine that fills it and the run directory
that stores it. JAX-free: reading stored results imports this, never the engine.

The paper's thresholds: T_mem is the first eval with train accuracy >= 0.99; T_grok the first
with test accuracy >= 0.9 (the engine also latches 0.8 and 0.95).
"""

from __future__ import annotations

import dataclasses

import numpy as np

THRESHOLDS = (0.8, 0.9, 0.95)  # test-accuracy thresholds latched as T_grok
HEADLINE = 1  # index of 0.9, the paper's T_grok
MEM_THRESHOLD = 0.99  # train accuracy for T_mem
FOREVER = 2**30  # clamp duration meaning "continuous"
GRID_POINTS = 120  # points of the geometric step grid on which a lane's curves are recorded
# How -log p_y is computed (the same loss, rounded differently): "log_softmax" (the default, as
# PyTorch's and the paper's cross-entropy: log_softmax, then the correct class) or "margin"
# (softplus(logsumexp_{j != y}(z_j - z_y)): once p_y rounds to 1 in float32, log_softmax's
# correct-class gradient is exactly 0 (softmax collapse), the margin form's stays ~ 1 - p_y).
LOSSES = ("log_softmax", "margin")


@dataclasses.dataclass
class RunResult:
    """Host copies of every lane's outcome, indexed by the caller's lane order."""

    latches: dict  # name -> np.ndarray [lanes, ...]
    steps_run: np.ndarray  # steps each lane was trained when it left the program
    grid: np.ndarray  # [S] steps at which curves are recorded
    curves: dict  # name -> np.ndarray [lanes, S] (NaN where not recorded)
    groups: tuple
    stats: dict  # wall time, lane-steps executed/needed, compiles, ...
