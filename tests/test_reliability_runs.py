"""Damaged run directories read back (issue 26): a lanes.csv edited by hand (a grokked lane's
T_grok set to nan, inf or -100, a norm or rho set to nan, p set to nan), copied from a run
with another --seed-base, or with a row repeated or dropped, and an emptied or truncated
curves.npz. The one reader (``runs.load_run``: the lane schema, then the lanes against
config.json) refuses each in one line, so ``report`` and ``pool_sweeps`` exit 2 instead of
fitting other numbers under the run's name or raising a traceback. No lane is trained: the run
directory is written from the tiny preset's plan with made-up, seed-dependent outcomes."""

import csv
import dataclasses
import importlib
import io
import math
import os

import numpy as np
import pytest

from plans import one_line, snapshot

from grokjax import cli, dryrun, experiment, results, runs
from grokjax.models import GROUPS


def write_run(d, seed_base: int = 0, curves: bool = True) -> None:
    """A finished delay_sweep tiny run directory as a run writes it (config.json, lanes.csv,
    curves.npz), with made-up outcomes: T_grok grows with rho and differs per seed."""
    spec = importlib.import_module("experiments.delay_sweep").SPEC
    cfg = experiment.config_for(spec, "tiny", str(d), seed_base=seed_base)
    rows = []
    for ph in experiment.check_plan(spec, cfg):
        for r in dryrun._dry_outcome(ph, GROUPS["mlp"]).rows:
            rho = 1.0 if math.isnan(r["rho"]) else r["rho"]
            t = int(100 * math.exp(3 * rho)) + 10 * (r["seed"] - seed_base)
            r.update(lane=len(rows), T_grok=t, T_grok_80=t - 10, T_grok_95=t + 10, steps_run=t + 50)
            r.update(norm_at_grok=30.0 + r["seed"] % 3, T_mem=t // 3)
            rows.append(r)
    os.makedirs(d)
    results.write_json(str(d / "config.json"), dataclasses.asdict(cfg))
    results.write_lanes_csv(str(d / "lanes.csv"), rows)
    if curves:
        n = len(rows)
        np.savez_compressed(
            d / "curves.npz",
            steps=np.tile(np.arange(5) * 100, (n, 1)),
            train_acc=np.ones((n, 5)),
            test_acc=np.ones((n, 5)),
            norm=np.ones((n, 5)),
        )


def edit_lanes(d, change) -> None:
    """Rewrites lanes.csv after ``change(rows)`` (a list of dicts, header order kept)."""
    path = d / "lanes.csv"
    reader = csv.DictReader(io.StringIO(path.read_text()))
    rows = list(reader)
    rows = change(rows) or rows
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=reader.fieldnames, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())


def first(rows, **where):
    return next(r for r in rows if all(r[k] == v for k, v in where.items()))


def setter(column, value, **where):
    def change(rows):
        first(rows, grokked="1", **where)[column] = value

    return change


