"""A registry of plug-ins by name: what :mod:`grokjax.models` and :mod:`grokjax.tasks` share,
and the digest of the code a plug-in of the user's runs (:func:`code_digest`), which run
fingerprints carry so that a run directory does not resume over a plug-in that changed."""

from __future__ import annotations

import functools
import hashlib
import types
from typing import Callable

import numpy as np

# Code from these packages is named, not hashed: a plug-in's digest follows its own code.
_LIBRARIES = ("grokjax", "flax", "jax", "jaxlib", "numpy", "optax", "builtins", "functools")


class Registry:
    """Plug-ins of one base class by name, in registration order (shipped ones first).

    ``noun`` names a plug-in ("model", "task") and ``what`` a name ("model", "operation") in
    error messages; ``path`` is the base class as users import it; ``check(name, plugin)``
    raises for a plug-in this registry cannot take beyond its type."""

    def __init__(self, noun, what, base: type, path: str, check: Callable | None = None):
        self.noun, self.what, self.base, self.path, self.check = noun, what, base, path, check
        self._items: dict = {}
        self._shipped: dict = {}

    def register(self, name: str, plugin):
        """Makes ``plugin`` the entry ``name`` (replacing one of that name); returns it."""
        if not isinstance(plugin, self.base):
            raise TypeError(f"a {self.noun} plug-in is a {self.path}, got {plugin!r}")
        if self.check is not None:
            self.check(name, plugin)
        self._items[name] = plugin
        return plugin

    def get(self, name: str):
        """The plug-in registered as ``name``; ValueError naming the known ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            known = ", ".join(self._items)
            raise ValueError(f"unknown {self.what} {name!r}; choose one of {known}") from None

    def names(self) -> tuple:
        """The registered names, shipped ones first."""
        return tuple(self._items)

    def items(self):
        """(name, plug-in) pairs, shipped ones first."""
        return self._items.items()

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def mark_shipped(self) -> None:
        """Records the plug-ins registered so far as the shipped ones (at package import)."""
        self._shipped = dict(self._items)

    def digest(self, name: str) -> str | None:
        """None for a shipped plug-in (its code is the library's version), else the
        :func:`code_digest` of the plug-in registered as ``name``."""
        plugin = self.get(name)
        return None if self._shipped.get(name) is plugin else code_digest(plugin)


def code_digest(plugin) -> str:
    """A short hash of the code a plug-in runs: its class's methods, the functions and classes
    its attributes hold (a ``Flax`` plug-in's ``make``), and the functions, classes (a Flax
    module's ``__call__``) and values those reach through their globals, closures, defaults
    and constants. Code from the libraries (``_LIBRARIES``) enters by name only, and so do
    objects whose text would hold a memory address. The same source run again (a notebook cell
    re-executed) gives the same digest under the same Python version; an edit to any of that
    code gives another."""
    h = hashlib.sha256()
    seen: set = set()

    def lib(obj) -> bool:
        mod = getattr(obj, "__module__", None) or ""
        return mod.split(".")[0] in _LIBRARIES

    def walk(obj, depth: int) -> None:
        if isinstance(obj, (bool, int, float, complex, str, bytes, type(None))):
            h.update(repr(obj).encode())
            return
        if isinstance(obj, (tuple, list, frozenset, set)):
            h.update(f"{type(obj).__name__}[".encode())
            for x in sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj:
                walk(x, depth)
            h.update(b"]")
            return
        if isinstance(obj, np.ndarray) or (lib(type(obj)) and hasattr(obj, "__array__")):
            a = np.asarray(obj)  # data a plug-in holds (a jax array too): its values
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
            return
        if isinstance(obj, dict):
            h.update(b"{")
            for k in sorted(obj, key=repr):
                walk(k, depth)
                walk(obj[k], depth)
            h.update(b"}")
            return
        name = (
            f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
        )
        if id(obj) in seen or depth > 8 or isinstance(obj, types.ModuleType):
            h.update(name.encode())
            return
        seen.add(id(obj))
        if isinstance(obj, types.CodeType):
            h.update(obj.co_code)
            walk(obj.co_names, depth)
            walk(tuple(c for c in obj.co_consts if not isinstance(c, types.CodeType)), depth)
            for c in obj.co_consts:
                if isinstance(c, types.CodeType):
                    walk(c, depth + 1)
            return
        if isinstance(obj, functools.partial):
            walk((obj.func, obj.args, obj.keywords), depth + 1)
            return
        if isinstance(obj, (classmethod, staticmethod)):
            walk(obj.__func__, depth)
            return
        if isinstance(obj, property):
            walk((obj.fget, obj.fset, obj.fdel), depth)
            return
        inner = getattr(obj, "__wrapped__", None)  # a decorated method (Flax wraps them all)
        if inner is not None and not isinstance(obj, type):
            walk(inner, depth + 1)
            return
        if lib(obj) and (isinstance(obj, (type, types.FunctionType)) or callable(obj)):
            h.update(name.encode())
            return
        h.update(type(obj).__name__.encode())  # a user's function or class: its code, not name
        if isinstance(obj, types.FunctionType):
            walk(obj.__code__, depth + 1)
            walk(obj.__defaults__, depth + 1)
            walk(obj.__kwdefaults__, depth + 1)
            for cell in obj.__closure__ or ():
                walk(cell.cell_contents, depth + 1)
            g = obj.__globals__
            for n in _names(obj.__code__):
                if n in g:
                    walk(g[n], depth + 1)
            return
        if isinstance(obj, type):
            for klass in obj.__mro__:
                if klass is object or lib(klass):
                    h.update(f"{klass.__module__}.{klass.__qualname__}".encode())
                    continue
                for k in sorted(vars(klass)):
                    if not (k.startswith("__") and k.endswith("__")) or k in _DUNDERS:
                        h.update(k.encode())
                        walk(vars(klass)[k], depth + 1)
            return
        if isinstance(obj, types.MethodType):
            walk(obj.__func__, depth + 1)
            return
        walk(type(obj), depth + 1)  # an instance: its class, then its own attributes
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            walk(state, depth + 1)

    walk(plugin, 0)
    return h.hexdigest()[:16]


# The special methods that are a class's own code (the rest are generated or inherited).
_DUNDERS = ("__call__", "__init__", "__post_init__", "__getitem__")


def _names(code: types.CodeType):
    """The global names ``code`` and its nested code objects read."""
    yield from code.co_names
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _names(c)
