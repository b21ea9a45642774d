"""The run directory under real processes (issue 26): the multi-host launch as a user starts
it (``python -m`` with the coordinator environment variables, two processes on one machine),
a second process on a run directory in use, a refused rerun of a moved run directory, a
``phases`` that is not a directory, and a checkpoint that cannot be written (a file size
limit standing in for a full disk). Each failure is one line on stderr, exit status 2, and
leaves what was written as it was.

These start real runs of the tiny preset (one or two held norms): about a minute in all on
a 2-core CPU."""

import csv
import dataclasses
import importlib
import io
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from plans import one_line, snapshot

from grokjax import experiment, results
from grokjax.protocol import RunResult

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--preset", "tiny", "--rho", "1"]  # 2 free + 2 clamped lanes


def env(**extra) -> dict:
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"))
    }
    e.pop("XLA_FLAGS", None)
    e.pop("GROKJAX_DISTRIBUTED", None)
    e.update(JAX_PLATFORMS="cpu", **extra)
    return e


# The command under a file size limit: a full disk, as far as the checkpoint is concerned (no
# file may exceed 16 KiB: the kernel's EFBIG, which needs no privileges, where a small tmpfs
# would). Set in a fresh interpreter that then execs the command (no fork of this JAX process).
SMALL_FILES = (
    "import os, resource, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))\n"
    "os.execv(sys.executable, [sys.executable] + sys.argv[1:])\n"
)


def start(args, out, small_files=False, **extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "experiments.delay_sweep", *args, "--out", str(out)]
    if small_files:
        cmd = [sys.executable, "-c", SMALL_FILES] + cmd[1:]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(p: subprocess.Popen, timeout: float = 400) -> tuple:
    try:
        so, se = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        so, se = p.communicate()
        raise AssertionError(f"timed out: {se[-3000:]}")
    return p.returncode, so, se


