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


def test_parity_declares_its_fit_and_sets_each_clamp_against_the_free_frontier():
    from experiments import parity
    from tests.test_parity import _fake_lanes

    cfg = parity.Config(n_bits=30, m=1000, lr=1e-3, wd=1.0, lrs=[5e-4, 1e-3], wds=[0.5, 1, 2])
    nan = float("nan")
    run = measures.as_run(
        _fake_lanes(
            [
                (30, 1000, 1e-3, 1.0, "free", nan, 10.0, 500.0, "size+lr_wd"),
                (30, 1000, 1e-3, 0.5, "free", nan, 12.0, 800.0, "lr_wd"),
                (30, 1000, 1e-3, 2.0, "free", nan, 8.0, 400.0, "lr_wd"),
                (30, 1000, 5e-4, 1.0, "free", nan, 10.0, 1000.0, "lr_wd"),
                (30, 600, 1e-3, 1.0, "free", nan, 9.0, 700.0, "size"),
                (30, 1000, 1e-3, 1.0, "clamp", 1.3, 13.0, 900.0, "clamp"),
            ]
        )
    )
    spec = parity.fit_spec(run, cfg)
    fitted = parity.fit_lanes(run.lanes, cfg)
    assert all(isinstance(x, fitspec.Measure) for x in spec)
    assert [x.key for x in spec] == [k for k in fitted if k not in RUNNER_KEYS]
    # each series takes the cells of its sub-grid at the reference setting
    aw = fitted["across_wd"]
    assert aw["wd"] == [0.5, 1.0, 2.0] and aw["spearman"] == -1.0
    assert fitted["across_lr"]["lr"] == [5e-4, 1e-3] and fitted["across_m"]["m"] == [600, 1000]
    # the clamp (held above every free W_c) is set against the frontier of those wd cells
    (c,) = fitted["clamps"]
    front = parity.frontier_at(list(zip(aw["Wc"], aw["T_grok"])), c["held_norm"])
    assert (c["frontier_T_grok"], c["frontier_extrapolated"]) == front and front[1]
    assert c["over_frontier"] == c["T_grok"]["median"] / front[0]
