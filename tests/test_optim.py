"""Tests for grokjax.optim: global_norm, weight_matrices and clamp_norm."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from grokjax.optim import (
    ClampNormState,
    clamp_norm,
    global_norm,
    weight_matrices,
)

MATRICES = ("embed", "w1", "w2")  # the leaves weight_matrices selects
TARGET = 3.0


# --------------------------------------------------------------------------- #
# A small model-shaped pytree and a toy loss
# --------------------------------------------------------------------------- #


def make_params(seed=0, dtype=jnp.float32):
    """Random params built with numpy (no compilation, any dtype)."""
    rng = np.random.default_rng(seed)

    def n(shape, scale=1.0):
        return jnp.asarray((scale * rng.standard_normal(shape)).astype(dtype))

    return {
        "embed": n((7, 5)),
        "w1": n((5, 6), 0.5),
        "b1": n((6,), 0.1),
        "w2": n((6, 3), 0.5),
        "ln": {"scale": 1.0 + n((3,), 0.1)},
        "temp": jnp.asarray(0.7, dtype),
    }


def loss_fn(p):
    ids = jnp.arange(16) % 7
    x = p["embed"][ids]
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    out = (h @ p["w2"]) * p["ln"]["scale"] * p["temp"]
    y = jnp.sin(jnp.arange(16 * 3, dtype=out.dtype).reshape(16, 3))
    return jnp.mean((out - y) ** 2)


def adamw():
    return optax.adamw(1e-2, weight_decay=1.0)


def make_step(tx):
    def step(params, state):
        grads = jax.grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def trajectory(tx, params, n, jit=True):
    """Stacked params after each of ``n`` steps (row i: after update number i).

    Jitted runs are one ``lax.scan``; ``jit=False`` runs op by op.
    """
    step = make_step(tx)
    state = tx.init(params)
    if not jit:  # the optimizer runs op by op; only the gradient is jitted
        grad = jax.jit(jax.grad(loss_fn))
        out = []
        for _ in range(n):
            updates, state = tx.update(grad(params), state, params)
            params = optax.apply_updates(params, updates)
            out.append(params)
        return jax.tree.map(lambda *xs: jnp.stack(xs), *out), state

    def run(params, state):
        def body(c, _):
            c = step(*c)
            return c, c[0]

        (_, state), hist = jax.lax.scan(body, (params, state), None, length=n)
        return hist, state

    return jax.jit(run)(params, state)


def row(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


_norms = jax.jit(jax.vmap(lambda p: global_norm(p, weight_matrices)))


def norms_of(hist):
    """Weight-matrix norm of every row of a stacked history, as numpy."""
    return np.asarray(_norms(hist))


def wnorm(params):
    return float(norms_of(jax.tree.map(lambda x: x[None], params))[0])


def assert_trees_equal(a, b):
    """Bit-identical pytrees."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def trees_equal(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def np_norm(tree, select):
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    total = 0.0
    for path, x in flat:
        if select(jax.tree_util.keystr(path)):
            total += np.sum(np.asarray(x, np.float64) ** 2)
    return np.sqrt(total)


