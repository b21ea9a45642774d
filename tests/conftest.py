import os

import pytest

# Tests run on the CPU whatever the machine has; keep XLA to the cores CI gives us.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The end-to-end tests: ``pytest -m "not slow"`` leaves them out (a few minutes on a 2-core
# CPU instead of ~15); CI and the README's ``python -m pytest -q`` run everything. A test is
# slow when it uses one of these fixtures (each trains or runs a whole experiment), or is named
# below (it starts experiments, subprocesses or big engines itself). Marked here, by name, so
# the test files need no decorator.
SLOW_FIXTURES = {
    "tiny_run",  # test_delay_sweep, test_parity, test_transformer: a tiny experiment run
    "tiny_runs",  # test_experiments: every experiment's tiny preset
    "tiny",  # test_report: a tiny delay_sweep and the report over it
    "sweeps",  # test_paper_protocol
    "env",  # test_resume: runs interrupted and resumed
    "reference",
    "interrupted",
    "runs",  # test_lane_modes: the engine in both lane modes
    "engine_run",  # test_reference_mlp: 10k steps of the paper MLP
}
SLOW_MODULES = {
    "test_sharding.py",  # several-device runs in subprocesses
    "test_bench.py",  # the benchmark and the GPU check's CPU rehearsal
    "test_lowering.py",  # exports 256-lane programs for cuda and tpu
    "test_heldout.py",  # rebuilds the held-out prediction from the committed scan
    "test_api_docs.py",  # runs every docs/api.md snippet (tiny experiments)
}
SLOW_TESTS = {
    # one name per test (parametrised ones included) that takes tens of seconds on its own
    # (the slowest of a `pytest -m "not slow" --durations=40` run, 2026-12-06)
    "test_paper_protocol.py::test_lr_matrix_fixed_wc_and_view",
    "test_paper_protocol.py::test_norm_controls_init_at_a_norm_and_fractions",
    "test_paper_protocol.py::test_transformer_scan_and_paper_layernorm",
    "test_engine.py::test_repacking_or_skipping_finished_lanes_does_not_change_results",
    "test_engine.py::test_lanes_beyond_max_lanes_wait_for_a_slot_with_identical_results",
    "test_engine.py::test_dynamic_chunk_length_matches_a_static_one",
    "test_engine.py::test_one_lane_alone_equals_the_same_lane_in_a_batch",
    "test_engine.py::test_margin_loss_trains_like_log_softmax_before_any_collapse",
    "test_engine.py::test_walked_lanes_compute_exactly_what_each_lane_computes_alone",
    "test_engine.py::test_diverged_lane_is_frozen_and_leaves_others_alone",
    "test_engine.py::test_free_run_groks_and_clamp_holds_norm",
    "test_engine.py::test_capped_run_resumes_from_a_checkpoint_taken_while_lanes_wait",
    "test_layers.py::test_report_over_committed_results_without_jax",
    "test_models.py::test_attention_equals_naive_full_attention",
    "test_plots.py::test_report_figures_for_multi_p_multi_lr_and_attention_runs",
    "test_parity.py::test_free_parity_run_groks_and_clamp_holds_the_norm",
    "test_api.py::test_a_sweep_from_python_returns_its_lanes_fit_and_curves_and_resumes",
    "test_api.py::test_a_float64_run_leaves_the_x64_flag_as_it_was",
    "test_api_docs.py::test_every_docs_api_snippet_runs",
    "test_report.py::test_paper_like_runs_reproduce_every_reference",
    "test_report.py::test_module_entry_point_exits_nonzero_with_one_line",
    "test_resume.py::test_float64_runs_end_to_end",
    "test_api.py::test_a_sweep_from_python_returns_its_lanes_fit_and_curves_and_resumes",
    "test_api.py::test_a_float64_run_leaves_the_x64_flag_as_it_was",
    "test_adoption_results_md.py::test_docs_results_md_is_the_report_over_results",
}


def _name(item) -> str:
    return f"{os.path.basename(str(item.fspath))}::{item.originalname or item.name}"


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if (
            os.path.basename(str(item.fspath)) in SLOW_MODULES
            or _name(item) in SLOW_TESTS
            or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        ):
            item.add_marker(slow)