def columns(path, names=("lane", "p", "seed", "arm", "rho", "T_mem", "T_grok", "grokked")):
    rows = list(csv.DictReader(io.StringIO(open(path).read())))
    return [{k: r[k] for k in names} for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # (starts whole runs: tens of seconds)
def test_the_multi_host_launch_works_as_documented(tmp_path):
    """Every experiment called JAX (check_plan) before jax.distributed.initialize(), so the
    documented launch failed with a 28-line RuntimeError, even with one process."""
    plain = tmp_path / "plain"
    rc, _, se = finish(start(TINY, plain))
    assert rc == 0, se[-3000:]
    # one process with the coordinator variables: the very same files
    one = tmp_path / "one"
    rc, _, se = finish(
        start(
            TINY,
            one,
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{free_port()}",
            JAX_NUM_PROCESSES="1",
            JAX_PROCESS_ID="0",
        )
    )
    assert rc == 0, se[-3000:]
    for f in ("config.json", "lanes.csv", "fit.json"):
        if f == "config.json":
            a, b = json.load(open(plain / f)), json.load(open(one / f))
            assert {**a, "out": ""} == {**b, "out": ""}
        else:
            assert (plain / f).read_bytes() == (one / f).read_bytes(), f
    # two processes on this machine, as two hosts would start them
    two = tmp_path / "two"
    port = free_port()
    procs = [
        start(
            TINY,
            two,
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(i),
        )
        for i in range(2)
    ]
    outs = [finish(p) for p in procs]
    for rc, _, se in outs:
        assert rc == 0, se[-3000:]
    timing = json.load(open(two / "timing.json"))
    assert timing["processes"] == 2 and timing["phases"]["p31-free"]["devices"] == 2
    # the lanes split over both processes' devices: the same events as one process
    assert columns(two / "lanes.csv") == columns(plain / "lanes.csv")
    assert "resuming" not in outs[1][1] and "wrote" in outs[0][1] and "wrote" not in outs[1][1]


def test_a_second_process_on_a_run_directory_in_use_is_refused(tmp_path, capsys):
    d = tmp_path / "run"
    d.mkdir()
    # another process holds the run directory, as a running job does
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            str(d),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        main = importlib.import_module("experiments.delay_sweep").main_cli
        for extra in ([], ["--fresh"]):
            assert main(TINY + ["--out", str(d)] + extra) == 2
            line = one_line(capsys.readouterr().err)
            assert "is in use by another process" in line, line
            assert os.listdir(d) == []
    finally:
        holder.kill()
        holder.wait()


def fake_phase(path, fingerprint: str) -> None:
    n = 2
    res = RunResult(
        {"t_grok": np.full((n, 3), -1)},
        np.zeros(n, int),
        np.zeros(1, int),
        {"test_acc": np.zeros((n, 1))},
        ("embed", "hidden", "out"),
        {"fingerprint": fingerprint},
    )
    results.save_run_result(str(path), res)


def test_a_refused_rerun_of_a_moved_run_keeps_its_config(tmp_path, capsys):
    spec = importlib.import_module("experiments.delay_sweep").SPEC
    d = tmp_path / "moved"
    cfg = experiment.config_for(spec, "tiny", "/somewhere/else/run", rho=[1.0])
    os.makedirs(d / "phases")
    results.write_json(str(d / "config.json"), dataclasses.asdict(cfg))
    fake_phase(d / "phases" / "p31-free.npz", "written for other lanes")
    before = snapshot(d)
    main = importlib.import_module("experiments.delay_sweep").main_cli
    assert main(TINY + ["--out", str(d)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "was written for other lanes" in line, line
    assert snapshot(d) == before  # config.json still says where the run was written
    assert json.load(open(d / "config.json"))["out"] == "/somewhere/else/run"


@pytest.mark.parametrize("sub", ["phases", "checkpoints"])
def test_phases_that_is_a_file_is_refused_before_training(sub, tmp_path, capsys):
    spec = importlib.import_module("experiments.delay_sweep").SPEC
    d = tmp_path / "run"
    cfg = experiment.config_for(spec, "tiny", str(d), rho=[1.0])
    d.mkdir()
    results.write_json(str(d / "config.json"), dataclasses.asdict(cfg))
    (d / sub).write_text("not a directory")
    before = snapshot(d)
    main = importlib.import_module("experiments.delay_sweep").main_cli
    t0 = time.monotonic()
    assert main(TINY + ["--out", str(d)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{d / sub} is not a directory" in line, line
    assert time.monotonic() - t0 < 10  # refused at once, not after training a phase
    assert snapshot(d) == before


@pytest.mark.slow  # (starts whole runs: tens of seconds)
def test_a_checkpoint_that_cannot_be_written_is_one_line(tmp_path):
    d = tmp_path / "run"
    args = TINY + ["--checkpoint-every-chunks", "1"]
    rc, _, se = finish(start(args, d, small_files=True))
    assert rc == 2, se[-3000:]
    line = one_line(se)
    assert "File too large (while saving a checkpoint" in line, line
    left = [x for _, dirs, files in os.walk(d) for x in dirs + files]
    assert not [x for x in left if "orbax-checkpoint-tmp" in x], left
    before = snapshot(d)
    # the rerun fails the same way, in one line, and changes nothing
    rc, _, se = finish(start(args, d, small_files=True))
    assert rc == 2 and "File too large" in one_line(se)
    assert snapshot(d) == before


def test_orbax_write_tasks_left_unretrieved_after_a_failed_save_stay_off_stderr(tmp_path, caplog):
    # A failed background save can leave Orbax write tasks whose errors nobody retrieves: the
    # failure is reported in one line, and asyncio logs those tasks ("Task exception was never
    # retrieved", a traceback) whenever they are collected, perhaps at exit. That made the test
    # above flaky (CI, stop 32).
    import asyncio
    import errno
    import gc

    from grokjax import checkpoint

    # coroutines that say they are Orbax's, as its serialization's tasks do in their repr
    src = "async def write_fragment(i):\n    raise ValueError(f'OUT_OF_RANGE: fragment {i}')\n"
    orbax_ns: dict = {}
    exec(compile(src, "/site-packages/orbax/checkpoint/serialization.py", "exec"), orbax_ns)
    ours_ns: dict = {}
    exec(compile(src, "/elsewhere/ours.py", "exec"), ours_ns)

    def leave_unretrieved(fn):
        async def start():
            asyncio.ensure_future(fn(0))  # runs, fails, and nobody awaits it
            for _ in range(3):
                await asyncio.sleep(0)

        asyncio.run(start())
        gc.collect()

    ck = checkpoint.LaneCheckpointer(str(tmp_path / "ck"), log=None)
    ck._manager()
    with pytest.raises(checkpoint.CheckpointWriteError, match="File too large"):
        with ck._writing():
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    ck.close()
    caplog.clear()
    with caplog.at_level("ERROR", logger="asyncio"):
        leave_unretrieved(orbax_ns["write_fragment"])  # after close, as at exit
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
        leave_unretrieved(ours_ns["write_fragment"])  # anyone else's still reach the log
        assert [r for r in caplog.records if "never retrieved" in r.getMessage()]
