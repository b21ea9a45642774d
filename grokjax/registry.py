"""The experiments, looked up by name: one registry that the report, ``reproduce`` and the
paper references all read. JAX-free.

An experiment module declares its :class:`grokjax.experiment.Spec` and hands it over with
``SPEC = registry.register(experiment.Spec(...))``; the library never imports the application.
``experiments.catalog`` imports every experiment of the paper, in the report's order, so an
entry point that needs all of them imports the catalog and then reads :func:`specs`.

    >>> from grokjax import registry
    >>> import experiments.catalog  # registers delay_sweep, critical_norm, ...
    >>> registry.get("lr_matrix").about
    'rho × lr matrix of T_grok: norm effect against lr effect'
"""

from __future__ import annotations

_SPECS: dict = {}


def register(spec):
    """Add ``spec`` under ``spec.name`` (a module run as ``__main__`` and later imported by
    name registers twice: the later one replaces the earlier, in the same place) and return it."""
    if not getattr(spec, "name", ""):
        raise ValueError("an experiment spec needs a name")
    _SPECS[spec.name] = spec
    return spec


def reorder(names) -> None:
    """Put the specs called ``names`` first, in that order (the catalog's order, whichever
    module happened to be imported, and so registered, first)."""
    first = {n: _SPECS[n] for n in names if n in _SPECS}
    rest = {n: s for n, s in _SPECS.items() if n not in first}
    _SPECS.clear()
    _SPECS.update(first)
    _SPECS.update(rest)


def get(name: str):
    """The registered spec called ``name``; KeyError naming the registered ones if none."""
    try:
        return _SPECS[name]
    except KeyError:
        known = ", ".join(_SPECS) or "none (import experiments.catalog first)"
        raise KeyError(f"no experiment {name!r} registered; registered: {known}") from None


def names() -> tuple:
    """The registered experiments' names, in registration order."""
    return tuple(_SPECS)


def specs() -> tuple:
    """The registered specs, in registration order."""
    return tuple(_SPECS.values())
