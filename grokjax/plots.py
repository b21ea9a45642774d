"""Figures made from stored results only (``lanes.csv``, ``curves.npz``, ``fit.json``).
Matplotlib and numpy; JAX-free. This module gathers the public names of

* ``grokjax.plots_base``: styles, bare Figures (:func:`subplots`), :func:`save`, tick labels;
* ``grokjax.plots_paper``: the paper's values drawn on a figure (:func:`paper_overlay`, ...);
* ``grokjax.plots_series``: the drawing functions, plain series in, PNG/PDF files out
  (:func:`trajectories`, :func:`wc_scaling`, :func:`delay_law_groups`, :func:`norm_identity`,
  :func:`layernorm_cv`);
* ``grokjax.plots_report``: the report's figures over loaded runs (:func:`make_figures`);
* ``grokjax.plots_experiments``: the experiments' own figures (:func:`delay_law`,
  :data:`EXPERIMENT_FIGURES`).
"""

from __future__ import annotations

from grokjax.plots_base import (
    STYLES,
    HATCHES,
    subplots,
    save,
    FORMATS,
    NORM_LABEL,
    style,
    plain_log_ticks,
    plain_ticks_at,
    relative_ylim,
)
from grokjax.plots_paper import (
    PAPER_COLOR,
    PAPER_ALPHA_KEYS,
    paper_alpha,
    on_protocol,
    paper_medians,
    paper_wc,
    paper_line,
    draw_paper_law,
    draw_paper_points,
    paper_overlay,
    paper_rho_max,
)
from grokjax.plots_series import (
    trajectories,
    wc_scaling,
    delay_law_groups,
    norm_identity,
    layernorm_cv,
)
from grokjax.plots_report import LAW_RHO_MAX, make_figures
from grokjax.plots_experiments import (
    delay_law,
    median_ratio_ci,
    critical_norm_figure,
    dense_rho_figure,
    lr_matrix_figure,
    norm_controls_figure,
    EXPERIMENT_FIGURES,
)

__all__ = [
    'STYLES',
    'HATCHES',
    'subplots',
    'save',
    'FORMATS',
    'NORM_LABEL',
    'style',
    'plain_log_ticks',
    'plain_ticks_at',
    'relative_ylim',
    'PAPER_COLOR',
    'PAPER_ALPHA_KEYS',
    'paper_alpha',
    'on_protocol',
    'paper_medians',
    'paper_wc',
    'paper_line',
    'draw_paper_law',
    'draw_paper_points',
    'paper_overlay',
    'paper_rho_max',
    'delay_law',
    'trajectories',
    'wc_scaling',
    'delay_law_groups',
    'norm_identity',
    'layernorm_cv',
    'LAW_RHO_MAX',
    'make_figures',
    'median_ratio_ci',
    'critical_norm_figure',
    'dense_rho_figure',
    'lr_matrix_figure',
    'norm_controls_figure',
    'EXPERIMENT_FIGURES',
]