DAMAGE = {
    "T_grok nan": (setter("T_grok", "nan"), "T_grok must be given"),
    "T_grok inf": (setter("T_grok", "inf"), "column T_grok holds inf: not a finite"),
    "T_grok -100": (setter("T_grok", "-100"), "holds -100: not a whole number >= 0"),
    "T_grok empty, still grokked": (setter("T_grok", ""), "T_grok must be given"),
    "T_grok after steps_run": (setter("T_grok", "99999"), "after the lane's last step"),
    "norm_at_grok nan": (setter("norm_at_grok", "nan"), "norm at T_grok must be > 0"),
    "norm_at_grok empty": (setter("norm_at_grok", ""), "norm at T_grok must be > 0"),
    "rho nan": (setter("rho", "nan", arm="clamp"), "holds seeds"),
    "rho moved to another cell": (setter("rho", "1.05", arm="clamp"), "holds seeds"),
    "p nan": (setter("p", "nan"), "column p is empty (or nan): empty"),
    "lr -1": (setter("lr", "-1"), "must be > 0"),
    "grokked 2": (setter("grokked", "2"), "not 0 or 1"),
    "seeds of another --seed-base": (
        lambda rows: [r.update(seed=str(int(r["seed"]) + 7)) for r in rows] and None,
        "config.json (seed_base 0) gives every cell seeds 0..1",
    ),
    "a row repeated": (lambda rows: rows + [dict(rows[-1])], "is lane"),
    "a row repeated in place": (lambda rows: rows[:3] + rows[2:], "expected lane 3"),
    "the last row dropped": (lambda rows: rows[:-1], "holds seeds"),
    "a middle row dropped": (lambda rows: rows[:2] + rows[3:], "expected lane 2"),
    "two rows swapped": (lambda rows: [rows[1], rows[0]] + rows[2:], "expected lane 0"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_lanes_csv_is_refused_by_the_reader(damage, tmp_path):
    d = tmp_path / "run"
    write_run(d)
    runs.load_run(str(d))  # the undamaged run reads
    change, msg = DAMAGE[damage]
    edit_lanes(d, change)
    with pytest.raises(runs.RunDirError) as e:
        runs.load_run(str(d))
    assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("damage", list(DAMAGE)[::3])
@pytest.mark.parametrize("prog", ["report", "pool_sweeps"])
def test_report_and_pool_sweeps_refuse_a_damaged_run(prog, damage, tmp_path, capsys):
    d = tmp_path / "run"
    write_run(d)
    edit_lanes(d, DAMAGE[damage][0])
    before = snapshot(d)
    main = importlib.import_module(f"experiments.{prog}").main_cli
    args = [str(d), "--out", str(tmp_path / "rep")] if prog == "report" else [str(d), "--p", "31"]
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"{prog}: error: {d}") and DAMAGE[damage][1] in line, line
    assert snapshot(d) == before
    assert not (tmp_path / "rep").exists()


def test_a_run_copied_with_its_own_seed_base_reads(tmp_path):
    """The check is against the run's own config: seeds 7, 8 under seed_base 7 are fine."""
    write_run(tmp_path / "run", seed_base=7)
    r = runs.load_run(str(tmp_path / "run"))
    assert sorted(set(r.lanes["seed"])) == [7.0, 8.0]


CURVES = {
    "emptied": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "not a zip": lambda p: p.write_bytes(b"PK\x03\x04 not really a zip file at all"),
}


@pytest.mark.parametrize("damage", list(CURVES))
@pytest.mark.parametrize("prog", ["report", "pool_sweeps"])
def test_a_damaged_curves_npz_is_one_line(prog, damage, tmp_path, capsys):
    d = tmp_path / "run"
    write_run(d)
    CURVES[damage](d / "curves.npz")
    before = snapshot(d)
    main = importlib.import_module(f"experiments.{prog}").main_cli
    args = [str(d), "--out", str(tmp_path / "rep")] if prog == "report" else [str(d), "--p", "31"]
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert "unreadable curves.npz" in line, line
    assert snapshot(d) == before


def test_the_committed_results_still_read():
    """Every run directory under results/ passes the schema and the lanes-against-config
    checks (a false refusal would hide a real run from the report)."""
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
    dirs = sorted(
        os.path.join(root, x)
        for x in (os.listdir(root) if os.path.isdir(root) else [])
        if os.path.isfile(os.path.join(root, x, "lanes.csv"))
    )
    for d in dirs:
        runs.load_run(d)


def test_every_preset_plan_passes_the_lane_checks(tmp_path):
    """The lanes every experiment's plan writes (made-up outcomes) pass the lane schema and
    the seeds-per-cell check, for every preset: the checks refuse only damage."""
    import dataclasses

    import experiments.catalog  # noqa: F401
    from grokjax import registry

    for spec in registry.specs():
        for preset in spec.presets:
            cfg = experiment.config_for(spec, preset, str(tmp_path / "unused"))
            rows = []
            for ph in experiment.check_plan(spec, cfg):
                if ph.record:
                    groups = GROUPS.get(ph.static.model.kind, ())
                    for r in dryrun._dry_outcome(ph, groups).rows:
                        rows.append(dict(r, lane=len(rows)))
            path = str(tmp_path / f"{spec.name}-{preset}.csv")
            results.write_lanes_csv(path, rows)
            lanes = results.read_lanes_csv(path)
            results.check_lane_values(lanes, path)
            runs.check_lanes_match(path, dataclasses.asdict(cfg), lanes)


def test_usage_error_is_the_cli_error():
    # (pool_sweeps and report turn RunDirError into cli.UsageError: both are ValueErrors)
    assert issubclass(runs.RunDirError, ValueError) and issubclass(cli.UsageError, ValueError)
