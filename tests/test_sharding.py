"""The lane axis sharded over 8 (forced) CPU devices: same results as one device, sharded
after re-packing, and checkpoints that save and restore sharded (in a subprocess, since the
device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent(r"""
    import json, sys
    import jax
    import numpy as np
    from grokjax import checkpoint as ck, lane as eng, engine
    from grokjax.models import ModelSpec

    out = {"devices": jax.device_count()}
    static = eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5, eval_every=10)
    sharded = engine.Engine(static)
    single = engine.Engine(static, devices=jax.devices()[:1])
    n = 12  # 16 slots over 8 devices, re-packed to 8 when half the lanes stop at step 60
    hp = eng.make_hparams(3, seed=np.arange(n), lr=np.where(np.arange(n) % 2, 1e-2, 3e-3),
                          budget=np.where(np.arange(n) < 6, 60, 160))
    kw = dict(chunk_steps=20, progress=None)

    # Every leaf of the initial state is split along the lane axis over all 8 devices.
    state = sharded.init(jax.tree.map(lambda x: x[np.arange(16) % n], hp))
    out["init_shardings"] = sorted({(len(x.sharding.device_set),
                                     x.sharding.shard_shape(x.shape)[0])
                                    for x in jax.tree.leaves(state)})
    del state

    r8 = sharded.run(hp, **kw)
    r1 = single.run(hp, repack=False, **kw)  # one 12-lane program: fewer compiles
    out["shards"] = r8.stats["shards"]
    out["programs"] = r8.stats["programs"]
    out["events_equal"] = all(np.array_equal(r1.latches[k], r8.latches[k])
                              for k in ("t_mem", "t_grok", "diverged_step"))
    out["steps_run_equal"] = bool(np.array_equal(r1.steps_run, r8.steps_run))
    out["max_rel_diff"] = max(
        float(np.nanmax(np.abs(r1.curves[k] - r8.curves[k]) / (np.abs(r1.curves[k]) + 1e-6)))
        for k in ("train_loss", "test_loss", "norm"))

    # Checkpoint sharded at step 60 (16 slots), stop, resume on 8 devices: bit-identical.
    d = sys.argv[1]
    calls = iter(range(1000))
    stop = lambda: next(calls) == 2
    try:
        sharded.run(hp, checkpointer=ck.LaneCheckpointer(d + "/a", ck.Policy(every_chunks=1)),
                    should_stop=stop, **kw)
        out["interrupted"] = False
    except engine.Interrupted as e:
        out["interrupted"] = e.checkpoint_step
    c = ck.LaneCheckpointer(d + "/a", ck.Policy(every_chunks=1))
    res = sharded.run(hp, checkpointer=c, **kw)
    out["resumed_from"] = res.stats["resumed_from_step"]
    out["resumed_shards"] = res.stats["shards"]
    out["resume_identical"] = all(
        np.array_equal(getattr(res, f)[k], getattr(r8, f)[k], equal_nan=True)
        for f in ("latches", "curves") for k in getattr(r8, f))

    # A checkpoint written on one device (12 lanes in 12 slots, no re-packing) restores onto
    # 8 devices by re-packing into 16 slots.
    calls = iter(range(1000))
    try:
        single.run(hp, checkpointer=ck.LaneCheckpointer(d + "/b", ck.Policy(every_chunks=1)),
                   should_stop=lambda: next(calls) == 0, repack=False, **kw)
    except engine.Interrupted:
        pass
    res = sharded.run(hp, checkpointer=ck.LaneCheckpointer(d + "/b", ck.Policy()), repack=False,
                      **kw)
    out["cross_resumed_from"] = res.stats["resumed_from_step"]
    out["cross_events_equal"] = all(np.array_equal(res.latches[k], r1.latches[k])
                                    for k in ("t_mem", "t_grok", "diverged_step"))

    # Walking lanes group by group is a one-device mode: refused over 8 devices.
    try:
        engine.Engine(static, lanes_per_group=1)
        out["walk_error"] = None
    except ValueError as e:
        out["walk_error"] = str(e)
    print("RESULT " + json.dumps(out))
