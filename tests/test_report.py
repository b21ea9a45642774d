"""``python -m experiments.report``: tables, figures and the paper comparison from run dirs."""

import contextlib
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import experiments.catalog  # noqa: F401  (registers every experiment, as the report's CLI does)
from experiments import delay_sweep
from experiments import report as report_cli
from grokjax import cells, compare, fit, paper, registry, report, results, tables
from grokjax.runs import RunDirError, load_run, load_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------------
# synthetic run directories in the format of grokjax.results (no training: seconds)
#
# T_grok follows the paper's delay law by construction, ln T = alpha·rho + c_p + noise, with
# c_p such that the paper's medians come out at p=59 (4077 steps at rho=1), a weak lr effect
# (T ∝ lr^-1/3, so 2x across lr 1e-3..8e-3) and an optional saturation at rho=1.30. Free
# lanes grok at ‖W‖ = W_c(p)·(1 + cv·noise). Also used by tests/test_plots.py.
# --------------------------------------------------------------------------------------------

GROUPS = {
    "mlp": ("embed", "hidden", "out"),
    "attn": ("embed", "attn", "mlp", "unembed"),
    "bits": ("hidden", "out"),
}


def make_run(
    path: str,
    *,
    experiment: str = "delay_sweep",
    model: str = "mlp",
    p=(59,),
    rho=(0.85, 1.0, 1.15),
    lr=(1e-3,),
    seeds: int = 8,
    frac: float = 0.4,
    wd: float = 1.0,
    d: int = 128,
    hidden: int = 256,
    t_int: int = 500,
    alpha: float = 7.5,
    wc=None,
    cv: float = 0.015,
    free_t: float = 5100.0,
    sigma: float = 0.08,
    saturation: float = 1.0,
    budget: int | None = None,
    layernorm: str | None = None,
    group_cv: float | None = None,
    diverge: int = 0,
    seed: int = 0,
    free: bool = True,
    t1: float = 4077.0,
    sat_rho: float = 1.30,
    unembed: dict | None = None,
    embed: dict | None = None,
) -> str:
    """Writes config.json, lanes.csv and curves.npz into ``path`` and returns it.

    ``wc``: {p: W_c} (default: the paper's 54.6·(p/59)^0.41). ``budget``: one step budget
    (lanes beyond it are censored); default 4× the noiseless time. ``diverge``: the first
    ``diverge`` clamped lanes are marked diverged. ``group_cv``: seed CV of each group's norm
    at T_grok (default ``cv``). ``t1``: median clamped T_grok at rho=1, lr 1e-3, p=59.
    ``sat_rho``: the rho that ``saturation`` multiplies. ``unembed``: {p: norm}: the unembedding
    norm at T_grok, independent of the total norm (seed CV ``group_cv``); ``embed`` likewise
    for the embedding."""
    rng = np.random.default_rng(seed)
    wc = wc or {q: 54.6 * (q / 59) ** 0.41 for q in p}
    groups = GROUPS[model]
    rows, curves = [], []
    grid = np.unique(np.round(np.geomspace(1, 400_000, 90)).astype(int))
    grid = np.concatenate([[0], grid])

    fracs = tuple(frac) if isinstance(frac, (tuple, list)) else (frac,)

    def lane(q, s, arm, r, l, f):
        scale = (l / 1e-3) ** (-1 / 3)
        wcq = wc[q] * (f / fracs[0]) ** -0.25
        if arm == "free":
            t0 = free_t * (q / 59) * scale
            target = 0.0
        else:
            c = math.log(t1) - alpha * 1.0 + math.log(q / 59)
            t0 = math.exp(alpha * r + c) * scale
            if math.isclose(r, sat_rho):
                t0 *= saturation
            target = r * wcq
        t = t0 * math.exp(sigma * rng.standard_normal())
        b = budget or int(4 * t0)
        t_mem = int(max(50, 0.1 * t0))
        grok = t <= b
        tg = int(round(t)) if grok else None
        norm_grok = wcq * (1 + cv * rng.standard_normal()) if arm == "free" else target
        gcv = cv if group_cv is None else group_cv
        gnorms = [
            (
                unembed[q]
                if (unembed and g == "unembed")
                else embed[q]
                if (embed and g == "embed")
                else norm_grok / math.sqrt(len(groups))
            )
            * (1 + gcv * rng.standard_normal())
            for g in groups
        ]
        row = dict(
            p=q,
            seed=s,
            arm=arm,
            rho=None if arm == "free" else r,
            target_norm=target,
            lr=l,
            wd=wd,
            t_int=t_int if arm == "clamp" else 0,
            clamp_mode="continuous" if arm == "clamp" else "none",
            init_scale=1.0,
            frac=f,
            model=model,
            dtype="float32",
            budget=b,
            T_mem=t_mem,
            T_grok=tg,
            T_grok_80=None if tg is None else int(0.9 * tg),
            T_grok_95=None if tg is None else int(1.1 * tg),
            grokked=grok,
            norm_at_mem=1.3 * wcq,
            norm_at_grok=norm_grok if grok else None,
            norm_at_test80=norm_grok if grok else None,
            norm_at_test95=norm_grok if grok else None,
            collapse_at_grok=0.0,
            diverged=False,
            diverged_step=None,
            steps_run=min(int(1.3 * tg), b) if grok else b,
        )
        for g, v in zip(groups, gnorms):
            row[f"norm_at_grok_{g}"] = v if grok else None
        end = row["steps_run"]
        st = grid.astype(float)
        ls = np.log1p(st)
        tr = 1 / (1 + np.exp(-6 * (ls - math.log(t_mem * 0.7))))
        te = 1 / (1 + np.exp(-8 * (ls - math.log(t) + 0.3)))
        peak = 1.3 * wcq
        if arm == "free":
            nrm = np.where(
                st < t_mem,
                10 + (peak - 10) * st / t_mem,
                peak * (wcq / peak) ** np.clip((st - t_mem) / max(t - t_mem, 1), 0, 2),
            )
        else:
            nrm = np.where(st < t_int, 10 + (peak - 10) * np.minimum(st / t_mem, 1), target)
        rec = st <= end
        cur = {
            k: np.where(rec, v, np.nan)
            for k, v in dict(
                train_acc=tr,
                test_acc=te,
                train_loss=1 - tr,
                test_loss=1 - te,
                norm=nrm,
                collapse=np.zeros_like(st),
            ).items()
        }
        cur["steps"] = np.where(rec, grid, -1)
        cur["group_norms"] = np.stack([cur["norm"] / math.sqrt(len(groups))] * len(groups), -1)
        rows.append(row)
        curves.append(cur)

    for f in fracs:
        for q in p:
            for l in lr:
                if free:
                    for s in range(seeds):
                        lane(q, s, "free", None, l, f)
                for r in rho:
                    for s in range(seeds):
                        lane(q, s, "clamp", r, l, f)
    k = 0
    for row in rows:
        row["lane"] = len([r for r in rows if "lane" in r])
        if row["arm"] == "clamp" and k < diverge:
            row.update(
                diverged=True,
                diverged_step=700,
                grokked=False,
                T_grok=None,
                T_grok_80=None,
                T_grok_95=None,
                steps_run=700,
                norm_at_grok=None,
            )
            k += 1
    os.makedirs(path, exist_ok=True)
    cfg = dict(
        experiment=experiment,
        preset="synthetic",
        p=list(p),
        rho=list(rho),
        lr=list(lr),
        wd=wd,
        seeds=seeds,
        frac=list(fracs) if len(fracs) > 1 else frac,
        model=model,
        d=d,
        hidden=hidden,
        t_int=t_int,
    )
    if layernorm is not None:
        cfg["layernorm"] = layernorm
    results.write_json(os.path.join(path, "config.json"), cfg)
    results.write_lanes_csv(os.path.join(path, "lanes.csv"), rows)
    arrays = {key: np.stack([c[key] for c in curves]) for key in curves[0]}
    arrays["steps"] = arrays["steps"].astype(np.int64)
    arrays["groups"] = np.array(groups)
    np.savez_compressed(os.path.join(path, "curves.npz"), **arrays)
    return path


