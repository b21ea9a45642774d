"""Figures a researcher can put in a talk: the paper's values on every figure that has one,
CIs where a cell has seeds, no empty panels, plain tick labels, honest axis ranges."""

import dataclasses
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from grokjax import paper, plots, registry, runs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fitted_run(name: str, run_dir: str):
    import experiments.catalog  # noqa: F401  (registers the experiments' fits)

    spec = registry.get(name)
    run = runs.load_run(os.path.join(ROOT, "results", run_dir))
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    cfg = spec.config_cls(**{k: v for k, v in run.config.items() if k in fields})
    lanes = runs.read_lanes(os.path.join(run.path, "lanes.csv"))
    return lanes, spec.fit(lanes, cfg)


def aspect(png: str) -> float:
    img = mpimg.imread(png)
    return img.shape[1] / img.shape[0]


def test_the_paper_values_the_figures_draw():
    assert plots.paper_alpha("mlp") == 7.5 and plots.paper_alpha("attn") == 15.45
    assert plots.paper_alpha("bits") is None
    assert plots.paper_medians("mlp", 59) == {
        0.85: 1492.0,
        1.0: 4077.0,
        1.15: 13426.0,
        1.3: 27925.0,
    }
    assert plots.paper_medians("mlp", 67) == {}  # held-out predictions are not the paper's
    wc = plots.paper_wc("mlp")
    assert wc[59] == paper.PAPER["wc_p59"].value and 67 not in wc
    proto = dict(model="mlp", frac=0.4, lr=1e-3, wd=1.0)
    assert plots.on_protocol(proto) and plots.on_protocol({**proto, "d": 128})
    assert not plots.on_protocol({**proto, "lr": 1e-2}) and not plots.on_protocol(
        {**proto, "d": 64}
    )
    assert not plots.on_protocol({"model": "mlp"})  # unknown settings are not the paper's


def test_the_paper_line_goes_through_its_medians_or_only_its_slope_is_drawn():
    ov = plots.paper_overlay("mlp", 59, [0.85, 1.0], [1000.0, 3000.0], True)
    at = plots.paper_medians("mlp", 59)
    fitted_c = np.mean([math.log(at[r]) - 7.5 * r for r in (0.85, 1.0, 1.15)])  # rho <= 1.15
    assert ov["points"] == at and math.isclose(ov["c"], fitted_c) and ov["hi"] == 1.15
    assert "through the paper's medians" in ov["label"]
    own = plots.paper_overlay("mlp", 59, [0.85, 1.0], [1000.0, 3000.0], False)
    assert own["points"] == {} and "slope only" in own["label"]
    assert math.isclose(own["c"], np.mean([math.log(1000) - 7.5 * 0.85, math.log(3000) - 7.5]))
    assert plots.paper_overlay("bits", 30, [1.0], [100.0], True) is None


def test_median_ratio_ci_brackets_the_ratio():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1000, 50, 16), rng.normal(2000, 100, 16)
    no = np.zeros(16, bool)
    lo, hi = plots.median_ratio_ci(a, no, b, no)
    assert lo < np.median(a) / np.median(b) < hi and hi - lo < 0.2
    assert plots.median_ratio_ci(a[:1], no[:1], b, no) == [None, None]


def test_plain_ticks_and_a_relative_axis():
    fig, ax = plt.subplots()
    ax.plot([3e-4, 1e-3, 3e-3], [49.09, 48.98, 48.83])
    ax.set_xscale("log")
    plots.plain_ticks_at(ax, [3e-4, 1e-3, 3e-3], "x")
    plots.relative_ylim(ax, [49.09, 48.98, 48.83], 0.05)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["0.0003", "0.001", "0.003"]
    assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    lo, hi = ax.get_ylim()
    assert lo <= 48.98 * 0.95 + 1e-9 and hi >= 48.98 * 1.05 - 1e-9  # 0.3 % looks small
    plt.close(fig)


def test_critical_norm_without_curves_has_no_empty_panel(tmp_path):
    lanes, fitted = fitted_run("critical_norm", "critical_norm-paper-pgrid")
    two = plots.critical_norm_figure(lanes, fitted, {}, str(tmp_path), "a_")[0]
    assert 1.9 < aspect(two) < 2.8, aspect(two)  # two panels: W_c against p and against lr
    lanes, fitted = fitted_run("critical_norm", "critical_norm-paper-p59")  # one lr
    one = plots.critical_norm_figure(lanes, fitted, {}, str(tmp_path), "b_")[0]
    assert aspect(one) < 1.6, aspect(one)


@pytest.mark.parametrize(
    "name,run_dir",
    [
        ("dense_rho", "dense_rho-paper"),
        ("lr_matrix", "lr_matrix-paper-lr1e-3"),
        ("norm_controls", "norm_controls-paper-s2000"),
    ],
)
def test_experiment_figures_draw_from_committed_runs(name, run_dir, tmp_path):
    lanes, fitted = fitted_run(name, run_dir)
    files = plots.EXPERIMENT_FIGURES[name](lanes, fitted, {}, str(tmp_path), "x_")
    assert [os.path.basename(f) for f in files] == [f"x_{name}.png"]
    img = mpimg.imread(files[0])[..., :3]
    assert img.std() > 0.02
