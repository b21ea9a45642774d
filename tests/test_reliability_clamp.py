"""clamp_norm's own argument checks (issue 26): arguments that used to be accepted and then
enforced nothing, or made the parameters inf or NaN, are refused with a ValueError that says
why; traced arguments keep working as before (one program for every lane)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grokjax.optim import clamp_norm, global_norm, weight_matrices


def params():
    return {"w": jnp.arange(1.0, 7.0).reshape(3, 2), "b": jnp.ones(2)}


def update(tx, p):
    u = jax.tree.map(jnp.zeros_like, p)
    return tx.update(u, tx.init(p), p)[0]


BAD_CONSTRUCTION = [
    (dict(target_norm=jnp.array([3.0, 5.0])), "must be a scalar"),
    (dict(target_norm=[3.0, 5.0]), "must be a scalar"),
    (dict(target_norm=np.array([[3.0]])), "must be a scalar"),
    (dict(target_norm=float("inf")), "finite and >= 0"),
    (dict(target_norm=float("nan")), "finite and >= 0"),
    (dict(target_norm=jnp.array(-2.0)), "finite and >= 0"),
    (dict(target_norm=1.0, eps=float("inf")), "eps must be finite and > 0"),
    (dict(target_norm=1.0, eps=jnp.array(0.0)), "eps must be finite and > 0"),
    (dict(target_norm=1.0, num_steps=jnp.array(-1)), "num_steps must be >= 0"),
    (dict(target_norm=1.0, start_step=jnp.array([0, 1])), "start_step must be a scalar"),
]


@pytest.mark.parametrize("kwargs,msg", BAD_CONSTRUCTION, ids=[m for _, m in BAD_CONSTRUCTION])
def test_bad_arguments_are_refused(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        clamp_norm(**kwargs)


def test_integer_parameters_are_refused_not_left_unclamped():
    p = {"w": jnp.ones((2, 2), jnp.int32)}
    with pytest.raises(ValueError, match="dtype int32"):
        update(clamp_norm(3.0), p)
    # an integer leaf outside the mask is passed through, as before
    p = {"w": jnp.ones((2, 2)), "step": jnp.zeros((), jnp.int32)}
    out = update(clamp_norm(3.0, mask={"w": True, "step": False}), p)
    new = jax.tree.map(lambda a, b: a + b, p, out)
    np.testing.assert_allclose(float(global_norm(new, {"w": True, "step": False})), 3.0, 1e-6)


def test_a_target_float32_rounds_to_zero_is_refused():
    with pytest.raises(ValueError, match="target_norm 1e-300 is 0 in float32"):
        update(clamp_norm(1e-300), params())
    with pytest.raises(ValueError, match="is 0 in float32"):
        update(clamp_norm(np.float64(1e-46)), params())
    update(clamp_norm(1e-30), params())  # small but representable: fine


def test_traced_eps_zero_on_zero_params_stays_zero():
    p = jax.tree.map(jnp.zeros_like, params())
    out = jax.jit(lambda e: update(clamp_norm(3.0, eps=e), p))(0.0)
    for x in jax.tree.leaves(out):
        assert np.all(np.asarray(x) == 0.0)


def test_traced_targets_per_lane_still_work():
    p = params()

    def one(t):
        new = jax.tree.map(lambda a, b: a + b, p, update(clamp_norm(t, mask=weight_matrices), p))
        return global_norm(new, weight_matrices)

    norms = jax.vmap(one)(jnp.array([3.0, 0.0, 10.0]))
    free = float(global_norm(p, weight_matrices))
    np.testing.assert_allclose(np.asarray(norms), [3.0, free, 10.0], rtol=1e-6)


def test_valid_results_unchanged_by_the_checks():
    """The guarded division gives the same bits as target / max(norm, eps) did."""
    p = params()
    out = update(clamp_norm(2.5, mask=weight_matrices), p)
    w = np.asarray(p["w"], np.float32)
    factor = np.float32(2.5) / np.float32(np.sqrt(np.sum(w.astype(np.float32) ** 2)))
    np.testing.assert_allclose(np.asarray(out["w"]) + w, w * factor, rtol=1e-6)
    assert np.all(np.asarray(out["b"]) == 0.0)