def _append_arms(path: str, extra: list) -> str:
    """Appends lanes to a make_run directory: ``extra`` holds (source row, updates, factor)
    with the source row's T_grok and steps_run multiplied by the factor; curves are copied."""
    with open(os.path.join(path, "lanes.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    n0 = len(rows)
    src = []
    for row, upd, k in extra:
        new = dict(row, **{key: str(v) for key, v in upd.items()}, lane=str(len(rows)))
        for col in ("T_grok", "steps_run"):
            if row[col] != "":
                new[col] = str(int(round(float(row[col]) * k)))
        rows.append(new)
        src.append(int(row["lane"]))
    for r in rows:
        r["clamp_group"] = r.get("clamp_group") or "all"
    results.write_lanes_csv(os.path.join(path, "lanes.csv"), rows)
    with np.load(os.path.join(path, "curves.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in arrays.items():
        if k != "groups":
            arrays[k] = np.concatenate([v[:n0], v[src]])
    np.savez_compressed(os.path.join(path, "curves.npz"), **arrays)
    return path


def ln_run(path: str, seed: int = 9) -> str:
    """A transformer-like run of the LayerNorm model: free lanes at p in {53, 71, 97} × three
    fractions whose total norm at T_grok drifts (CV ~0.16) while ‖U‖ ∝ p^0.77 is concentrated
    (CV 0.04), and group clamps at p=71, fraction 0.4 moving T_grok by at most 1.6×."""
    make_run(
        path,
        experiment="transformer",
        model="attn",
        hidden=512,
        layernorm="all",
        p=(53, 71, 97),
        frac=(0.4, 0.3, 0.55),
        rho=(),
        seeds=6,
        seed=seed,
        cv=0.14,
        group_cv=0.04,
        unembed={q: 8.0 * (q / 71) ** 0.77 for q in (53, 71, 97)},
    )
    with open(os.path.join(path, "lanes.csv"), newline="") as f:
        ctrl = [
            r
            for r in csv.DictReader(f)
            if r["p"] == "71" and float(r["frac"]) == 0.4 and r["arm"] == "free"
        ]
    extra = []
    for g, r, k in (
        ("unembed", 0.85, 0.8),
        ("unembed", 1.3, 1.6),
        ("embed", 1.3, 1.1),
        ("mlp", 0.85, 0.9),
        ("mlp", 1.3, 1.2),
    ):
        extra += [
            (
                row,
                dict(
                    arm="group_clamp",
                    clamp_group=g,
                    rho=r,
                    t_int=600,
                    clamp_mode="continuous",
                    target_norm=r * 5.0,
                ),
                k,
            )
            for row in ctrl
        ]
    return _append_arms(path, extra)


def controls_run(
    path: str, one_shot_fold: float = 1.2, group_dev: float = 0.02, seeds: int = 8, seed: int = 8
) -> str:
    """A norm_controls-like run: free controls at p=59 (make_run) plus one-shot rescales to
    rho·W_c (rho 0.70-1.30, T_grok scaled from 1 to ``one_shot_fold`` × the control) and
    one-shot ×0.8 of each group (T_grok within ``group_dev`` of the control)."""
    make_run(path, experiment="norm_controls", rho=(), seeds=seeds, seed=seed)
    with open(os.path.join(path, "lanes.csv"), newline="") as f:
        free = list(csv.DictReader(f))
    extra = []
    for r in (0.70, 0.85, 1.0, 1.15, 1.30):
        k = one_shot_fold ** ((r - 0.70) / 0.60)
        extra += [
            (row, dict(arm="one_shot", rho=r, t_int=500, clamp_mode="one_shot"), k) for row in free
        ]
    for g, dev in zip(GROUPS["mlp"], (group_dev, -group_dev, group_dev / 2)):
        extra += [
            (
                row,
                dict(arm="group_one_shot", clamp_group=g, t_int=500, clamp_mode="one_shot"),
                1 + dev,
            )
            for row in free
        ]
    return _append_arms(path, extra)


def paper_like(root: str) -> list[str]:
    """A set of runs that follows the paper's protocol and reproduces its numbers."""
    return [
        make_run(
            os.path.join(root, "sweep"),
            p=(41, 53, 59, 71),
            seeds=8,
            seed=1,
            wc={q: 54.6 * (q / 59) ** 0.31 for q in (41, 53, 59, 71)},
            embed={q: 30.0 * (q / 59) ** 0.72 for q in (41, 53, 59, 71)},
        ),
        make_run(
            os.path.join(root, "dense"),
            experiment="dense_rho",
            rho=tuple(np.round(np.arange(0.85, 1.2501, 0.05), 2)),
            seeds=6,
            seed=2,
            free=False,
        ),
        make_run(
            os.path.join(root, "lrm"),
            experiment="lr_matrix",
            rho=(0.85, 1.0, 1.15, 1.30),
            lr=(1e-3, 2e-3, 4e-3, 8e-3),
            seeds=6,
            seed=3,
            saturation=0.7,
            budget=200_000,
        ),
        make_run(
            os.path.join(root, "crit"),
            experiment="critical_norm",
            p=(29, 41, 59, 79, 97),
            rho=(),
            seeds=8,
            seed=4,
            wc={29: 36.56, 41: 48, 59: 54.6, 79: 61, 97: 67},
        ),
        make_run(
            os.path.join(root, "crit_lr"),
            experiment="critical_norm",
            p=(59,),
            frac=0.5,
            wd=3.0,
            lr=(3e-4, 1e-3, 3e-3),
            rho=(),
            seeds=8,
            seed=7,
        ),
        controls_run(os.path.join(root, "controls")),
        make_run(
            os.path.join(root, "attn"),
            experiment="transformer",
            model="attn",
            hidden=512,
            layernorm="none",
            alpha=15.45,
            wc={59: 36.9},
            seeds=6,
            seed=5,
            group_cv=0.02,
            lr=(5e-4,),
            t_int=600,
            rho=(0.85, 1.0, 1.15, 1.2),
            t1=6608 / 1.26,
            sat_rho=1.2,
            saturation=0.64,
        ),
        ln_run(os.path.join(root, "attn_ln")),
        make_run(
            os.path.join(root, "parity"),
            experiment="parity",
            model="bits",
            p=(30,),
            frac=1000 / 3000,
            hidden=512,
            lr=(5e-4, 1e-3, 2e-3),
            wc={30: 20.6},
            rho=(),
            seeds=6,
            seed=10,
        ),
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real tiny delay_sweep run (~30 s, shared) and the report over it."""
    root = tmp_path_factory.mktemp("report")
    run = str(root / "tiny")
    assert delay_sweep.main(["--preset", "tiny", "--out", run]) == 0
    out = str(root / "out")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert report_cli.main([run, "--out", out]) == 0
    data = json.load(open(os.path.join(out, "report.json")))
    return {
        "run": run,
        "out": out,
        "stdout": buf.getvalue(),
        "data": data,
        "md": open(os.path.join(out, "report.md")).read(),
        "lanes": results.read_lanes_csv(os.path.join(run, "lanes.csv")),
    }


def _times(lanes, m):
    return np.where(lanes["grokked"][m], lanes["T_grok"][m], lanes["steps_run"][m]), ~lanes[
        "grokked"
    ][m]


def _png_has_content(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 200, img.shape
    rgb = img[..., :3]
    assert rgb.std() > 0.02 and (rgb.mean(-1) < 0.8).mean() > 0.003, "blank image"


def test_writes_report_tables_and_figures(tiny):
    out = tiny["out"]
    for name in (
        "report.md",
        "report.json",
        "tgrok_matrix.md",
        "tgrok_matrix.csv",
        "alpha.md",
        "alpha.csv",
        "wc.md",
        "wc.csv",
    ):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    for fig in ("tiny_trajectories", "tiny_delay_law", "tiny_norm_at_grok"):
        png, pdf = os.path.join(out, fig + ".png"), os.path.join(out, fig + ".pdf")
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert open(pdf, "rb").read(5) == b"%PDF-" and os.path.getsize(pdf) > 5000
        _png_has_content(png)
        assert f"`{fig}.png`, `{fig}.pdf`" in tiny["md"]
    # one p, one fraction, one lr: those figures are skipped with a reason, not drawn empty
    skipped = {f["name"]: f["skipped"] for f in tiny["data"]["figures"] if "skipped" in f}
    assert set(skipped) == {
        "tiny_wc_scaling",
        "tiny_delay_law_lr",
        "layernorm_cv",
        "delay_law_models",
    }
    assert not os.path.exists(os.path.join(out, "tiny_wc_scaling.png"))
    assert "not run" in skipped["layernorm_cv"]
    assert "two model kinds" in skipped["delay_law_models"]
    # a summary is printed, not report.md: the lanes read, the tally, where report.md is
    lines = tiny["stdout"].splitlines()
    assert tiny["md"] not in tiny["stdout"] and len(lines) <= 4, lines
    assert lines[0] == "read 1 run(s), 8 lanes (0 censored)"
    assert lines[1].startswith("paper comparison: 0 pass, 0 FAIL, ")
    assert lines[-1].startswith(f"wrote {os.path.join(out, 'report.md')} (the full report)")


def test_numbers_equal_a_recomputation_from_lanes(tiny):
    L, data, md = tiny["lanes"], tiny["data"], tiny["md"]
    free = (L["arm"] == "free") & L["grokked"] & ~L["diverged"]
    wc = fit.critical_norm(L["norm_at_grok"][free], seed=0)
    (row,) = data["tables"]["wc"]
    assert row["Wc_median"] == wc["median"] and row["Wc_cv"] == wc["cv"]
    assert [row["Wc_ci_lo"], row["Wc_ci_hi"]] == wc["ci"] and row["Wc_n"] == wc["n"] == 2
    assert f"| {tables.fmt(wc['median'])} | {tables.fmt(100 * wc['cv'])} |" in md

    clamp = (L["arm"] == "clamp") & ~L["diverged"]
    t, c = _times(L, clamp)
    law = fit.delay_law(L["rho"][clamp], t, censored=c, seed=0)
    (arow,) = data["tables"]["alpha"]
    assert arow["alpha"] == law["alpha"] and arow["r2"] == law["r2"]
    assert [arow["alpha_ci_lo"], arow["alpha_ci_hi"]] == law["alpha_ci"]
    assert f"| {tables.fmt(law['alpha'])} | [{tables.fmt(law['alpha_ci'][0])}, " in md
    cells = {r["rho"]: r for r in data["tables"]["tgrok_matrix"]}
    for rho in sorted(set(L["rho"][clamp])):
        m = clamp & np.isclose(L["rho"], rho)
        tt, cc = _times(L, m)
        assert cells[rho]["median"] == fit.censored_median(tt, cc)
        assert cells[rho]["n"] == m.sum() and cells[rho]["n_censored"] == cc.sum()
    # two pipelines, one number: the report's alpha (its own selection of the lanes from
    # lanes.csv) is the sweep's fit.json alpha (experiments.delay_sweep.fit_sweep's selection)
    fj = json.load(open(os.path.join(tiny["run"], "fit.json")))
    assert fj["per_p"]["31"]["delay_law"]["alpha"] == pytest.approx(arow["alpha"], rel=1e-12)
    # and it is the least-squares slope of log median T_grok on rho, by numpy alone
    rhos = sorted(set(L["rho"][clamp]))
    assert not any(cells[r]["n_censored"] for r in rhos)
    slope = np.polyfit(rhos, np.log([cells[r]["median"] for r in rhos]), 1)[0]
    assert arow["alpha"] == pytest.approx(slope, rel=1e-9)
    tf, cf = _times(L, L["arm"] == "free")
    assert cells["free"]["median"] == fit.censored_median(tf, cf) == row["free_T_grok_median"]

    # the comparison rows carry the same numbers as the tables
    rows = {r["key"]: r for r in data["comparison"]}
    assert rows["wc_p59"]["measured"] == wc["median"]
    assert rows["alpha_p"]["measured"] == law["alpha"]


def test_tiny_run_is_not_comparable_and_missing_experiments_are_not_run(tiny):
    rows = tiny["data"]["comparison"]
    assert {r["status"] for r in rows} <= {"not comparable", "not run"}
    wc = next(r for r in rows if r["key"] == "wc_p59")
    assert wc["status"] == "not comparable" and wc["rel_diff"] is None
    for diff in (
        "p=31 (paper 59)",
        "frac=0.7 (paper 0.4)",
        "lr=0.01 (paper 0.001)",
        "d=64 (paper 128)",
        "hidden=128 (paper 256)",
    ):
        assert diff in wc["note"]
    # the paper's other moduli were not run at all: "not run", not "not comparable"
    assert next(r for r in rows if r["key"] == "wc_p97")["status"] == "not run"
    exps = {e["experiment"]: e["status"] for e in tiny["data"]["experiments"]}
    assert exps.pop("delay_sweep") == "run"
    assert set(exps) >= {
        "critical_norm",
        "lr_matrix",
        "dense_rho",
        "norm_controls",
        "transformer",
        "parity",
    }
    assert set(exps.values()) == {"not run"}
    for e in exps:
        assert f"| {e} | not run |" in tiny["md"]
    assert "| dense-rho alpha at p=59 |  |  |  | — | 7.64 [7.47, 7.81] |" in tiny["md"]
    assert "| **pass** |" not in tiny["md"] and "| **FAIL** |" not in tiny["md"]


def test_run_dir_with_a_missing_file_is_a_one_line_error(tiny, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(tiny["run"], bad)
    os.remove(bad / "lanes.csv")
    out = tmp_path / "out"
    assert report_cli.main_cli([str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"report: error: {bad}: missing lanes.csv"
    assert not out.exists()


@pytest.mark.parametrize(
    "args,msg",
    [
        (["/nonexistent/run"], "/nonexistent/run: not a run directory"),
        ([], "required: RUN_DIR"),
    ],
)
def test_module_entry_point_exits_nonzero_with_one_line(args, msg, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "experiments.report", *args, "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report: error:") and msg in lines[0], lines


def test_unreadable_files_are_one_line_errors(tmp_path):
    run = make_run(str(tmp_path / "r"), seeds=2)
    open(os.path.join(run, "config.json"), "w").write("{not json")
    with pytest.raises(RunDirError, match="unreadable config.json") as e:
        load_run(run)
    assert "\n" not in str(e.value)
    run = make_run(str(tmp_path / "r2"), seeds=2)
    np.savez(os.path.join(run, "curves.npz"), steps=np.zeros((8, 3)))
    with pytest.raises(RunDirError, match="curves.npz lacks train_acc"):
        load_run(run)


# --------------------------------------------------------------------------------------------
# the comparable / not-comparable logic, on synthetic configurations
# --------------------------------------------------------------------------------------------


def test_mismatches_against_the_protocol():
    proto = dict(paper.CLAMP_PROTOCOL, p=59)
    assert compare.mismatches(dict(proto), proto) == []
    cond = dict(proto, d=64, frac=0.7)
    assert compare.mismatches(cond, proto) == [
        ("d", "d=64 (paper 128)"),
        ("frac", "frac=0.7 (paper 0.4)"),
    ]
    cond = {k: v for k, v in proto.items() if k != "hidden"}
    assert compare.mismatches(cond, proto) == [("hidden", "hidden not recorded (paper 256)")]
    # float settings compare with a tolerance, not bit for bit
    assert compare.mismatches(dict(proto, lr=0.1 * 0.01), proto) == []
    shared = dict(paper.CLAMP_PROTOCOL, p=(41, 53, 59, 71))
    assert compare.mismatches(dict(shared, p=(41, 59)), shared) == []
    assert compare.mismatches(dict(shared, p=(31, 59)), shared)[0][0] == "p"
    assert compare.mismatches(dict(shared, p=(41, 59), lr=(1e-3, 2e-3)), shared)[0][0] == "lr"


def _status(rows, key):
    return [(r["status"], r["note"]) for r in rows if r["key"] == key]


def test_protocol_runs_pass_or_fail_and_others_are_not_comparable(tmp_path):
    good = load_run(make_run(str(tmp_path / "good"), seeds=8))
    steep = load_run(make_run(str(tmp_path / "steep"), seeds=8, alpha=11.0, seed=1))
    wide = load_run(make_run(str(tmp_path / "wide"), seeds=8, d=256, frac=0.5, seed=2))
    refs = [paper.reference(k) for k in ("alpha_p", "wc_p59", "wc_p41", "tgrok_p59_rho1.00")]
    rows = compare.compare([good], refs)
    assert [r["status"] for r in rows] == ["pass", "pass", "not run", "pass"]
    assert _status(rows, "wc_p41")[0][1].startswith("needs free runs at p=41")
    (a,) = [r for r in rows if r["key"] == "alpha_p"]
    assert a["rel_diff"] == pytest.approx((a["measured"] - 7.5) / 7.5)

    rows = compare.compare([steep], refs[:1])
    assert rows[0]["status"] == "FAIL" and rows[0]["measured"] > 7.5 * 1.15

    rows = compare.compare([wide], refs)
    for key in ("alpha_p", "wc_p59", "tgrok_p59_rho1.00"):
        ((status, note),) = _status(rows, key)
        assert status == "not comparable" and "d=256 (paper 128)" in note
        assert "frac=0.5 (paper 0.4)" in note
    # a protocol run next to a non-protocol run: only the protocol run is judged
    rows = compare.compare([wide, good], refs[:1])
    assert [(r["run"], r["status"]) for r in rows] == [("good", "pass")]


def test_paper_like_runs_reproduce_every_reference(tmp_path):
    runs = load_runs(paper_like(str(tmp_path)))
    rows = compare.compare(runs)
    keys = {r["key"] for r in rows}
    assert keys == set(paper.PAPER)
    # the held-out prediction's cells (p = 67, 97) are not in the paper-like runs
    rows = [r for r in rows if not r["key"].startswith("heldout_")]
    bad = [(r["key"], r["run"], r["status"], r["measured"]) for r in rows if r["status"] != "pass"]
    assert not bad
    # every experiment the paper-like set contains is listed as run
    exps = {e["experiment"]: e["status"] for e in report.experiments(runs)}
    assert exps["dense_rho"] == exps["lr_matrix"] == exps["transformer"] == "run"
    assert exps["parity"] == "run"


def test_paper_like_runs_with_a_steeper_law_fail(tmp_path):
    # The same set with the sweep's delay law at alpha = 10 instead of 7.5: every reference
    # drawn from the sweep must FAIL (the test above passes by construction otherwise), the
    # references drawn from the other runs still pass.
    dirs = paper_like(str(tmp_path))
    make_run(
        dirs[0],
        p=(41, 53, 59, 71),
        seeds=8,
        seed=1,
        alpha=10.0,
        wc={q: 54.6 * (q / 59) ** 0.31 for q in (41, 53, 59, 71)},
        embed={q: 30.0 * (q / 59) ** 0.72 for q in (41, 53, 59, 71)},
    )
    rows = [r for r in compare.compare(load_runs(dirs)) if not r["key"].startswith("heldout_")]
    failed = {(r["key"], r["run"]) for r in rows if r["status"] == "FAIL"}
    assert ("alpha_shared", "sweep") in failed and ("alpha_p", "sweep") in failed
    shared = next(r for r in rows if r["key"] == "alpha_shared")
    assert shared["measured"] == pytest.approx(10.0, abs=0.3)
    assert {r["run"] for r in rows if r["status"] != "pass"} == {"sweep"}
    assert next(r for r in rows if r["key"] == "alpha_dense")["status"] == "pass"


def test_paper_seed_counts_get_the_tighter_tolerances(tmp_path):
    # The synthetic law exp(7.5·(rho − 1))·4077 puts rho 0.85 / 1.15 at 1324 / 12556, 11 % / 6 %
    # off the paper's medians 1492 / 13426: within 25 % at 8 seeds, not within 10 % at 12.
    rows = {}
    for n in (8, 12):
        run = load_run(make_run(str(tmp_path / f"s{n}"), seeds=n, seed=1))
        rows[n] = {r["key"]: r for r in compare.compare([run])}
    for n, tol, status in ((8, "within 25 %", "pass"), (12, "within 10 %", "FAIL")):
        r = rows[n]["tgrok_p59_rho0.85"]
        assert (r["seeds"], r["tolerance"], r["status"]) == (n, tol, status)
    r = rows[12]["tgrok_p59_rho1.15"]
    assert r["status"] == "pass" and r["tolerance"] == "within 10 %"
    assert rows[12]["alpha_p"]["tolerance"] == "within ±0.5"


def test_deviations_from_the_paper_fail(tmp_path):
    lrm = load_run(
        make_run(
            str(tmp_path / "lrm"),
            experiment="lr_matrix",
            rho=(0.85, 1.0, 1.15, 1.30),
            lr=(1e-3, 2e-3, 4e-3, 8e-3),
            seeds=4,
            saturation=1.0,
            budget=300_000,
        )
    )
    rows = compare.compare([lrm], [paper.reference("saturation"), paper.reference("lr_fold")])
    sat = rows[0]
    assert sat["status"] == "FAIL" and sat["measured"] == pytest.approx(1.0, abs=0.15)
    assert rows[1]["status"] == "pass"


def test_censored_and_diverged_lanes(tmp_path):
    run = load_run(
        make_run(
            str(tmp_path / "c"), rho=(0.85, 1.0, 1.15, 1.30), seeds=6, budget=20_000, diverge=2
        )
    )
    counts = tables.run_counts(run)
    assert counts["diverged"] == 2 and counts["censored"] == 6
    rows = compare.compare(
        [run], [paper.reference("tgrok_p59_rho1.30"), paper.reference("tgrok_p59_rho0.85")]
    )
    assert rows[0]["status"] == "inconclusive" and "beyond the budget 20000" in rows[0]["note"]
    assert rows[1]["status"] == "pass" and "n=4" in rows[1]["note"]  # diverged lanes left out
    cells = tables.tgrok_matrix([run], n_boot=50)
    c130 = next(c for c in cells if c["rho"] == 1.3)
    assert c130["median"] is None and c130["n_censored"] == 6 and c130["censored_at"] == 20_000
    md = tables.tgrok_md(cells)
    assert "> 20000 (6/6 cens.)" in md and "(0/6 cens., 2 div.)" in md


def test_an_r2_over_as_many_cells_as_parameters_is_inconclusive_not_a_pass(tmp_path):
    """Two rho cells at one p: the fitted line passes through both, R² = 1 whatever the data,
    so the row cannot fail and is not judged (the attention model's committed 0.85 / 1.00 run
    once passed that way); with a third cell it is judged, and a bent third cell fails."""
    attn = dict(
        experiment="transformer",
        model="attn",
        hidden=512,
        layernorm="none",
        wc={59: 36.9},
        lr=(5e-4,),
        t_int=600,
        seeds=6,
        sigma=0.02,
    )
    ref = paper.reference("attn_r2")

    def row(name, **kw):
        run = load_run(make_run(str(tmp_path / name), **attn, **kw))
        (r,) = compare.compare([run], [ref])
        return r

    two = row("two", rho=(0.85, 1.0))
    assert two["status"] == "inconclusive" and two["measured"] is None
    assert "R² is 1 by construction: 2 cells, 2 parameters" in two["note"]
    three = row("three", rho=(0.85, 1.0, 1.15), alpha=15.45)
    assert three["status"] == "pass" and three["measured"] > 0.98
    bent = row("bent", rho=(0.85, 1.0, 1.15), alpha=15.45, saturation=0.2, sat_rho=1.0)
    assert bent["status"] == "FAIL" and bent["measured"] < 0.98


def test_paper_values_and_tolerances():
    P = paper.PAPER
    assert P["wc_p59"].value == 54.6 and P["wc_p59"].protocol["p"] == 59
    assert (P["alpha_dense"].value, P["alpha_dense"].lo, P["alpha_dense"].hi) == (7.64, 7.47, 7.81)
    assert [P[f"tgrok_p59_rho{r}"].value for r in ("0.85", "1.00", "1.15", "1.30")] == [
        1492,
        4077,
        13426,
        27925,
    ]
    assert P["attn_alpha"].value == 15.45 and P["attn_wc"].value == 36.9
    assert all(
        r.source.startswith("arXiv 2606.13753") or r.source.startswith(paper.HELDOUT_SOURCE)
        for r in paper.references()
    )
    assert P["wc_p59"].passes(54.6 * 1.049) and not P["wc_p59"].passes(54.6 * 1.051)
    assert P["alpha_shared"].passes(7.5 * 0.86) and not P["alpha_shared"].passes(7.5 * 0.84)
    assert P["wc_cv"].passes(0.029) and not P["wc_cv"].passes(0.031)
    assert P["wc_exponent"].passes(0.43) and not P["wc_exponent"].passes(0.41)
    assert (
        P["wc_exponent"].basis == "released data" and "text: 0.38-0.44" in P["wc_exponent"].text()
    )
    assert (P["wc_p29"].value, P["wc_p29"].basis, P["wc_p59"].basis) == (
        36.56,
        "released data",
        "text",
    )
    assert (P["embed_exponent"].value, P["embed_exponent"].text_value) == (0.72, "0.47")
    assert P["norm_fold"].passes(19 * 1.45) and not P["norm_fold"].passes(19 / 1.6)
    assert P["alpha_shared_r2"].passes(0.981) and not P["alpha_shared_r2"].passes(0.97)
    assert not P["wc_p59"].passes(float("nan"))


def test_norm_controls_against_the_paper(tmp_path):
    refs = [paper.reference("one_shot_fold"), paper.reference("group_one_shot")]
    good = load_run(controls_run(str(tmp_path / "good")))
    rows = compare.compare([good], refs)
    assert [r["status"] for r in rows] == ["pass", "pass"]
    assert rows[0]["measured"] == pytest.approx(1.2, rel=0.05)
    assert rows[1]["measured"] == pytest.approx(0.02, abs=0.01)
    bad = load_run(controls_run(str(tmp_path / "bad"), one_shot_fold=3.0, group_dev=0.2))
    assert [r["status"] for r in compare.compare([bad], refs)] == ["FAIL", "FAIL"]
    # A synthetic run without the experiment's cell columns still loads; its own section
    # says it cannot be recomputed instead of failing the report.
    sec = report.experiment_sections([good], str(tmp_path / "out"))
    (mine,) = [s for s in sec if s["run"] == good.name]
    assert mine["status"] == "unreadable" and mine["fit"] is None
    assert "KeyError: 'cell'" in mine["text"]


# --------------------------------------------------------------------------------------------
# the report's layers: the registry, the measures, the per-group norms, one-way imports
# --------------------------------------------------------------------------------------------


def test_every_reference_names_registered_experiments_and_a_measure():
    names = set(registry.names())
    for ref in paper.references():
        assert ref.experiments and set(ref.experiments) <= names, (ref.key, ref.experiments)
        assert ref.measure in compare.MEASURES, (ref.key, ref.measure)
    # and every measurement is some reference's
    assert {r.measure for r in paper.references()} == set(compare.MEASURES)


def test_the_experiments_come_from_the_registry(tmp_path):
    sweep = load_run(make_run(str(tmp_path / "sweep"), seeds=2))
    odd = load_run(make_run(str(tmp_path / "odd"), experiment="mystery", seeds=2, seed=1))
    rows = report.experiments([sweep, odd])
    assert [r["experiment"] for r in rows] == [*registry.names(), "mystery"]
    by = {r["experiment"]: r for r in rows}
    assert by["delay_sweep"] == {
        "experiment": "delay_sweep",
        "status": "run",
        "runs": ["sweep"],
        "about": registry.get("delay_sweep").about,
    }
    # a run of an experiment nobody registered: generic tables only, no section of its own
    assert by["mystery"]["about"] == report.UNKNOWN and by["mystery"]["runs"] == ["odd"]
    sec = report.experiment_sections([sweep, odd], str(tmp_path / "out"))
    assert [s["experiment"] for s in sec] == [s.name for s in registry.specs() if s.section]
    assert {s["status"] for s in sec} == {"not run"}


def test_per_group_norms_leave_out_the_threshold_norms(tmp_path):
    run = load_run(
        make_run(
            str(tmp_path / "attn"),
            experiment="transformer",
            model="attn",
            hidden=512,
            layernorm="none",
            seeds=4,
        )
    )
    want = {"embed", "attn", "mlp", "unembed"}
    names = cells.norm_groups(run)
    assert names[-1] == cells.TOTAL == "total" and set(names[:-1]) == want
    # the norms at test accuracy 0.8 / 0.95 are no group's, under either spelling
    for k in ("norm_at_grok_80", "norm_at_grok_95", "norm_at_test80", "norm_at_test95"):
        run.lanes[k] = run.lanes["norm_at_grok"]
    assert cells.norm_groups(run) == names
    idx = np.nonzero(run.arm("free") & run.lanes["grokked"])[0]
    total = fit.critical_norm(run.lanes["norm_at_grok"][idx], n_boot=0)["cv"]
    assert cells.norm_cvs(run, idx, ["unembed", "total"]) == {
        "unembed": fit.critical_norm(run.lanes["norm_at_grok_unembed"][idx], n_boot=0)["cv"],
        "total": total,
    }
    (row,) = tables.layernorm_table([run])
    assert row["cv_total"] == total and {f"cv_{g}" for g in want} < set(row)


def _grokjax_imports(path):
    """The grokjax modules ``path`` imports (anywhere in it), and every top-level package."""
    import ast

    mods, tops = set(), set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        tops |= {n.split(".")[0] for n in names}
        mods |= {n.split(".")[1] for n in names if n.startswith("grokjax.")}
    return mods, tops


def test_the_report_modules_import_one_way():
    order = ["runs", "cells", "tables", "compare", "plots", "report"]
    for i, m in enumerate(order):
        mods, tops = _grokjax_imports(os.path.join(ROOT, "grokjax", f"{m}.py"))
        assert "experiments" not in tops, f"grokjax/{m}.py imports the application"
        later = mods & set(order[i:])
        assert not later, f"grokjax/{m}.py imports {sorted(later)} (a later layer)"


def test_absolute_norm_and_embedding_exponent_rows_read_the_committed_sweep():
    """The two paper numbers added for the delay sweep are measured from committed lanes: the
    pooled line against the held norm itself over p = 53, 71, and (not run) the ‖E‖ exponent,
    which needs three p in one run."""
    from grokjax import compare, paper, runs as runs_lib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = runs_lib.load_runs([os.path.join(root, "results", "delay_sweep-paper-p53p71")])
    refs = paper.PAPER
    (cand,) = compare.candidates(refs["absolute_norm_r2"], run)
    assert cand.cond["p"] == (53, 71) and 0.0 <= cand.measured <= 1.0
    assert "an intercept per p" in cand.note
    assert compare.candidates(refs["embed_exponent"], run) == []


def test_runs_split_by_modulus_are_pooled_for_the_fits_across_p():
    """The paper preset run one modulus group at a time: runs.pool joins the three committed
    sweeps (configs equal but for p) into one run over p = 31..71, and the comparison measures
    the fits across p on it (the ‖E‖ exponent needs three of the paper's p, which no single
    run has); the 16-seed run at p = 59 (another seed set) and runs sharing a p stay apart."""
    from grokjax import runs as runs_lib

    names = ["delay_sweep-paper-p59", "delay_sweep-paper-p53p71", "delay_sweep-paper-p31p41"]
    dirs = [os.path.join(ROOT, "results", n) for n in names]
    loaded = load_runs(dirs + [os.path.join(ROOT, "results", "delay_sweep-p59-seeds1000")])
    (pooled,) = runs_lib.pool(loaded)
    assert pooled.name == "+".join(names) and pooled.config["p"] == [31, 41, 53, 59, 71]
    assert pooled.n == sum(r.n for r in loaded[:3])
    assert runs_lib.pool(loaded[:1]) == []
    # the same design at an overlapping modulus is not one design split by p
    twin = load_run(dirs[0])
    twin.config = dict(twin.config, out="elsewhere")
    assert runs_lib.pool([loaded[0], twin]) == []

    rows = {}
    for r in compare.compare(loaded, [r for r in paper.references() if r.pooled == "p"]):
        rows.setdefault(r["key"], []).append(r)
    (emb,) = rows["embed_exponent"]
    assert emb["run"] == pooled.name and emb["status"] in ("pass", "FAIL")
    assert "p={41, 53, 59, 71}" in emb["condition"]  # the paper's moduli only, not p = 31
    # the pooled shared alpha is the one the separate jobs' lanes give together, beside the
    # p = 53/71 run's own
    shared = {r["run"]: r["measured"] for r in rows["alpha_shared"]}
    assert set(shared) == {pooled.name, "delay_sweep-paper-p53p71"}
    assert shared[pooled.name] != shared["delay_sweep-paper-p53p71"]
    assert 6.0 < shared[pooled.name] < 10.0


def _fixed_wc_matrix(tmp_path, rho=(0.85, 1.0, 1.15)):
    """A synthetic lr_matrix run over lr 1e-3..8e-3 on 4 seeds, clamped to the fixed W_c 54.6."""
    whole = load_run(
        make_run(
            str(tmp_path / "lrm"),
            experiment="lr_matrix",
            rho=rho,
            lr=(1e-3, 2e-3, 4e-3, 8e-3),
            seeds=4,
            budget=300_000,
        )
    )
    whole.config = dict(
        whole.config, lrs=[1e-3, 2e-3, 4e-3, 8e-3], lr=1e-3, fixed_wc=54.6, seed_base=0
    )
    return whole


def _part(whole, name, keep, **cfg):
    """The lanes ``keep`` of ``whole`` as a run of their own (a job of the same design)."""
    from grokjax import runs as runs_lib

    return runs_lib.Run(
        path="",
        name=name,
        config=dict(whole.config, out=name, **cfg),
        lanes={k: v[keep] for k, v in whole.lanes.items()},
        curves={},
    )


def test_a_fixed_wc_matrix_run_one_lr_column_at_a_time_is_pooled_for_the_lr_effect(tmp_path):
    """lr_matrix with a fixed W_c is one design whichever lr columns a job ran: runs.pool(...,
    "lr") joins two column runs (configs equal but lrs / lr / out) into the whole matrix, and
    the report measures the lr effect (which needs all four lrs) on it, equal to the whole
    run's; runs that clamp to their own W_c, or that share an lr, stay apart."""
    from grokjax import runs as runs_lib

    whole = _fixed_wc_matrix(tmp_path)

    def column(name, lrs, **cfg):
        keep = np.isin(np.round(whole.lanes["lr"], 12), np.round(lrs, 12))
        return _part(whole, name, keep, lrs=list(lrs), lr=lrs[0], **cfg)

    a, b = column("lo", [1e-3, 2e-3]), column("hi", [4e-3, 8e-3])
    (pooled,) = runs_lib.pool([a, b], "lr")
    assert pooled.name == "lo+hi" and pooled.n == whole.n
    assert pooled.config["lrs"] == [1e-3, 2e-3, 4e-3, 8e-3] and pooled.config["lr"] == 1e-3
    assert runs_lib.pool([a, b]) == []  # the p axis: both runs are at p = 59
    own = [column("lo", [1e-3, 2e-3], fixed_wc=0.0), column("hi", [4e-3, 8e-3], fixed_wc=0.0)]
    assert runs_lib.pool(own, "lr") == []
    assert runs_lib.pool([a, column("mid", [2e-3, 4e-3])], "lr") == []
    with pytest.raises(ValueError, match="no pool axis"):
        runs_lib.pool([a, b], "wd")

    ref = paper.reference("lr_fold")
    (row,) = compare.compare([a, b], [ref])
    (alone,) = compare.compare([whole], [ref])
    assert row["run"] == "lo+hi" and row["status"] == alone["status"] == "pass"
    assert row["measured"] == pytest.approx(alone["measured"]) and 1.5 < row["measured"] < 3.0


def test_a_fixed_wc_design_run_one_block_of_seeds_at_a_time_is_measured_on_all_its_seeds(
    tmp_path,
):
    """Two jobs of one fixed-W_c design on disjoint seed blocks (--seeds 2, --seed-base 0 and
    2) are the design on four seeds: runs.pool(..., "seed") joins them, and the report measures
    every number on the pooled lanes as on the whole run, beside each block alone; blocks that
    clamp to their own W_c, or that share a seed, stay apart."""
    from grokjax import runs as runs_lib

    whole = _fixed_wc_matrix(tmp_path, rho=(0.85, 1.0, 1.15, 1.3))

    def block(name, seeds, **cfg):
        keep = np.isin(whole.lanes["seed"], seeds)
        return _part(whole, name, keep, seeds=len(seeds), seed_base=seeds[0], **cfg)

    a, b = block("s0", [0, 1]), block("s2", [2, 3])
    (pooled,) = runs_lib.pool([a, b], "seed")
    assert pooled.name == "s0+s2" and pooled.n == whole.n
    assert (pooled.config["seeds"], pooled.config["seed_base"]) == (4, 0)
    own = [block("s0", [0, 1], fixed_wc=0.0), block("s2", [2, 3], fixed_wc=0.0)]
    assert runs_lib.pool(own, "seed") == []
    assert runs_lib.pool([a, block("s1", [1, 2])], "seed") == []

    for key in ("norm_fold", "lr_fold", "tgrok_p59_rho1.00"):
        ref = paper.reference(key)
        rows = {r["run"]: r for r in compare.compare([a, b], [ref])}
        (alone,) = compare.compare([whole], [ref])
        assert set(rows) >= {"s0", "s2", "s0+s2"}, key
        assert rows["s0+s2"]["measured"] == pytest.approx(alone["measured"]), key
        assert rows["s0+s2"]["measured"] != rows["s0"]["measured"], key


def test_a_design_run_in_parts_gets_its_own_section_over_all_the_parts(tmp_path):
    """Beside each part's section, the report renders the experiment's own fit and summary over
    the pooled parts (seed blocks, lr columns), the same text as the design run in one job: a
    norm_controls or lr_matrix run in blocks is read as its whole design."""
    whole = _fixed_wc_matrix(tmp_path, rho=(0.85, 1.0, 1.15, 1.3))
    (alone,) = [s for s in report.experiment_sections([whole], str(tmp_path / "w")) if s["run"]]
    assert alone["status"] == "run", alone["text"]

    def part(name, col, vals, **cfg):
        return _part(whole, name, np.isin(np.round(whole.lanes[col], 12), vals), **cfg)

    blocks = [part("s0", "seed", [0, 1], seeds=2), part("s2", "seed", [2, 3], seeds=2, seed_base=2)]
    columns = [
        part("lo", "lr", [1e-3, 2e-3], lrs=[1e-3, 2e-3]),
        part("hi", "lr", [4e-3, 8e-3], lrs=[4e-3, 8e-3], lr=4e-3),
    ]
    for parts, joined in ((blocks, "s0+s2"), (columns, "lo+hi")):
        out = str(tmp_path / joined)
        sec = {s["run"]: s for s in report.experiment_sections(parts, out) if s["run"]}
        assert set(sec) == {parts[0].name, parts[1].name, joined}
        assert sec[joined]["status"] == "run" and sec[joined]["text"] == alone["text"]
        assert sec[parts[0].name]["text"] != alone["text"]
        assert os.path.isfile(tmp_path / joined / sec[joined]["figures"][0])
