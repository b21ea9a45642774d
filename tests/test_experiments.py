"""The paper's MLP experiments on the shared runner (grokjax.experiment).

Grid tests expand each experiment's plan at the paper preset without running anything (the
plan is fed made-up phase outcomes); the end-to-end tests run each entry point on its tiny
preset once (module fixture) and read the results back with the report.
"""

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import plans
from grokjax import experiment, results
from grokjax.protocol import RunResult

from experiments import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEW = ("critical_norm", "lr_matrix", "dense_rho", "norm_controls", "log_delay")
FAKE_WC = 50.0
FAKE_GROUP_NORMS = (10.0, 20.0, 30.0)
FAKE_INIT_NORM = 19.3  # the made-up ||W|| at every recorded step (the natural init ≈ 19.3)


def spec(name):
    import importlib

    return importlib.import_module(f"experiments.{name}").SPEC


def expand(name, preset="paper"):
    """Runs the plan of ``name`` with made-up outcomes: every lane groks at norm FAKE_WC and
    the groups' norms at every recorded step are FAKE_GROUP_NORMS. Returns (cfg, phases)."""
    s = spec(name)
    cfg = experiment.config_for(s, preset, out="/nonexistent/run")
    grid = np.array([0, getattr(cfg, "t_int", 0)])
    phases = plans.dry_run(
        s.plan,
        cfg,
        {"norm_at_grok": FAKE_WC},
        lambda n: RunResult(
            {},
            np.zeros(n, np.int64),
            grid,
            {
                "group_norms": np.broadcast_to(np.array(FAKE_GROUP_NORMS), (n, 2, 3)).copy(),
                "norm": np.full((n, 2), FAKE_INIT_NORM),
            },
            ("embed", "hidden", "out"),
            {},
        ),
    )
    return cfg, phases


def recorded(phases):
    """All recorded lanes as one column table."""
    cols = {}
    for ph in phases:
        if not ph.record:
            continue
        n = len(ph.meta["seed"])
        keys = set(cols) | set(ph.meta)
        total = len(next(iter(cols.values()))) if cols else 0
        for k in keys:
            old = cols.get(k, [None] * total)
            new = list(ph.meta[k]) if k in ph.meta else [None] * n
            cols[k] = list(old) + new
    return {k: np.array(v, dtype=object) for k, v in cols.items()}


def cells(t):
    return Counter(t["cell"])


def assert_matched_seeds(t, seeds, base=0):
    """Every cell holds exactly the seeds base..base+seeds-1 (so cells share inits and
    splits)."""
    for c in set(t["cell"]):
        assert sorted(t["seed"][t["cell"] == c]) == list(range(base, base + seeds)), c


# ---------------------------------------------------------------------------------------------
# grids at the paper preset
# ---------------------------------------------------------------------------------------------


def test_critical_norm_paper_grid():
    cfg, phases = expand("critical_norm")
    t = recorded(phases)
    assert len(t["seed"]) == 840 and cfg.seeds == 20
    assert_matched_seeds(t, 20, base=3000)
    main = (t["lr"] == 1e-3) & (t["wd"] == 1.0)
    pf = Counter(zip(t["p"][main], t["frac"][main]))
    for p in (29, 41, 59, 79, 97):
        for f in (0.30, 0.35, 0.40, 0.50, 0.65):
            assert pf[(p, f)] == 20, (p, f)
    for p in (59, 79, 97):
        for f in (0.15, 0.20, 0.25):
            assert pf[(p, f)] == 20, (p, f)
    assert not any(pf[(p, f)] for p in (29, 41) for f in (0.15, 0.20, 0.25))
    grid = (t["p"] == 59) & (t["frac"] == 0.5)
    lw = Counter(zip(t["lr"][grid], t["wd"][grid]))
    assert set(lw) == {(lr, wd) for lr in (3e-4, 1e-3, 3e-3) for wd in (0.3, 1.0, 3.0)}
    assert all(v == 20 for v in lw.values())  # the shared cell is not run twice
    assert set(t["arm"]) == {"free"} and set(t["target_norm"]) == {0.0}
    # Every (p, fraction) pair is its own program; the paper's flat budgets: 60k, 100k at
    # fractions <= 0.25
    assert len({ph.static for ph in phases}) == 34
    b = Counter(zip(t["frac"], t["budget"]))
    assert {f: n for (f, n) in b} == {
        **{f: 100_000 for f in (0.15, 0.20, 0.25)},
        **{f: 60_000 for f in (0.30, 0.35, 0.40, 0.50, 0.65)},
    }
    # the other presets keep the budget that grows at low fractions and small lr
    q = experiment.config_for(spec("critical_norm"), "quick", out="/nonexistent/run")
    assert q.budget(59, 0.15, 1e-2) > q.budget(59, 0.4, 1e-2) == 4000
    assert q.budget(59, 0.5, 3e-3) > q.budget(59, 0.5, 1e-2)


