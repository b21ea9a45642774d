"""The lane engine on small real runs (p=31, d=64, H=128, fraction 0.7: groks in ~300 steps)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grokjax import lane as eng
from grokjax import engine
from grokjax.models import ModelSpec

SMALL = eng.Static(model=ModelSpec(p=31, d=64, hidden=128), frac=0.7, eval_every=10)


@pytest.fixture(scope="module")
def small_engine():
    return engine.Engine(SMALL)


@pytest.fixture(scope="module", params=["walk", "vmap"])
def mode_engine(request):
    """The small engine in each lane mode on one CPU device (walk: the host calls one lane's
    program per lane; vmap: every lane in one program, the accelerator path)."""
    return engine.Engine(SMALL, lane_mode=request.param)


def _hp(n_groups=3, **kw):
    kw.setdefault("lr", 1e-2)
    return eng.make_hparams(n_groups, **kw)


def test_latch_semantics_on_a_constructed_sequence():
    static = eng.Static(model=ModelSpec(p=7, d=4, hidden=4), frac=0.5, margin=0.0, min_margin=20)
    lat = eng.empty_latches(2)
    train = [0.5, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    test = [0.0, 0.1, 0.85, 0.7, 0.92, 0.97, 0.5, 0.99]
    norms = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
    for i, (tr, te, nm) in enumerate(zip(train, test, norms)):
        lat = eng.latch(
            static,
            lat,
            jnp.int32(10 * i),
            jnp.int32(1000),
            tr,
            te,
            nm,
            jnp.array([nm, 2 * nm]),
            0.0,
        )
    assert int(lat.t_mem) == 10 and float(lat.norm_at_mem) == 11.0
    # First crossing of each threshold is kept even when accuracy falls back later.
    assert lat.t_grok.tolist() == [20, 40, 50]
    assert lat.norm_at_grok.tolist() == [12.0, 14.0, 15.0]
    assert lat.group_norm_at_grok.tolist() == [14.0, 28.0]
    # Past the lane's end (T_grok 40 + min_margin 20 = 60) nothing latches any more.
    lat2 = eng.latch(
        static,
        eng.empty_latches(2)._replace(t_grok=jnp.array([-1, 40, -1])),
        jnp.int32(70),
        jnp.int32(1000),
        1.0,
        1.0,
        1.0,
        jnp.ones(2),
        0.0,
    )
    assert lat2.t_grok.tolist() == [-1, 40, -1] and int(lat2.t_mem) == -1
    # Nor past the budget.
    lat3 = eng.latch(
        static, eng.empty_latches(2), jnp.int32(70), jnp.int32(60), 1.0, 1.0, 1.0, jnp.ones(2), 0.0
    )
    assert lat3.t_grok.tolist() == [-1, -1, -1]


def test_free_run_groks_and_clamp_holds_norm(small_engine):
    # Lanes 0,1 free; lanes 2,3 the same seeds clamped at 33.0 from step 100.
    hp = _hp(seed=[0, 1, 0, 1], target_norm=[0, 0, 33.0, 33.0], t_int=[0, 0, 100, 100], budget=2000)
    r = small_engine.run(hp, chunk_steps=200, progress=None)
    t_grok = r.latches["t_grok"][:, eng.HEADLINE]
    assert (t_grok[:2] > 0).all() and (t_grok[:2] < 1500).all(), t_grok
    # A memorizer first: train accuracy crosses 0.99 well before test accuracy.
    assert (r.latches["t_mem"][:2] < t_grok[:2]).all()
    assert (r.latches["diverged_step"] == -1).all()
    # Clamped lanes grok too, at the held norm.
    assert (t_grok[2:] > 0).all()
    np.testing.assert_allclose(r.latches["norm_at_grok"][2:, eng.HEADLINE], 33.0, rtol=1e-5)
    # Curves: the clamped norm equals the target at every recorded step after t_int
    # (update number t_int is the first clamped one, so params from step t_int + 1 on).
    after = (r.grid > 100)[None, :] & np.isfinite(r.curves["norm"][2:])
    np.testing.assert_allclose(r.curves["norm"][2:][after], 33.0, rtol=1e-5)
    # ... and free and clamped lanes with one seed agree exactly before t_int.
    before = r.grid <= 100
    np.testing.assert_array_equal(r.curves["norm"][:2, before], r.curves["norm"][2:, before])
    np.testing.assert_array_equal(
        r.curves["test_acc"][:2, before], r.curves["test_acc"][2:, before]
    )
    # Group norms add up to the total.
    g = r.curves["group_norms"][0]
    ok = np.isfinite(g).all(axis=1)
    np.testing.assert_allclose(np.sqrt((g[ok] ** 2).sum(1)), r.curves["norm"][0, ok], rtol=1e-5)
    # Lanes stop at T_grok plus the margin, not at the budget.
    assert (r.steps_run[:2] < 2000).all()
    assert r.stats["lane_steps_executed"] <= 1.6 * r.stats["lane_steps_needed"]


def test_clamp_holds_norm_at_every_step():
    static = eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5, eval_every=1)
    e = engine.Engine(static)
    hp = _hp(seed=[5], target_norm=[9.0], t_int=[7], budget=40)
    r = e.run(hp, chunk_steps=40, progress=None, grid_points=200)
    norm = r.curves["norm"][0]
    rec = np.isfinite(norm)
    steps = r.grid[rec]
    assert set(range(8, 41)).issubset(set(steps.tolist()))
    np.testing.assert_allclose(norm[rec][steps > 7], 9.0, rtol=1e-6)
    assert not np.allclose(norm[rec][steps <= 7], 9.0, rtol=1e-3)


def test_one_lane_alone_equals_the_same_lane_in_a_batch(mode_engine):
    alone = mode_engine.run(_hp(seed=[3], lr=[3e-3], budget=300), chunk_steps=100, progress=None)
    batch = mode_engine.run(
        _hp(seed=[0, 3, 7], lr=[1e-2, 3e-3, 5e-3], wd=[1.0, 1.0, 2.0], budget=300),
        chunk_steps=100,
        progress=None,
    )
    # Walked lanes run the very same one-lane program: bit for bit. In one vmap the batched
    # matmuls of a 1- and a 4-slot program round differently in the last bits.
    rtol = 0 if mode_engine.lane_mode == "walk" else 1e-5
    for k in ("norm", "train_loss", "test_acc"):
        np.testing.assert_allclose(
            alone.curves[k][0], batch.curves[k][1], rtol=rtol, atol=0 if rtol == 0 else 1e-6
        )
    for k in ("t_mem", "t_grok", "diverged_step"):
        np.testing.assert_array_equal(alone.latches[k][0], batch.latches[k][1])


@pytest.mark.parametrize("lanes_per_group", [0, 1, 2])
def test_repacking_or_skipping_finished_lanes_does_not_change_results(
    small_engine, lanes_per_group
):
    # 0: one vmap over all lanes, finished lanes are repacked away (accelerators);
    # 1: the host walks the lanes one program call each, skipping finished and padding slots
    #    (one CPU device); 2: the same in groups of two (5 lanes in 8 slots: groups of 2).
    hp = _hp(
        seed=[0, 1, 2, 3, 4], lr=[1e-2, 1e-2, 3e-3, 3e-3, 1e-2], budget=[300, 2000, 2000, 500, 2000]
    )
    e = engine.Engine(SMALL, lanes_per_group=lanes_per_group)
    fast = e.run(hp, chunk_steps=100, progress=None, repack=True)
    fixed = engine.Engine(SMALL, lanes_per_group=0).run(
        hp, chunk_steps=100, progress=None, repack=False
    )
    if lanes_per_group == 0:
        assert len(fast.stats["programs"]) > 1
    for k in fast.latches:
        np.testing.assert_allclose(fast.latches[k], fixed.latches[k], rtol=1e-5)
    np.testing.assert_array_equal(fast.steps_run, fixed.steps_run)
    assert fast.stats["lane_steps_executed"] < fixed.stats["lane_steps_executed"]
    if lanes_per_group < 2:  # a group of two runs while either of its lanes does
        assert fast.stats["lane_steps_executed"] <= 1.25 * fast.stats["lane_steps_needed"]


def test_negative_lanes_per_group_is_refused():
    with pytest.raises(ValueError, match="lanes_per_group must be >= 0"):
        engine.Engine(SMALL, lanes_per_group=-1)


def test_walked_lanes_compute_exactly_what_each_lane_computes_alone():
    # On one CPU device every lane runs the same compiled one-lane program, so a lane's
    # results do not depend on which other lanes run with it, to the last bit.
    e = engine.Engine(SMALL, lanes_per_group=1)
    batch = e.run(
        _hp(seed=[0, 3, 7], lr=[1e-2, 3e-3, 5e-3], budget=[200, 300, 100]),
        chunk_steps=100,
        progress=None,
    )
    alone = e.run(_hp(seed=[3], lr=[3e-3], budget=300), chunk_steps=100, progress=None)
    for k in alone.curves:
        np.testing.assert_array_equal(alone.curves[k][0], batch.curves[k][1])
    for k in alone.latches:
        np.testing.assert_array_equal(alone.latches[k][0], batch.latches[k][1])


def test_diverged_lane_is_frozen_and_leaves_others_alone(mode_engine):
    hp = _hp(seed=[0, 1], lr=[1e-2, 1e9], budget=200)
    r = mode_engine.run(hp, chunk_steps=100, progress=None)
    ref = mode_engine.run(_hp(seed=[0], lr=[1e-2], budget=200), chunk_steps=100, progress=None)
    assert r.latches["diverged_step"][1] >= 0 and r.latches["diverged_step"][0] == -1
    # walk: the same one-lane program (exact); vmap: 2-slot vs 1-slot program (rounding)
    rtol = 0 if mode_engine.lane_mode == "walk" else 1e-5
    np.testing.assert_allclose(r.curves["norm"][0], ref.curves["norm"][0], rtol=rtol)
    assert np.isfinite(r.curves["norm"][1][np.isfinite(r.curves["norm"][1])]).all()


def test_init_scale_and_group_selection(small_engine):
    hp = _hp(
        seed=[0, 0, 0],
        init_scale=[1.0, 2.0, 1.0],
        groups=[[1, 1, 1], [1, 1, 1], [0, 1, 0]],
        budget=10,
    )
    r = small_engine.run(hp, chunk_steps=10, progress=None)
    n0 = r.curves["norm"][:, 0]
    np.testing.assert_allclose(n0[1], 2 * n0[0], rtol=1e-5)
    np.testing.assert_allclose(n0[2], r.curves["group_norms"][0, 0, 1], rtol=1e-6)


def test_step_grid_is_geometric_and_on_eval_steps():
    g = engine.step_grid(80_000, 10, 120)
    assert g[0] == 0 and g[-1] == 80_000 and (g % 10 == 0).all()
    assert np.all(np.diff(g) > 0) and 60 < g.size <= 121


def test_dynamic_chunk_length_matches_a_static_one():
    static = eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5, eval_every=5)
    fns = eng.make_lane_fns(static)
    hp = jax.tree.map(lambda x: x[0], _hp(seed=[2], budget=1000))
    ref_state, ref_m = jax.jit(lambda s: fns.chunk(s, hp, 3))(fns.init(hp))
    calls = []

    @jax.jit
    def dyn(s, n):
        calls.append(1)
        return jax.vmap(lambda s: fns.chunk(s, hp, n, max_blocks=6))(s)

    init = jax.tree.map(lambda x: x[None], fns.init(hp))
    state, m = dyn(init, 3)
    state2, m2 = dyn(init, 5)
    assert len(calls) == 1  # one program for every chunk length
    np.testing.assert_array_equal(m.step[0], [0, 5, 10, -1, -1, -1])
    np.testing.assert_array_equal(m2.step[0], [0, 5, 10, 15, 20, -1])
    np.testing.assert_allclose(m.norm[0, :3], ref_m.norm, rtol=1e-6)
    assert int(state.step[0]) == 15 and int(state2.step[0]) == 25
    np.testing.assert_allclose(
        state.params["out"]["W2"][0], ref_state.params["out"]["W2"], rtol=1e-4, atol=1e-6
    )


def test_fourier_stats_separate_sparse_from_random_embeddings():
    p, d = 31, 16
    t = np.arange(p)[:, None]
    sparse = np.cos(2 * np.pi * 3 * t / p) * np.ones((1, d)) + 5.0  # one frequency (+ DC)
    g_sparse, h_sparse = eng.fourier_stats(jnp.asarray(sparse, jnp.float32))
    g_rand, h_rand = eng.fourier_stats(jax.random.normal(jax.random.key(0), (p, d)))
    n = p // 2
    assert float(g_sparse) == pytest.approx((n - 1) / n, abs=1e-3)  # all power in one bin
    assert float(h_sparse) < 0.01 and float(h_rand) > 0.85
    assert float(g_rand) < 0.5
    g0, h0 = eng.fourier_stats(jnp.zeros((p, d)))
    assert np.isfinite([float(g0), float(h0)]).all()


def test_lanes_beyond_max_lanes_wait_for_a_slot_with_identical_results(mode_engine):
    small_engine = mode_engine
    hp = _hp(
        seed=[0, 1, 2, 3, 4],
        lr=[1e-2, 1e-2, 3e-3, 3e-3, 1e-2],
        target_norm=[0, 34.0, 0, 0, 37.0],
        t_int=[0, 60, 0, 0, 60],
        budget=[300, 2000, 2000, 500, 2000],
    )
    capped = small_engine.run(hp, chunk_steps=100, progress=None, max_lanes=2)
    full = small_engine.run(hp, chunk_steps=100, progress=None)
    assert max(capped.stats["programs"]) <= 2
    for k in full.latches:
        np.testing.assert_allclose(capped.latches[k], full.latches[k], rtol=1e-5, err_msg=k)
    np.testing.assert_array_equal(capped.steps_run, full.steps_run)
    for k in ("norm", "test_acc"):
        np.testing.assert_allclose(capped.curves[k], full.curves[k], rtol=1e-4, atol=1e-6)


def test_capped_run_resumes_from_a_checkpoint_taken_while_lanes_wait(mode_engine, tmp_path):
    small_engine = mode_engine
    from grokjax import checkpoint as ck

    hp = _hp(seed=[0, 1, 2, 3], lr=[1e-2, 3e-3, 1e-2, 5e-3], budget=[400, 600, 300, 500])
    ref = small_engine.run(hp, chunk_steps=100, progress=None, max_lanes=2)
    calls = iter(range(100))
    with pytest.raises(engine.Interrupted):
        small_engine.run(
            hp,
            chunk_steps=100,
            progress=None,
            max_lanes=2,
            checkpointer=ck.LaneCheckpointer(str(tmp_path), ck.Policy(), log=None),
            should_stop=lambda: next(calls) == 4,
        )
    res = small_engine.run(
        hp,
        chunk_steps=100,
        progress=None,
        max_lanes=2,
        checkpointer=ck.LaneCheckpointer(str(tmp_path), ck.Policy(), log=None),
    )
    assert res.stats["resumed_from_step"] is not None
    for k in ref.latches:
        np.testing.assert_array_equal(res.latches[k], ref.latches[k], err_msg=k)
    np.testing.assert_array_equal(res.curves["norm"], ref.curves["norm"])


def test_lanes_that_fit_follows_the_memory_budget(small_engine):
    small = small_engine.lanes_that_fit(memory_bytes=50e6, chunk_steps=100)
    big = small_engine.lanes_that_fit(memory_bytes=500e6, chunk_steps=100)
    assert 1 <= small < big
    assert big == pytest.approx(10 * small, rel=0.3)


def test_margin_loss_is_log_softmax_rounded_without_collapse():
    """The two losses agree in value and gradient; only where p_y rounds to 1 in float32 does
    log_softmax's correct-class gradient vanish (softmax collapse) and the margin form's not."""
    z = jax.random.normal(jax.random.PRNGKey(0), (64, 31)) * 3.0
    y = jnp.arange(64) % 31

    def nll_and_grad(loss, logits, labels):
        f = lambda zz: -jnp.sum(eng.log_prob_of_label(zz, labels, loss))
        return jax.value_and_grad(f)(logits)

    (va, ga), (vb, gb) = (nll_and_grad(k, z, y) for k in ("log_softmax", "margin"))
    np.testing.assert_allclose(vb, va, rtol=1e-6)
    np.testing.assert_allclose(gb, ga, atol=1e-6)
    # every wrong logit 25 below the right one: 1 - p_y = 30·e^-25 ~ 4e-10, below float32's
    # resolution near 1
    zc = jnp.zeros((2, 31)).at[jnp.arange(2), jnp.array([3, 5])].set(25.0)
    yc = jnp.array([3, 5])
    (_, g_ls), (v_m, g_m) = (nll_and_grad(k, zc, yc) for k in ("log_softmax", "margin"))
    assert float(g_ls[0, 3]) == 0.0 and float(g_ls[1, 5]) == 0.0  # collapsed
    tail = 30 * np.exp(-25.0)
    np.testing.assert_allclose(float(g_m[0, 3]), -tail, rtol=1e-5)
    np.testing.assert_allclose(float(v_m), 2 * tail, rtol=1e-5)
    # the wrong classes' gradients agree: softmax_j in both
    np.testing.assert_allclose(g_m[0, :3], g_ls[0, :3], rtol=1e-5)


def test_margin_loss_trains_like_log_softmax_before_any_collapse():
    """One lane, each loss, same seed: the same training to float32 rounding (no row is near
    p_y = 1 this early), and the default loss keeps the old fingerprint."""
    assert "loss" not in eng.static_fingerprint(SMALL)
    margin = eng.Static(model=SMALL.model, frac=SMALL.frac, eval_every=10, loss="margin")
    assert "loss='margin'" in eng.static_fingerprint(margin)
    with pytest.raises(ValueError, match="loss"):
        eng.Static(loss="hinge").validate()
    hp = _hp(seed=[3], budget=200)
    runs = [engine.Engine(s).run(hp, chunk_steps=200, progress=None) for s in (SMALL, margin)]
    ok = np.isfinite(runs[0].curves["train_loss"][0])
    assert ok.sum() >= 5
    for key in ("train_loss", "norm"):
        np.testing.assert_allclose(
            runs[1].curves[key][0, ok], runs[0].curves[key][0, ok], rtol=2e-4
        )
