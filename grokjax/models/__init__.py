"""The models, looked up by name: ``get("mlp")``, ``register(name, plugin)``, ``names()``.

One module per shipped model (``mlp``, ``attn``, ``bits``), each a Flax module and a
``ModelPlugin`` saying what the lane engine needs: its parameter groups, which leaves are
weights, its token embedding, its memory width. A model of your own is a ``ModelPlugin``
subclass (or ``Flax(make)`` around a Flax module) registered from your code:

    models.register("ln_mlp", models.Flax(lambda spec, classes: LNMLP(spec.p, spec.d, classes)))
    spec = models.ModelSpec(kind="ln_mlp", p=23, d=32)

``make_model(spec)`` returns ``Model(init, apply, groups, num_classes, weights, embedding)``
with ``init(key) -> params`` and ``apply(params, x) -> logits_BxC``.
"""

from __future__ import annotations

from grokjax.models import attn, bits, mlp
from grokjax.models.attn import Attention
from grokjax.models.base import INPUTS, LAYERNORM_MODES, Flax, Model, ModelPlugin, ModelSpec, build
from grokjax.models.bits import BitsMLP
from grokjax.models.layers import layernorm as _layernorm
from grokjax.models.mlp import MLP
from grokjax.plugins import Registry

__all__ = [
    "Attention",
    "BitsMLP",
    "Flax",
    "INPUTS",
    "LAYERNORM_MODES",
    "MLP",
    "Model",
    "ModelPlugin",
    "ModelSpec",
    "get",
    "make_model",
    "names",
    "register",
    "shipped",
    "_layernorm",
]


def _check(name: str, plugin: ModelPlugin) -> None:
    if plugin.inputs not in INPUTS:
        raise ValueError(f"model {name!r}: inputs must be one of {', '.join(INPUTS)}")


_REGISTRY = Registry("model", "model", ModelPlugin, "grokjax.models.ModelPlugin", _check)


def register(name: str, plugin: ModelPlugin) -> ModelPlugin:
    """Makes ``plugin`` the model ``name`` (replacing one of that name); returns it."""
    return _REGISTRY.register(name, plugin)


def get(name: str) -> ModelPlugin:
    """The model registered as ``name``; ValueError naming the known ones."""
    return _REGISTRY.get(name)


def names() -> tuple:
    """The registered models' names, shipped ones first."""
    return _REGISTRY.names()


def shipped(name: str) -> bool:
    """Whether ``name`` is a model the package ships (not one registered by your code)."""
    return _REGISTRY.shipped(name)


def make_model(spec: ModelSpec, num_classes: int | None = None, x_example=None) -> Model:
    """Pure ``init``/``apply`` for a static model spec; ``num_classes`` and ``x_example`` (one
    input row) come from the task when there is one."""
    spec.validate()
    return build(get(spec.kind), spec, num_classes, x_example)


def __getattr__(name: str):
    # MODELS and GROUPS as they were (tuples of the registered names / their groups), live
    if name == "MODELS":
        return names()
    if name == "GROUPS":
        return {k: tuple(make_model(ModelSpec(kind=k, p=5, d=4, hidden=4)).groups) for k in names()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


for _name, _module in (("mlp", mlp), ("attn", attn), ("bits", bits)):
    register(_name, _module.PLUGIN)
_REGISTRY.mark_shipped()
