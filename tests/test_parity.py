"""k-sparse parity on the lane engine (op "parity", model "bits") and experiments.parity."""

import json
import math
import os
import subprocess
import sys
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plans

from grokjax import cells, compare, data, lane as eng, experiment, results, engine, runs
from grokjax.models import ModelSpec, make_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_WC = 20.0
TINY = eng.Static(
    model=ModelSpec(kind="bits", p=12, hidden=64), op="parity", n_train=300, n_test=300, k_bits=3
)


# ---------------------------------------------------------------------------------------------
# data, model, Static
# ---------------------------------------------------------------------------------------------


def test_parity_data_labels_sizes_and_determinism():
    _, key = data.lane_keys(3)
    x_tr, y_tr, x_te, y_te = data.parity_data(key, 10, 3, 50, 30)
    assert x_tr.shape == (50, 10) and x_te.shape == (30, 10)
    assert y_tr.shape == (50,) and y_te.shape == (30,)
    assert x_tr.dtype == jnp.float32 and y_tr.dtype == jnp.int32
    x = np.concatenate([x_tr, x_te])
    y = np.concatenate([y_tr, y_te])
    assert set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(y, (np.prod(x[:, :3], axis=1) < 0).astype(np.int32))
    assert 0.2 < y.mean() < 0.8  # both classes occur
    again = data.parity_data(data.lane_keys(3)[1], 10, 3, 50, 30)
    for a, b in zip((x_tr, y_tr, x_te, y_te), again):
        np.testing.assert_array_equal(a, b)
    other = data.parity_data(data.lane_keys(4)[1], 10, 3, 50, 30)
    assert not np.array_equal(x_tr, other[0])


@pytest.mark.parametrize(
    "n,k,m,v,msg",
    [
        (10, 0, 5, 5, "k_bits"),
        (2, 3, 5, 5, "n_bits"),
        (10, 3, 0, 5, "n_train"),
        (10, 3, 5, 0, "n_test"),
    ],
)
def test_bad_parity_tasks_are_refused(n, k, m, v, msg):
    with pytest.raises(ValueError, match=msg) as e:
        data.validate_parity(n, k, m, v)
    assert "\n" not in str(e.value)


def test_bits_model_shapes_groups_and_initial_scales():
    m = make_model(ModelSpec("bits", p=30, hidden=512))
    params = m.init(jax.random.key(0))
    assert m.groups == ("hidden", "out") and m.num_classes == 2
    shapes = jax.tree.map(lambda x: x.shape, params)
    assert shapes == {
        "hidden": {"W1": (30, 512), "b1": (512,)},
        "out": {"W2": (512, 2), "b2": (2,)},
    }
    assert abs(float(params["hidden"]["W1"].std()) * np.sqrt(30) - 1) < 0.03
    assert abs(float(params["out"]["W2"].std()) * np.sqrt(512) - 1) < 0.1
    assert float(jnp.abs(params["hidden"]["b1"]).max()) < 1e-5
    assert float(jnp.abs(params["out"]["b2"]).max()) < 1e-5
    x = jnp.asarray(np.random.default_rng(0).choice([-1.0, 1.0], (7, 30)), jnp.float32)
    h = jax.nn.gelu(x @ params["hidden"]["W1"] + params["hidden"]["b1"], approximate=False)
    naive = h @ params["out"]["W2"] + params["out"]["b2"]
    np.testing.assert_allclose(m.apply(params, x), naive, atol=1e-5)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(model=ModelSpec(kind="mlp", p=12), op="parity", n_train=10), "needs model kind"),
        (dict(model=ModelSpec(kind="bits", p=12), op="add"), "needs op 'parity'"),
        (dict(model=ModelSpec(kind="bits", p=2), op="parity", n_train=10), "n_bits"),
        (dict(model=ModelSpec(kind="bits", p=12), op="parity"), "n_train"),
        (dict(model=ModelSpec(kind="bits", p=12), op="parity", n_train=10, n_test=0), "n_test"),
    ],
)
def test_bad_parity_statics_are_one_line_errors(kw, msg):
    with pytest.raises(ValueError, match=msg) as e:
        eng.Static(**kw).validate()
    assert "\n" not in str(e.value)


