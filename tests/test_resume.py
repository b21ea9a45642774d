"""Runs that survive preemption, bad lanes and bad input.

The end-to-end tests run ``python -m experiments.delay_sweep`` in subprocesses on a reduced
tiny preset (2 seeds, 2 held norms, 100-step chunks), interrupt them with SIGTERM or SIGKILL,
rerun the same command and compare with an uninterrupted run. The subprocesses share a
persistent XLA compilation cache so that only the first one compiles.
"""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import delay_sweep
from grokjax import cli, experiment, results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["--preset", "tiny", "--rho", "0.9,1.1", "--chunk-steps", "100"]
CKPT = ["--checkpoint-every-chunks", "1"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("xla_cache"))
    return dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=cache,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        PYTHONUNBUFFERED="1",
    )


def sweep(args, env, **kw):
    return subprocess.run(
        [sys.executable, "-m", "experiments.delay_sweep", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def start(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.delay_sweep", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_lines(proc, predicate, count):
    """Reads the job's output until ``count`` lines satisfied ``predicate``; returns them all."""
    seen, lines = 0, []
    deadline = time.time() + 240
    while seen < count and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        seen += bool(predicate(line))
    assert seen == count, "".join(lines)
    return lines


def same_results(a, b):
    """lanes.csv and fit.json byte-identical, curves.npz equal array by array."""
    for name in ("lanes.csv", "fit.json"):
        with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
            assert fa.read() == fb.read(), name
    ca, cb = np.load(os.path.join(a, "curves.npz")), np.load(os.path.join(b, "curves.npz"))
    assert ca.files == cb.files
    for k in ca.files:
        np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)


def digest(directory):
    """{relative path: sha256} of every file under ``directory``."""
    out = {}
    for base, _, files in os.walk(directory):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, directory)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run (default checkpoint cadence: none within this short run)."""
    out = str(tmp_path_factory.mktemp("ref") / "run")
    r = sweep(ARGS + ["--out", out], env)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, env, reference):
    """A run stopped with SIGTERM in its second (clamped) phase, after a few checkpoints."""
    out = str(tmp_path_factory.mktemp("term") / "run")
    proc = start(ARGS + CKPT + ["--out", out], env)
    wait_for_lines(proc, lambda l: "clamp] step" in l, 2)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    return out, proc.returncode, rest


def test_sigterm_checkpoints_and_rerun_gives_the_uninterrupted_results(
    interrupted, reference, env, tmp_path
):
    src, code, log = interrupted
    assert code == 143, log
    assert "stopped by SIGTERM after step" in log and "run the same command" in log
    # The finished phase is stored, the one in progress is checkpointed, no results yet.
    assert os.path.exists(os.path.join(src, "phases", "p31-free.npz"))
    assert len(os.listdir(os.path.join(src, "checkpoints", "p31-clamp"))) >= 2
    assert not os.path.exists(os.path.join(src, "lanes.csv"))
    out = str(tmp_path / "run")
    shutil.copytree(src, out)
    r = sweep(ARGS + CKPT + ["--out", out], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "finished earlier: loaded" in r.stdout and "resumed from the checkpoint" in r.stdout
    same_results(reference, out)
    # Checkpoints of finished phases are removed once their phase file is written.
    assert os.listdir(os.path.join(out, "checkpoints")) == []
    timing = json.load(open(os.path.join(out, "timing.json")))
    assert timing["resumed"] and timing["phases"]["p31-clamp"]["resumed_from_step"] > 0


def test_sigkill_at_a_random_chunk_then_rerun(reference, env, tmp_path):
    rng = random.Random(14)  # seeded: a failure names a chunk that reproduces it
    k = rng.randint(1, 10)  # progress lines (= chunks) to wait for; checkpoints are async
    out = str(tmp_path / "run")
    proc = start(ARGS + CKPT + ["--out", out], env)
    wait_for_lines(proc, lambda l: "] step" in l, k)
    time.sleep(rng.uniform(0, 0.3))
    proc.kill()
    proc.communicate(timeout=60)
    r = sweep(ARGS + CKPT + ["--out", out], env)
    assert r.returncode == 0, f"killed after chunk {k}\n" + r.stderr[-3000:]
    same_results(reference, out)


def test_vmap_mode_sigkill_then_rerun(reference, env, tmp_path):
    # The accelerator path end to end on the CPU: --lane-mode vmap runs every lane of a phase
    # in one program; killed at a chunk and rerun it gives its own uninterrupted results, the
    # same events as the (walking) reference and timing.json says which mode ran.
    vmap = ARGS + ["--lane-mode", "vmap"]
    ref = str(tmp_path / "ref")
    r = sweep(vmap + ["--out", ref], env)
    assert r.returncode == 0, r.stderr[-3000:]
    timing = json.load(open(os.path.join(ref, "timing.json")))
    assert {ph["lane_mode"] for ph in timing["phases"].values()} == {"vmap"}
    assert {
        ph["lane_mode"]
        for ph in json.load(open(os.path.join(reference, "timing.json")))["phases"].values()
    } == {"walk"}
    a = results.read_lanes_csv(os.path.join(ref, "lanes.csv"))
    b = results.read_lanes_csv(os.path.join(reference, "lanes.csv"))
    for k in ("T_grok", "grokked", "diverged", "steps_run"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    out = str(tmp_path / "run")
    proc = start(vmap + CKPT + ["--out", out], env)
    wait_for_lines(proc, lambda l: "] step" in l, 3)
    proc.kill()
    proc.communicate(timeout=60)
    r = sweep(vmap + CKPT + ["--out", out], env)
    assert r.returncode == 0, r.stderr[-3000:]
    same_results(ref, out)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    import jax
    import jax.numpy as jnp

    from grokjax import checkpoint as ck

    d = str(tmp_path / "ck")
    log = []
    c = ck.LaneCheckpointer(d, ck.Policy(every_chunks=1, keep=3), log=log.append)
    state = {"w": jnp.arange(6.0).reshape(3, 2), "step": jnp.zeros(3, jnp.int32)}
    host = {"slots": np.arange(3), "real": np.ones(3, bool), "curves": {"norm": np.ones((3, 4))}}
    for step in (100, 200, 300):
        c.save(step, jax.tree.map(lambda x: x + step, state), host, {"fingerprint": "f", "size": 3})
    c.close()
    target = lambda meta: ck.abstract(state, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    for base, _, files in os.walk(os.path.join(d, "300", "state")):  # truncate array data
        for f in files:
            if os.sep + "d" in base:
                with open(os.path.join(base, f), "r+b") as fh:
                    fh.truncate(7)
    os.remove(os.path.join(d, "200", "meta", "metadata"))  # and lose one's metadata
    c = ck.LaneCheckpointer(d, ck.Policy(), log=log.append)
    meta, flat, back = c.restore("f", target)
    assert meta["step"] == 100 and float(flat["w"][0, 0]) == 100.0
    np.testing.assert_array_equal(back["curves"]["norm"], host["curves"]["norm"])
    assert f"{d}/300 is unreadable" in log[0] and f"{d}/200 is unreadable" in log[1]
    assert all("falling back to the previous one" in line for line in log)
    assert sorted(n.split("-")[0] for n in os.listdir(d + ".corrupt")) == ["200", "300"]
    assert c.steps() == [100]
    with pytest.raises(ck.CheckpointMismatch):  # another run's checkpoint is never used
        c.restore("other", target)
    c.close()


def test_other_config_or_format_is_refused_and_nothing_changes(interrupted, tmp_path, capsys):
    out = str(tmp_path / "run")
    shutil.copytree(interrupted[0], out)
    before = digest(out)
    assert delay_sweep.main_cli(ARGS + ["--out", out, "--seeds", "3", "--lr", "0.02"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs in: lr, seeds" in err, err
    cfg_path = os.path.join(out, "config.json")
    cfg = json.load(open(cfg_path))
    cfg["config_format"] = 1
    results.write_json(cfg_path, cfg)
    before = digest(out)
    assert delay_sweep.main_cli(ARGS + ["--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config format 1" in err and "--fresh" in err, err
    assert digest(out) == before


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--preset", "huge"], "unknown preset"),
        (["--bogus", "1"], "unrecognized arguments"),
        (["--p", "1"], "p must be"),
        (["--p", "33", "--op", "div"], "prime"),
        (["--op", "pow"], "unknown operation"),
        (["--frac", "0"], "fraction"),
        (["--frac", "1"], "fraction"),
        (["--rho", "0,1"], "rho"),
        (["--lr", "-1e-3"], "lr"),
        (["--steps", "0"], "steps"),
        (["--seeds", "-2"], "seeds"),
        (["--rho", ","], "empty"),
        (["--p", ""], "empty"),
        (["--t-int", "5000"], "beyond the step budget"),
        (["--chunk-steps", "15"], "multiple of eval_every"),
        (["--checkpoint-every-chunks", "-1"], "checkpoint-every-chunks"),
        (["--checkpoint-minutes", "-5"], "checkpoint-minutes"),
        (["--keep-checkpoints", "0"], "keep-checkpoints"),
    ],
)
def test_bad_input_is_one_line_and_leaves_results_untouched(args, msg, reference, tmp_path, capsys):
    out = str(tmp_path / "run")
    shutil.copytree(reference, out)
    before = digest(out)
    assert delay_sweep.main_cli(ARGS + ["--out", out] + args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err, err
    assert err.startswith("delay_sweep: error: ")
    assert digest(out) == before


def test_out_that_is_a_file_or_a_foreign_directory_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    assert delay_sweep.main_cli(ARGS + ["--out", str(f), "--fresh"]) == 2
    assert "is a file" in capsys.readouterr().err and f.read_text() == "keep"
    d = tmp_path / "other"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    assert delay_sweep.main_cli(ARGS + ["--out", str(d)]) == 2
    err = capsys.readouterr().err
    assert "holds no config.json" in err and (d / "notes.txt").read_text() == "mine"


def test_fresh_moves_the_old_directory_aside(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"seeds": 99}))
    (out / "lanes.csv").write_text("old results\n")
    # Stop before the first phase: only the directory handling runs.
    monkeypatch.setattr(cli.StopSignals, "__call__", lambda self: True)
    assert delay_sweep.main(ARGS + ["--out", str(out), "--fresh"]) == 143
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(moved) == 1 and (moved[0] / "lanes.csv").read_text() == "old results\n"
    assert json.load(open(out / "config.json"))["seeds"] == 2
    assert not (out / "lanes.csv").exists()
    assert "moved the existing" in capsys.readouterr().out


def test_stop_signals_first_is_polite_second_is_not():
    # A process started in the background by a non-interactive shell (as CI may be) inherits
    # SIGINT ignored; the second signal restores the previous handler, so give it Python's.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        with cli.StopSignals() as stop:
            assert not stop()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            assert stop() and stop.name == "SIGINT" and stop.exit_code == 130
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.parametrize("writer", ["text", "curves", "phase", "figure"])
def test_a_crash_mid_write_leaves_the_old_file_and_no_partial_one(writer, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from grokjax import plots
    from grokjax.protocol import RunResult

    res = RunResult(
        {"t_mem": np.arange(3)},
        np.arange(3),
        np.arange(4),
        {"norm": np.ones((3, 4))},
        ("embed",),
        {"fingerprint": "x"},
    )
    target = {"text": "lanes.csv", "curves": "curves.npz", "phase": "p.npz", "figure": "fig.png"}[
        writer
    ]
    path = tmp_path / target
    path.write_bytes(b"previous complete file")

    class Crash(RuntimeError):
        pass

    def half_then_crash(f, *a, **k):
        (f if hasattr(f, "write") else open(f, "wb")).write(b"PARTIAL")
        raise Crash()

    if writer == "text":  # the text is in the temporary file, then the machine "dies"
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(Crash()))
        call = lambda: results.write_lanes_csv(str(path), [{"lane": 0, "p": 31}])
    elif writer == "curves":
        monkeypatch.setattr(np, "savez_compressed", half_then_crash)
        call = lambda: results.write_curves(str(path), [res])
    elif writer == "phase":
        monkeypatch.setattr(np, "savez", half_then_crash)
        call = lambda: results.save_run_result(str(path), res)
    else:
        fig = plt.figure()
        monkeypatch.setattr(fig, "savefig", half_then_crash)
        call = lambda: plots.save(fig, str(path))
    with pytest.raises(Crash):
        call()
    monkeypatch.undo()
    assert path.read_bytes() == b"previous complete file"
    assert os.listdir(tmp_path) == [target]  # no temporary file left behind


def test_phase_result_round_trips(tmp_path):
    from grokjax.protocol import RunResult

    res = RunResult(
        {"t_mem": np.arange(3), "norm_at_grok": np.ones((3, 3))},
        np.arange(3),
        np.arange(4),
        {"norm": np.ones((3, 4), np.float32), "group_norms": np.zeros((3, 4, 2))},
        ("a", "b"),
        {"fingerprint": "f", "wall_s": 1.5},
    )
    results.save_run_result(str(tmp_path / "r.npz"), res)
    back = results.load_run_result(str(tmp_path / "r.npz"))
    assert back.groups == ("a", "b") and back.stats == res.stats
    assert list(back.curves) == ["norm", "group_norms"]
    for k in res.latches:
        np.testing.assert_array_equal(back.latches[k], res.latches[k])
    assert back.curves["norm"].dtype == np.float32
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    import zipfile

    with pytest.raises(zipfile.BadZipFile):
        results.load_run_result(str(tmp_path / "bad.npz"))


def test_float64_runs_end_to_end(env, tmp_path):
    out = str(tmp_path / "run")
    r = sweep(
        [
            "--preset",
            "tiny",
            "--seeds",
            "1",
            "--rho",
            "1.0",
            "--steps",
            "600",
            "--chunk-steps",
            "100",
            "--dtype",
            "float64",
            "--out",
            out,
        ],
        env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    lanes = results.read_lanes_csv(os.path.join(out, "lanes.csv"))
    assert set(lanes["dtype"]) == {"float64"} and lanes["grokked"].all()
    timing = json.load(open(os.path.join(out, "timing.json")))
    assert {ph["param_dtype"] for ph in timing["phases"].values()} == {"float64"}
    assert np.load(os.path.join(out, "curves.npz"))["norm"].dtype == np.float64


@pytest.mark.parametrize("lane_mode", ["walk", "vmap"])
def test_nan_lane_is_frozen_leaves_the_others_bit_identical_and_is_not_fitted(reference, lane_mode):
    from grokjax import lane as eng, engine
    from grokjax.models import ModelSpec

    e = engine.Engine(
        eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5), lane_mode=lane_mode
    )
    kw = dict(seed=[0, 1, 2, 3], budget=200)
    # Same batch size (4 lanes) with and without the bad lane, so XLA runs the same program
    # (walk: the same one-lane program per lane; vmap: one 4-lane program, not repacked).
    bad = e.run(
        eng.make_hparams(3, lr=[1e-2, 1e-2, 3e-3, 1e9], **kw), chunk_steps=50, progress=None
    )
    good = e.run(
        eng.make_hparams(3, lr=[1e-2, 1e-2, 3e-3, 1e-2], **kw), chunk_steps=50, progress=None
    )
    assert bad.latches["diverged_step"][3] >= 0 and (bad.latches["diverged_step"][:3] < 0).all()
    for k in bad.latches:
        np.testing.assert_array_equal(bad.latches[k][:3], good.latches[k][:3], err_msg=k)
    for k in bad.curves:
        np.testing.assert_array_equal(bad.curves[k][:3], good.curves[k][:3], err_msg=k)
    rec = bad.curves["norm"][3]
    assert np.isfinite(rec[np.isfinite(rec)]).all()  # frozen at its last finite state

    # A diverged lane is left out of the fit and counted: add one to the reference lanes.
    lanes = results.read_lanes_csv(os.path.join(reference, "lanes.csv"))
    fit = json.load(open(os.path.join(reference, "fit.json")))
    clamp = np.flatnonzero(lanes["arm"] == "clamp")[0]
    extra = {k: np.append(v, v[clamp]) for k, v in lanes.items()}
    extra["diverged"][-1], extra["T_grok"][-1], extra["steps_run"][-1] = True, 3.0, 3.0
    cfg = experiment.parse_run_args(delay_sweep.SPEC, ARGS)[0]
    refit = delay_sweep.fit_sweep(extra, cfg)
    assert refit["n_diverged"] == 1 and refit["per_p"]["31"]["n_diverged"] == 1
    law, ref_law = refit["per_p"]["31"]["delay_law"], fit["per_p"]["31"]["delay_law"]
    assert law["alpha"] == ref_law["alpha"] and law["r2"] == ref_law["r2"]
