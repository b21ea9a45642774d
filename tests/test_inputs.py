"""Bad inputs and damaged state, across every entry point (issue 15): each gets one line on
stderr and exit status 2, before any work, and leaves what is already on disk as it was.

Most calls are in-process (``main_cli(argv)``: seconds for the whole table); a few go through
``python -m`` to hold the real path. No test here trains a lane: every input is refused
before the first phase starts (``runner._run_phases`` is replaced by a tripwire)."""

import dataclasses
import errno
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from grokjax import cli, experiment, results, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GiB = 2**30
RUN_PHASES = runner._run_phases  # (the fixture below replaces it by a tripwire)


def entry(name):
    return importlib.import_module(f"experiments.{name}").main_cli


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """Any input that got past validation would train: fail the test instead."""

    def tripwire(*a, **k):
        raise AssertionError("the bad input was accepted and the run started")

    monkeypatch.setattr(runner, "_run_phases", tripwire)
    monkeypatch.setenv("GROKJAX_MEMORY", str(16 * GiB))  # the same limit everywhere


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(d) -> dict:
    """(bytes, mtime) of every file under ``d``."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            out[p] = (open(p, "rb").read(), os.stat(p).st_mtime_ns)
    return out


# (entry point, arguments after --preset tiny, a piece of the one-line message)
BAD = [
    # silent wrong results before: int32 wrap, duplicate cells, abbreviations
    ("delay_sweep", ["--steps", "3000000000"], "int32"),
    ("delay_sweep", ["--steps", "2000000000"], "step budget"),
    ("delay_sweep", ["--t-int", "3000000000"], "int32"),
    ("delay_sweep", ["--p", "31,31"], "given twice"),
    ("delay_sweep", ["--rho", "1,1"], "given twice"),
    ("delay_sweep", ["--rho", "1,1.0000001"], "given twice"),
    ("delay_sweep", ["--lr", "1e-2,0.01"], "given twice"),
    ("delay_sweep", ["--seed", "3"], "unrecognized arguments: --seed"),
    ("delay_sweep", ["--seed-b", "3"], "unrecognized arguments: --seed-b"),
    ("delay_sweep", ["--extra-rho", "1.3", "--extra-rho-p", "43"], "not among --p"),
    # tracebacks or hangs before
    ("delay_sweep", ["--p", "100000"], "GiB"),
    ("delay_sweep", ["--p", "3001"], "more than this machine's"),
    ("delay_sweep", ["--seeds", "100000000"], "seeds per cell"),
    ("delay_sweep", ["--preset", "quick", "--rho", "100"], "step budget"),
    ("delay_sweep", ["--preset", "quick", "--rho", "5"], "step budget"),
    ("delay_sweep", ["--model", "bits"], "needs op 'parity'"),
    ("delay_sweep", ["--model", "attn", "--d", "30"], "not divisible by heads"),
    ("delay_sweep", ["--lr", "nan"], "finite"),
    ("delay_sweep", ["--wd", "inf"], "finite"),
    ("delay_sweep", ["--rho", "1e300"], "held norm"),
    ("delay_sweep", ["--chunk-steps", "7"], "multiple of eval_every"),
    ("delay_sweep", ["--keep-checkpoints", "0"], "keep-checkpoints"),
    ("delay_sweep", ["--checkpoint-every-chunks", "3000000000"], "at most"),
    ("delay_sweep", ["--dtype", "float16"], "float32 or float64"),
    ("delay_sweep", ["--seed-base", "3000000000"], "int32"),
    # the same kinds on the other experiments
    ("critical_norm", ["--steps", "3000000000"], "int32"),
    ("critical_norm", ["--p", "31,31"], "given twice"),
    ("critical_norm", ["--seed", "1"], "unrecognized"),
    ("critical_norm", ["--p", "100000"], "GiB"),
    ("critical_norm", ["--low-frac", "-1"], "(0, 1)"),
    ("critical_norm", ["--seeds", "100000000"], "seeds per cell"),
    ("lr_matrix", ["--lrs", "1e-3,1e-3"], "given twice"),
    ("lr_matrix", ["--rho", "nan"], "finite"),
    ("lr_matrix", ["--steps", "3000000000"], "int32"),
    ("lr_matrix", ["--lrs", "1e300"], "learning rate"),
    ("dense_rho", ["--rho", "1,1"], "given twice"),
    ("dense_rho", ["--budget-rho", "-1,1", "--budget-steps", "100,200"], "budget-rho"),
    ("dense_rho", ["--seeds", "100000000"], "seeds per cell"),
    ("dense_rho", ["--p", "100000"], "GiB"),
    ("norm_controls", ["--groups", "embed,embed"], "given twice"),
    ("norm_controls", ["--wds", "1e300"], "weight decay"),
    ("norm_controls", ["--t-int", "3000000000"], "int32"),
    ("log_delay", ["--init-scales", "1,1"], "given twice"),
    ("log_delay", ["--lrs", "inf"], "finite"),
    ("log_delay", ["--init", "1"], "unrecognized"),
    ("transformer", ["--d", "30"], "multiple of --heads"),
    ("transformer", ["--ln-seeds", "100000000"], "seeds per cell"),
    ("transformer", ["--clamps", "unembed:1,unembed:1"], "given twice"),
    ("transformer", ["--ln-p", "100000"], "GiB"),
    ("parity", ["--lrs", "1e-3,1e-3"], "given twice"),
    ("parity", ["--m", "3000000000"], "int32"),
    ("parity", ["--m", "2000000000", "--n-bits", "40"], "more than this machine's"),
    ("parity", ["--seeds", "100000000"], "seeds per cell"),
    ("parity", ["--n-bits", "100000000"], "n_bits must be at most"),
]


@pytest.mark.parametrize("name,args,msg", BAD, ids=[f"{n}:{' '.join(a)}" for n, a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(name, args, msg, capsys, tmp_path):
    out = tmp_path / "x"
    assert entry(name)(["--preset", "tiny", "--out", str(out)] + args) == 2
    line = one_line(capsys)
    assert line.startswith(f"{name}: error: ") and msg in line, line
    assert not out.exists()


def fake_run_dir(name: str, d) -> dict:
    """A run directory of ``name``'s tiny preset as a finished run leaves it (config.json as
    the run writes it, results files with placeholder bytes); returns its snapshot."""
    spec = importlib.import_module(f"experiments.{name}").SPEC
    cfg = experiment.config_for(spec, "tiny", str(d))
    os.makedirs(d / "phases")
    results.write_json(str(d / "config.json"), dataclasses.asdict(cfg))
    for f in ("lanes.csv", "curves.npz", "fit.json", "timing.json", "phases/free.npz"):
        (d / f).write_bytes(b"keep " + f.encode())
    return snapshot(d)


@pytest.mark.parametrize(
    "name,args,msg", BAD[::3], ids=[f"{n}:{' '.join(a)}" for n, a, _ in BAD[::3]]
)
def test_bad_input_leaves_an_existing_run_dir_as_it_was(name, args, msg, capsys, tmp_path):
    d = tmp_path / "run"
    before = fake_run_dir(name, d)
    assert entry(name)(["--preset", "tiny", "--out", str(d)] + args) == 2
    one_line(capsys)
    assert snapshot(d) == before


# ---------------------------------------------------------------------------------------------
# --out: a file, read-only, too long; a failed start does not poison the directory
# ---------------------------------------------------------------------------------------------


def test_out_that_cannot_be_written(capsys, tmp_path, monkeypatch):
    main = entry("delay_sweep")
    f = tmp_path / "file"
    f.write_text("keep")
    assert main(["--preset", "tiny", "--out", str(f / "run")]) == 2
    assert "is a file" in one_line(capsys) and f.read_text() == "keep"
    long = tmp_path / ("a" * 300)
    assert main(["--preset", "tiny", "--out", str(long)]) == 2
    assert "longer than" in one_line(capsys)
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda p, m: False if str(p) == str(ro) else real(p, m))
    assert main(["--preset", "tiny", "--out", str(ro / "run")]) == 2
    assert "not writable" in one_line(capsys)
    assert os.listdir(ro) == []


def test_a_write_that_fails_at_the_start_leaves_nothing(capsys, tmp_path, monkeypatch):
    # e.g. a file system that turns read-only, or is full, between the checks and the start
    def refuse(path, obj):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(results, "write_json", refuse)
    out = tmp_path / "a" / "b"
    assert entry("delay_sweep")(["--preset", "tiny", "--out", str(out)]) == 2
    assert "Read-only file system" in one_line(capsys)
    assert not (tmp_path / "a").exists()


def test_a_start_that_fails_in_the_first_phase_removes_what_it_wrote(capsys, tmp_path, monkeypatch):
    from grokjax import engine

    def broken(*a, **k):
        raise cli.UsageError("the engine refused the phase")

    monkeypatch.setattr(engine, "Engine", broken)
    monkeypatch.setattr(runner, "_run_phases", RUN_PHASES)
    out = tmp_path / "x"
    argv = ["--preset", "tiny", "--out", str(out)]
    assert entry("delay_sweep")(argv) == 2
    assert "the engine refused the phase" in one_line(capsys)
    assert not out.exists()  # so the same (or a corrected) command is not "a different config"
    spec = importlib.import_module("experiments.delay_sweep").SPEC
    experiment.check_run_dir(experiment.config_for(spec, "tiny", str(out), d=32))


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def synthetic_run(tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_report import make_run

    d = make_run(str(tmp_path / "run"), p=(59,), seeds=4)
    cfg = results.read_json(os.path.join(d, "config.json"))
    results.write_json(os.path.join(d, "fit.json"), {"config_sha256": results.config_digest(cfg)})
    return d


def report_main(argv):
    return entry("report")(argv)


def test_report_reads_a_run_with_its_digest(synthetic_run, tmp_path, capsys):
    assert report_main([synthetic_run, "--out", str(tmp_path / "rep")]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage,msg",
    [
        ("truncate", "truncated or damaged"),
        ("cells", "not 0 or 1"),
        ("edit_width", "config.json was changed after the run"),
        ("edit_name", "config.json was changed after the run"),
        ("edit_dtype_legacy", "config.json says dtype"),
        ("twice", "given twice"),
        ("missing", "missing lanes.csv"),
    ],
)
def test_report_refuses_a_damaged_run_dir(damage, msg, synthetic_run, tmp_path, capsys):
    d = synthetic_run
    lanes = os.path.join(d, "lanes.csv")
    cfg_path = os.path.join(d, "config.json")
    runs = [d]
    if damage == "truncate":
        text = open(lanes).read()
        cut = text.index("\n", len(text) // 2) + 4  # in the middle of a row
        open(lanes, "w").write(text[:cut])
    elif damage == "cells":
        text = open(lanes).read().splitlines()
        head = text[0].split(",")
        row = text[1].split(",")
        row[head.index("grokked")] = "yes"
        open(lanes, "w").write("\n".join([text[0], ",".join(row)] + text[2:]) + "\n")
    elif damage.startswith("edit"):
        cfg = json.load(open(cfg_path))
        if damage == "edit_width":
            cfg["hidden"] = 512
        elif damage == "edit_name":
            cfg["experiment"] = "dense_rho"
        else:  # a run without a digest: only what lanes.csv records can be checked
            os.remove(os.path.join(d, "fit.json"))
            cfg["dtype"] = "float64"
        json.dump(cfg, open(cfg_path, "w"))
    elif damage == "twice":
        runs = [d, d + "/", os.path.join(os.path.dirname(d), ".", "run")]
    elif damage == "missing":
        os.remove(lanes)
    before = snapshot(d)
    out = tmp_path / "rep"
    assert report_main(runs + ["--out", str(out)]) == 2
    line = one_line(capsys)
    assert line.startswith("report: error: ") and msg in line, line
    assert not out.exists() and snapshot(d) == before


def test_report_does_not_replace_figures_by_default(synthetic_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "report.md").write_text("committed")
    before = snapshot(tmp_path / "figures")
    assert report_main([synthetic_run]) == 2
    assert "--out figures" in one_line(capsys)
    assert snapshot(tmp_path / "figures") == before
    # asked for by name, it is replaced
    assert report_main([synthetic_run, "--out", "figures"]) == 0
    assert (tmp_path / "figures" / "report.md").read_text() != "committed"


def test_report_out_that_cannot_be_written(synthetic_run, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    assert report_main([synthetic_run, "--out", str(f)]) == 2
    assert "is a file" in one_line(capsys) and f.read_text() == "keep"
    assert report_main([synthetic_run, "--out", str(tmp_path / ("b" * 300))]) == 2
    assert "longer than" in one_line(capsys)


def test_truncated_lanes_csv_is_one_value_error(tmp_path):
    p = tmp_path / "lanes.csv"
    results.write_lanes_csv(
        str(p),
        [
            dict(lane=0, p=59, seed=0, grokked=True, diverged=False),
            dict(lane=1, p=59, seed=1, grokked=False, diverged=False),
        ],
    )
    p.write_text(p.read_text()[:-20])
    with pytest.raises(ValueError, match="truncated or damaged"):
        results.read_lanes_csv(str(p))


# ---------------------------------------------------------------------------------------------
# reproduce and bench
# ---------------------------------------------------------------------------------------------


def test_reproduce_refuses_bad_runs_and_out(tmp_path, capsys, monkeypatch):
    main = entry("reproduce")
    f = tmp_path / "file"
    f.write_text("keep")
    rep = str(tmp_path / "rep")
    for argv, msg in [
        (["--runs", str(f), "--out", rep], "is a file"),
        (["--runs", str(f), "--list"], "is a file"),
        (["--runs", str(tmp_path), "--out", str(f)], "is a file"),
        (["--only", "parity,parity", "--out", rep], "given twice"),
        (["--preset", "nope", "--out", rep], "unknown preset"),
        (["--run", str(tmp_path), "--out", rep], "unrecognized"),
        (["--fresh", "--out", rep], "unrecognized"),
    ]:
        assert main(argv) == 2, argv
        assert msg in one_line(capsys), argv
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda p, m: False if str(p) == str(ro) else real(p, m))
    assert main(["--runs", str(ro / "runs"), "--out", rep]) == 2
    assert "not writable" in one_line(capsys)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "report.json").write_text("{}")
    assert main(["--runs", str(tmp_path / "runs")]) == 2
    assert "already holds a report" in one_line(capsys)
    assert not (tmp_path / "runs").exists() and not os.path.exists(rep)


def test_reproduce_checks_every_run_dir_first_and_advises_what_it_accepts(tmp_path, capsys):
    runs = tmp_path / "runs"
    d = runs / "lr_matrix-tiny"
    spec = importlib.import_module("experiments.lr_matrix").SPEC
    cfg = experiment.config_for(spec, "tiny", str(d), seeds=3)  # another configuration
    d.mkdir(parents=True)
    results.write_json(str(d / "config.json"), dataclasses.asdict(cfg))
    before = snapshot(runs)
    # delay_sweep comes first and would run: refused before it starts (the tripwire)
    assert (
        entry("reproduce")(
            [
                "--preset",
                "tiny",
                "--runs",
                str(runs),
                "--out",
                str(tmp_path / "rep"),
                "--only",
                "delay_sweep,lr_matrix",
            ]
        )
        == 2
    )
    line = one_line(capsys)
    assert "differs in: seeds" in line and "pass --fresh" not in line
    assert f"move {d} aside" in line
    assert snapshot(runs) == before and sorted(os.listdir(runs)) == ["lr_matrix-tiny"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--reps", "0"], "--reps"),
        (["--p", "100000"], "GiB"),
        (["--p", "3001"], "more than this machine's"),
        (["--lanes", "1,1"], "given twice"),
        (["--lanes", "0"], "positive"),
        (["--steps", "3000000000"], "--steps"),
        (["--model", "cnn"], "unknown --model"),
        (["--rep", "3"], "unrecognized"),
    ],
)
def test_bench_bad_input(args, msg, capsys):
    from experiments import bench

    assert cli.main_guard("bench", bench.main, args) == 2
    line = one_line(capsys)
    assert line.startswith("bench: error: ") and msg in line, line


# ---------------------------------------------------------------------------------------------
# the shared layer itself
# ---------------------------------------------------------------------------------------------


def test_parser_has_no_abbreviations_and_lists_refuse_repeats():
    ap = cli.Parser()
    ap.add_argument("--seeds", type=int)
    with pytest.raises(cli.UsageError, match="unrecognized"):
        ap.parse_args(["--seed", "3"])
    assert cli.ints("41,59") == [41, 59] and cli.floats("") == []
    with pytest.raises(Exception, match="given twice"):
        cli.floats("0.85,1,0.85")
    assert cli.int_values("100,100") == [100, 100]  # a paired list (budgets) may repeat
    assert cli.boolean("yes") is True and cli.boolean("0") is False
    with pytest.raises(Exception, match="true or false"):
        cli.boolean("maybe")


def test_budget_steps_may_repeat_but_not_rho(capsys, tmp_path):
    from experiments import dense_rho

    cfg = experiment.config_for(
        dense_rho.SPEC,
        "tiny",
        str(tmp_path / "x"),
        budget_rho=[0.9, 1.2],
        budget_steps=[3000, 3000],
    )
    assert cfg.budget_steps == [3000, 3000]
    with pytest.raises(cli.UsageError, match="--budget-rho: 1.2 given twice"):
        experiment.config_for(
            dense_rho.SPEC,
            "tiny",
            str(tmp_path / "x"),
            budget_rho=[1.2, 1.2],
            budget_steps=[3000, 4000],
        )


def test_every_preset_passes_the_checks(tmp_path):
    from experiments.reproduce import EXPERIMENTS

    for name in EXPERIMENTS:
        spec = importlib.import_module(f"experiments.{name}").SPEC
        for preset in spec.presets:
            cfg = experiment.config_for(spec, preset, str(tmp_path / f"{name}-{preset}"))
            assert experiment.check_plan(spec, cfg), (name, preset)


def test_corrupt_checkpoints_are_one_line_each_and_say_what_happens(tmp_path, capfd):
    import jax.numpy as jnp
    from grokjax import checkpoint

    d = str(tmp_path / "ck")
    ck = checkpoint.LaneCheckpointer(d, log=None)
    state = {"w": jnp.arange(6.0).reshape(3, 2)}
    host = {"slots": np.arange(3), "real": np.ones(3, bool)}
    for step in (10, 20):
        ck.save(step, state, host, {"fingerprint": "f", "size": 3})
    ck.wait()
    ck.close()
    for root, _, files in os.walk(d):
        for f in files:
            with open(os.path.join(root, f), "r+b") as fh:
                fh.truncate(5)
    lines = []
    ck = checkpoint.LaneCheckpointer(d, log=lines.append)
    assert ck.restore("f", lambda meta: checkpoint.abstract(state)) is None
    ck.close()
    assert len(lines) == 2, lines
    assert "falling back to the previous one" in lines[0]
    assert "no readable checkpoint is left" in lines[1] and "falling back" not in lines[1]
    assert all(d + ".corrupt" in x for x in lines)
    assert "Traceback" not in capfd.readouterr().err
    run = tmp_path / "run"
    os.makedirs(run / "checkpoints" / "p31-clamp.corrupt")
    assert experiment.corrupt_dirs(str(run)) == [str(run / "checkpoints" / "p31-clamp.corrupt")]


# ---------------------------------------------------------------------------------------------
# the real command lines
# ---------------------------------------------------------------------------------------------


def _cmd(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, **(env or {})),
    )


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["experiments.delay_sweep", "--steps", "3000000000"], "int32"),
        (["experiments.transformer", "--preset", "tiny", "--seed", "1"], "unrecognized"),
        (["experiments.bench", "--reps", "0"], "--reps"),
    ],
)
def test_module_entry_points(argv, msg, tmp_path):
    r = _cmd(*argv, "--out", str(tmp_path / "x")) if "bench" not in argv[0] else _cmd(*argv)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()


def test_module_report_on_a_run_dir_given_twice(synthetic_run, tmp_path):
    r = _cmd("experiments.report", synthetic_run, synthetic_run, "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"report: error: {synthetic_run}: the same run directory is given twice (also as "
        f"{synthetic_run}); it would be counted as two runs"
    ]