def test_modular_fingerprint_unchanged_by_the_parity_fields():
    # Run fingerprints hash this text: modular runs must keep the text they had before.
    assert eng.static_fingerprint(eng.Static()) == (
        "Static(model=ModelSpec(kind='mlp', p=59, d=128, hidden=256, heads=4, layernorm='none', "
        "dtype='float32'), op='add', frac=0.4, eval_every=10, b1=0.9, b2=0.999, eps=1e-08, "
        "margin=0.1, min_margin=200, precision='highest')"
    )
    assert "n_train=300, n_test=300, k_bits=3" in eng.static_fingerprint(TINY)
    assert TINY != eng.Static(model=TINY.model, op="parity", n_train=301, n_test=300)


def test_run_fingerprints_of_existing_run_directories_stay_valid():
    """The hashes version 1 gave when it was introduced (the same as the Static repr of
    before): a change here would make every stored phase file unreadable on resume."""
    from grokjax.engine import run_fingerprint

    hp = eng.make_hparams(3, seed=np.arange(4), lr=1e-3, budget=1000)
    assert run_fingerprint(eng.Static(), hp, 500, 120, True) == "54b02113dc7c93b5ac23"
    assert run_fingerprint(eng.Static(eval_grid=360), hp, 500, 120, True) == "7b6bca63c15b0ae3e637"
    bits = eng.Static(
        model=ModelSpec(kind="bits", p=20, d=32, hidden=64), op="parity", n_train=300, n_test=300
    )
    hp2 = eng.make_hparams(3, seed=np.arange(2))
    assert run_fingerprint(bits, hp2, 200, 120, False) == "1056a574451b2baacd79"
    assert run_fingerprint(eng.Static(), hp, 400, 120, True) != "54b02113dc7c93b5ac23"


# ---------------------------------------------------------------------------------------------
# the engine on a tiny parity task
# ---------------------------------------------------------------------------------------------


def test_free_parity_run_groks_and_clamp_holds_the_norm():
    e = engine.Engine(TINY)
    hp = eng.make_hparams(
        2,
        seed=[0, 1, 0, 1],
        lr=1e-2,
        wd=1.0,
        target_norm=[0, 0, 9.5, 9.5],
        t_int=[0, 0, 50, 50],
        budget=2000,
    )
    r = e.run(hp, chunk_steps=250, progress=None)
    t_grok = r.latches["t_grok"][:, eng.HEADLINE]
    assert (t_grok > 0).all() and (t_grok < 2000).all(), t_grok
    assert (r.latches["t_mem"][:2] < t_grok[:2]).all()  # memorised first
    assert (r.latches["diverged_step"] == -1).all()
    acc = r.curves["test_acc"]
    assert all(np.nanmax(acc[i]) >= 0.9 for i in range(4))
    # Clamped lanes sit at the held norm from update t_int on, and grok there.
    np.testing.assert_allclose(r.latches["norm_at_grok"][2:, eng.HEADLINE], 9.5, rtol=1e-5)
    after = (r.grid > 50)[None, :] & np.isfinite(r.curves["norm"][2:])
    np.testing.assert_allclose(r.curves["norm"][2:][after], 9.5, rtol=1e-5)
    before = r.grid <= 50
    np.testing.assert_array_equal(r.curves["norm"][:2, before], r.curves["norm"][2:, before])
    # The norm covers W1 and W2 only; no embedding, so no Fourier statistics.
    assert r.groups == ("hidden", "out")
    g = r.curves["group_norms"][0]
    ok = np.isfinite(g).all(axis=1)
    np.testing.assert_allclose(np.sqrt((g[ok] ** 2).sum(1)), r.curves["norm"][0, ok], rtol=1e-5)
    assert np.isnan(r.curves["fourier_gini"]).all()
    assert np.isnan(r.curves["spectral_entropy"]).all()