def test_lr_matrix_paper_grid():
    cfg, phases = expand("lr_matrix")
    t = recorded(phases)
    assert len(t["seed"]) == 320
    assert_matched_seeds(t, 16, base=1000)  # the seed set it shares with dense_rho
    free, clamp = t["arm"] == "free", t["arm"] == "clamp"
    assert Counter(t["lr"][free]) == {lr: 16 for lr in (1e-3, 2e-3, 4e-3, 8e-3)}
    assert Counter(zip(t["rho"][clamp], t["lr"][clamp])) == {
        (r, lr): 16 for r in (0.85, 1.0, 1.15, 1.3) for lr in (1e-3, 2e-3, 4e-3, 8e-3)
    }
    # the paper's matrix clamps to a fixed W_c = 54.6, not the run's own (FAKE_WC here)
    np.testing.assert_allclose(
        t["target_norm"][clamp].astype(float), t["rho"][clamp].astype(float) * 54.6
    )
    assert cfg.view_steps == 30_000 and cfg.budget(1.3) == 120_000
    assert set(t["t_int"][clamp]) == {500} and set(t["p"]) == {59} and set(t["frac"]) == {0.4}
    assert cfg.lr == 1e-3  # W_c from the lr=1e-3 control


def test_dense_rho_paper_grid():
    cfg, phases = expand("dense_rho")
    t = recorded(phases)
    clamp = t["arm"] == "clamp"
    assert len(t["seed"]) == 176 and (t["arm"] == "free").sum() == 16
    want = [0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3]
    assert sorted(set(t["rho"][clamp])) == pytest.approx(want)
    assert all(v == 16 for v in Counter(t["rho"][clamp]).values())
    assert_matched_seeds(t, 16, base=1000)
    assert (cfg.fit_lo, cfg.fit_hi) == (0.85, 1.25)


