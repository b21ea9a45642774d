"""The lane schema (grokjax.schema): every column a run writes is declared once, a dry run
writes the columns a real run writes, the readers, checks and cell keys derive from it, and run
directories written before a rename still read (the committed delay_sweep run; a parity run in
the layout that stored its bit count in p and m / (m + n_test) in frac)."""

import csv
import dataclasses
import importlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from grokjax import cells, dryrun, experiment, results, runs, schema
from grokjax.models import GROUPS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "results", "delay_sweep-paper-p59")


def dry_rows(spec, cfg) -> list[dict]:
    """The rows a dry run of ``cfg`` makes (every recorded phase's lanes)."""
    rows = []
    for ph in experiment.check_plan(spec, cfg):
        if ph.record:
            groups = GROUPS.get(ph.static.model.kind, ())
            for r in dryrun._dry_outcome(ph, groups).rows:
                rows.append(dict(r, lane=len(rows)))
    return rows


def header(path: str) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def test_every_column_a_plan_writes_is_declared(tmp_path):
    import experiments.catalog  # noqa: F401
    from grokjax import registry

    seen = set()
    for spec in registry.specs():
        cfg = experiment.config_for(spec, "tiny", str(tmp_path / spec.name))
        rows = dry_rows(spec, cfg)
        path = str(tmp_path / f"{spec.name}.csv")
        results.write_lanes_csv(path, rows)
        cols = header(path)
        assert cols[: len(schema.STANDARD)] == list(schema.STANDARD)
        undeclared = [c for c in cols if schema.column(c) is None]
        assert not undeclared, (spec.name, undeclared)
        seen |= set(cols)
    # the schema holds no column that no experiment writes (per-group ones by their pattern),
    # but the settings config.json records once, which the reader fills in per lane
    unused = [
        c.name
        for c in schema.COLUMNS
        if not any(schema.column(k) is c for k in seen)
        and c.name != "frac_{group}_t_int"
        and not c.config
    ]
    assert not unused
    # norm_controls' frac_<group>_t_int columns are added after the run, from its curves
    assert schema.column("frac_embed_t_int").name == "frac_{group}_t_int"


def test_a_dry_run_writes_the_columns_of_a_real_run(tmp_path):
    parity = importlib.import_module("experiments.parity")
    fields = dict(seeds=1, m_values=[], lrs=[1e-2], wds=[1.0], rho=[1.3], steps=600)
    cfg = experiment.config_for(parity.SPEC, "tiny", str(tmp_path / "real"), **fields)
    dry = str(tmp_path / "dry.csv")
    results.write_lanes_csv(dry, dry_rows(parity.SPEC, cfg))
    assert experiment.run(parity.SPEC, cfg) == 0
    real = os.path.join(cfg.out, "lanes.csv")
    assert header(dry) == header(real)
    # parity's task size is in its own columns: no bit count in p, no m / (m + n_test) in frac
    lanes = results.read_lanes_csv(real)
    assert np.isnan(lanes["p"]).all() and np.isnan(lanes["frac"]).all()
    assert (lanes["n_bits"] == 12).all() and (lanes["n_train"] == 300).all()
    assert "m" not in lanes
    run = runs.load_run(cfg.out)
    assert [c for c, _ in cells.free_groups(run)][0]["n_bits"] == 12


def _old_parity_layout(d) -> None:
    """A parity run directory as written before the rename (p = n, frac = m / (m + n_test),
    an m column): written from a dry run of the tiny preset."""
    parity = importlib.import_module("experiments.parity")
    cfg = experiment.config_for(parity.SPEC, "tiny", str(d))
    rows = dry_rows(parity.SPEC, cfg)
    for r in rows:
        r["p"], r["m"] = r["n_bits"], r.pop("n_train")
        r["frac"] = r["m"] / (r["m"] + r["n_test"])
    os.makedirs(d)
    results.write_json(os.path.join(d, "config.json"), dataclasses.asdict(cfg))
    results.write_lanes_csv(os.path.join(d, "lanes.csv"), rows)