# ---------------------------------------------------------------------------------------------
# experiments.parity: the paper grid, the fit's criteria, the tiny preset end to end
# ---------------------------------------------------------------------------------------------


def expand(preset="paper"):
    """Runs the plan with made-up outcomes (every lane groks at norm FAKE_WC)."""
    from experiments import parity

    cfg = experiment.config_for(parity.SPEC, preset, out="/nonexistent/run")
    phases = plans.dry_run(parity.plan, cfg, {"norm_at_grok": FAKE_WC})
    cols = {
        k: np.concatenate([np.asarray(ph.meta[k], dtype=object) for ph in phases])
        for k in phases[0].meta
    }
    return cfg, phases, cols


def test_paper_grid_expands_as_the_issue_says():
    cfg, phases, t = expand()
    assert len(t["seed"]) == 384 and cfg.seeds == 16
    for c in set(t["cell"]):  # matched seeds: every cell holds seeds 0..15 once
        assert sorted(t["seed"][t["cell"] == c]) == list(range(16)), c
    free, clamp = t["arm"] == "free", t["arm"] == "clamp"
    assert set(t["budget"]) == {50_000} and set(t["k_bits"]) == {3}
    assert set(t["model"]) == {"bits"} and set(t["hidden"]) == {512}
    # no modulus and no train fraction: the task's size is n_bits and n_train (grokjax.schema)
    assert set(t["p"]) == {None} and set(t["frac"]) == {None} and set(t["n_test"]) == {2000}
    # Data amount at lr 1e-3, wd 1: n=30 × m in {600, 1000, 1500} and n in {20, 40} × m=1000.
    ref = free & (t["lr"] == 1e-3) & (t["wd"] == 1.0)
    assert Counter(zip(t["n_bits"][ref], t["n_train"][ref])) == {
        (30, 600): 16,
        (30, 1000): 16,
        (30, 1500): 16,
        (20, 1000): 16,
        (40, 1000): 16,
    }
    # lr × wd at n=30, m=1000, the shared cell once.
    grid = free & (t["n_bits"] == 30) & (t["n_train"] == 1000)
    assert Counter(zip(t["lr"][grid], t["wd"][grid])) == {
        (lr, wd): 16 for lr in (5e-4, 1e-3, 2e-3) for wd in (0.3, 0.5, 1.0, 2.0, 3.0, 5.0)
    }
    # Tags: each sub-analysis finds its lanes.
    tags = Counter(t["grids"][free])
    assert tags == {"size+lr_wd": 16, "size": 64, "lr_wd": 17 * 16}
    assert set(t["grids"][clamp]) == {"clamp"}
    # Clamps at rho 0.9 and 1.3 of W_c from t_int 1000, on the reference cell's seeds.
    assert Counter(t["rho"][clamp]) == {0.9: 16, 1.3: 16}
    np.testing.assert_allclose(
        t["target_norm"][clamp].astype(float), t["rho"][clamp].astype(float) * FAKE_WC
    )
    assert set(t["t_int"][clamp]) == {1000} and set(t["lr"][clamp]) == {1e-3}
    assert set(t["wd"][clamp]) == {1.0}
    assert set(zip(t["n_bits"][clamp], t["n_train"][clamp])) == {(30, 1000)}
    assert set(t["target_norm"][free]) == {0.0}
    # One program per (n, m); every one a parity program of the bits MLP.
    statics = {ph.static for ph in phases}
    assert {(s.model.p, s.n_train) for s in statics} == {
        (30, 600),
        (30, 1000),
        (30, 1500),
        (20, 1000),
        (40, 1000),
    }
    for s in statics:
        assert (s.op, s.model.kind, s.model.hidden, s.n_test, s.k_bits) == (
            "parity",
            "bits",
            512,
            2000,
            3,
        )
        s.validate()


