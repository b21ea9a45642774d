"""The Python entry point (grokjax.api): a real tiny run from Python, its results object, the
refusals, resuming, and that nothing global is left changed."""

import os

import numpy as np
import pytest

from grokjax import api, cli


def test_unknown_fields_are_refused_by_name_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(cli.UsageError, match=r"unknown field\(s\) seed, wdd"):
        api.run("delay_sweep", "tiny", out=str(out), seed=3, wdd=1.0, progress=False)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        api.run("delay_sweep", "huge", out=str(out), progress=False)
    with pytest.raises(ValueError, match="no experiment 'nope'"):
        api.run("nope", "tiny", progress=False)
    assert not out.exists()


def test_a_bad_value_is_the_command_lines_one_line_error(tmp_path):
    with pytest.raises(cli.UsageError) as e:
        api.run("delay_sweep", "tiny", out=str(tmp_path / "r"), rho=[1.0, 1.0], progress=False)
    assert "given twice" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "r").exists()


def test_scalars_are_accepted_where_a_field_holds_a_list():
    from experiments import delay_sweep

    got = api._overrides(delay_sweep.SPEC, "tiny", {"p": 23, "rho": (0.85, 1.0), "seeds": 3})
    assert got == {"p": [23], "rho": [0.85, 1.0], "seeds": 3}


def test_a_sweep_from_python_returns_its_lanes_fit_and_curves_and_resumes(tmp_path, capsys):
    import jax

    x64 = bool(jax.config.jax_enable_x64)
    out = tmp_path / "sweep"
    log = tmp_path / "progress.log"
    res = api.run(
        "delay_sweep", "tiny", out=str(out), p=23, rho=[0.9, 1.1], seeds=2, progress=str(log)
    )
    assert capsys.readouterr().out == ""  # the lines went to the log file
    assert "W_c" in log.read_text()
    assert res.out == str(out) and res.config["p"] == [23] and res.config["seeds"] == 2
    assert res.n_lanes == 6  # 2 free + 2 seeds x 2 held norms
    clamp = res.select(arm="clamp", rho=1.1)
    assert len(clamp) == 2 and np.all(res.lanes["p"][clamp] == 23)
    assert res.curves["steps"].shape[0] == res.curves["test_acc"].shape[0] == 6
    assert res.fit["per_p"]["23"]["delay_law"]["n_lanes"] == 4
    assert bool(jax.config.jax_enable_x64) == x64
    # the same call resumes the finished run: nothing is retrained, the same lanes come back
    again = api.run(
        "delay_sweep", "tiny", out=str(out), p=23, rho=[0.9, 1.1], seeds=2, progress=False
    )
    assert capsys.readouterr().out == ""
    assert np.array_equal(again.lanes["T_grok"], res.lanes["T_grok"], equal_nan=True)
    # and a run directory reads back without running anything
    loaded = api.load(str(out))
    assert np.array_equal(loaded.lanes["seed"], res.lanes["seed"])


def test_a_float64_run_leaves_the_x64_flag_as_it_was(tmp_path):
    import jax

    before = bool(jax.config.jax_enable_x64)
    res = api.run("delay_sweep", "tiny", p=11, rho=1.0, seeds=1, dtype="float64", progress=False)
    assert res.out is None and res.config["dtype"] == "float64"
    assert bool(jax.config.jax_enable_x64) == before


def test_to_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    res = api.load(os.path.join(os.path.dirname(__file__), "..", "results", "dense_rho-paper"))
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == res.n_lanes


def test_importing_and_drawing_leaves_matplotlibs_backend_alone(tmp_path):
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import grokjax.plots as p; "
        "fig, ax = p.subplots(1, 2, figsize=(4, 2), squeeze=False); ax[0, 0].plot([1, 2]); "
        f"p.save(fig, {str(tmp_path / 'f.png')!r}, ('png', 'pdf')); "
        "import matplotlib.pyplot as plt; print(matplotlib.get_backend(), plt.get_fignums())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "[]"]
    assert (tmp_path / "f.png").stat().st_size > 500 and (tmp_path / "f.pdf").exists()
