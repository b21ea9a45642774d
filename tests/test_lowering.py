"""The vmapped programs lower for the platforms users run them on (no device needed).

JAX's cross-platform export (``jax.export.export(jitted, platforms=[...])``) lowers a jitted
function to StableHLO for a platform this machine does not have, with that platform's lowering
rules: an op that lowers on CPU only fails here instead of on a user's GPU or TPU VM. Every
model kind's chunk program at 256 lanes, and the host loop's device bookkeeping (records,
plan, refill, repack), are exported for ``cuda`` and ``tpu`` together.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grokjax import lane as eng
from grokjax import engine
from grokjax.book import Book
from grokjax.models import ModelSpec

LANES = 256
PLATFORMS = ["cuda", "tpu"]
KINDS = {
    "mlp": eng.Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5),
    "attn": eng.Static(model=ModelSpec(kind="attn", p=13, d=16, hidden=32, heads=2), frac=0.5),
    "attn-layernorm": eng.Static(
        model=ModelSpec(kind="attn", p=13, d=16, hidden=32, heads=2, layernorm="all"), frac=0.5
    ),
    "bits": eng.Static(
        model=ModelSpec(kind="bits", p=12, hidden=32), op="parity", n_train=64, n_test=64, k_bits=3
    ),
}


def spec(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


def abstract_lanes(engine, n):
    hp = eng.make_hparams(len(engine.fns.groups), seed=np.arange(n))
    return jax.eval_shape(jax.vmap(engine.fns.init), hp), spec(hp)


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_program_lowers_for_cuda_and_tpu(kind):
    e = engine.Engine(KINDS[kind], lane_mode="vmap")
    state, hp = abstract_lanes(e, LANES)
    exp = jax.export.export(e._chunk_all, platforms=PLATFORMS)(
        state, hp, jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((LANES,), bool), 5
    )
    assert exp.platforms == tuple(PLATFORMS)
    assert all(a.shape[:1] == (LANES,) for a in exp.in_avals[: len(jax.tree.leaves(state))])
    text = exp.mlir_module()
    # Every matmul keeps float32 inputs at full precision on the accelerator (no TF32/bf16).
    dots = re.findall(r"stablehlo\.dot_general[^\n]*", text)
    assert dots and all("precision = [HIGHEST, HIGHEST]" in d for d in dots), kind
    # No host callback or CPU-only library call made it into the program.
    calls = set(re.findall(r'custom_call @?"?([\w.]+)', text))
    assert not {c for c in calls if "cpu" in c.lower() or "callback" in c.lower()}, calls


def test_bookkeeping_programs_lower_for_cuda_and_tpu():
    e = engine.Engine(KINDS["mlp"], lane_mode="vmap")
    n = size = LANES
    state, hp = abstract_lanes(e, size)
    G, S, B = len(e.fns.groups), 121, 5
    i32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.int32)
    f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
    boolean = lambda *shape: jax.ShapeDtypeStruct(shape, bool)
    curves = {k: f32(n, S) for k in eng.Metrics._fields if k not in ("step", "group_norms")}
    curves["group_norms"] = f32(n, S, G)
    lat = jax.eval_shape(lambda: eng.empty_latches(G))
    lanes_lat = jax.tree.map(
        lambda x: f32(n, *x.shape) if x.dtype == jnp.float32 else i32(n, *x.shape), lat
    )
    book = Book(curves, lanes_lat, i32(n), i32(n), boolean(n))
    metrics = jax.eval_shape(lambda s, h: e._chunk_all(s, h, 1, None, B), state, hp)[1]
    export = lambda f, *args: jax.export.export(f, platforms=PLATFORMS)(*args)
    export(e._plan, book, i32(size), boolean(size), i32())
    export(
        e._update,
        book,
        state.latches,
        metrics,
        state.step,
        i32(size),
        boolean(size),
        i32(n),
        i32(S),
    )
    export(e._refill, state, book, i32(size), boolean(size), hp, i32(), i32(), 8)
    export(e._repack, state, book, i32(size), boolean(size), hp, 128)
