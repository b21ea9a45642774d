"""The preregistered held-out prediction: its models, its reproducibility from the committed
scan, the report's references to it, and its scoring. JAX-free."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import heldout
from grokjax import paper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRED = os.path.join(ROOT, heldout.PREDICTION)
RUN = os.path.join(ROOT, "results", "heldout-paper")


def _exact_medians(alpha_of_p, c_of_p):
    return {
        (p, r): math.exp(c_of_p(p) + alpha_of_p(p) * (r - 1.0))
        for p in heldout.SCAN_P
        for r in heldout.RHOS
    }


def test_universal_model_recovers_one_exponent_and_extrapolates_in_log_p():
    meds = _exact_medians(lambda p: 7.5, lambda p: 20.0 - 3.0 * math.log(p))
    m = heldout.fit_models(meds)
    assert m["alpha"] == pytest.approx(7.5)
    want = 20.0 - 3.0 * math.log(97) + 7.5 * 0.15
    assert heldout.predict_log(m, "universal/log_p", 97, 1.15) == pytest.approx(want)
    # the drift model sees no drift in these cells
    assert heldout.predict_log(m, "drift/log_p", 97, 1.15) == pytest.approx(want)


def test_drift_model_follows_a_linear_exponent_in_p():
    meds = _exact_medians(lambda p: 12.0 - 0.07 * p, lambda p: 9.0 - 0.02 * p)
    m = heldout.fit_models(meds)
    want = 9.0 - 0.02 * 97 + (12.0 - 0.07 * 97) * 0.15
    assert heldout.predict_log(m, "drift/p", 97, 1.15) == pytest.approx(want)
    # the universal model averages the exponents and misses the drift
    assert abs(heldout.predict_log(m, "universal/p", 97, 1.15) - want) > 0.1


def test_the_committed_prediction_is_reproduced_from_the_committed_scan(tmp_path):
    """Medians do not depend on the bootstrap: rerunning predict on results/ gives the
    committed prediction's medians and W_c law exactly."""
    with open(PRED) as fh:
        committed = json.load(fh)
    runs = [os.path.join(ROOT, r) for r in heldout.SCAN_RUNS]
    doc = heldout.predict(runs, str(tmp_path / "p.json"), n_boot=20)
    for var in ("all", "without_p41_rho1.15"):
        for mod in heldout.MODELS:
            got = [c["median"] for c in doc["variants"][var]["models"][mod]]
            want = [c["median"] for c in committed["variants"][var]["models"][mod]]
            assert got == want
        assert doc["variants"][var]["Wc"]["exponent"] == pytest.approx(
            committed["variants"][var]["Wc"]["exponent"]
        )
    # dropping the collapsed p = 41, rho = 1.15 cell lowers the universal exponent
    fits = {v: committed["variants"][v]["fit"]["alpha_universal"] for v in committed["variants"]}
    assert fits["all"] > fits["without_p41_rho1.15"] + 0.2


def test_the_reports_references_are_the_committed_prediction():
    with open(PRED) as fh:
        committed = json.load(fh)["variants"]["all"]
    for (model, p, r), (v, lo, hi) in paper.HELDOUT_TGROK.items():
        (cell,) = [c for c in committed["models"][model] if c["p"] == p and c["rho"] == r]
        assert (v, lo, hi) == (cell["median"], *cell["band_cell"])
        ref = paper.reference(f"heldout_{model.replace('/', '_')}_p{p}_rho{r:.2f}")
        assert ref.passes(v) and ref.passes(lo) and not ref.passes(hi * 1.01)
    for c in committed["Wc"]["predicted"]:
        assert paper.HELDOUT_WC[c["p"]] == (c["Wc"], *c["band"])


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--n-boot", "0", "--out", "{tmp}/p.json"],
        ["predict", "--runs", "{tmp}/nonexistent", "--out", "{tmp}/p.json"],
        ["score", "--prediction", "{tmp}/missing.json", "--run", RUN],
        ["score", "--run", "{tmp}/nonexistent", "--out", "{tmp}/s"],
        ["predict", "--bogus"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(os.listdir(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "experiments.heldout", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.skipif(not os.path.isdir(RUN), reason="the held-out run is not committed yet")
def test_score_of_the_committed_heldout_run(tmp_path):
    with open(PRED) as fh:
        pred = json.load(fh)
    doc = heldout.score(pred, [RUN], str(tmp_path))
    assert {"score.json", "score.md", "heldout.png"} <= set(os.listdir(tmp_path))
    for var in doc["variants"].values():
        for mv in var["models"].values():
            for c in mv["cells"]:
                if c.get("measured") is None:
                    continue
                assert c["inside_band_cell"] == (
                    c["band_cell"][0] <= c["measured"] <= c["band_cell"][1]
                )
                assert c["log_error"] == pytest.approx(
                    math.log(c["measured"] / c["median"]), abs=1e-4
                )
        assert var["preferred"] in heldout.MODELS
        errs = {k: v["rms_log_error"] for k, v in var["models"].items()}
        assert errs[var["preferred"]] == min(errs.values())
    assert np.isfinite([w["measured"] for w in doc["variants"]["all"]["Wc"]]).all()
