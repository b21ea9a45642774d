"""The engine against the independent numpy reference (experiments/reference_mlp.py).

From the same initial weights and split (the engine's seed 0 at p = 41, the paper's MLP), a few
dozen full-batch AdamW steps with the clamp switched on part way agree within float32 rounding:
the gradient at init to 1e-5 relative per layer, the train loss and the norm at every step to
5e-5 relative, every parameter tensor after 40 steps to 5e-5 relative (Frobenius), and the
clamp holds the norm at its target to 1e-6 relative in both. (Measured: gradients ~5e-7,
losses ~1e-5, parameters ~2e-6 for the matrices and ~1.5e-5 for the 1e-6-scale biases, whose
Adam steps turn rounding of their tiny gradients into relative changes.)
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from experiments import reference_mlp as R  # noqa: E402
from grokjax.lane import Static, make_hparams, make_lane_fns  # noqa: E402
from grokjax.models import ModelSpec, make_model  # noqa: E402

P, STEPS, T_INT, TARGET = 41, 40, 10, 20.0


@pytest.fixture(scope="module")
def engine_run():
    static = Static(model=ModelSpec(kind="mlp", p=P, d=128, hidden=256), eval_every=1)
    fns = make_lane_fns(static)
    hp = make_hparams(len(fns.groups), seed=[0], target_norm=TARGET, t_int=T_INT, budget=10_000)
    hp = jax.tree.map(lambda x: jnp.asarray(x[0]), hp)
    state0 = jax.jit(fns.init)(hp)
    state, metrics = jax.jit(fns.chunk, static_argnums=2)(state0, hp, STEPS)
    d = state0.data
    data = tuple(np.asarray(z) for z in (d.x_train, d.y_train, d.x_test, d.y_test))
    return static, state0, state, metrics, data


def _rel(a, b):
    return float(
        np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64))
        / np.linalg.norm(np.asarray(a, np.float64))
    )


def test_gradient_at_init_matches(engine_run):
    static, state0, _, _, data = engine_run
    model = make_model(static.model)

    def loss(params, x, y):  # the engine's loss (grokjax.lane.make_lane_fns.loss_and_stats)
        with jax.default_matmul_precision(static.precision):
            logits = model.apply(params, x)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0])

    l_eng, g_eng = jax.value_and_grad(loss)(
        state0.params, jnp.asarray(data[0]), jnp.asarray(data[1])
    )
    g_eng = R.flat_params(g_eng)
    x = data[0]
    l_ref, g_ref, _ = R.grads(R.flat_params(state0.params), x[:, 0], x[:, 1], data[1])
    assert abs(float(l_eng) - float(l_ref)) / float(l_ref) < 1e-5
    for n in R.NAMES:
        assert _rel(g_eng[n], g_ref[n]) < 1e-5, n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trajectory_matches_engine(engine_run, dtype):
    _, state0, state, metrics, data = engine_run
    out = R.run(
        state0.params,
        data,
        STEPS,
        dtype=dtype,
        target_norm=TARGET,
        t_int=T_INT,
        eval_every=1,
        stop_at_grok=False,
    )
    np.testing.assert_array_equal(out["step"], np.asarray(metrics.step))
    np.testing.assert_allclose(out["train_loss"], np.asarray(metrics.train_loss), rtol=5e-5)
    np.testing.assert_allclose(out["norm"], np.asarray(metrics.norm), rtol=5e-5)
    np.testing.assert_allclose(out["test_acc"], np.asarray(metrics.test_acc), atol=2e-3)
    p_eng, p_ref = R.flat_params(state.params), out["final"]["params"]
    for n in R.NAMES:
        assert _rel(p_eng[n], p_ref[n]) < 5e-5, n
    # the clamp: the first clamped parameters are those after update T_INT + 1
    norms_eng, norms_ref = np.asarray(metrics.norm), out["norm"]
    assert abs(norms_ref[T_INT] - TARGET) > 0.1  # not yet clamped
    np.testing.assert_allclose(norms_ref[T_INT + 1 :], TARGET, rtol=1e-6)
    np.testing.assert_allclose(norms_eng[T_INT + 1 :], TARGET, rtol=1e-6)
    assert abs(R.global_norm(p_ref) - TARGET) / TARGET < 1e-6


def test_reference_variants_agree_at_init(engine_run):
    """The numerics switches change nothing beyond rounding away from softmax collapse."""
    _, state0, _, _, data = engine_run
    x, y = data[0], data[1]
    Pm = R.flat_params(state0.params)
    _, g0, _ = R.grads(Pm, x[:, 0], x[:, 1], y)
    for kw in ({"ce": "logsoftmax"}, {"ftz": True}):
        _, g1, _ = R.grads(Pm, x[:, 0], x[:, 1], y, **kw)
        for n in R.NAMES:
            assert _rel(g0[n], g1[n]) < 1e-5, (kw, n)
    s_t, _ = R.step(R.init_from(Pm), x[:, 0], x[:, 1], y, order="torch")
    s_o, _ = R.step(R.init_from(Pm), x[:, 0], x[:, 1], y, order="optax")
    for n in R.NAMES:
        assert _rel(s_t["params"][n], s_o["params"][n]) < 1e-6, n