def x64():
    """Context manager enabling float64 only inside a ``with`` block."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64()


# --------------------------------------------------------------------------- #
# global_norm and weight_matrices
# --------------------------------------------------------------------------- #


def test_weight_matrices_selects_ndim_ge_2():
    tree = {
        "kernel": jnp.zeros((3, 4)),
        "conv": jnp.zeros((3, 3, 2, 4)),
        "bias": jnp.zeros((4,)),
        "scale": jnp.ones((4,)),
        "scalar": jnp.zeros(()),
        "py": 1.5,
        "abstract": jax.ShapeDtypeStruct((2, 2), jnp.float32),
        "abstract_vec": jax.ShapeDtypeStruct((2,), jnp.float32),
    }
    assert weight_matrices(tree) == {
        "kernel": True,
        "conv": True,
        "bias": False,
        "scale": False,
        "scalar": False,
        "py": False,
        "abstract": True,
        "abstract_vec": False,
    }
    mask = weight_matrices(make_params())
    assert sorted(k for k, v in mask.items() if v is True) == sorted(MATRICES)


def test_global_norm_matches_numpy():
    p = make_params(1)
    all_leaves = np_norm(p, lambda k: True)
    matrices = np_norm(p, lambda k: any(m in k for m in MATRICES))
    assert matrices < all_leaves
    np.testing.assert_allclose(float(global_norm(p)), all_leaves, rtol=1e-6)
    np.testing.assert_allclose(float(global_norm(p, weight_matrices)), matrices, rtol=1e-6)
    np.testing.assert_allclose(float(global_norm(p, weight_matrices(p))), matrices, rtol=1e-6)
    # Mask leaves as jax boolean arrays, inside jit (traced).
    w1_only = jax.tree.map(lambda _: jnp.asarray(False), p)
    w1_only["w1"] = jnp.asarray(True)
    got = jax.jit(global_norm)(p, w1_only)
    np.testing.assert_allclose(float(got), np.linalg.norm(np.asarray(p["w1"])), rtol=1e-6)
    # Nothing selected -> 0.
    nothing = jax.tree.map(lambda _: False, p)
    assert float(global_norm(p, nothing)) == 0.0
    assert global_norm(p).dtype == jnp.float32


def test_global_norm_per_lane_traced_mask_under_vmap():
    p = make_params(2)
    flags = jnp.array([True, False])

    def f(flag):
        mask = {
            "embed": flag,
            "w1": True,
            "b1": False,
            "w2": jnp.logical_not(flag),
            "ln": {"scale": False},
            "temp": False,
        }
        return global_norm(p, mask)

    got = jax.vmap(f)(flags)
    lane0 = np_norm(p, lambda k: "embed" in k or "w1" in k)
    lane1 = np_norm(p, lambda k: "w1" in k or "w2" in k)
    np.testing.assert_allclose(np.asarray(got), [lane0, lane1], rtol=1e-6)


def test_global_norm_rejects_mismatched_mask():
    with pytest.raises(ValueError, match="structure"):
        global_norm({"a": jnp.ones(2), "b": jnp.ones(2)}, {"a": True})


# --------------------------------------------------------------------------- #
# clamp_norm: core behaviour
# --------------------------------------------------------------------------- #


def test_norm_equals_target_after_every_step_past_start():
    p0 = make_params()
    start = 5
    tx = optax.chain(adamw(), clamp_norm(TARGET, start_step=start, mask=weight_matrices))
    traj, state = trajectory(tx, p0, 30)
    norms = norms_of(traj)
    for i, nrm in enumerate(norms):
        if i < start:
            assert abs(nrm - TARGET) > 0.1, (i, nrm)
        else:
            np.testing.assert_allclose(nrm, TARGET, rtol=1e-5, err_msg=f"update {i}")
    assert len(set(norms[:start].tolist())) == start  # the norm moved freely before
    assert isinstance(state[1], ClampNormState) and int(state[1].count) == 30
    # The loss is still being optimised under the clamp.
    assert float(loss_fn(row(traj, -1))) < float(loss_fn(row(traj, start)))


def test_before_start_bit_identical_to_plain_adamw():
    p0 = make_params()
    start = 8
    clamped, _ = trajectory(
        optax.chain(adamw(), clamp_norm(TARGET, start_step=start, mask=weight_matrices)),
        p0,
        start + 1,
    )
    plain, _ = trajectory(adamw(), p0, start + 1)
    for i in range(start):
        assert_trees_equal(row(clamped, i), row(plain, i))
    assert not trees_equal(row(clamped, start), row(plain, start))


def test_jit_matches_eager():
    p0 = make_params(3)
    tx = optax.chain(adamw(), clamp_norm(TARGET, start_step=2, mask=weight_matrices))
    eager, _ = trajectory(tx, p0, 4, jit=False)
    jitted, _ = trajectory(tx, p0, 4, jit=True)
    # Same numbers up to float rounding: XLA may fuse (p + u) * f - p into an
    # FMA under jit, so the last bit can differ from op-by-op execution.
    for x, y in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(norms_of(eager)[2:], TARGET, rtol=1e-5)
    # A single clamp update on fixed inputs, jitted vs eager.
    clamp = clamp_norm(TARGET, mask=weight_matrices)
    u = jax.grad(loss_fn)(p0)
    st = clamp.init(p0)
    (a, sa), (b, sb) = clamp.update(u, st, p0), jax.jit(clamp.update)(u, st, p0)
    assert int(sa.count) == int(sb.count) == 1
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    for k in ("b1", "temp"):  # pass-through leaves are exact either way
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_masked_out_leaves_bit_identical_and_moments_untouched():
    p = make_params(4)
    inner = adamw()
    tx = optax.chain(inner, clamp_norm(TARGET, mask=weight_matrices))
    state = tx.init(p)
    for _ in range(5):
        g = jax.grad(loss_fn)(p)
        u_plain, inner_plain = inner.update(g, state[0], p)
        u, state = tx.update(g, state, p)
        for k in ("b1", "temp"):
            np.testing.assert_array_equal(np.asarray(u[k]), np.asarray(u_plain[k]))
        np.testing.assert_array_equal(
            np.asarray(u["ln"]["scale"]), np.asarray(u_plain["ln"]["scale"])
        )
        assert not np.array_equal(np.asarray(u["w1"]), np.asarray(u_plain["w1"]))
        assert_trees_equal(state[0], inner_plain)  # Adam moments untouched
        p = optax.apply_updates(p, u)
        np.testing.assert_allclose(wnorm(p), TARGET, rtol=1e-5)


def test_target_zero_passes_through_bit_identically():
    p = make_params(5)
    u = jax.grad(loss_fn)(p)
    clamp = clamp_norm(0.0, mask=weight_matrices)
    out, _ = clamp.update(u, clamp.init(p), p)
    assert_trees_equal(out, u)
    out, _ = clamp_norm(None).update(u, clamp.init(p), p)
    assert_trees_equal(out, u)

    # Traced target 0 inside a training loop: same numbers as plain adamw.
    def run(target, params):
        tx = optax.chain(adamw(), clamp_norm(target, mask=weight_matrices))
        step = make_step(tx)
        return jax.lax.fori_loop(0, 10, lambda i, c: step(*c), (params, tx.init(params)))[0]

    def run_plain(params):
        step = make_step(adamw())
        return jax.lax.fori_loop(0, 10, lambda i, c: step(*c), (params, adamw().init(params)))[0]

    assert_trees_equal(jax.jit(run)(0.0, p), jax.jit(run_plain)(p))
    np.testing.assert_allclose(wnorm(jax.jit(run)(TARGET, p)), TARGET, rtol=1e-5)


def test_zero_input_gives_finite_output():
    p = jax.tree.map(jnp.zeros_like, make_params())
    u = jax.tree.map(jnp.zeros_like, p)
    clamp = clamp_norm(TARGET)
    for update in (clamp.update, jax.jit(clamp.update)):
        out, _ = update(u, clamp.init(p), p)
        for x in jax.tree.leaves(out):
            assert np.all(np.isfinite(np.asarray(x)))
            np.testing.assert_array_equal(np.asarray(x), 0.0)
    # Tiny but non-zero norm (below eps) also stays finite.
    u_tiny = jax.tree.map(lambda x: jnp.full_like(x, 1e-30), p)
    out, _ = clamp.update(u_tiny, clamp.init(p), p)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(out))


def test_raises_without_params():
    p = make_params()
    clamp = clamp_norm(TARGET)
    with pytest.raises(ValueError, match="params"):
        clamp.update(p, clamp.init(p))
    tx = optax.chain(adamw(), clamp_norm(TARGET))
    with pytest.raises(ValueError):
        tx.update(p, tx.init(p))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mode="oneshot"),
        dict(mode="one_shot", num_steps=3),
        dict(target_norm=-1.0),
        dict(num_steps=-1),
        dict(eps=0.0),
    ],
)
def test_invalid_arguments_raise(kwargs):
    kwargs = {"target_norm": TARGET, **kwargs}
    with pytest.raises(ValueError):
        clamp_norm(**kwargs)


# --------------------------------------------------------------------------- #
# Schedules: one-shot and finite windows
# --------------------------------------------------------------------------- #


def test_one_shot_rescales_exactly_once_then_drifts():
    p0 = make_params(6)
    start = 4
    tx = optax.chain(
        adamw(), clamp_norm(TARGET, start_step=start, mode="one_shot", mask=weight_matrices)
    )
    traj, _ = trajectory(tx, p0, 15)
    norms = norms_of(traj)
    np.testing.assert_allclose(norms[start], TARGET, rtol=1e-5)
    assert np.all(np.abs(norms[:start] - TARGET) > 0.1)
    assert np.all(np.abs(norms[start + 1 :] - TARGET) > 1e-4)
    # Same as an explicit num_steps=1 window, bit for bit.
    tx1 = optax.chain(
        adamw(), clamp_norm(TARGET, start_step=start, num_steps=1, mask=weight_matrices)
    )
    assert_trees_equal(traj, trajectory(tx1, p0, 15)[0])


def test_finite_window_with_traced_int32_max_num_steps():
    p0 = make_params(7)

    def run(start, num):
        tx = optax.chain(
            adamw(), clamp_norm(TARGET, start_step=start, num_steps=num, mask=weight_matrices)
        )
        step = make_step(tx)

        def body(c, _):
            params, state = step(*c)
            return (params, state), global_norm(params, weight_matrices)

        return jax.lax.scan(body, (p0, tx.init(p0)), None, length=12)[1]

    run = jax.jit(run)
    norms = np.asarray(run(jnp.int32(3), jnp.int32(4)))
    np.testing.assert_allclose(norms[3:7], TARGET, rtol=1e-5)
    assert np.all(np.abs(norms[7:] - TARGET) > 1e-4)
    assert np.all(np.abs(norms[:3] - TARGET) > 0.1)
    # "Forever" spelled as the int32 maximum must not overflow start + num.
    norms = np.asarray(run(jnp.int32(3), jnp.int32(np.iinfo(np.int32).max)))
    np.testing.assert_allclose(norms[3:], TARGET, rtol=1e-5)


# --------------------------------------------------------------------------- #
# Transformations: vmap, inject_hyperparams, eval_shape, compile once
# --------------------------------------------------------------------------- #


def test_vmap_per_lane_target():
    seeds = [10, 11, 12, 13]
    targets = jnp.array([2.0, 3.0, 4.5, 0.0])
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *[make_params(s) for s in seeds])

    def run(p, target):
        tx = optax.chain(adamw(), clamp_norm(target, start_step=2, mask=weight_matrices))
        step = make_step(tx)
        c = jax.lax.fori_loop(0, 10, lambda i, c: step(*c), (p, tx.init(p)))
        return c[0], global_norm(c[0], weight_matrices)

    final, norms = jax.jit(jax.vmap(run))(params, targets)
    np.testing.assert_allclose(np.asarray(norms[:3]), np.asarray(targets[:3]), rtol=1e-5)
    assert float(norms[3]) > TARGET + 0.5  # the free lane was not clamped
    # Each lane agrees with running that lane alone.
    run_alone = jax.jit(run)
    for lane in range(4):
        alone, norm = run_alone(make_params(seeds[lane]), targets[lane])
        np.testing.assert_allclose(float(norm), float(norms[lane]), rtol=1e-5)
        for x, y in zip(jax.tree.leaves(alone), jax.tree.leaves(row(final, lane))):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


def test_vmap_per_lane_traced_mask():
    p0 = make_params(8)
    # Lane 0 clamps {embed, w1, w2}; lane 1 clamps only w1.  Non-matrix leaves
    # are Python False in both lanes; the matrix flags are traced per lane.
    flags = {
        "embed": jnp.array([True, False]),
        "w1": jnp.array([True, True]),
        "w2": jnp.array([True, False]),
    }

    def run(f):
        mask = {
            "embed": f["embed"],
            "w1": f["w1"],
            "b1": False,
            "w2": f["w2"],
            "ln": {"scale": False},
            "temp": False,
        }
        inner, clamp = adamw(), clamp_norm(TARGET, mask=mask)
        u_inner, _ = inner.update(jax.grad(loss_fn)(p0), inner.init(p0), p0)
        u, _ = clamp.update(u_inner, clamp.init(p0), p0)
        return optax.apply_updates(p0, u), u, u_inner

    new, u, u_inner = jax.jit(jax.vmap(run))(flags)
    lane = lambda t, i: jax.tree.map(lambda x: x[i], t)
    n0 = np_norm(lane(new, 0), lambda k: any(m in k for m in MATRICES))
    n1 = np_norm(lane(new, 1), lambda k: "w1" in k)
    np.testing.assert_allclose([n0, n1], [TARGET, TARGET], rtol=1e-5)
    # In lane 1, the unmasked matrices got the inner update, bit for bit.
    for k in ("embed", "w2", "b1"):
        np.testing.assert_array_equal(np.asarray(u[k][1]), np.asarray(u_inner[k][1]))
    np.testing.assert_array_equal(np.asarray(u["b1"][0]), np.asarray(u_inner["b1"][0]))
    assert not np.array_equal(np.asarray(u["embed"][0]), np.asarray(u_inner["embed"][0]))
    assert not np.array_equal(np.asarray(u["w1"][1]), np.asarray(u_inner["w1"][1]))
    # Lane 1's embed/w2 kept their un-clamped values, so its full norm is not TARGET.
    assert abs(np_norm(lane(new, 1), lambda k: any(m in k for m in MATRICES)) - TARGET) > 0.1


def test_inject_hyperparams_target_can_be_changed_in_state():
    p = make_params(9)
    tx = optax.chain(
        adamw(),
        optax.inject_hyperparams(clamp_norm, static_args="mask")(
            target_norm=TARGET, start_step=1, mask=weight_matrices
        ),
    )
    step = jax.jit(make_step(tx))
    state = tx.init(p)
    assert "target_norm" in state[1].hyperparams
    for _ in range(4):
        p, state = step(p, state)
    np.testing.assert_allclose(wnorm(p), TARGET, rtol=1e-5)
    state[1].hyperparams["target_norm"] = jnp.asarray(2.0)
    for _ in range(3):
        p, state = step(p, state)
        np.testing.assert_allclose(wnorm(p), 2.0, rtol=1e-5)
    state[1].hyperparams["target_norm"] = jnp.asarray(0.0)  # release the clamp
    norms = []
    for _ in range(3):
        p, state = step(p, state)
        norms.append(wnorm(p))
    assert all(abs(n - 2.0) > 1e-4 for n in norms)
    assert int(state[1].inner_state.count) == 10


def test_inject_hyperparams_without_static_mask_fails_loudly():
    # inject_hyperparams takes a callable mask for a schedule unless told not to.
    p = make_params()
    tx = optax.inject_hyperparams(clamp_norm)(target_norm=TARGET, mask=weight_matrices)
    with pytest.raises(ValueError, match="static_args"):
        tx.update(p, tx.init(p), p)


def test_init_under_eval_shape():
    abstract = jax.eval_shape(make_params)
    for tx in (
        clamp_norm(TARGET, mask=weight_matrices),
        optax.chain(adamw(), clamp_norm(TARGET, start_step=3, mask=weight_matrices)),
        optax.inject_hyperparams(clamp_norm, static_args="mask")(
            target_norm=TARGET, mask=weight_matrices
        ),
    ):
        shapes = jax.eval_shape(tx.init, abstract)
        counts = [s for s in jax.tree.leaves(shapes) if s.dtype == jnp.int32]
        assert counts and all(s.shape == () for s in counts)
    st = jax.eval_shape(clamp_norm(TARGET).init, abstract)
    assert isinstance(st, ClampNormState)
    assert st.count.shape == () and st.count.dtype == jnp.int32
    assert int(clamp_norm(TARGET).init(make_params()).count) == 0


def test_compiles_once_for_many_targets():
    traces = []
    p0 = make_params(14)

    @jax.jit
    def train(target, p):
        traces.append(1)  # runs only while tracing
        tx = optax.chain(adamw(), clamp_norm(target, mask=weight_matrices))
        step = make_step(tx)
        return jax.lax.fori_loop(0, 3, lambda i, c: step(*c), (p, tx.init(p)))[0]

    for target in (1.0, 2.5, 0.0, 7.0, 3.25, 0.0, 1.0):
        out = train(jnp.float32(target), p0)
        if target > 0:
            np.testing.assert_allclose(wnorm(out), target, rtol=1e-5)
    assert len(traces) == 1


# --------------------------------------------------------------------------- #
# Precision
# --------------------------------------------------------------------------- #


def test_float64():
    was_enabled = jax.config.jax_enable_x64
    with x64():
        p0 = make_params(15, dtype=jnp.float64)
        assert p0["w1"].dtype == jnp.float64
        tx = optax.chain(adamw(), clamp_norm(TARGET, start_step=1, mask=weight_matrices))
        traj, _ = trajectory(tx, p0, 20)
        assert all(x.dtype == jnp.float64 for x in jax.tree.leaves(traj))
        norms = norms_of(traj)
        assert norms.dtype == np.float64
        np.testing.assert_allclose(norms[1:], TARGET, rtol=1e-12)
        assert abs(norms[0] - TARGET) > 0.1
        # float32 leaves stay float32 even with x64 on.
        p32 = make_params(15, dtype=jnp.float32)
        traj32, _ = trajectory(tx, p32, 5)
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(traj32))
        np.testing.assert_allclose(norms_of(traj32)[1:], TARGET, rtol=1e-5)
    assert jax.config.jax_enable_x64 == was_enabled
    assert jnp.ones(()).dtype == (jnp.float64 if was_enabled else jnp.float32)
