"""The k-sparse parity model: an MLP on ±1 bit vectors without embedding, W1 (n×H) + b1,
GELU, W2 (H×C) + b2 (C = 2). Groups: hidden {W1, b1}, out {W2, b2}. ``ModelSpec.p`` is the
number of input bits n."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from grokjax.models.base import ModelPlugin
from grokjax.models.layers import Params, gelu


class BitsMLP(nn.Module):
    """MLP on ±1 bit vectors without embedding: W1 (n×H) + b1, GELU, W2 (H×C) + b2.

    Initialised like ``MLP``: matrices with std 1/sqrt(fan-in), biases with std 1e-6.
    """

    n: int
    hidden: int = 512
    dtype: jnp.dtype = jnp.float32
    classes: int = 2

    @nn.compact
    def __call__(self, x_BxN):
        n, h, c = self.n, self.hidden, self.classes
        hid = Params({"W1": ((n, h), n**-0.5), "b1": ((h,), 1e-6)}, self.dtype, name="hidden")()
        out = Params({"W2": ((h, c), h**-0.5), "b2": ((c,), 1e-6)}, self.dtype, name="out")()
        return gelu(x_BxN @ hid["W1"] + hid["b1"]) @ out["W2"] + out["b2"]


class BitsPlugin(ModelPlugin):
    inputs = "vector"
    config_fields = ("p", "hidden")

    def module(self, spec, num_classes):
        return BitsMLP(
            n=spec.p, hidden=spec.hidden, dtype=jnp.dtype(spec.dtype), classes=num_classes
        )

    def matmul_flops(self, spec, batch, reference=False):
        # p = number of input bits, 2 classes; no tables, so the direct formulation is the same
        return 2 * batch * spec.p * spec.hidden + 2 * batch * spec.hidden * 2

    def validate(self, spec):
        if spec.p < 1:
            raise ValueError(f"the bits model needs >= 1 input bits (p), got {spec.p}")

    def default_classes(self, spec):
        return 2

    def groups(self, spec, params):
        return ("hidden", "out")


PLUGIN = BitsPlugin()