def test_norm_controls_paper_grid():
    cfg, phases = expand("norm_controls")
    t = recorded(phases)
    arms = Counter(t["arm"])
    assert arms == {"free": 80, "clamp": 64, "one_shot": 80, "group_one_shot": 48, "low_init": 32}
    assert_matched_seeds(t, 16, base=2000)
    free = t["arm"] == "free"
    assert Counter(t["wd"][free]) == {w: 16 for w in (1.0, 2.0, 3.0, 5.0, 8.0)}
    one = t["arm"] == "one_shot"
    assert sorted(set(t["rho"][one])) == [0.70, 0.85, 1.0, 1.15, 1.30]
    assert set(t["clamp_steps"][one]) == {1} and set(t["t_int"][one]) == {500}
    np.testing.assert_allclose(
        t["target_norm"][one].astype(float), t["rho"][one].astype(float) * 54.6
    )  # the paper's fixed W_c
    grp = t["arm"] == "group_one_shot"
    assert set(t["clamp_group"][grp]) == {"embed", "hidden", "out"}
    assert set(t["clamp_steps"][grp]) == {1}
    for g, norm in zip(("embed", "hidden", "out"), FAKE_GROUP_NORMS):
        sel = grp & (t["clamp_group"] == g)
        np.testing.assert_allclose(t["target_norm"][sel].astype(float), 0.8 * norm)
    low = t["arm"] == "low_init"
    # initialised at 0.73·W_c and 0.90·W_c: the natural init (FAKE_INIT_NORM) rescaled
    assert sorted(set(t["rho"][low])) == [0.73, 0.90]
    np.testing.assert_allclose(
        t["init_scale"][low].astype(float) * FAKE_INIT_NORM, t["rho"][low].astype(float) * 54.6
    )
    assert set(t["target_norm"][low]) == {0.0}
    cl = t["arm"] == "clamp"
    assert set(t["clamp_steps"][cl]) == {2**30}  # continuous
    assert sorted(set(t["rho"][cl])) == [0.85, 0.90, 1.0, 1.15]
    # each clamped lane carries its groups' shares of ||W||² at t_int
    share = np.array(FAKE_GROUP_NORMS) ** 2 / np.sum(np.array(FAKE_GROUP_NORMS) ** 2)
    for g, f in zip(("embed", "hidden", "out"), share):
        np.testing.assert_allclose(t[f"frac_{g}_t_int"][cl].astype(float), f)
    # The auxiliary run to t_int is not recorded.
    aux = [ph for ph in phases if not ph.record]
    assert len(aux) == 1 and set(aux[0].meta["budget"]) == {500}


def test_log_delay_paper_grid():
    cfg, phases = expand("log_delay")
    t = recorded(phases)
    free, clamp = t["arm"] == "free", t["arm"] == "clamp"
    assert free.sum() == 288 and clamp.sum() == 48
    assert Counter(zip(t["lr"][free], t["wd"][free], t["init_scale"][free])) == {
        (lr, wd, k): 16 for lr in (5e-4, 1e-3, 2e-3) for wd in (0.5, 1.0, 2.0) for k in (1.0, 1.5)
    }
    assert sorted(set(t["rho"][clamp])) == [0.85, 1.0, 1.15]
    assert set(t["lr"][clamp]) == {1e-3} and set(t["wd"][clamp]) == {1.0}
    assert_matched_seeds(t, 16, base=5000)


@pytest.mark.parametrize("name", NEW)
def test_presets_validate_and_cost(name):
    s = spec(name)
    for preset in ("paper", "quick", "tiny"):
        cfg = experiment.config_for(s, preset, out="/nonexistent/run")
        assert "lane-steps" in s.cost(cfg)
    doc = s.doc
    for word in ("python -m experiments." + name, "paper", "quick", "tiny", "Paper"):
        assert word in doc, word


def test_phase_hparams_one_shot_and_group():
    from grokjax.protocol import FOREVER
    from grokjax.models import ModelSpec
    from grokjax.engine import Engine
    from grokjax.lane import Static

    eng = Engine(Static(model=ModelSpec(p=7, d=8, hidden=8), frac=0.5))
    cfg = common.MLPConfig(p=7, frac=0.5, d=8, hidden=8, seeds=1, steps=100, t_int=5)
    meta = common.lane_table(cfg, [dict(seed=0), dict(seed=1, clamp_steps=1, clamp_group="hidden")])
    hp = experiment.phase_hparams(eng, meta, cfg)
    assert list(hp.clamp_steps) == [FOREVER, 1]
    assert hp.groups.tolist() == [[True, True, True], [False, True, False]]
    from grokjax import cli

    with pytest.raises(cli.UsageError):
        experiment.group_mask(("embed", "hidden"), ["bogus"])


# ---------------------------------------------------------------------------------------------
# end to end on the tiny presets
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    out = {}
    for name in NEW:
        d = str(runs / f"{name}-tiny")
        assert spec(name).config_cls  # importable
        mod = __import__(f"experiments.{name}", fromlist=["main"])
        assert mod.main(["--preset", "tiny", "--out", d]) == 0
        out[name] = d
    return runs, out


