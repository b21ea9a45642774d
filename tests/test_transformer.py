"""experiments.transformer: the grid of the paper preset, and one tiny end-to-end run that the
report reads (no-LayerNorm law, LayerNorm group CVs, group clamps)."""

import json
import os
from collections import Counter

import numpy as np
import pytest

import plans

from grokjax import experiment, results
from grokjax.protocol import RunResult

GROUP_NORMS = {"embed": 4.0, "attn": 12.0, "mlp": 10.0, "unembed": 5.0}
FAKE_WC = 30.0


def expand(preset="paper", **overrides):
    """The plan's phases when every lane groks at norm FAKE_WC with GROUP_NORMS."""
    from experiments import transformer

    cfg = experiment.config_for(transformer.SPEC, preset, out="/nonexistent/run", **overrides)
    extra = {"norm_at_grok": FAKE_WC, **{f"norm_at_grok_{g}": v for g, v in GROUP_NORMS.items()}}
    phases = plans.dry_run(
        transformer.plan, cfg, extra, lambda n: RunResult({}, np.zeros(n), np.zeros(1), {}, (), {})
    )
    return cfg, phases


def test_paper_grid():
    cfg, phases = expand()
    by = {ph.name: ph for ph in phases}
    # part 1: p=59, no LayerNorm, 16 seeds free + 4 rho x 16 clamped at rho * W_c
    free, clamp = by["noln-free"], by["noln-clamp"]
    for ph in (free, clamp):
        m = ph.static.model
        assert (m.kind, m.layernorm, m.p, m.d, m.hidden, m.heads) == (
            "attn",
            "none",
            59,
            128,
            512,
            4,
        )
        assert ph.static.frac == 0.4
    assert len(free.meta["seed"]) == 16 and set(free.meta["lr"]) == {5e-4}
    law = clamp.meta["arm"] == "clamp"
    assert Counter(clamp.meta["rho"][law]) == {0.85: 16, 1.0: 16, 1.15: 16, 1.2: 16}
    np.testing.assert_allclose(clamp.meta["target_norm"], clamp.meta["rho"] * FAKE_WC)
    assert set(clamp.meta["t_int"]) == {600}
    budgets = dict(zip(clamp.meta["rho"][law], clamp.meta["budget"][law]))
    assert budgets == {0.85: 10_000, 1.0: 40_000, 1.15: 300_000, 1.2: 400_000}
    # the paper's 30k-step no-LayerNorm scan over rho 0.85-1.50, on the same seeds
    scan_rho = clamp.meta["arm"] == "scan"
    assert Counter(clamp.meta["rho"][scan_rho]) == {
        r: 16 for r in (0.85, 0.95, 1.05, 1.15, 1.25, 1.35, 1.5)
    }
    assert set(clamp.meta["budget"][scan_rho]) == {30_000}
    # part 2: 3 p x 5 fractions x 12 seeds, then lr x wd at p=71, fraction 0.4 (the lr 1e-3,
    # wd 1 cell is the fraction scan's and is not run twice)
    scan = [ph for ph in phases if ph.name.startswith("ln-free-")]
    assert len(scan) == 15
    assert {(ph.static.model.p, ph.static.frac) for ph in scan} == {
        (p, f) for p in (53, 71, 97) for f in (0.2, 0.25, 0.3, 0.4, 0.55)
    }
    for ph in scan:
        assert ph.static.model.layernorm == "all"  # the paper's placement
        assert sorted(ph.meta["seed"]) == list(range(4000, 4012))
        assert set(ph.meta["lr"]) == {1e-3} and set(ph.meta["wd"]) == {1.0}
    grid = by["ln-lrwd"]
    assert (grid.static.model.p, grid.static.frac) == (71, 0.4)
    combos = Counter(zip(grid.meta["lr"], grid.meta["wd"]))
    assert len(combos) == 8 and set(combos.values()) == {12} and (1e-3, 1.0) not in combos
    # part 3: seven group clamps at rho times the group's norm of the p=71 controls
    gc = by["ln-clamp"]
    assert "ln-control" not in by  # the p=71, fraction 0.4 scan cell is the control
    assert (gc.static.model.p, gc.static.frac, gc.static.model.layernorm) == (71, 0.4, "all")
    assert Counter(zip(gc.meta["clamp_group"], gc.meta["rho"])) == {
        ("unembed", 0.85): 12,
        ("unembed", 1.0): 12,
        ("unembed", 1.15): 12,
        ("unembed", 1.3): 12,
        ("embed", 1.3): 12,
        ("mlp", 0.85): 12,
        ("mlp", 1.3): 12,
    }
    want = [r * GROUP_NORMS[g] for g, r in zip(gc.meta["clamp_group"], gc.meta["rho"])]
    np.testing.assert_allclose(gc.meta["target_norm"], want)
    assert set(gc.meta["arm"]) == {"group_clamp"} and set(gc.meta["budget"]) == {100_000}
    from experiments import transformer

    assert transformer.cost(cfg).startswith(f"{sum(len(ph.meta['seed']) for ph in phases)} lanes")
    # matched seeds in every cell
    for ph in phases:
        for cell in set(ph.meta["cell"]):
            seeds = sorted(ph.meta["seed"][ph.meta["cell"] == cell])
            assert seeds == list(range(4000, 4000 + len(seeds))), cell


