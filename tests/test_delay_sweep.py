"""End to end: ``python -m experiments.delay_sweep`` on the tiny preset, and its input checks."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import delay_sweep
from grokjax import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sweep") / "run")
    assert delay_sweep.main(["--preset", "tiny", "--out", out]) == 0
    return out


def test_tiny_sweep_writes_every_output(tiny_run):
    for name in ("config.json", "lanes.csv", "curves.npz", "fit.json", "delay_law.png"):
        assert os.path.getsize(os.path.join(tiny_run, name)) > 0, name
    lanes = results.read_lanes_csv(os.path.join(tiny_run, "lanes.csv"))
    for col in (
        "p",
        "seed",
        "arm",
        "rho",
        "target_norm",
        "lr",
        "wd",
        "t_int",
        "T_mem",
        "T_grok",
        "grokked",
        "norm_at_grok",
        "diverged",
        "steps_run",
    ):
        assert col in lanes, col
    cfg = json.load(open(os.path.join(tiny_run, "config.json")))
    n_free, n_clamp = cfg["seeds"], cfg["seeds"] * len(cfg["rho"])
    assert (lanes["arm"] == "free").sum() == n_free and (lanes["arm"] == "clamp").sum() == n_clamp
    free, clamp = lanes["arm"] == "free", lanes["arm"] == "clamp"
    assert lanes["grokked"][free].all()
    fit = json.load(open(os.path.join(tiny_run, "fit.json")))
    wc = fit["per_p"]["31"]["Wc"]["median"]
    assert wc == pytest.approx(np.median(lanes["norm_at_grok"][free]), rel=1e-6)
    # Targets are rho·Wc and every grokked clamped lane groks at its held norm.
    np.testing.assert_allclose(lanes["target_norm"][clamp], lanes["rho"][clamp] * wc, rtol=1e-6)
    g = clamp & lanes["grokked"]
    np.testing.assert_allclose(lanes["norm_at_grok"][g], lanes["target_norm"][g], rtol=1e-4)
    law = fit["per_p"]["31"]["delay_law"]
    # T_grok rises with the held norm: the tiny model's law (6.74 on CPU) near the paper's 7.5
    assert 4.0 < law["alpha"] < 11.0
    curves = np.load(os.path.join(tiny_run, "curves.npz"))
    assert curves["norm"].shape[0] == len(lanes["seed"]) == curves["steps"].shape[0]


def test_rerun_with_other_config_is_refused(tiny_run, capsys):
    before = open(os.path.join(tiny_run, "lanes.csv")).read()
    assert delay_sweep.main_cli(["--preset", "tiny", "--out", tiny_run, "--seeds", "3"]) == 2
    err = capsys.readouterr().err
    assert "seeds" in err and len(err.strip().splitlines()) == 1
    assert open(os.path.join(tiny_run, "lanes.csv")).read() == before


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--preset", "nope"], "unknown preset"),
        (["--rho", "-1,1"], "rho"),
        (["--p", "1"], "p must be"),
        (["--frac", "1.5"], "fraction"),
        (["--seeds", "0"], "seeds"),
        (["--lr", "0"], "lr"),
        (["--steps", "100", "--t-int", "500"], "t_int"),
        (["--bogus"], "unrecognized"),
        (["--rho", ""], "empty"),
    ],
)
def test_bad_input_gives_one_line_error(args, msg, capsys, tmp_path):
    assert delay_sweep.main_cli(args + ["--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep me")
    assert delay_sweep.main_cli(["--preset", "tiny", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err and f.read_text() == "keep me"


def test_module_entry_point_exits_nonzero_with_one_line():
    r = subprocess.run(
        [sys.executable, "-m", "experiments.delay_sweep", "--preset", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "delay_sweep: error: unknown preset 'nope'; choose one of quick, paper, tiny"
    ]
