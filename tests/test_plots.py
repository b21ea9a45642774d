"""grokjax.plots: every figure is written as PNG and PDF, has content, and refuses empty input."""

import json
import os

import numpy as np
import pytest

from grokjax import fit, plots, results, tables
from grokjax.runs import load_runs
from test_report import make_run


def _check(files, stem):
    assert [os.path.basename(f) for f in files] == [f"{stem}.png", f"{stem}.pdf"]
    import matplotlib.image as mpimg

    img = mpimg.imread(files[0])[..., :3]
    assert img.shape[0] > 200 and img.shape[1] > 200
    assert img.std() > 0.02 and (img.mean(-1) < 0.8).mean() > 0.003, "blank image"
    assert open(files[1], "rb").read(5) == b"%PDF-" and os.path.getsize(files[1]) > 5000


def test_trajectories(tmp_path):
    s = np.array([0, 10, 20, 50, 100, 200, 500, 1000])
    acc = np.linspace(0, 1, s.size)
    panel = dict(
        label="free",
        steps=s,
        train_acc=acc,
        test_acc=acc**3,
        norm=40 - acc * 5,
        t_mem=50,
        t_grok=500,
        wc=35.0,
        target=None,
    )
    clamp = dict(panel, label="clamped", target=32.0, t_grok=None)
    _check(plots.trajectories([panel, clamp], str(tmp_path / "traj.png"), title="t"), "traj")
    with pytest.raises(ValueError):
        plots.trajectories([], str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()


def test_wc_scaling_and_delay_law_groups(tmp_path):
    ps = [29, 41, 59, 97]
    wc = [42.0, 48.0, 54.6, 67.0]
    pl = fit.power_law(np.array(ps, float), np.array(wc))
    series = dict(
        label="frac 0.4",
        x=ps,
        median=wc,
        lo=[w - 1 for w in wc],
        hi=[w + 1 for w in wc],
        seeds_x=ps * 2,
        seeds_y=wc + wc,
        fit=pl,
    )
    _check(plots.wc_scaling([series], [], str(tmp_path / "wc.png"), paper_points={59: 54.6}), "wc")
    with pytest.raises(ValueError):
        plots.wc_scaling([], [], str(tmp_path / "x.png"))

    rho = np.repeat([0.85, 1.0, 1.15], 3)
    t = np.exp(7.5 * rho) * np.tile([0.9, 1.0, 1.1], 3)
    law = fit.delay_law(rho, t, n_boot=0)
    pg = law["per_group"]["all"]
    ser = dict(
        label="p = 59",
        rho=rho,
        t=t,
        censored=np.zeros(rho.size, bool),
        cells_rho=[0.85, 1.0, 1.15],
        cells_median=[c["median"] for c in law["cells"]],
        line=(pg["alpha"], pg["intercept"]),
        line_label="fit",
    )
    cens = dict(ser, label="p = 41", censored=rho > 1.1, line=None)
    collapse = dict(
        alpha=law["alpha"],
        label="shared",
        points=[
            dict(label="p = 59", rho=[0.85, 1.0, 1.15], y=[7.5 * r for r in (0.85, 1.0, 1.15)])
        ],
    )
    _check(plots.delay_law_groups([ser, cens], str(tmp_path / "dl.png"), collapse=collapse), "dl")

    # a group without the paper's law (paper None, as a p the paper did not run) before one
    # with it: the second draws the paper's law and medians
    paper = dict(alpha=7.5, c=0.0, hi=1.2, label="paper", points={1.0: float(np.exp(7.5))})
    series = [dict(ser, paper=None), dict(cens, paper=paper)]
    _check(plots.delay_law_groups(series, str(tmp_path / "dlp.png")), "dlp")


def test_delay_law_groups_where_every_cell_groks_at_one_step(tmp_path):
    """Every T_grok equal (a 1-seed parity block's two clamp cells, seen in a report test)
    once left the log axis a zero-height range, and the layout divided by it."""
    import warnings

    flat = dict(
        label="n_bits = 12",
        rho=np.array([0.9, 1.3]),
        t=np.array([110.0, 110.0]),
        censored=np.array([False, False]),
        cells_rho=[0.9, 1.3],
        cells_median=[110.0, 110.0],
        line=(0.0, float(np.log(110.0))),
        line_label="α = 0.00",
        paper=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        files = plots.delay_law_groups([flat], str(tmp_path / "flat.png"), title="t")
    _check(files, "flat")


def test_delay_law_of_a_run_whose_clamped_lanes_all_grok_at_one_step(tmp_path):
    """The per-run delay-law figure of a flat run (its fit's R² is None: nothing to explain)
    labels R² as missing; it once raised a TypeError formatting None."""
    run = make_run(str(tmp_path / "r"), seeds=3)
    lanes = results.read_lanes_csv(os.path.join(run, "lanes.csv"))
    c = lanes["arm"] == "clamp"
    lanes["T_grok"] = np.where(c, 110.0, lanes["T_grok"])
    lanes["grokked"] = np.where(c, True, lanes["grokked"])
    law = fit.delay_law(lanes["rho"][c], lanes["T_grok"][c], n_boot=0)
    assert law["r2"] is None and law["alpha"] is not None
    files = plots.delay_law(lanes, {"per_p": {"59": {"delay_law": law}}}, str(tmp_path / "f.png"))
    assert os.path.getsize(files[0]) > 0


def test_norm_identity_and_layernorm_cv(tmp_path):
    tgt = np.array([30.0, 35.0, 40.0])
    _check(
        plots.norm_identity(
            [dict(label="p = 59", target=tgt, norm=tgt * (1 + 1e-7))], str(tmp_path / "id.png")
        ),
        "id",
    )
    rows = [
        dict(label="LayerNorm none", cv={"embed": 0.01, "attn": 0.02}),
        dict(label="LayerNorm all", cv={"embed": 0.10, "attn": None}),
    ]
    _check(plots.layernorm_cv(rows, ["embed", "attn"], str(tmp_path / "ln.png")), "ln")
    with pytest.raises(ValueError):
        plots.layernorm_cv([], ["embed"], str(tmp_path / "x.png"))


def test_legacy_delay_law_still_draws_from_a_fit_json_layout(tmp_path):
    run = make_run(str(tmp_path / "r"), seeds=3)
    lanes = results.read_lanes_csv(os.path.join(run, "lanes.csv"))
    c = lanes["arm"] == "clamp"
    t = np.where(lanes["grokked"][c], lanes["T_grok"][c], lanes["steps_run"][c])
    fitted = {
        "per_p": {
            "59": {"delay_law": fit.delay_law(lanes["rho"][c], t, censored=~lanes["grokked"][c])}
        }
    }
    json.dumps(fitted)
    files = plots.delay_law(lanes, fitted, str(tmp_path / "delay_law.png"))
    assert files == [str(tmp_path / "delay_law.png")] and os.path.getsize(files[0]) > 0
    # a run of free lanes only draws an empty axis, without matplotlib's empty-legend warning
    import warnings

    free = {k: v[~c] for k, v in lanes.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        files = plots.delay_law(free, {"per_p": {}}, str(tmp_path / "free.png"))
    assert os.path.getsize(files[0]) > 0


def test_report_figures_for_multi_p_multi_lr_and_attention_runs(tmp_path):
    runs = load_runs(
        [
            make_run(
                str(tmp_path / "multi"), p=(41, 59, 71), lr=(1e-3, 4e-3), seeds=3, frac=(0.3, 0.4)
            ),
            make_run(
                str(tmp_path / "attn"),
                experiment="transformer",
                model="attn",
                hidden=512,
                layernorm="none",
                seeds=3,
                seed=1,
            ),
            make_run(
                str(tmp_path / "attn_ln"),
                experiment="transformer",
                model="attn",
                hidden=512,
                layernorm="all",
                seeds=3,
                seed=2,
            ),
        ]
    )
    out = str(tmp_path / "figs")
    os.makedirs(out)
    figs = {f["name"]: f for f in plots.make_figures(runs[:1], out)}
    for name in (
        "multi_trajectories",
        "multi_wc_scaling",
        "multi_delay_law",
        "multi_delay_law_lr",
        "multi_norm_at_grok",
    ):
        assert "files" in figs[name], figs[name]
        _check([os.path.join(out, f) for f in figs[name]["files"]], name)
    assert "not run" in figs["layernorm_cv"]["skipped"]
    ln = tables.layernorm_table(runs)
    assert {r["layernorm"] for r in ln} == {"none", "all"}
    assert set(ln[0]) >= {"cv_embed", "cv_attn", "cv_mlp", "cv_unembed", "cv_total"}
    figs = {f["name"]: f for f in plots.make_figures(runs[1:], out)}
    _check([os.path.join(out, f) for f in figs["layernorm_cv"]["files"]], "layernorm_cv")
    assert "skipped" in figs["delay_law_models"]  # one model kind without LayerNorm
    figs = {f["name"]: f for f in plots.make_figures(runs[:2], out)}
    _check([os.path.join(out, f) for f in figs["delay_law_models"]["files"]], "delay_law_models")


def test_a_saved_pdf_is_the_same_bytes_each_time(tmp_path):
    """plots.save writes no creation date, so rebuilding a report from unchanged runs leaves
    its committed PDFs unchanged."""
    import hashlib
    import time

    import matplotlib.pyplot as plt

    digests = []
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.plot([1, 2], [3, 4])
        (path,) = plots.save(fig, str(tmp_path / "f.pdf"), ("pdf",))
        with open(path, "rb") as fh:
            digests.append(hashlib.sha256(fh.read()).hexdigest())
        time.sleep(1.1)  # a PDF date has one-second resolution
    assert digests[0] == digests[1]
