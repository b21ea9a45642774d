"""The experiments, looked up by name: one registry that the report, ``reproduce`` and the
paper references all read. JAX-free.

An experiment module declares its :class:`grokjax.experiment.Spec` and hands it over with
``SPEC = registry.register(experiment.Spec(...))``; the library never imports the application
at import time. The modules named in :data:`CATALOGS` (by default ``experiments.catalog``,
which imports every experiment of the paper in the report's order) are imported on the first
look-up (:func:`get`, :func:`names`, :func:`specs`), so a report built from run directories
knows every experiment whether or not its caller imported the catalog. A catalog that cannot
be imported is an error, never a silently smaller registry.

    >>> from grokjax import registry
    >>> registry.get("lr_matrix").about  # imports experiments.catalog on first use
    'rho × lr matrix of T_grok: norm effect against lr effect'
"""

from __future__ import annotations

import importlib

# modules that register experiments when imported, loaded (once, in order) on the first
# look-up; a program with its own experiments appends its catalog here or registers directly
CATALOGS: list[str] = ["experiments.catalog"]

_SPECS: dict = {}
_LOADED: set = set()


class CatalogError(ImportError):
    """A module of :data:`CATALOGS` could not be imported."""


def load_catalogs() -> None:
    """Imports every module of :data:`CATALOGS` not imported yet (each registers its
    experiments); raises :class:`CatalogError` naming the module that failed."""
    for name in list(CATALOGS):
        if name in _LOADED:
            continue
        _LOADED.add(name)  # before the import: a catalog may look specs up while it loads
        try:
            importlib.import_module(name)
        except ImportError as e:
            _LOADED.discard(name)
            raise CatalogError(
                f"cannot import the experiment catalog {name!r} ({e}); the report and the "
                f"look-ups by name need it (remove it from grokjax.registry.CATALOGS to use "
                f"only experiments registered directly)"
            ) from e


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
    load_catalogs()
    try:
        return _SPECS[name]
    except KeyError:
        known = ", ".join(_SPECS) or "none"
        raise KeyError(f"no experiment {name!r} registered; registered: {known}") from None


def names() -> tuple:
    """The registered experiments' names, in registration order."""
    load_catalogs()
    return tuple(_SPECS)


def specs() -> tuple:
    """The registered specs, in registration order."""
    load_catalogs()
    return tuple(_SPECS.values())
