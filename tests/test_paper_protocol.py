"""The paper's protocol as options: seed offsets, the 360-point geometric eval schedule, the
delay_sweep paper preset's lanes, and a tiny end-to-end run of each new arm."""

import json
import math
import os
from collections import Counter

import jax.numpy as jnp
import numpy as np
import pytest

import plans
from experiments import delay_sweep, lr_matrix, norm_controls, transformer
from grokjax import experiment, lane, results


def lanes_of(out):
    return results.read_lanes_csv(os.path.join(out, "lanes.csv"))


# ---------------------------------------------------------------------------------------------
# the geometric schedule
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [1500, 15_000, 25_000, 80_000, 160_000, 45_100])
def test_geometric_grid_is_the_papers_grid_on_the_eval_cadence(budget):
    """The grid: 360 points geomspace(1, budget), floored, rounded up to the 10-step cadence."""
    v = np.floor(np.geomspace(1, budget, 360))
    want = np.unique(np.ceil(v / 10) * 10).astype(int)
    ts = np.arange(0, budget + 11, 10)
    got_np = ts[lane.on_geometric_grid(ts, budget, 360, 10)]
    got_jnp = ts[np.asarray(lane.on_geometric_grid(jnp.asarray(ts), budget, 360, 10, jnp))]
    np.testing.assert_array_equal(got_np, want)
    np.testing.assert_array_equal(got_jnp, want)


def _latch_sequence(static, test_acc, budget):
    """Feeds eval points t = 0, 10, 20, ... with the given test accuracies to ``latch``."""
    lat = lane.empty_latches(3)
    for i, acc in enumerate(test_acc):
        t = jnp.int32(10 * i)
        lat = lane.latch(
            static,
            lat,
            t,
            jnp.int32(budget),
            jnp.float32(1.0),
            jnp.float32(acc),
            jnp.float32(50.0 + i),
            jnp.ones(3),
            jnp.float32(0.0),
        )
    return lat


def test_geometric_schedule_latches_t_grok_on_the_grid():
    budget = 25_000
    acc = np.zeros(700)
    acc[412:] = 0.95  # test accuracy first >= 0.9 at step 4120 and stays there
    acc[300] = 0.92  # a blip at step 3000, off the grid
    grid = np.arange(0, 7000, 10)[lane.on_geometric_grid(np.arange(0, 7000, 10), budget, 360, 10)]
    assert 3000 not in grid and 4120 not in grid
    every = _latch_sequence(lane.Static(), acc, budget)
    geo = _latch_sequence(lane.Static(eval_grid=360), acc, budget)
    assert int(every.t_grok[lane.HEADLINE]) == 3000  # the blip counts every 10 steps
    first = int(grid[grid >= 4120][0])  # the first grid point after 4120
    assert int(geo.t_grok[lane.HEADLINE]) == first > 4120
    assert float(geo.norm_at_grok[lane.HEADLINE]) == 50.0 + first // 10
    assert int(geo.t_mem) == int(grid[0]) and int(every.t_mem) == 0


def test_eval_schedule_only_changes_the_latches():
    """A modular Static with the default schedule fingerprints as before."""
    assert "eval_grid" not in lane.static_fingerprint(lane.Static())
    assert "eval_grid=360" in lane.static_fingerprint(lane.Static(eval_grid=360))
    with pytest.raises(ValueError, match="eval_grid"):
        lane.Static(eval_grid=1).validate()


# ---------------------------------------------------------------------------------------------
# seed offsets and the paper preset's lanes
# ---------------------------------------------------------------------------------------------


def test_delay_sweep_paper_preset_lanes():
    cfg = experiment.config_for(delay_sweep.SPEC, "paper", out="/nonexistent/run")
    phases = plans.dry_run(delay_sweep.plan, cfg, {"norm_at_grok": 50.0})
    assert [ph.name for ph in phases] == [
        f"p{p}-{a}" for p in (31, 41, 53, 59, 71) for a in ("free", "clamp")
    ]
    for ph in phases:
        p = ph.static.model.p
        assert Counter(ph.meta["seed"]) == {s: Counter(ph.meta["seed"])[0] for s in range(12)}
        if ph.name.endswith("free"):
            assert len(ph.meta["seed"]) == 12
            continue
        rhos = [0.85, 1.0, 1.15] + ([1.3] if p in (41, 59) else [])
        assert sorted(Counter(ph.meta["rho"])) == rhos
        assert set(Counter(ph.meta["rho"]).values()) == {12}
        budget = dict(zip(ph.meta["rho"], ph.meta["budget"]))
        scale = max(1.0, p / 59)
        want = {0.85: 15_000, 1.0: 25_000, 1.15: 80_000, 1.3: 160_000}
        assert budget == {r: int(round(want[r] * scale / 100) * 100) for r in rhos}
        np.testing.assert_allclose(ph.meta["target_norm"], ph.meta["rho"] * 50.0)
    assert delay_sweep.cost(cfg).startswith(f"{sum(len(ph.meta['seed']) for ph in phases)} lanes")