@pytest.mark.parametrize("name", NEW)
def test_tiny_run_writes_every_file(tiny_runs, name):
    d = tiny_runs[1][name]
    assert experiment.is_complete(d)
    lanes = results.read_lanes_csv(os.path.join(d, "lanes.csv"))
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["experiment"] == name and cfg["preset"] == "tiny"
    assert lanes["cell"].dtype == object and all(isinstance(c, str) for c in lanes["cell"])
    assert lanes["clamp_group"].dtype == object
    curves = np.load(os.path.join(d, "curves.npz"))
    assert curves["norm"].shape[0] == len(lanes["seed"])
    assert "fourier_gini" in curves.files
    fit = json.load(open(os.path.join(d, "fit.json")))
    assert fit["lane_steps_executed"] > 0
    pngs = [f for f in os.listdir(d) if f.endswith(".png")]
    assert pngs and all(os.path.getsize(os.path.join(d, f)) > 0 for f in pngs)
    # Censored lanes are counted, not dropped: every lane the plan made is in lanes.csv.
    _, phases = expand(name, "tiny")
    assert len(lanes["seed"]) == sum(len(ph.meta["seed"]) for ph in phases if ph.record)
    n_cens = int((~lanes["grokked"] & ~lanes["diverged"]).sum())
    assert fit["n_censored"] == n_cens


def test_tiny_results_make_sense(tiny_runs):
    d = tiny_runs[1]
    lm = json.load(open(os.path.join(d["lr_matrix"], "fit.json")))
    held = [c for c in lm["cells"] if c["norm_over_held"] is not None]  # grokked when held
    assert held, "no clamped cell of the tiny lr_matrix grokked: nothing checked"
    assert all(c["norm_over_held"] == pytest.approx(1.0, abs=1e-3) for c in held)
    nc = results.read_lanes_csv(os.path.join(d["norm_controls"], "lanes.csv"))
    assert {"free", "clamp", "one_shot", "group_one_shot", "low_init"} <= set(nc["arm"])
    assert "to-t_int" not in set(nc["cell"])
    # each clamped cell that grokked carries its groups' shares of ||W||² before and after
    # the clamp, and the summary prints them
    from experiments import norm_controls

    ncf = json.load(open(os.path.join(d["norm_controls"], "fit.json")))
    shared = [c for c in ncf["clamped"] if c.get("norm_fractions")]
    assert shared, "no clamped cell of the tiny norm_controls grokked: nothing checked"
    for c in shared:
        for when in ("t_int", "T_grok"):
            total = sum(v[when] for v in c["norm_fractions"].values())
            assert total == pytest.approx(1.0, abs=1e-3)
    cfg = experiment.config_for(norm_controls.SPEC, "tiny", out=d["norm_controls"])
    text = norm_controls.summary(ncf, cfg)
    assert "at t_int -> at T_grok" in text
    assert f"clamp rho {shared[0]['key']:g}: " in text
    dr = json.load(open(os.path.join(d["dense_rho"], "fit.json")))
    # the tiny scan's law (5.5 over [0.9, 1.1] on CPU): rising, and not absurdly steep
    assert 3.0 < dr["delay_law"]["alpha"] < 11.0
    ld = json.load(open(os.path.join(d["log_delay"], "fit.json")))
    assert ld["timescale"]["n_cells"] == 2  # wd 1 and 2 at one lr