def test_parts_and_own_control():
    _, phases = expand(parts=["ln_clamp"])
    assert [ph.name for ph in phases] == ["ln-control", "ln-clamp"]
    _, phases = expand(parts=["noln"])
    assert [ph.name for ph in phases] == ["noln-free", "noln-clamp"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--parts", "nope"], "--parts"),
        (["--clamps", "head:1.0"], "--clamps"),
        (["--clamps", "unembed:-1"], "--clamps"),
        (["--rho", "0.9,-1"], "rho"),
        (["--heads", "3"], "--heads"),
        (["--ln-frac", "1.5"], "fraction"),
    ],
)
def test_bad_input_is_one_line(args, msg, capsys, tmp_path):
    from experiments import transformer

    plans.assert_one_line_error(transformer.main_cli, args, msg, capsys, tmp_path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from experiments import transformer

    out = str(tmp_path_factory.mktemp("tr") / "transformer-tiny")
    assert transformer.main(["--preset", "tiny", "--out", out]) == 0
    return out


def test_tiny_run(tiny_run):
    for f in (
        "config.json",
        "lanes.csv",
        "curves.npz",
        "fit.json",
        "timing.json",
        "transformer.png",
    ):
        assert os.path.exists(os.path.join(tiny_run, f)), f
    lanes = results.read_lanes_csv(os.path.join(tiny_run, "lanes.csv"))
    assert set(lanes["arm"]) == {"free", "clamp", "group_clamp"}
    assert set(lanes["layernorm"]) == {"none", "final"}
    assert set(lanes["model"]) == {"attn"}
    fitted = json.load(open(os.path.join(tiny_run, "fit.json")))
    # no LayerNorm: W_c from grokked controls; clamped lanes grok at their held norm
    assert fitted["noln"]["Wc"]["n"] >= 1
    cl = (lanes["arm"] == "clamp") & lanes["grokked"]
    assert cl.any()
    np.testing.assert_allclose(lanes["norm_at_grok"][cl], lanes["target_norm"][cl], rtol=1e-4)
    # group clamps hold their group's norm (and the headline norm is that group's)
    gc = (lanes["arm"] == "group_clamp") & lanes["grokked"]
    assert gc.any()
    for i in np.flatnonzero(gc):
        g = lanes["clamp_group"][i]
        assert lanes[f"norm_at_grok_{g}"][i] == pytest.approx(lanes["target_norm"][i], rel=1e-4)
    # LayerNorm parts: CVs per group pooled per p, a power law over the two p, fold changes
    lf = fitted["ln_free"]
    assert [r["p"] for r in lf["pooled_by_p"]] == [11, 13]
    assert set(lf["pooled_by_p"][0]["norms"]) == {"embed", "attn", "mlp", "unembed", "total"}
    assert lf["power_law"]["unembed"]["exponent"] is not None
    assert lf["grid"] is not None and lf["grid"]["n_settings"] == 2
    assert len(fitted["ln_clamp"]["cells"]) == 2


def test_report_reads_the_run(tiny_run, tmp_path):
    from grokjax import report

    import experiments.catalog  # noqa: F401  (registers every experiment)

    data = report.build([tiny_run], str(tmp_path / "rep"))
    assert "### transformer" in data["text"]
    rows = {r["key"]: r for r in data["comparison"]}
    # the tiny preset is not the paper's protocol: numbers are shown, not judged
    for key in ("attn_wc", "attn_tgrok_rho0.85", "ln_unembed_exponent", "ln_group_clamp_fold"):
        assert rows[key]["status"] == "not comparable", rows[key]
        # the group-clamp fold needs every group's median: one censored lane of the tiny
        # run's 2 (unembed at rho 1, seen on this CPU with the earlier code too) leaves it None
        if key != "ln_group_clamp_fold":
            assert rows[key]["measured"] is not None, rows[key]
    assert "lr=0.005 (paper 0.0005)" in rows["attn_wc"]["note"]
    # a final-only LayerNorm is still the LayerNorm model: compared, its placement named
    assert "layernorm=final (paper all)" in rows["ln_group_clamp_fold"]["note"]
    # the tiny preset runs one fraction: the pooled CVs need several
    for key in ("ln_cv_total", "ln_cv_unembed"):
        assert rows[key]["status"] == "not run" and "several fractions" in rows[key]["note"]
    assert os.path.exists(tmp_path / "rep" / "transformer-tiny_transformer.png")
    figs = {f["name"]: f for f in data["figures"]}
    assert "files" in figs["layernorm_cv"]
    assert "skipped" in figs["delay_law_models"]  # only one model kind here


def test_the_committed_layernorm_clamps_are_judged_against_the_paper():
    """The paper preset's LayerNorm (before attention, MLP and unembedding, as the paper's
    released code) is the reference protocol, so the committed group clamps are judged (the
    row once said "not run" because the reference assumed a final-only LayerNorm)."""
    import experiments.catalog  # noqa: F401  (registers every experiment)
    from grokjax import compare
    from grokjax.runs import load_runs

    root = os.path.join(os.path.dirname(os.path.dirname(__file__)), "results")
    run = os.path.join(root, "transformer-paper-lnclamp")
    (row,) = [r for r in compare.compare(load_runs([run])) if r["key"] == "ln_group_clamp_fold"]
    assert row["status"] == "pass", row
    assert row["measured"] == pytest.approx(1.88, abs=0.01)  # unembed at rho 1.30
    # its seeds are the LayerNorm parts' 12 (ln_seeds), not the no-LayerNorm parts' 16
    assert row["seeds"] == 12
