"""Pooling committed delay_sweep runs: the paper's four-moduli fits from results/ alone."""

import os
import subprocess
import sys

import pytest

from experiments import pool_sweeps
from grokjax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = [
    os.path.join(ROOT, "results", d)
    for d in ("delay_sweep-paper-p31p41", "delay_sweep-paper-p53p71", "delay_sweep-paper-p59")
]


def test_pooling_the_committed_sweeps_gives_one_alpha_over_four_moduli():
    res = pool_sweeps.pooled(pool_sweeps.load(RUNS), [41, 53, 59, 71])
    s = res["shared"]
    assert s["n_lanes"] == 4 * 36 and len(s["intercepts"]) == 4
    assert 6.5 < s["alpha"] < 9.5 and s["alpha_ci"][0] < s["alpha"] < s["alpha_ci"][1]
    assert 0.9 < s["r2"] <= 1.0 and 0.9 < res["absolute_norm"]["r2"] <= 1.0
    # per unit of W: alpha / W_c, between the moduli's W_c of ~50-59
    assert s["alpha"] / 60 < res["absolute_norm"]["alpha"] < s["alpha"] / 49
    assert 0 < res["Wc_power_law"]["exponent"] < 1 and 0 < res["E_power_law"]["exponent"] < 1
    # a subset is a different fit
    three = pool_sweeps.pooled(pool_sweeps.load(RUNS), [53, 59, 71])["shared"]
    assert three["n_lanes"] == 3 * 36 and three["alpha"] != s["alpha"]


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "experiments.pool_sweeps", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )

    r = run(str(tmp_path))
    assert (
        r.returncode == 2 and "missing config.json" in r.stderr and len(r.stderr.splitlines()) == 1
    )
    # another seed set at p = 59 beside the paper run at p = 59: the same cells twice
    r = run(RUNS[2], os.path.join(ROOT, "results", "delay_sweep-p59-seeds1000"))
    assert r.returncode == 2 and "not one delay_sweep design split by p" in r.stderr
    r = run(RUNS[0], os.path.join(ROOT, "results", "dense_rho-paper"))
    assert r.returncode == 2 and "not a delay_sweep run" in r.stderr
    r = run(RUNS[1], "--p", "41")
    assert r.returncode == 2 and "no lanes at that p" in r.stderr
    r = run(*RUNS)
    assert r.returncode == 0 and "shared alpha" in r.stdout


@pytest.mark.parametrize("bad", [["--p"], ["--rho-max", "x"], ["--p", "41,41"]])
def test_bad_flags_are_usage_errors(bad):
    with pytest.raises(cli.UsageError):
        pool_sweeps.main([RUNS[0], *bad])