def test_an_old_parity_run_reads_with_the_new_meaning(tmp_path):
    d = tmp_path / "old-parity"
    _old_parity_layout(d)
    cols = header(os.path.join(d, "lanes.csv"))
    assert "m" in cols and "n_train" not in cols
    with open(os.path.join(d, "lanes.csv"), newline="") as f:
        first = next(csv.DictReader(f))
    assert first["p"] == first["n_bits"] != "" and float(first["frac"]) == 0.5
    run = runs.load_run(str(d))
    assert np.isnan(run.lanes["p"]).all() and np.isnan(run.lanes["frac"]).all()
    assert set(run.lanes["n_train"]) == {200.0, 300.0} and set(run.lanes["n_bits"]) == {12.0}
    assert "m" not in run.lanes
    # the cells are those of the old layout: one per (n, m, lr, wd), as p and frac made them
    free = cells.free_groups(run)
    assert len(free) == len({(c["n_train"], c["lr"], c["wd"]) for c, _ in free}) == 7


def test_old_parity_lanes_without_m_take_n_train_from_frac():
    lanes = {
        "model": np.array(["bits", "bits"], dtype=object),
        "p": np.array([30.0, 30.0]),
        "frac": np.array([1000 / 3000, 0.5]),
    }
    schema.upgrade(lanes, {"n_test": 2000})
    assert lanes["n_bits"].tolist() == [30, 30] and lanes["n_train"].tolist() == [1000, 2000]
    assert np.isnan(lanes["p"]).all() and np.isnan(lanes["frac"]).all()


def test_modular_lanes_are_left_alone():
    lanes = {"model": np.array(["mlp"], dtype=object), "p": np.array([59.0])}
    assert schema.upgrade(lanes) == {"model": lanes["model"], "p": lanes["p"]}
    assert "n_bits" not in lanes


def test_the_committed_sweep_still_loads():
    run = runs.load_run(SWEEP)
    assert set(run.lanes["p"]) == {59.0} and "n_bits" not in run.lanes
    assert run.lanes["norm_at_test80"].shape == (run.n,)
    assert [c for c, _ in cells.free_groups(run)][0]["p"] == 59


def test_p_is_required_except_in_a_parity_lane(tmp_path):
    ok = {"lane": np.array([0.0]), "seed": np.array([0.0]), "steps_run": np.array([5.0])}
    with pytest.raises(ValueError, match="column p is empty"):
        results.check_lane_values(dict(ok, p=np.array([np.nan])))
    results.check_lane_values(dict(ok, p=np.array([np.nan]), n_bits=np.array([12.0])))
    with pytest.raises(ValueError, match="column n_bits holds 1.5"):
        results.check_lane_values(dict(ok, p=np.array([np.nan]), n_bits=np.array([1.5])))


def test_everything_derives_from_the_declarations():
    assert results.LANE_COLUMNS == schema.STANDARD
    assert runs.REQUIRED_COLUMNS == schema.REQUIRED and runs.CONFIG_FIELDS == schema.CONFIG_FIELDS
    assert cells.FREE_KEYS[:8] == ("model", "layernorm", "d", "hidden", "frac", "lr", "wd", "p")
    assert cells.CLAMP_KEYS == cells.FREE_KEYS + ("t_int", "clamp_mode")
    assert cells.CONTROL_KEYS == cells.FREE_KEYS + ("t_int",)
    for c in schema.COLUMNS:
        assert c.role in schema.ROLES and c.type in (int, float, bool, str) and c.doc
    for k in schema.REQUIRED + schema.CONFIG_FIELDS + cells.CLAMP_KEYS + schema.CELL_COLUMNS:
        assert schema.column(k) is not None, k
    # a dry outcome holds exactly the declared events and measures a run writes
    out = schema.dry_outcome(100, ("embed", "out"))
    written = {c for c in schema.STANDARD if schema.BY_NAME[c].role != "setting"}
    assert set(out) == written | {"norm_at_grok_embed", "norm_at_grok_out"}


def test_the_column_table_prints_and_is_in_the_docs():
    text = subprocess.run(
        [sys.executable, "-m", "grokjax.schema"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(schema.COLUMNS)
    with open(os.path.join(ROOT, "docs", "usage.md")) as f:
        assert text.strip() in f.read()


def test_a_damaged_value_in_a_declared_column_is_refused(tmp_path):
    path = tmp_path / "lanes.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["lane", "p", "seed", "steps_run", "hidden"])
    w.writerow([0, 59, 0, 10, "wide"])
    path.write_text(buf.getvalue())
    with pytest.raises(ValueError, match="column hidden holds text"):
        results.read_lanes_csv(str(path))
