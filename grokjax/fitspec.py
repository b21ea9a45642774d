"""An experiment's fit as a declaration: a list of named measures, each (fit.json key, measure,
selection, arguments), that :func:`evaluate` runs over a loaded run. Every experiment's fit.json
is made by this one evaluator, so an experiment's fit reads as its list of measures::

    spec = [
        fitspec.m("Wc", measures.wc, free),
        fitspec.m("delay_law", measures.delay_law, clamp),
        fitspec.m("beyond", measures.beyond, clamp, law=fitspec.Ref("delay_law"), rhos=[1.2]),
    ]
    fitted = fitspec.evaluate(run, spec)

A measure is called as ``measure(run, sel, **args)`` (:mod:`grokjax.measures`; ``sel`` a boolean
mask or lane indices, or ``None`` for a measure that needs no selection). An argument that is a
:class:`Ref` is the value of an earlier key of the same block (the delay law a later cell is
compared with). :func:`block` nests a list of measures under one key, :func:`table` one list
per name (``per_p``: one block per modulus) and :func:`rows` one list per row (a cell). Where a number is genuinely procedural (a frontier,
a per-cell loop) its measure is a function of its own; the declaration still names it. JAX-free.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

__all__ = ["Measure", "Ref", "m", "value", "block", "table", "rows", "by", "evaluate"]


@dataclasses.dataclass(frozen=True)
class Ref:
    """The value of an earlier key of the same block (``Ref("delay_law")``)."""

    key: str


@dataclasses.dataclass(frozen=True)
class Measure:
    """One fit.json key: ``measure(run, sel, **args)``; left out when ``omit_none`` and the value
    is None."""

    key: str
    measure: Callable
    sel: Any = None
    args: dict = dataclasses.field(default_factory=dict)
    omit_none: bool = False


def m(key: str, measure: Callable, sel=None, /, *, omit_none: bool = False, **args) -> Measure:
    """The :class:`Measure` ``key`` = ``measure(run, sel, **args)``."""
    return Measure(key, measure, sel, args, omit_none)


def value(key: str, v) -> Measure:
    """``key`` = ``v``, a setting of the run the fit states (the reference lr)."""
    return Measure(key, lambda run, _sel: v)


def by(measure: Callable, key: str, values, /, nonempty: bool = False, **args) -> Callable:
    """The measure {repr(v): ``measure(run, sel & lanes[key] ≈ v, **args)`` for v in
    ``values``} (one number per lr, per rho, ...; the column matched with ``np.isclose``); with
    ``nonempty``, the values that select no lane are left out."""

    def per_value(run, sel):
        col = run.lanes[key]
        sels = {repr(v): sel & np.isclose(col, v) for v in values}
        return {k: measure(run, s, **args) for k, s in sels.items() if s.any() or not nonempty}

    return per_value


def block(key: str, spec: list) -> Measure:
    """``key`` = the dict that ``spec`` (a list of measures) evaluates to."""
    return Measure(key, lambda run, _sel: evaluate(run, spec))


def table(key: str, specs: dict) -> Measure:
    """``key`` = {name: the dict that ``specs[name]`` evaluates to}."""
    return Measure(key, lambda run, _sel: {k: evaluate(run, s) for k, s in specs.items()})


def rows(key: str, specs: list) -> Measure:
    """``key`` = [the dict that each spec of ``specs`` evaluates to] (one row per cell)."""
    return Measure(key, lambda run, _sel: [evaluate(run, s) for s in specs])


def evaluate(run, spec: list) -> dict:
    """The dict {key: value} of the measures of ``spec`` over ``run``, in order (a :class:`Ref`
    argument reads a key evaluated before it)."""
    out: dict = {}
    for mm in spec:
        args = {k: out[v.key] if isinstance(v, Ref) else v for k, v in mm.args.items()}
        value = mm.measure(run, mm.sel, **args)
        if value is None and mm.omit_none:
            continue
        out[mm.key] = value
    return out