def test_rerun_is_resumed_from_phase_files_and_other_config_refused(tiny_runs, capsys):
    from experiments import dense_rho

    d = tiny_runs[1]["dense_rho"]
    before = open(os.path.join(d, "lanes.csv")).read()
    assert dense_rho.main(["--preset", "tiny", "--out", d]) == 0
    assert "finished earlier: loaded" in capsys.readouterr().out
    assert open(os.path.join(d, "lanes.csv")).read() == before
    assert dense_rho.main_cli(["--preset", "tiny", "--out", d, "--seeds", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs in: seeds" in err
    assert dense_rho.main_cli(["--preset", "tiny", "--out", tiny_runs[1]["lr_matrix"]]) == 2
    assert "experiment 'lr_matrix'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--preset", "nope"], "unknown preset"),
        (["--seeds", "0"], "seeds"),
        (["--rho", "-1"], "rho"),
        (["--p", "1"], "p must be"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_bad_input_is_one_line(args, msg, capsys, tmp_path):
    from experiments import dense_rho

    plans.assert_one_line_error(dense_rho.main_cli, args, msg, capsys, tmp_path)


def test_report_reads_every_experiment(tiny_runs, tmp_path):
    from grokjax import report

    dirs = list(tiny_runs[1].values())
    import experiments.catalog  # noqa: F401  (registers every experiment)

    data = report.build(dirs, str(tmp_path / "rep"))
    status = {e["experiment"]: e["status"] for e in data["experiments"]}
    for name in NEW:
        assert status[name] == "run", name
    assert status["delay_sweep"] == "not run"
    text = data["text"]
    for name in NEW:
        assert f"### {name}" in text, name
    assert os.path.exists(tmp_path / "rep" / "lr_matrix-tiny_lr_matrix.png")
    # The norm controls are set against the paper's numbers (tiny runs: not its protocol).
    rows = {r["key"]: r for r in data["comparison"]}
    for key in ("one_shot_fold", "group_one_shot"):
        assert rows[key]["status"] == "not comparable", rows[key]
        assert rows[key]["run"] == "norm_controls-tiny"
    assert rows["wc_lr_cv_wd3"]["status"] == "not run"  # the tiny grid has one lr


def test_reproduce_skips_finished_runs_and_reports(tiny_runs, tmp_path, capsys):
    from experiments import reproduce

    runs = tiny_runs[0]
    out = str(tmp_path / "rep")
    assert (
        reproduce.main(
            ["--preset", "tiny", "--runs", str(runs), "--out", out, "--only", ",".join(NEW)]
        )
        == 0
    )
    o = capsys.readouterr().out
    assert o.count("finished earlier") == len(NEW)
    assert os.path.exists(os.path.join(out, "report.md"))


def test_reproduce_list(tmp_path):
    # an empty --runs: nothing ran here; then one run directory with a timing.json: that
    # line (and only that one) gives its measured training time
    runs = tmp_path / "runs"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.reproduce",
            "--list",
            "--preset",
            "paper",
            "--runs",
            str(runs),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    from experiments import reproduce

    assert len(lines) == len(reproduce.EXPERIMENTS) and all("lane-steps" in x for x in lines)
    assert all("not run here yet" in line for line in lines)
    assert lines[0].startswith("delay_sweep") and "840 lanes" in r.stdout
    d = runs / "lr_matrix-paper"
    d.mkdir(parents=True)
    results.write_json(
        str(d / "timing.json"),
        {
            "backend": "cpu",
            "devices": 1,
            "phases": {"free": {"wall_s": 60.0}, "clamp": {"wall_s": 120.0}},
        },
    )
    assert reproduce.measured_line(str(runs), "lr_matrix", "paper") == (
        "ran here in 3.0 min of training (cpu, 1 device(s))"
    )
    assert reproduce.measured_line(str(runs), "dense_rho", "paper") == "not run here yet"


def test_log_delay_timescale():
    from experiments.log_delay import _timescale

    cells = [
        dict(lr=lr, wd=wd, init_scale=1.0, delay=4.0 / (lr * wd))
        for lr in (1e-3, 2e-3)
        for wd in (1.0, 2.0)
    ]
    cells.append(dict(lr=1e-3, wd=1.0, init_scale=1.5, delay=99.0))  # other init: left out
    ts = _timescale(cells)
    assert ts["exponent"] == pytest.approx(-1.0) and ts["delay_x_lr_wd"] == pytest.approx(4.0)
    assert ts["n_cells"] == 4 and ts["cv"] == pytest.approx(0.0, abs=1e-12)
    assert _timescale(cells[:1]) is None  # one value of lr·wd: nothing to fit
