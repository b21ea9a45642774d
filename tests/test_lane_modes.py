"""The two lane modes on one CPU device: the host walking the lanes (one lane's program per
lane, the CPU default) and every lane in one vmapped program (the accelerator path).

Results agree: events (T_mem, T_grok, divergence, steps run) and which curve points are
recorded exactly; floats to ~1e-6 relative (asserted at 1e-5). They differ in the last bits
because XLA:CPU compiles a batched dot_general for the vmapped program and plain matmuls for
the one-lane program (other blocking, so other summation order), and the vmapped program's
batch shrinks when finished lanes are repacked away; training carries the rounding forward.
"""

import jax
import numpy as np
import pytest

from grokjax import lane as eng
from grokjax import engine
from grokjax.models import ModelSpec

SMALL = eng.Static(model=ModelSpec(p=31, d=64, hidden=128), frac=0.7, eval_every=10)
# free, clamped, slower, diverging (lr 1e9) and shorter lanes: early stopping, repacking
HP = eng.make_hparams(
    3,
    seed=[0, 1, 2, 3, 4],
    lr=[1e-2, 1e-2, 3e-3, 1e9, 1e-2],
    target_norm=[0, 34.0, 0, 0, 0],
    t_int=[0, 60, 0, 0, 0],
    budget=[300, 600, 600, 300, 500],
)
EVENTS = ("t_mem", "t_grok", "diverged_step")
RTOL = 1e-5


def assert_agree(a, b):
    for k in EVENTS:
        np.testing.assert_array_equal(a.latches[k], b.latches[k], err_msg=k)
    np.testing.assert_array_equal(a.steps_run, b.steps_run)
    for k in a.latches:
        np.testing.assert_allclose(a.latches[k], b.latches[k], rtol=RTOL, err_msg=k)
    for k in a.curves:  # the same points recorded (NaN elsewhere), values to rounding
        np.testing.assert_array_equal(np.isnan(a.curves[k]), np.isnan(b.curves[k]), err_msg=k)
        np.testing.assert_allclose(a.curves[k], b.curves[k], rtol=RTOL, atol=1e-6, err_msg=k)


@pytest.fixture(scope="module")
def runs():
    return {
        m: engine.Engine(SMALL, lane_mode=m).run(HP, chunk_steps=100, progress=None)
        for m in ("walk", "vmap")
    }


def test_walk_and_vmap_agree(runs):
    walk, vmap = runs["walk"], runs["vmap"]
    assert walk.stats["lane_mode"] == "walk" and vmap.stats["lane_mode"] == "vmap"
    assert walk.stats["programs"] == [8] and len(vmap.stats["programs"]) > 1  # vmap repacks
    assert (walk.latches["t_grok"][:, eng.HEADLINE] >= 0).sum() >= 2
    assert walk.latches["diverged_step"][3] >= 0
    assert_agree(walk, vmap)
    # Early stopping: both run close to the lane-steps the lanes need.
    for r in (walk, vmap):
        assert r.stats["lane_steps_executed"] <= 1.25 * r.stats["lane_steps_needed"]


def test_memory_budget_splits_a_vmap_phase_into_waves(runs, monkeypatch):
    e = engine.Engine(SMALL, lane_mode="vmap")
    fixed, per_lane = e.memory_bytes(100)
    monkeypatch.setenv("GROKJAX_MEMORY_BUDGET", str(int(fixed + 2.5 * per_lane)))
    assert e.lanes_that_fit(chunk_steps=100) == 2
    # Everything per lane (records, latches, end steps, finished lanes, refilling freed slots,
    # repacking) stays on the device: between chunks the host fetches a few scalars, whatever
    # the lane count; lane-sized arrays come back once, at the end.
    sizes, fetch = [], e._fetch
    monkeypatch.setattr(
        e,
        "_fetch",
        lambda tree: (
            sizes.append(sum(np.size(x) for x in jax.tree.leaves(fetch(tree)))) or fetch(tree)
        ),
    )
    waves = e.run(HP, chunk_steps=100, progress=None)  # max_lanes "auto": from the budget
    assert max(waves.stats["programs"]) == 2
    assert len(sizes) > 6 and max(sizes[:-1]) <= 4 and sizes[-1] > 5 * len(waves.grid)
    assert_agree(waves, runs["vmap"])


def test_bad_memory_budget_is_refused(monkeypatch):
    monkeypatch.setenv("GROKJAX_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="GROKJAX_MEMORY_BUDGET"):
        engine.memory_budget()


@pytest.mark.parametrize("mode", ["walk", "vmap"])
def test_lane_mode_is_checked(mode):
    with pytest.raises(ValueError, match="lane_mode"):
        engine.Engine(SMALL, lane_mode="fast")
    assert engine.Engine(SMALL, lane_mode=mode).lane_mode == mode
    if mode == "vmap":
        with pytest.raises(ValueError, match="walks them"):
            engine.Engine(SMALL, lane_mode=mode, lanes_per_group=2)
