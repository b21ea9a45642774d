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
}
SLOW_TESTS = {
    # one name per test (parametrised ones included) that takes tens of seconds on its own
    "test_report.py::test_paper_like_runs_reproduce_every_reference",
    "test_report.py::test_module_entry_point_exits_nonzero_with_one_line",
    "test_resume.py::test_float64_runs_end_to_end",
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