def test_presets_validate_cost_and_doc():
    from experiments import parity

    for preset in ("paper", "quick", "tiny"):
        cfg = experiment.config_for(parity.SPEC, preset, out="/nonexistent/run")
        assert "lane-steps" in parity.cost(cfg)
    assert parity.cost(experiment.config_for(parity.SPEC, "paper")).startswith("384 lanes")
    for word in (
        "python -m experiments.parity",
        "paper",
        "quick",
        "tiny",
        "Paper",
        "Measured",
        "scaled down",
    ):
        assert word in parity.__doc__, word


def test_frontier_interpolates_and_extrapolates_in_log_time():
    from experiments.parity import frontier_at

    pts = [(10.0, 100.0), (12.0, 400.0), (None, 5.0)]
    t, extra = frontier_at(pts, 11.0)
    assert t == pytest.approx(200.0) and not extra
    t, extra = frontier_at(pts, 14.0)
    assert t == pytest.approx(1600.0) and extra
    assert frontier_at(pts[:1], 11.0) == (None, False)


def _fake_lanes(cells):
    """lanes.csv-like columns: one grokked lane per (n, m, lr, wd, arm, rho, norm, T)."""
    cols = {
        k: []
        for k in (
            "n_bits",
            "n_train",
            "lr",
            "wd",
            "arm",
            "rho",
            "target_norm",
            "norm_at_grok",
            "T_grok",
            "T_mem",
            "steps_run",
            "cell",
            "grids",
            "seed",
        )
    }
    for n, m, lr, wd, arm, rho, norm, t, grids in cells:
        for s in range(3):
            cols["n_bits"].append(n)
            cols["n_train"].append(m)
            cols["lr"].append(lr)
            cols["wd"].append(wd)
            cols["arm"].append(arm)
            cols["rho"].append(rho)
            cols["target_norm"].append(norm if arm == "clamp" else 0.0)
            cols["norm_at_grok"].append(norm * (1 + 0.001 * s))
            cols["T_grok"].append(t + s)
            cols["T_mem"].append(t / 5)
            cols["steps_run"].append(t + s + 100)
            cols["cell"].append(f"{arm}-{n}-{m}-{lr}-{wd}-{rho}")
            cols["grids"].append(grids)
            cols["seed"].append(s)
    out = {
        k: np.array(v, dtype=object if k in ("arm", "cell", "grids") else float)
        for k, v in cols.items()
    }
    out["grokked"] = np.ones(len(out["seed"]), bool)
    out["diverged"] = np.zeros(len(out["seed"]), bool)
    return out


@pytest.mark.parametrize(
    "clamp_t,lr_wc,verdicts",
    [
        (900.0, 10.0, dict(lr="yes", e="yes")),  # on the frontier, W_c flat in lr
        (50_000.0, 13.0, dict(lr="no", e="no")),  # far above the frontier, W_c moves with lr
    ],
)
def test_table2_criteria(clamp_t, lr_wc, verdicts):
    from experiments import parity

    cfg = parity.Config(n_bits=30, m=1000, lr=1e-3, wd=1.0, lrs=[5e-4, 1e-3], wds=[0.5, 1, 2])
    cells = [
        (30, 1000, 1e-3, 1.0, "free", math.nan, 10.0, 500.0, "size+lr_wd"),
        (30, 1000, 1e-3, 0.5, "free", math.nan, 12.0, 800.0, "lr_wd"),
        (30, 1000, 1e-3, 2.0, "free", math.nan, 8.0, 400.0, "lr_wd"),
        (30, 1000, 5e-4, 1.0, "free", math.nan, lr_wc, 1000.0, "lr_wd"),
        (30, 600, 1e-3, 1.0, "free", math.nan, 9.0, 700.0, "size"),
        (30, 1000, 1e-3, 1.0, "clamp", 1.3, 13.0, clamp_t, "clamp"),
    ]
    fitted = parity.fit_lanes(_fake_lanes(cells), cfg)
    rows = {r["property"]: r for r in fitted["table2"]}
    assert rows["grokking occurs"]["transfers"] == "yes"
    assert rows["norm at grokking set by weight decay"]["transfers"] == "yes"
    assert rows["invariant to learning rate"]["transfers"] == verdicts["lr"]
    assert rows["not invariant to the amount of data"]["transfers"] == "yes"
    assert rows["no regularization-unreachable above-norm delay"]["transfers"] == verdicts["e"]
    json.dumps(fitted, allow_nan=False)  # fit.json is strict JSON


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from experiments import parity

    d = str(tmp_path_factory.mktemp("runs") / "parity-tiny")
    assert parity.main(["--preset", "tiny", "--out", d]) == 0
    return d


