"""The tasks, looked up by name (``Static.op``): ``get("add")``, ``register(name, plugin)``,
``names()``.

Shipped: modular arithmetic ``add``, ``sub``, ``mul``, ``div`` (``tasks.modular``) and k-sparse
``parity`` (``tasks.parity``). A task of your own is a ``TaskPlugin`` subclass, or for a new
binary operation mod p ``Modular(label)``, registered from your code:

    tasks.register("x2xy", tasks.Modular(lambda a, b, p: (a * a + a * b) % p))
"""

from __future__ import annotations

from grokjax.plugins import Registry
from grokjax.tasks import modular, parity
from grokjax.tasks.base import TaskPlugin
from grokjax.tasks.modular import Modular

__all__ = ["Modular", "TaskPlugin", "get", "names", "register", "shipped"]

_REGISTRY = Registry("task", "operation", TaskPlugin, "grokjax.tasks.TaskPlugin")


def register(name: str, plugin: TaskPlugin) -> TaskPlugin:
    """Makes ``plugin`` the task ``name`` (replacing one of that name); returns it."""
    return _REGISTRY.register(name, plugin)


def get(name: str) -> TaskPlugin:
    """The task registered as ``name``; ValueError naming the known ones."""
    return _REGISTRY.get(name)


def names() -> tuple:
    """The registered tasks' names, shipped ones first."""
    return _REGISTRY.names()


def shipped(name: str) -> bool:
    """Whether ``name`` is a task the package ships (not one registered by your code)."""
    return _REGISTRY.shipped(name)


def fields_of_others(name: str) -> set:
    """``Static`` fields that only tasks other than ``name`` read."""
    own = set(get(name).fields)
    return {f for k, t in _REGISTRY.items() if k != name for f in t.fields} - own


for _name, _plugin in (
    ("add", modular.ADD),
    ("sub", modular.SUB),
    ("mul", modular.MUL),
    ("div", modular.DIV),
    ("parity", parity.PARITY),
):
    register(_name, _plugin)
_REGISTRY.mark_shipped()
