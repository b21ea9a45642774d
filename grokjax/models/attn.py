"""The one-layer attention model on tokens [a, b, =] (the paper's transformer half).

Groups: embed {E, pos}, attn {Wq, Wk, Wv, Wo}, mlp {Win, Wout}, unembed {U}. Its logits span
its vocabulary, the p residues and '=' (p + 1 classes). Keys and values of positions 0 and 1
are computed once per vocabulary row and gathered per example, the query only at the last
position: the same function as full causal attention read at '='.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.models.base import ModelPlugin
from grokjax.models.layers import Params, gelu, layernorm


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
        emb = Params({"E": ((v, d), sd), "pos": ((3, d), 0.1 * sd)}, self.dtype, name="embed")()
        att = Params({n: ((d, d), sd) for n in ("Wq", "Wk", "Wv", "Wo")}, self.dtype, name="attn")()
        mlp = Params({"Win": ((d, m), sd), "Wout": ((m, d), m**-0.5)}, self.dtype, name="mlp")()
        une = Params({"U": ((d, v), sd)}, self.dtype, name="unembed")()
        ln_inner = layernorm if self.layernorm == "all" else (lambda x: x)
        ln_final = layernorm if self.layernorm in ("all", "final") else (lambda x: x)

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
        r_BxD = r_BxD + gelu(ln_inner(r_BxD) @ mlp["Win"]) @ mlp["Wout"]
        return ln_final(r_BxD) @ une["U"]


class AttentionPlugin(ModelPlugin):
    config_fields = ("p", "d", "hidden", "heads", "layernorm")

    def module(self, spec, num_classes):
        return Attention(
            p=spec.p,
            d=spec.d,
            hidden=spec.hidden,
            heads=spec.heads,
            layernorm=spec.layernorm,
            dtype=jnp.dtype(spec.dtype),
        )

    def validate_after_widths(self, spec):
        if spec.d % spec.heads:
            raise ValueError(f"d={spec.d} is not divisible by heads={spec.heads}")

    def default_classes(self, spec):
        return spec.p + 1

    def groups(self, spec, params):
        return ("embed", "attn", "mlp", "unembed")

    def embedding(self, params, spec):
        return params["embed"]["E"][: spec.p]

    def width(self, spec):
        return 3 * max(spec.d, spec.hidden)  # three positions

    def matmul_flops(self, spec, batch, reference=False):
        d, h, v = spec.d, spec.hidden, spec.p + 1
        mlp_unembed = 2 * (d * d + 2 * d * h + d * v)  # Wo, MLP, unembed per row
        if reference:  # keys and values of all three positions, the query of the last
            return batch * (2 * (3 * 2 * d * d + d * d) + 2 * 2 * 3 * d + mlp_unembed)
        tables = 2 * (4 * v * d * d) + 2 * (3 * d * d)  # K, V tables for 2 positions; q,k,v of '='
        scores = 2 * (2 * v * d)  # q · K tables
        return tables + scores + batch * (mlp_unembed + 2 * 3 * d)  # + the weighted sum


PLUGIN = AttentionPlugin()
