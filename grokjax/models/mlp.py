"""The paper's MLP: shared embedding E (p×d), operands concatenated, W1 (2d×H) + b1, GELU,
W2 (H×C) + b2. Groups: embed {E}, hidden {W1, b1}, out {W2, b2}.

Every input row is built from per-token tables, so a matrix that acts on an embedded operand
is applied to the p-row embedding table once and the result gathered per example
(``[E[a], E[b]] @ W1 == (E @ W1[:d])[a] + (E @ W1[d:])[b]``): the same function, computed with
p instead of B rows in the first layer.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from grokjax.models.base import ModelPlugin
from grokjax.models.layers import Params, gelu


class MLP(nn.Module):
    """Shared embedding E (p×d), operands concatenated, W1 (2d×H) + b1, GELU, W2 (H×C) + b2
    (C = p unless ``classes`` says otherwise)."""

    p: int
    d: int = 128
    hidden: int = 256
    dtype: jnp.dtype = jnp.float32
    classes: int | None = None

    @nn.compact
    def __call__(self, ab_Bx2):
        p, d, h = self.p, self.d, self.hidden
        c = p if self.classes is None else self.classes
        emb = Params({"E": ((p, d), d**-0.5)}, self.dtype, name="embed")()
        hid = Params(
            {"W1": ((2 * d, h), (2 * d) ** -0.5), "b1": ((h,), 1e-6)}, self.dtype, name="hidden"
        )()
        out = Params({"W2": ((h, c), h**-0.5), "b2": ((c,), 1e-6)}, self.dtype, name="out")()
        E_PxD, W1_2DxH = emb["E"], hid["W1"]
        left_PxH = E_PxD @ W1_2DxH[:d]
        right_PxH = E_PxD @ W1_2DxH[d:]
        pre_BxH = left_PxH[ab_Bx2[:, 0]] + right_PxH[ab_Bx2[:, 1]] + hid["b1"]
        return gelu(pre_BxH) @ out["W2"] + out["b2"]


class MLPPlugin(ModelPlugin):
    def module(self, spec, num_classes):
        classes = None if num_classes == spec.p else num_classes
        return MLP(
            p=spec.p, d=spec.d, hidden=spec.hidden, dtype=jnp.dtype(spec.dtype), classes=classes
        )

    def groups(self, spec, params):
        return ("embed", "hidden", "out")

    def embedding(self, params, spec):
        return params["embed"]["E"][: spec.p]

    def matmul_flops(self, spec, batch, reference=False):
        p, d, h = spec.p, spec.d, spec.hidden
        if reference:  # [E[a], E[b]] @ W1 on every row
            return 2 * batch * (2 * d * h + h * p)
        return 2 * (2 * p * d * h) + 2 * batch * h * p  # per-token tables, then gathered


PLUGIN = MLPPlugin()
