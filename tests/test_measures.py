"""The one analysis path: an experiment's fit and the report's comparison state the same numbers
through the same measures (grokjax.measures), fit.json carries its layout version, and the
report knows every experiment without its caller importing the catalog."""

import os
import subprocess
import sys

import numpy as np
import pytest

from grokjax import compare, measures, paper, registry, report, results
from grokjax.runs import load_run
from tests.test_report import make_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "results", "delay_sweep-paper-p31p41")


def _fit_of(run):
    """The run's experiment's own fit over its lanes.csv (what fit.json holds)."""
    spec = registry.get(run.experiment)
    conf = results.read_json(os.path.join(run.path, "config.json"))
    cfg = spec.config_cls(**{k: v for k, v in conf.items() if k in spec.config_cls.__annotations__})
    return spec.fit(results.read_lanes_csv(os.path.join(run.path, "lanes.csv")), cfg)


def _measured(key, run):
    """The report's measured values of reference ``key`` on ``run``."""
    return [c.measured for c in compare.candidates(paper.reference(key), [run])]


def test_fit_json_and_the_report_state_the_same_numbers():
    run = load_run(SHARED)
    fitted = _fit_of(run)
    assert fitted["fit_format"] == measures.FIT_FORMAT == 1
    # W_c at p = 41: the experiment's free controls and the report's free cell
    assert _measured("wc_p41", run) == [fitted["per_p"]["41"]["Wc"]["median"]]
    # the delay law with one slope shared by p = 31 and 41
    assert _measured("alpha_shared", run) == [fitted["shared"]["alpha"]]
    assert _measured("alpha_shared_r2", run) == [fitted["shared"]["r2"]]
    # per p: the report's alpha at p = 41 is fit.json's
    assert fitted["per_p"]["41"]["delay_law"]["alpha"] in _measured("alpha_p", run)


def test_wc_is_over_the_grokked_lanes_and_thresholds_count_the_lanes_without_one(tmp_path):
    run = load_run(make_run(str(tmp_path / "r"), seeds=6, budget=5100))
    free = run.arm("free") & run.ok()
    grokked = free & run.lanes["grokked"]
    assert 0 < grokked.sum() < free.sum()  # the budget censors some free lanes
    w = measures.wc(run, free)
    assert w["n"] == grokked.sum() and w["n_missing"] == 0
    assert w["median"] == pytest.approx(np.median(run.lanes["norm_at_grok"][grokked]))
    thr = measures.wc_thresholds(run, free)["per_threshold"]["0.9"]
    assert thr["median"] == w["median"] and thr["n_missing"] == free.sum() - grokked.sum()
    # the same selection as a mask or as indices, and the delay law is cached on the run
    assert measures.wc(run, np.flatnonzero(free)) == w
    clamp = run.arm("clamp") & run.ok()
    assert measures.delay_law(run, clamp) is measures.delay_law(run, np.flatnonzero(clamp))


def test_extrapolated_is_the_law_at_rho():
    law = {"alpha": 2.0, "intercepts": {"59": 1.0}}
    assert measures.extrapolated(law, 1.5) == pytest.approx(np.exp(4.0))
    assert measures.extrapolated({"alpha": None, "intercepts": {"59": 1.0}}, 1.5) is None


SCRIPT = """
import sys
import grokjax.report
assert "experiments.catalog" not in sys.modules  # the library does not import the application
if sys.argv[3] == "catalog":
    import experiments.catalog
from grokjax import report
data = report.build([sys.argv[1]], sys.argv[2])
print(",".join(r["experiment"] for r in data["experiments"]))
"""


def test_the_report_knows_every_experiment_without_the_catalog_imported(tmp_path):
    run = make_run(str(tmp_path / "sweep"), seeds=2)
    texts, listed = [], []
    for how in ("catalog", "bare"):
        out = tmp_path / how
        r = subprocess.run(
            [sys.executable, "-c", SCRIPT, run, str(out), how],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        listed.append(r.stdout.split()[-1])
        texts.append((out / "report.md").read_text())
    assert listed[0] == listed[1] and listed[0].split(",")[:2] == ["delay_sweep", "critical_norm"]
    assert texts[0] == texts[1] and report.UNKNOWN not in texts[1]


def test_a_catalog_that_cannot_be_imported_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "CATALOGS", [*registry.CATALOGS, "no_such_catalog_module"])
    with pytest.raises(registry.CatalogError, match="no_such_catalog_module"):
        registry.names()
    with pytest.raises(registry.CatalogError):
        report.build([make_run(str(tmp_path / "sweep"), seeds=2)], str(tmp_path / "out"))


def test_docs_name_every_key_of_the_committed_fit_json():
    doc = open(os.path.join(ROOT, "docs", "fit_json.md")).read()
    assert f"`fit_format: {measures.FIT_FORMAT}`" in doc
    missing = set()
    for name in sorted(os.listdir(os.path.join(ROOT, "results"))):
        path = os.path.join(ROOT, "results", name, "fit.json")
        if not os.path.isfile(path):
            continue
        fitted = results.read_json(path)
        keys = set(fitted)
        for entry in fitted.get("per_p", {}).values():
            keys |= set(entry)
        missing |= {k for k in keys if f"`{k}`" not in doc}
    assert not missing, sorted(missing)


def test_one_lane_filter_serves_the_report_the_controls_and_the_api():
    """cells.where is the one lane filter: settings match within a relative 1e-6 (a rho
    read back through float32 still matches), NaN and None match nothing or constrain nothing,
    a span constrains nothing; api.Results.select is the same filter, strict about names."""
    from grokjax import api, cells

    lanes = {
        "arm": np.array(["free", "clamp", "clamp", "clamp"]),
        "rho": np.array([np.nan, float(np.float32(1.15)), 1.15 * (1 + 3e-6), 1.0]),
        "p": np.array([59, 59, 59, 71]),
        "seed": np.array([0, 1, 2, 3]),
    }
    got = cells.where(lanes, {"arm": "clamp", "rho": 1.15})
    assert got.tolist() == [False, True, False, False]
    assert cells.where(lanes, {"p": 59.0, "rho": None, "lr": 1e-3}).tolist() == [1, 1, 1, 0]
    assert cells.where(lanes, {"p": (59, 71)}).all()  # a span: every lane
    res = api.Results(lanes=lanes, curves={}, fit={}, config={}, timing={}, out="")
    assert res.select(arm="clamp", rho=1.15).tolist() == [1]
    big = dict(lanes, seed=np.array([1000000, 1000001, 1000002, 1000003]))
    big["grokked"] = np.array([True, False, True, True])
    res = api.Results(lanes=big, curves={}, fit={}, config={}, timing={}, out="")
    assert res.select(seed=1000001).tolist() == [1]  # integers exactly, not within 1e-6
    assert res.select(grokked=False).tolist() == [1] and res.select(p=59.0).tolist() == [0, 1, 2]
    with pytest.raises(KeyError, match="no column 'lr'"):
        res.select(lr=1e-3)
    with pytest.raises(TypeError, match="rho=None"):
        res.select(rho=None)
    # on a committed run: a row's seed count is the seeds at its settings, 20 per fraction
    # of five (100 lanes), not the whole run's lanes
    run = load_run(os.path.join(ROOT, "results", "critical_norm-paper-p41"))
    cands = compare.candidates(paper.reference("wc_p41"), [run])
    assert len(cands) == 5 and len(run.lanes["seed"]) == 100
    for cand in cands:
        assert cells.where(run.lanes, cand.cond).sum() == 20 and compare._seeds(cand) == 20
