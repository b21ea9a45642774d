"""The paper's models as Flax modules, exposed to the engine as pure functions.

``make_model(spec)`` returns ``Model(init, apply, groups)`` with ``init(key) -> params`` and
``apply(params, x) -> logits_BxC``, where x is ``ab_Bx2`` (int operand pairs; mlp, attn) or
``x_BxN`` (±1 bit vectors as floats; bits). Parameters are grouped by their top-level name so
that norms and clamps can address groups:

* ``mlp``:  embed {E}, hidden {W1, b1}, out {W2, b2}
* ``attn``: embed {E, pos}, attn {Wq, Wk, Wv, Wo}, mlp {Win, Wout}, unembed {U}
* ``bits``: hidden {W1, b1}, out {W2, b2} (k-sparse parity: no embedding, 2 classes)

The mlp and attn forward passes exploit that every input row is built from per-token tables:
a matrix that acts on an embedded operand is applied to the p-row embedding table once and the
result is gathered per example (``E[a] @ W == (E @ W)[a]``). This is the same function,
computed with p instead of B rows in the first layer(s).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

MODELS = ("mlp", "attn", "bits")
LAYERNORM_MODES = ("none", "all", "final")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Static model description: changing any field changes shapes or the graph."""

    kind: str = "mlp"
    p: int = 59  # modulus (mlp, attn); number of input bits n (bits)
    d: int = 128  # embedding width (mlp, attn; unused by bits)
    hidden: int = 256  # MLP hidden width (mlp, bits); MLP-block width (attn, paper: 512)
    heads: int = 4  # attn only
    layernorm: str = "none"  # attn only: none | all | final
    dtype: str = "float32"

    def validate(self) -> None:
        if self.kind not in MODELS:
            raise ValueError(f"unknown model {self.kind!r}; choose one of {', '.join(MODELS)}")
        if self.kind == "bits" and self.p < 1:
            raise ValueError(f"the bits model needs >= 1 input bits (p), got {self.p}")
        if self.kind != "bits" and self.p < 2:
            raise ValueError(f"p must be >= 2, got {self.p}")
        if self.d < 1 or self.hidden < 1:
            raise ValueError(f"widths must be positive, got d={self.d}, hidden={self.hidden}")
        if self.kind == "attn" and self.d % self.heads:
            raise ValueError(f"d={self.d} is not divisible by heads={self.heads}")
        if self.layernorm not in LAYERNORM_MODES:
            raise ValueError(f"unknown layernorm mode {self.layernorm!r}; choose {LAYERNORM_MODES}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")


GROUPS = {
    "mlp": ("embed", "hidden", "out"),
    "attn": ("embed", "attn", "mlp", "unembed"),
    "bits": ("hidden", "out"),
}


def _normal(std: float) -> Callable:
    return nn.initializers.normal(stddev=std)


def _gelu(x):
    return jax.nn.gelu(x, approximate=False)  # the erf GELU of the paper's PyTorch runs


