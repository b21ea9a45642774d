"""Building blocks shared by the shipped models: named parameter groups, the erf GELU and a
parameter-free LayerNorm."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def normal(std: float) -> Callable:
    return nn.initializers.normal(stddev=std)


def gelu(x):
    return jax.nn.gelu(x, approximate=False)  # the erf GELU of the paper's PyTorch runs


def layernorm(x, eps=1e-5):
    """Parameter-free LayerNorm over the last axis."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps)


class Params(nn.Module):
    """A named bag of parameters (one parameter group)."""

    shapes: dict  # name -> (shape, std)
    dtype: jnp.dtype

    @nn.compact
    def __call__(self):
        return {
            n: self.param(n, normal(std), shape, self.dtype)
            for n, (shape, std) in self.shapes.items()
        }