def test_tiny_preset_runs_end_to_end(tiny_run):
    from experiments import parity

    d = tiny_run
    assert experiment.is_complete(d) and os.path.getsize(os.path.join(d, "parity.png")) > 0
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["experiment"] == "parity" and cfg["preset"] == "tiny" and cfg["op"] == "parity"
    lanes = results.read_lanes_csv(os.path.join(d, "lanes.csv"))
    for col in (
        "p",
        "seed",
        "arm",
        "rho",
        "target_norm",
        "lr",
        "wd",
        "frac",
        "model",
        "T_mem",
        "T_grok",
        "grokked",
        "norm_at_grok",
        "diverged",
        "steps_run",
        "n_bits",
        "n_train",
        "k_bits",
        "cell",
        "grids",
    ):
        assert col in lanes, col
    assert set(lanes["model"]) == {"bits"} and {"free", "clamp"} == set(lanes["arm"])
    fit = json.load(open(os.path.join(d, "fit.json")))
    rows = fit["table2"]
    assert [r["property"] for r in rows] == [
        "grokking occurs",
        "norm at grokking set by weight decay",
        "invariant to learning rate",
        "not invariant to the amount of data",
        "no regularization-unreachable above-norm delay",
    ]
    assert all(r["evidence"] for r in rows)
    # the tiny preset's verdicts on this CPU (a change in the fit or the task shows up here)
    assert [r["transfers"] for r in rows] == ["yes", "yes", "yes", "no", "yes"]
    assert lanes["grokked"].any()  # what "grokking occurs" = yes says
    # fit.json against a recomputation with plain numpy from lanes.csv: the reference cell's
    # W_c is the median norm at T_grok of its grokked free lanes, its T_grok the median time
    ref = fit["cells"][0]
    assert ref["cell"] == parity.cell_name(cfg["n_bits"], cfg["m"], cfg["lr"], cfg["wd"])
    sel = (lanes["cell"] == ref["cell"]) & (lanes["arm"] == "free")
    assert sel.sum() == ref["n"] == cfg["seeds"] and lanes["grokked"][sel].all()
    assert ref["Wc"]["median"] == pytest.approx(
        float(np.median(lanes["norm_at_grok"][sel])), rel=1e-12
    )
    assert ref["T_grok"]["median"] == pytest.approx(float(np.median(lanes["T_grok"][sel])))
    clamped = [c for c in fit["clamps"] if c["norm_over_held"] is not None]
    assert clamped and all(c["norm_over_held"] == pytest.approx(1.0, abs=1e-3) for c in clamped)
    curves = np.load(os.path.join(d, "curves.npz"))
    assert curves["norm"].shape[0] == len(lanes["seed"])
    assert list(curves["groups"]) == ["hidden", "out"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--k-bits", "5", "--n-bits", "4"], "n_bits must be"),
        (["--n-values", "2"], "n_bits must be"),
        (["--rho", "-1"], "rho"),
        (["--m", "0"], "n_train"),
        (["--op", "add"], "--op must be parity"),
        (["--t-int", "5000"], "beyond the step budget"),
    ],
)
def test_bad_input_is_one_line(args, msg, capsys, tmp_path):
    from experiments import parity

    plans.assert_one_line_error(parity.main_cli, args, msg, capsys, tmp_path)


