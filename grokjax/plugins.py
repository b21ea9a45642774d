"""A registry of plug-ins by name: what :mod:`grokjax.models` and :mod:`grokjax.tasks` share,
and which of its plug-ins are the shipped ones (run fingerprints add a digest of what a plug-in
of the user's computes: :func:`grokjax.lane.behaviour_digest`)."""

from __future__ import annotations

from typing import Callable


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

    def shipped(self, name: str) -> bool:
        """Whether ``name`` is still the plug-in the package registered under that name."""
        return self._shipped.get(name) is self.get(name)
