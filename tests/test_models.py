import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grokjax.models import ModelSpec, make_model, _layernorm


def _naive_mlp(params, ab):
    E = params["embed"]["E"]
    x = jnp.concatenate([E[ab[:, 0]], E[ab[:, 1]]], axis=1)
    h = jax.nn.gelu(x @ params["hidden"]["W1"] + params["hidden"]["b1"], approximate=False)
    return h @ params["out"]["W2"] + params["out"]["b2"]


def _naive_attn(params, ab, p, heads, layernorm):
    """Full 3-position attention, every position computed, read at the last."""
    ln_in = _layernorm if layernorm == "all" else (lambda x: x)
    ln_out = _layernorm if layernorm in ("all", "final") else (lambda x: x)
    E, pos = params["embed"]["E"], params["embed"]["pos"]
    a = params["attn"]
    tok = jnp.concatenate([ab, jnp.full((ab.shape[0], 1), p)], axis=1)
    x = E[tok] + pos  # B x 3 x d
    h = ln_in(x)
    B, T, d = x.shape
    split = lambda z: z.reshape(B, T, heads, d // heads)
    q, k, v = split(h @ a["Wq"]), split(h @ a["Wk"]), split(h @ a["Wv"])
    s = jnp.einsum("bqhk,bthk->bhqt", q, k) / np.sqrt(d // heads)
    s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -jnp.inf)  # causal
    w = jax.nn.softmax(s, axis=-1)
    o = jnp.einsum("bhqt,bthk->bqhk", w, v).reshape(B, T, d)
    r = x + o @ a["Wo"]
    r = r + jax.nn.gelu(ln_in(r) @ params["mlp"]["Win"], approximate=False) @ params["mlp"]["Wout"]
    return (ln_out(r) @ params["unembed"]["U"])[:, -1]


def test_mlp_shapes_groups_and_initial_scales():
    m = make_model(ModelSpec("mlp", p=59, d=128, hidden=256))
    params = m.init(jax.random.key(0))
    assert m.groups == ("embed", "hidden", "out") and m.num_classes == 59
    shapes = jax.tree.map(lambda x: x.shape, params)
    assert shapes == {
        "embed": {"E": (59, 128)},
        "hidden": {"W1": (256, 256), "b1": (256,)},
        "out": {"W2": (256, 59), "b2": (59,)},
    }
    assert abs(float(params["embed"]["E"].std()) * np.sqrt(128) - 1) < 0.03
    assert abs(float(params["hidden"]["W1"].std()) * np.sqrt(256) - 1) < 0.03
    assert abs(float(params["out"]["W2"].std()) * np.sqrt(256) - 1) < 0.03
    assert float(jnp.abs(params["out"]["b2"]).max()) < 1e-5
    # Initial ||W||² ≈ p·d/d + 2d·H/(2d) + H·p/H = 59 + 256 + 59.
    norm = np.sqrt(
        sum(
            float((params[g][n] ** 2).sum())
            for g, n in (("embed", "E"), ("hidden", "W1"), ("out", "W2"))
        )
    )
    assert abs(norm - np.sqrt(59 + 256 + 59)) < 0.5


def test_mlp_table_formulation_equals_concatenated_embeddings():
    m = make_model(ModelSpec("mlp", p=13, d=16, hidden=32))
    params = m.init(jax.random.key(1))
    ab = jnp.array(np.random.default_rng(0).integers(0, 13, (50, 2)), jnp.int32)
    np.testing.assert_allclose(m.apply(params, ab), _naive_mlp(params, ab), atol=1e-5)


@pytest.mark.parametrize("layernorm", ["none", "all", "final"])
def test_attention_equals_naive_full_attention(layernorm):
    spec = ModelSpec("attn", p=11, d=32, hidden=64, heads=4, layernorm=layernorm)
    m = make_model(spec)
    params = m.init(jax.random.key(2))
    assert m.groups == ("embed", "attn", "mlp", "unembed") and m.num_classes == 12
    shapes = jax.tree.map(lambda x: x.shape, params)
    assert shapes["embed"] == {"E": (12, 32), "pos": (3, 32)}
    assert shapes["unembed"] == {"U": (32, 12)}
    assert all(x.ndim == 2 for x in jax.tree.leaves(params))  # no biases anywhere
    ab = jnp.array(np.random.default_rng(1).integers(0, 11, (40, 2)), jnp.int32)
    np.testing.assert_allclose(
        m.apply(params, ab), _naive_attn(params, ab, 11, 4, layernorm), atol=2e-5, rtol=1e-5
    )


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        make_model(ModelSpec("cnn"))
    with pytest.raises(ValueError, match="divisible"):
        make_model(ModelSpec("attn", d=30, heads=4))