""")


def test_lanes_shard_over_eight_devices_and_checkpoint_sharded(tmp_path):
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8"
    )
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT ") :])
    assert out["devices"] == 8
    # Two lanes per device in the 16-slot program, one per device after re-packing to 8.
    assert out["init_shardings"] == [[8, 2]]
    assert out["programs"] == [8, 16]
    assert out["shards"] == {"16": [8, 2], "8": [8, 1]}
    # Same events as on one device; floats agree to float32 rounding (XLA's per-device batch
    # differs, so the last bits may too).
    assert out["events_equal"] and out["steps_run_equal"]
    assert out["max_rel_diff"] < 1e-4
    # Sharded checkpoint + restore continue the sharded run bit for bit.
    assert out["interrupted"] == 60 and out["resumed_from"] == 60
    assert out["walk_error"] and "one" in out["walk_error"] and "\n" not in out["walk_error"]
    assert out["resumed_shards"] == {"16": [8, 2], "8": [8, 1]}  # restored 16 slots, sharded
    assert out["resume_identical"]
    assert out["cross_resumed_from"] == 20 and out["cross_events_equal"]


MULTI = textwrap.dedent(r"""
    import hashlib, json, sys
    from grokjax import cli
    assert cli.initialize_distributed()
    import jax
    import numpy as np
    from grokjax import checkpoint as ck, lane as eng, engine
    from grokjax.models import ModelSpec

    e = engine.Engine(eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5))
    hp = eng.make_hparams(3, seed=np.arange(4), lr=1e-2, budget=80)
    d = sys.argv[1]
    calls = iter(range(1000))
    try:
        e.run(hp, chunk_steps=20, progress=None, should_stop=lambda: next(calls) == 1,
              checkpointer=ck.LaneCheckpointer(d, ck.Policy(every_chunks=1), log=None))
    except engine.Interrupted:
        pass
    res = e.run(hp, chunk_steps=20, progress=None,
                checkpointer=ck.LaneCheckpointer(d, ck.Policy(every_chunks=1), log=None))
    h = hashlib.sha256()
    for k in sorted(res.latches):
        h.update(np.ascontiguousarray(res.latches[k]).tobytes())
    for k in sorted(res.curves):
        h.update(np.ascontiguousarray(res.curves[k]).tobytes())
    print("RESULT " + json.dumps({"process": jax.process_index(), "count": jax.process_count(),
                                  "local_devices": jax.local_device_count(),
                                  "devices": len(e.devices), "shards": res.stats["shards"],
                                  "resumed_from": res.stats["resumed_from_step"],
                                  "t_mem": res.latches["t_mem"].tolist(),
                                  "t_grok": res.latches["t_grok"].tolist(),
                                  "digest": h.hexdigest()}))
""")


SINGLE = textwrap.dedent(r"""
    import json
    import numpy as np
    from grokjax import lane as eng, engine
    from grokjax.models import ModelSpec

    e = engine.Engine(eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5))
    hp = eng.make_hparams(3, seed=np.arange(4), lr=1e-2, budget=80)
    res = e.run(hp, chunk_steps=20, progress=None)
    print("RESULT " + json.dumps({"t_mem": res.latches["t_mem"].tolist(),
                                  "t_grok": res.latches["t_grok"].tolist()}))
""")


def test_two_processes_split_the_lanes_and_only_process_0_checkpoints(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = []
    for i in range(2):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            GROKJAX_DISTRIBUTED="1",
            JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(i),
        )
        env.pop("XLA_FLAGS", None)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", MULTI, str(tmp_path / "ck")],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = []
    for p in procs:
        so, se = p.communicate(timeout=300)
        assert p.returncode == 0, se[-3000:]
        outs.append(json.loads([l for l in so.splitlines() if l.startswith("RESULT ")][-1][7:]))
    assert sorted(o["process"] for o in outs) == [0, 1]
    assert all(o["count"] == 2 and o["local_devices"] == 1 for o in outs)
    # One mesh over both processes' devices: each process computes two of the four lanes.
    assert all(o["devices"] == 2 and o["shards"]["4"] == [2, 2] for o in outs)
    # Interrupted after the second chunk, resumed from the (process-0) checkpoint.
    assert all(o["resumed_from"] == 40 for o in outs)
    assert outs[0]["digest"] == outs[1]["digest"]  # every process holds every lane's results
    assert os.path.isdir(tmp_path / "ck")  # written by process 0 (the others never write)
    # The same events as one process running all four lanes.
    r = subprocess.run(
        [sys.executable, "-c", SINGLE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    one = json.loads([l for l in r.stdout.splitlines() if l.startswith("RESULT ")][-1][7:])
    assert one["t_mem"] == outs[0]["t_mem"] and one["t_grok"] == outs[0]["t_grok"]