@pytest.mark.parametrize(
    "name",
    [
        "delay_sweep",
        "dense_rho",
        "lr_matrix",
        "norm_controls",
        "critical_norm",
        "log_delay",
        "transformer",
        "parity",
    ],
)
def test_seed_base_shifts_every_lane(name):
    import importlib

    spec = importlib.import_module(f"experiments.{name}").SPEC
    seeds = {}
    for base in (0, 0, 100):
        cfg = experiment.config_for(spec, "tiny", out="/nonexistent/run", seed_base=base)
        phases = plans.dry_run(
            spec.plan,
            cfg,
            {
                "norm_at_grok": 20.0,
                **{f"norm_at_grok_{g}": 5.0 for g in ("embed", "attn", "mlp", "unembed")},
            },
            lambda n: _fake_result(n),
        )
        seeds.setdefault(base, []).append(np.concatenate([ph.meta["seed"] for ph in phases]))
    np.testing.assert_array_equal(seeds[0][0], seeds[0][1])
    np.testing.assert_array_equal(seeds[100][0], seeds[0][0] + 100)


def _fake_result(n):
    from grokjax.protocol import RunResult

    return RunResult(
        {},
        np.zeros(n, np.int64),
        np.array([0, 50]),
        {"group_norms": np.ones((n, 2, 3)), "norm": np.full((n, 2), 10.0)},
        ("embed", "hidden", "out"),
        {},
    )


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Tiny sweeps: seeds 0-3; seeds 2-3 (offset 2) with an extra rho and the geometric
    schedule."""
    root = tmp_path_factory.mktemp("proto")
    a, b = str(root / "a"), str(root / "b")
    assert delay_sweep.main(["--preset", "tiny", "--out", a, "--seeds", "4"]) == 0
    assert (
        delay_sweep.main(
            [
                "--preset",
                "tiny",
                "--out",
                b,
                "--seed-base",
                "2",
                "--extra-rho",
                "1.2",
                "--extra-rho-p",
                "31",
                "--eval-schedule",
                "geometric",
            ]
        )
        == 0
    )
    return a, b


def test_same_seed_same_lane_other_seed_other_lane(sweeps):
    a, b = (lanes_of(x) for x in sweeps)
    fa, fb = a["arm"] == "free", b["arm"] == "free"
    assert sorted(b["seed"][fb]) == [2, 3]
    # the free lanes of seeds 2 and 3 train identically in both runs (steps, memorisation and
    # the norm at it do not depend on the schedule, which only picks the grokking eval point)
    for s in (2, 3):
        ia = np.flatnonzero(fa & (a["seed"] == s))[0]
        ib = np.flatnonzero(fb & (b["seed"] == s))[0]
        assert a["norm_at_grok"][ia] > 0
        # the geometric grid latches no earlier than every eval point does
        assert b["T_grok"][ib] >= a["T_grok"][ia]
    # other seeds: other initialisations
    assert len(set(a["norm_at_mem"][fa].round(4))) == 4


def test_geometric_run_latches_on_its_grid_and_says_so(sweeps):
    _, b = sweeps
    lanes = lanes_of(b)
    cfg = json.load(open(os.path.join(b, "config.json")))
    assert cfg["eval_schedule"] == "geometric" and cfg["seed_base"] == 2
    g = lanes["grokked"]
    assert g.any()
    for t, budget in zip(lanes["T_grok"][g], lanes["budget"][g]):
        assert lane.on_geometric_grid(np.array([t]), budget, 360, 10)[0], (t, budget)
    fit = json.load(open(os.path.join(b, "fit.json")))
    e = fit["per_p"]["31"]
    # rho 1.2 runs but stays out of the law: it is compared with the extrapolation
    assert [c["rho"] for c in e["cells"]] == [0.9, 1.0, 1.1]
    assert [c["rho"] for c in e["beyond"]] == [1.2] and e["beyond"][0]["n"] == 2
    assert sorted(set(lanes["rho"][lanes["arm"] == "clamp"])) == pytest.approx([0.9, 1.0, 1.1, 1.2])


# ---------------------------------------------------------------------------------------------
# tiny runs of the new arms
# ---------------------------------------------------------------------------------------------


def test_lr_matrix_fixed_wc_and_view(tmp_path):
    out = str(tmp_path / "lm")
    assert (
        lr_matrix.main(
            ["--preset", "tiny", "--out", out, "--fixed-wc", "30", "--view-steps", "500"]
        )
        == 0
    )
    lanes = lanes_of(out)
    clamp = lanes["arm"] == "clamp"
    np.testing.assert_allclose(lanes["target_norm"][clamp], lanes["rho"][clamp] * 30.0)
    fit = json.load(open(os.path.join(out, "fit.json")))
    assert fit["Wc"]["median"] != pytest.approx(30.0, rel=1e-3)  # its own W_c is still measured
    for c in fit["cells"]:
        v = c["view"]
        assert v["steps"] == 500 and v["n"] == c["n"]
        sel = clamp & np.isclose(lanes["lr"], c["lr"]) & np.isclose(lanes["rho"], c["rho"])
        late = int((~lanes["grokked"][sel] | (lanes["T_grok"][sel] > 500)).sum())
        assert v["n_censored"] == late


def test_norm_controls_init_at_a_norm_and_fractions(tmp_path):
    out = str(tmp_path / "nc")
    assert (
        norm_controls.main(
            ["--preset", "tiny", "--out", out, "--init-rho", "0.8", "--init-scales", ""]
        )
        == 0
    )
    lanes = lanes_of(out)
    curves = np.load(os.path.join(out, "curves.npz"))
    low = np.flatnonzero(lanes["arm"] == "low_init")
    assert len(low) == 2
    fit = json.load(open(os.path.join(out, "fit.json")))
    wc = fit["Wc"]["median"]
    # each low-init lane starts at ||W|| = 0.8·W_c (step 0 of its curve)
    np.testing.assert_allclose(curves["norm"][low, 0], 0.8 * wc, rtol=1e-4)
    (c,) = fit["clamped"]
    fr = c["norm_fractions"]
    assert set(fr) == {"embed", "hidden", "out"}
    for when in ("t_int", "T_grok"):
        assert sum(fr[g][when] for g in fr) == pytest.approx(1.0, abs=0.02)


def test_transformer_scan_and_paper_layernorm(tmp_path):
    out = str(tmp_path / "tf")
    assert (
        transformer.main(
            [
                "--preset",
                "tiny",
                "--out",
                out,
                "--parts",
                "noln",
                "--scan-rho",
                "0.9",
                "--scan-steps",
                "800",
            ]
        )
        == 0
    )
    fit = json.load(open(os.path.join(out, "fit.json")))
    (c,) = fit["noln"]["scan"]
    assert c["rho"] == 0.9 and c["steps"] == 800 and c["n"] == 2
    assert [x["rho"] for x in fit["noln"]["cells"]] == [0.85, 1.0]  # the scan stays out
    cfg = experiment.config_for(transformer.SPEC, "paper", out="/nonexistent/run")
    assert cfg.ln_mode == "all"
    quick = experiment.config_for(transformer.SPEC, "quick", out="/nonexistent/run")
    assert quick.ln_mode == "final"  # final-only kept as an option


# ---------------------------------------------------------------------------------------------
# the expected cost (reproduce --list)
# ---------------------------------------------------------------------------------------------


def test_expected_cost_follows_the_papers_medians():
    from grokjax import estimate

    assert estimate.t_grok(59) == pytest.approx(5100)
    assert estimate.t_grok(59, 1.0) == pytest.approx(4077)
    assert estimate.t_grok(59, 0.85) == pytest.approx(1492, rel=0.25)
    assert estimate.t_grok(59, 1.15) == pytest.approx(13426, rel=0.25)
    assert estimate.t_grok(41, 1.0) == pytest.approx(9718, rel=0.15)
    assert estimate.t_grok(41) == pytest.approx(10606, rel=0.15)
    # a lane runs to T_grok plus the margin, or to its budget
    assert estimate.lane_steps(100_000, 4077) == pytest.approx(4077 + 407.7)
    assert estimate.lane_steps(3000, 4077) == 3000
    # beyond the weight-decay frontier (p = 59, wd 8: 15 of 16 lanes ungrokked at 30k) a free
    # lane runs its budget, so norm_controls' 16 wd-8 lanes alone expect 16 × 30k lane-steps
    assert estimate.t_grok(59, wd=5.0) < 1500 and math.isinf(estimate.t_grok(59, wd=8.0))
    assert estimate.lane_steps(30_000, estimate.t_grok(59, wd=8.0)) == 30_000
    nc = experiment.config_for(norm_controls.SPEC, "paper", out="/nonexistent/run")
    assert float(norm_controls.cost(nc).split("expected ~")[1].split(" M")[0]) > 16 * 30_000 / 1e6
    cfg = experiment.config_for(delay_sweep.SPEC, "paper", out="/nonexistent/run")
    line = delay_sweep.cost(cfg)
    bound = float(line.split("<= ")[1].split(" M")[0])
    expect = float(line.split("expected ~")[1].split(" M")[0])
    assert 0 < expect < bound / 2  # early stopping: far below the budget bound
    tiny = experiment.config_for(delay_sweep.SPEC, "tiny", out="/nonexistent/run")
    assert "expected" not in delay_sweep.cost(tiny)  # no estimate off the paper MLP


def test_expected_cost_matches_the_committed_paper_runs():
    """The estimate against what the paper presets took on the 2-core CPU (results/): the
    expected lane-steps within 20 % of those the lanes ran, the hours within 1.5× of the
    wall time, at p = 59 alone and across p = 31-71 (where the rate's (59/p)² matters)."""
    import csv

    from experiments import dense_rho

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name, spec, over in [
        ("delay_sweep-paper-p59", delay_sweep.SPEC, dict(p=[59])),
        ("delay_sweep-paper-p53p71", delay_sweep.SPEC, dict(p=[53, 71], extra_rho=[])),
        ("delay_sweep-paper-p31p41", delay_sweep.SPEC, dict(p=[31, 41])),
        ("dense_rho-paper", dense_rho.SPEC, {}),
    ]:
        run = os.path.join(root, "results", name)
        with open(os.path.join(run, "lanes.csv"), newline="") as f:
            ran = sum(int(float(r["steps_run"])) for r in csv.DictReader(f))
        with open(os.path.join(run, "timing.json")) as f:
            wall_h = json.load(f)["wall_s"] / 3600
        line = spec.cost(experiment.config_for(spec, "paper", out="/nonexistent/run", **over))
        expect = float(line.split("expected ~")[1].split(" M")[0]) * 1e6
        hours = float(line.split("(~")[1].split(" h")[0])
        assert expect == pytest.approx(ran, rel=0.2), name
        assert 1 / 1.5 < hours / wall_h < 1.5, (name, hours, wall_h)


def test_paper_scale_tolerances_are_tighter():
    from grokjax import paper

    med = paper.reference("tgrok_p59_rho0.85")  # 1492
    assert med.passes(1300, seeds=4) and not med.passes(1300, seeds=12)  # -13 %
    assert med.passes(1400, seeds=16)  # -6 %
    alpha = paper.reference("alpha_p")  # 7.5
    assert alpha.passes(8.3, seeds=2) and not alpha.passes(8.3, seeds=12)
    assert alpha.tolerance_at(12).describe(alpha) == "within ±0.5"
    wc = paper.reference("wc_p59")  # 54.6
    assert wc.passes(56.0, seeds=4) and not wc.passes(56.0, seeds=16)
    r2 = paper.reference("alpha_shared_r2")  # no paper-scale tolerance: unchanged
    assert r2.tolerance_at(16) is r2.tolerance


def test_a_one_column_matrix_run_does_not_print_an_lr_effect():
    """One lr column (the committed lr = 2e-3 job) has no lr effect of its own: the summary
    says so instead of printing a fold change of 1.0× over a single lr."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "results", "lr_matrix-paper-lr2e-3", "fit.json")) as f:
        fitted = json.load(f)
    cfg = experiment.config_for(lr_matrix.SPEC, "paper", out="/nonexistent/run", lrs=[2e-3])
    text = lr_matrix.SPEC.summary(fitted, cfg)
    assert "lr 0.002: alpha = 7.32" in text
    assert "lr effect: one lr in this run" in text and "lr effect 1.0×" not in text
