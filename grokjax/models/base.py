"""What a model plug-in is: ``ModelSpec`` (the static description every model reads its sizes
from), ``ModelPlugin`` (what the lane engine asks of a model) and ``Model`` (its pure
``init``/``apply`` for one spec)."""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from grokjax.optim import weight_matrices

LAYERNORM_MODES = ("none", "all", "final")
INPUTS = ("pairs", "vector")  # int operand pairs [B, 2]; float vectors [B, n]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Static model description: changing any field changes shapes or the graph. Its text is
    part of every run fingerprint, so its fields and their order stay as they are; a plug-in
    reads the ones it needs (``kind`` names it in ``grokjax.models``)."""

    kind: str = "mlp"
    p: int = 59  # modulus (mlp, attn); number of input bits n (bits)
    d: int = 128  # embedding width (mlp, attn; unused by bits)
    hidden: int = 256  # MLP hidden width (mlp, bits); MLP-block width (attn, paper: 512)
    heads: int = 4  # attn only
    layernorm: str = "none"  # attn only: none | all | final
    dtype: str = "float32"

    def validate(self) -> None:
        from grokjax import models

        plugin = models.get(self.kind)  # ValueError naming the known models
        plugin.validate(self)
        if self.d < 1 or self.hidden < 1:
            raise ValueError(f"widths must be positive, got d={self.d}, hidden={self.hidden}")
        plugin.validate_after_widths(self)
        if self.layernorm not in LAYERNORM_MODES:
            raise ValueError(f"unknown layernorm mode {self.layernorm!r}; choose {LAYERNORM_MODES}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")


class Model(NamedTuple):
    init: Callable  # key -> params
    apply: Callable  # (params, ab_Bx2 or x_BxN) -> logits_BxC
    groups: tuple  # parameter-group names (top-level keys of params), in order
    num_classes: int  # C, the width of the logits
    weights: Callable = weight_matrices  # params -> bool mask of the leaves the norm covers
    embedding: Callable = lambda params: None  # params -> token embedding E_PxD, or None


class ModelPlugin:
    """A model the lane engine can train. Subclass it, override ``module`` (a Flax module for a
    spec and a class count) and what differs from the defaults, and register an instance with
    ``grokjax.models.register(name, plugin)``; ``ModelSpec(kind=name, ...)`` then selects it.

    Defaults: inputs are int operand pairs (``"pairs"``; ``"vector"`` for float vectors such
    as the parity task's bits), the logits are as wide as the task has classes, the parameter
    groups are the top-level names of the parameters, the leaves with ndim >= 2 count as
    weights (the norm, the clamp, weight decay and ``init_scale`` act on them), there is no
    token embedding to analyse, and the activation width for the memory estimate is
    max(d, hidden)."""

    inputs = "pairs"
    # the ModelSpec fields this model reads (the settings that tell its runs apart)
    config_fields: tuple = ("p", "d", "hidden")

    def module(self, spec: ModelSpec, num_classes: int):
        raise NotImplementedError

    def validate(self, spec: ModelSpec) -> None:
        """ValueError (one line) for a spec this model cannot build (checked before widths)."""
        if spec.p < 2:
            raise ValueError(f"p must be >= 2, got {spec.p}")

    def validate_after_widths(self, spec: ModelSpec) -> None:
        """Checks that assume positive widths."""

    def default_classes(self, spec: ModelSpec) -> int:
        """The class count when no task says (``make_model(spec)`` alone)."""
        return spec.p

    def groups(self, spec: ModelSpec, params) -> tuple:
        return tuple(params)

    def weights(self, params):
        return weight_matrices(params)

    def embedding(self, params, spec: ModelSpec):
        """The token embedding (rows = the p residues) whose Fourier statistics the curves
        record, or None (the statistics are NaN)."""
        return None

    def width(self, spec: ModelSpec) -> int:
        """The widest activation per example, for the memory estimate."""
        return max(spec.d, spec.hidden)

    def matmul_flops(self, spec: ModelSpec, batch: int, reference: bool = False) -> int:
        """Matmul FLOPs (2·M·N·K each) of one forward pass over ``batch`` rows: as the module
        executes it, or (``reference``) as the direct formulation without per-token tables would
        need (the numerator of MFU-style utilisation). What ``experiments/bench.py`` divides by;
        a model that does not count them raises NotImplementedError."""
        raise NotImplementedError(f"model {type(self).__name__} does not count its FLOPs")

    def example(self, spec: ModelSpec):
        """One input row, to trace the module at init."""
        if self.inputs == "vector":
            return jnp.zeros((1, spec.p), jnp.dtype(spec.dtype))
        return jnp.zeros((1, 2), jnp.int32)


class Flax(ModelPlugin):
    """A plug-in from a function ``make(spec, num_classes) -> flax.linen.Module``:
    ``models.register("ln_mlp", models.Flax(lambda spec, c: LNMLP(spec.p, spec.d, c)))``."""

    def __init__(self, make: Callable, inputs: str = "pairs"):
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
        self.make, self.inputs = make, inputs

    def module(self, spec: ModelSpec, num_classes: int):
        return self.make(spec, num_classes)


def build(plugin: ModelPlugin, spec: ModelSpec, num_classes: int | None, x_example) -> Model:
    """``Model`` of ``plugin`` at ``spec``."""
    if num_classes is None:
        num_classes = plugin.default_classes(spec)
    module = plugin.module(spec, num_classes)
    x_example = plugin.example(spec) if x_example is None else x_example

    def init(key):
        return module.init(key, x_example)["params"]

    def apply(params, x):
        return module.apply({"params": params}, x)

    shapes = jax.eval_shape(init, jax.random.key(0))
    logits = jax.eval_shape(apply, shapes, x_example)
    return Model(
        init,
        apply,
        tuple(plugin.groups(spec, shapes)),
        int(logits.shape[-1]),
        plugin.weights,
        lambda params: plugin.embedding(params, spec),
    )