def _layernorm(x, eps=1e-5):
    """Parameter-free LayerNorm over the last axis."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps)


class _Params(nn.Module):
    """A named bag of parameters (one parameter group)."""

    shapes: dict  # name -> (shape, std)
    dtype: jnp.dtype

    @nn.compact
    def __call__(self):
        return {
            n: self.param(n, _normal(std), shape, self.dtype)
            for n, (shape, std) in self.shapes.items()
        }


class MLP(nn.Module):
    """Shared embedding E (p×d), operands concatenated, W1 (2d×H) + b1, GELU, W2 (H×p) + b2."""

    p: int
    d: int = 128
    hidden: int = 256
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, ab_Bx2):
        p, d, h = self.p, self.d, self.hidden
        emb = _Params({"E": ((p, d), d**-0.5)}, self.dtype, name="embed")()
        hid = _Params(
            {"W1": ((2 * d, h), (2 * d) ** -0.5), "b1": ((h,), 1e-6)}, self.dtype, name="hidden"
        )()
        out = _Params({"W2": ((h, p), h**-0.5), "b2": ((p,), 1e-6)}, self.dtype, name="out")()
        E_PxD, W1_2DxH = emb["E"], hid["W1"]
        # [E[a], E[b]] @ W1 == (E @ W1[:d])[a] + (E @ W1[d:])[b]
        left_PxH = E_PxD @ W1_2DxH[:d]
        right_PxH = E_PxD @ W1_2DxH[d:]
        pre_BxH = left_PxH[ab_Bx2[:, 0]] + right_PxH[ab_Bx2[:, 1]] + hid["b1"]
        return _gelu(pre_BxH) @ out["W2"] + out["b2"]


class BitsMLP(nn.Module):
    """MLP on ±1 bit vectors without embedding: W1 (n×H) + b1, GELU, W2 (H×2) + b2.

    Initialised like ``MLP``: matrices with std 1/sqrt(fan-in), biases with std 1e-6.
    """

    n: int
    hidden: int = 512
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x_BxN):
        n, h = self.n, self.hidden
        hid = _Params({"W1": ((n, h), n**-0.5), "b1": ((h,), 1e-6)}, self.dtype, name="hidden")()
        out = _Params({"W2": ((h, 2), h**-0.5), "b2": ((2,), 1e-6)}, self.dtype, name="out")()
        return _gelu(x_BxN @ hid["W1"] + hid["b1"]) @ out["W2"] + out["b2"]


class Attention(nn.Module):
    """One-layer, 4-head attention model on tokens [a, b, =] without biases.

    The prediction is read at the last position, so only its query is computed. With
    ``layernorm='all'`` a parameter-free LayerNorm precedes attention, the MLP block and the
    unembedding; with ``'final'`` only the unembedding.
    """

    p: int
    d: int = 128
    hidden: int = 512
    heads: int = 4
    layernorm: str = "none"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, ab_Bx2):
        p, d, m, nh = self.p, self.d, self.hidden, self.heads
        v = p + 1  # vocabulary: p residues and the '=' token (index p)
        dh = d // nh
        sd = d**-0.5
        emb = _Params({"E": ((v, d), sd), "pos": ((3, d), 0.1 * sd)}, self.dtype, name="embed")()
        att = _Params(
            {n: ((d, d), sd) for n in ("Wq", "Wk", "Wv", "Wo")}, self.dtype, name="attn"
        )()
        mlp = _Params({"Win": ((d, m), sd), "Wout": ((m, d), m**-0.5)}, self.dtype, name="mlp")()
        une = _Params({"U": ((d, v), sd)}, self.dtype, name="unembed")()
        ln_inner = _layernorm if self.layernorm == "all" else (lambda x: x)
        ln_final = _layernorm if self.layernorm in ("all", "final") else (lambda x: x)

        E_VxD, pos_3xD = emb["E"], emb["pos"]
        # Residual-stream inputs per position; positions 0 and 1 as tables over the vocabulary.
        x0_VxD = E_VxD + pos_3xD[0]
        x1_VxD = E_VxD + pos_3xD[1]
        x2_D = E_VxD[p] + pos_3xD[2]  # the '=' token: the same in every example
        h0_VxD, h1_VxD, h2_D = ln_inner(x0_VxD), ln_inner(x1_VxD), ln_inner(x2_D)
        q_HxK = (h2_D @ att["Wq"]).reshape(nh, dh)
        k0_VxHxK = (h0_VxD @ att["Wk"]).reshape(v, nh, dh)
        k1_VxHxK = (h1_VxD @ att["Wk"]).reshape(v, nh, dh)
        k2_HxK = (h2_D @ att["Wk"]).reshape(nh, dh)
        v0_VxHxK = (h0_VxD @ att["Wv"]).reshape(v, nh, dh)
        v1_VxHxK = (h1_VxD @ att["Wv"]).reshape(v, nh, dh)
        v2_HxK = (h2_D @ att["Wv"]).reshape(nh, dh)
        scale = dh**-0.5
        s0_VxH = jnp.einsum("hk,vhk->vh", q_HxK, k0_VxHxK) * scale
        s1_VxH = jnp.einsum("hk,vhk->vh", q_HxK, k1_VxHxK) * scale
        s2_H = jnp.einsum("hk,hk->h", q_HxK, k2_HxK) * scale

        a_B, b_B = ab_Bx2[:, 0], ab_Bx2[:, 1]
        s_BxHx3 = jnp.stack(
            [s0_VxH[a_B], s1_VxH[b_B], jnp.broadcast_to(s2_H, (a_B.shape[0], nh))], axis=-1
        )
        w_BxHx3 = jax.nn.softmax(s_BxHx3, axis=-1)
        o_BxHxK = (
            w_BxHx3[..., 0:1] * v0_VxHxK[a_B]
            + w_BxHx3[..., 1:2] * v1_VxHxK[b_B]
            + w_BxHx3[..., 2:3] * v2_HxK
        )
        r_BxD = x2_D + o_BxHxK.reshape(-1, d) @ att["Wo"]
        r_BxD = r_BxD + _gelu(ln_inner(r_BxD) @ mlp["Win"]) @ mlp["Wout"]
        return ln_final(r_BxD) @ une["U"]


class Model(NamedTuple):
    init: Callable  # key -> params
    apply: Callable  # (params, ab_Bx2 or x_BxN) -> logits_BxC
    groups: tuple  # parameter-group names, in order
    num_classes: int


def make_model(spec: ModelSpec) -> Model:
    """Pure ``init``/``apply`` for a static model spec."""
    spec.validate()
    dtype = jnp.dtype(spec.dtype)
    dummy = jnp.zeros((1, 2), jnp.int32)
    if spec.kind == "mlp":
        module = MLP(p=spec.p, d=spec.d, hidden=spec.hidden, dtype=dtype)
        classes = spec.p
    elif spec.kind == "bits":
        module = BitsMLP(n=spec.p, hidden=spec.hidden, dtype=dtype)
        classes = 2
        dummy = jnp.zeros((1, spec.p), dtype)
    else:
        module = Attention(
            p=spec.p,
            d=spec.d,
            hidden=spec.hidden,
            heads=spec.heads,
            layernorm=spec.layernorm,
            dtype=dtype,
        )
        classes = spec.p + 1

    def init(key):
        return module.init(key, dummy)["params"]

    def apply(params, x):
        return module.apply({"params": params}, x)

    return Model(init, apply, GROUPS[spec.kind], classes)
