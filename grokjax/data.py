"""The per-lane keys every task shares, and the task and memory helpers under their old names
(the tasks live in ``grokjax.tasks``, one module each; memory in ``grokjax.memory``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from grokjax import tasks
from grokjax.memory import (  # noqa: F401 -- the old names
    check_fits,
    env_bytes,
    fmt_bytes,
    lane_bytes,
    memory_limit,
    parse_bytes,
)
from grokjax.tasks.modular import is_prime, split_indices  # noqa: F401
from grokjax.tasks.parity import (  # noqa: F401
    MAX_PARITY_BITS,
    MAX_TEST_OVERLAP,
    parity_data,
    parity_labels,
    parity_test_overlap,
    validate_parity,
)

OPERATIONS = ("add", "sub", "mul", "div")  # the shipped modular operations
PARITY = "parity"  # the k-sparse parity task (model kind "bits")


def _modular(op: str):
    task = tasks.get(op)
    if not isinstance(task, tasks.Modular):
        raise ValueError(f"{op!r} is not an operation mod p")
    return task


def validate_task(p: int, op: str = "add", frac: float = 0.4) -> None:
    """Raises ValueError with a one-line message for an impossible task of operation ``op``
    at modulus ``p`` and train fraction ``frac`` (a task that is not an operation mod p is
    checked with its other sizes by ``lane.Static.validate``)."""
    task = tasks.get(op)
    if isinstance(task, tasks.Modular):
        task.check(p, frac)


def num_examples(p: int, op: str = "add") -> int:
    """Number of rows of the full table (division excludes b = 0)."""
    return _modular(op).num_examples(p)


def num_train(p: int, frac: float, op: str = "add") -> int:
    """Static train-set size: round(frac · number of pairs)."""
    return _modular(op).num_train(p, frac)


def table_bytes(p: int, op: str = "add") -> int:
    return _modular(op).table_bytes(p)


def make_table(p: int, op: str = "add"):
    """All pairs and their labels: ``(ab_Nx2, y_N)`` int32 arrays, a-major, b-minor."""
    return _modular(op).table(p)


def lane_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The init and split keys of one lane, derived from its integer seed only.

    Lanes that share a seed share init and split whatever else differs between them
    (the matched counterfactual of a clamped lane and its free control).
    """
    key = jax.random.key(jnp.asarray(seed, jnp.uint32))
    init_key, split_key = jax.random.split(key)
    return init_key, split_key