def test_bad_input_from_the_command_line_exits_2(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.parity",
            "--preset",
            "tiny",
            "--out",
            str(tmp_path / "x"),
            "--k-bits",
            "40",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "n_bits must be" in r.stderr


def test_report_generates_table2(tiny_run, tmp_path):
    from grokjax import report

    import experiments.catalog  # noqa: F401  (registers every experiment)

    data = report.build([tiny_run], str(tmp_path / "rep"))
    rows = data["tables"]["table2"]
    fitted = json.load(open(os.path.join(tiny_run, "fit.json")))
    assert [r["property"] for r in rows] == [r["property"] for r in fitted["table2"]]
    assert [r["transfers"] for r in rows] == [r["transfers"] for r in fitted["table2"]]
    assert "### Table 2" in data["text"] and "### parity" in data["text"]
    assert os.path.getsize(tmp_path / "rep" / "table2.md") > 0
    cmp = {r["key"]: r for r in data["comparison"]}
    # the tiny run has no cell at the paper's n=30, m=1000: nothing to set against the paper
    assert cmp["parity_wc"]["status"] == "not run", cmp["parity_wc"]
    assert "n=30, m=1000" in cmp["parity_wc"]["note"]
    # parity rows read by their bit count and training rows (p and frac are empty)
    run = runs.load_run(tiny_run)
    n_bits = {int(v) for v in run.lanes["n_bits"]}
    n_train = {int(v) for v in run.lanes["n_train"]}
    body = open(tmp_path / "rep" / "wc.md").read().splitlines()[2:]
    assert body and all("None" not in line for line in body), body
    cols = [line.split(" | ")[2:4] for line in body]
    assert {c[0] for c in cols} == {f"n={n}" for n in n_bits}
    assert {c[1] for c in cols} <= {f"m={m}" for m in n_train} and len(cols) >= len(n_train)
    cond, _ = cells.free_groups(run)[0]
    text = compare._cond_text(cond)
    assert f"n_bits={cond['n_bits']:g}" in text and f"n_train={cond['n_train']:g}" in text
    assert "p=" not in text and "frac=" not in text
    figs = {f["name"]: f for f in data["figures"]}
    assert figs[f"{run.name}_wc_scaling"].get("files"), figs[f"{run.name}_wc_scaling"]
    assert "bit count n and/or training rows m" in figs[f"{run.name}_wc_scaling"]["caption"]


def test_parity_in_seed_blocks_with_a_fixed_wc_pools_into_one_design(tmp_path):
    """--fixed-wc clamps to rho × that norm (not the block's own controls), so two blocks of
    seeds (--seeds 1 --seed-base 0 / 1) are one design: runs.pool joins them into two seeds per
    cell, and the report's Table 2 reads the pooled run."""
    from experiments import parity
    from grokjax import report

    import experiments.catalog  # noqa: F401  (registers every experiment)

    small = ["--preset", "tiny", "--lrs", "1e-2", "--wds", "1", "--m-values", "300"]
    outs = []
    for base in (0, 1):
        d = str(tmp_path / f"parity-s{base}")
        args = small + ["--seeds", "1", "--seed-base", str(base), "--fixed-wc", "9.5"]
        assert parity.main(args + ["--out", d]) == 0
        outs.append(d)
    blocks = [runs.load_run(d) for d in outs]
    for r in blocks:
        clamp = r.lanes["arm"] == "clamp"
        assert clamp.sum() == 2
        np.testing.assert_allclose(r.lanes["target_norm"][clamp], 9.5 * r.lanes["rho"][clamp])
    (pooled,) = runs.pool(blocks, "seed")
    assert pooled.config["seeds"] == 2 and sorted(set(pooled.lanes["seed"])) == [0, 1]
    # blocks that clamp to their own controls' W_c are two designs, never pooled
    own = [dict(r.__dict__) for r in blocks]
    for o in own:
        o["config"] = dict(o["config"], fixed_wc=0.0)
    assert runs.pool([runs.Run(**o) for o in own], "seed") == []
    data = report.build(outs, str(tmp_path / "rep"))
    sec = [s for s in data["sections"] if s["run"] == pooled.name]
    assert len(sec) == 1 and sec[0]["status"] == "run", [s["run"] for s in data["sections"]]
    assert {r["run"] for r in data["tables"]["table2"]} == {b.name for b in blocks} | {pooled.name}
