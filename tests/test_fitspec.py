"""An experiment's fit is a declaration: a list of named measures that one evaluator
(grokjax.fitspec) runs over a loaded run; the declaration names every key of fit.json."""

import importlib
import os

import numpy as np

from grokjax import fitspec, measures, registry, results
from grokjax.fitspec import Ref, m
from grokjax.runs import load_run
from tests.test_report import make_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a committed run of each experiment whose fit is a declaration
DECLARED = {
    "delay_sweep": "delay_sweep-paper-p31p41",
    "critical_norm": "critical_norm-paper-p59",
    "dense_rho": "dense_rho-paper",
    "lr_matrix": "lr_matrix-paper-lr2e-3",
    "norm_controls": "norm_controls-paper-s2000",
}
# what the runner adds to an experiment's fit (not a measure of the lanes)
RUNNER_KEYS = {"config_sha256", "lane_steps_executed", "lane_steps_needed", "fit_format"}


def _cfg(name: str, path: str):
    spec = registry.get(name)
    conf = results.read_json(os.path.join(path, "config.json"))
    return spec.config_cls(
        **{k: v for k, v in conf.items() if k in spec.config_cls.__annotations__}
    )


def test_the_evaluator_runs_each_named_measure_over_its_selection(tmp_path):
    run = load_run(make_run(str(tmp_path / "r"), p=(31, 41, 59), seeds=4, budget=5100))
    ok = run.ok()
    free, clamp = run.arm("free") & ok, run.arm("clamp") & ok
    spec = [
        fitspec.value("reference_lr", 1e-3),
        m("Wc", measures.wc, free),
        m("n_free", measures.count, free),
        m("law", measures.delay_law, clamp),
        m("beyond", measures.beyond, clamp, law=Ref("law"), rhos=[1.15]),
        m("missing", lambda run, sel: None, None, omit_none=True),
        m("by_p", fitspec.by(measures.cell_times, "p", [31, 41]), free),
        fitspec.table("per_p", {str(p): [m("Wc", measures.wc, free & (run.lanes["p"] == p))]
                                for p in (31, 41, 59)}),
        fitspec.rows("rows", [[fitspec.value("rho", r)] for r in (0.85, 1.0)]),
        m("Wc_power_law", measures.power_law_across, None, blocks=Ref("per_p"),
          path=("Wc", "median")),
    ]  # fmt: skip
    out = fitspec.evaluate(run, spec)
    assert list(out) == [
        "reference_lr", "Wc", "n_free", "law", "beyond", "by_p", "per_p", "rows", "Wc_power_law"
    ]  # fmt: skip
    assert out["Wc"] == measures.wc(run, free) and out["n_free"] == free.sum() > 0
    # a Ref is the value of the earlier key: the beyond cell is compared with that very law
    (cell,) = out["beyond"]
    assert cell["extrapolated"] == measures.extrapolated(out["law"], 1.15)
    assert cell["n"] == (clamp & np.isclose(run.lanes["rho"], 1.15)).sum()
    assert out["by_p"]["31"] == measures.cell_times(run, free & (run.lanes["p"] == 31))
    assert set(out["by_p"]) == {"31", "41"} and out["rows"] == [{"rho": 0.85}, {"rho": 1.0}]
    wcs = {p: out["per_p"][str(p)]["Wc"]["median"] for p in (31, 41, 59)}
    assert out["Wc_power_law"] == measures.power_law(wcs)
    # a power law across p needs every p's value
    blocks = {**out["per_p"], "71": {"Wc": {"median": None}}}
    assert measures.power_law_across(run, None, blocks, ("Wc", "median")) is None


def test_each_declared_fit_names_every_key_of_its_fit_json():
    for name, run_name in DECLARED.items():
        path = os.path.join(ROOT, "results", run_name)
        mod = importlib.import_module(f"experiments.{name}")
        cfg = _cfg(name, path)
        run = measures.as_run(results.read_lanes_csv(os.path.join(path, "lanes.csv")))
        spec = mod.fit_spec(run, cfg)
        assert all(isinstance(x, fitspec.Measure) for x in spec), name
        stored = set(results.read_json(os.path.join(path, "fit.json"))) - RUNNER_KEYS
        assert {x.key for x in spec if not x.omit_none} <= stored <= {x.key for x in spec}, name
