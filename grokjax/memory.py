"""Memory: how much a run may use, and what a lane of a program needs, in one place.

One environment variable, ``GROKJAX_MEMORY`` (bytes: ``2e9``, ``512MiB``, ``10GB``), says how
much memory a run may use per device: a plan whose lane or curves exceed it is refused before
any work (``check_fits``), and a vmapped phase is cut to the lanes that fit it
(``Engine.lanes_that_fit``). Unset, the limit is the machine's physical memory and the lanes
fit what the device reports (on CPU half the memory). The older ``GROKJAX_MEMORY_LIMIT`` (the
limit only) and ``GROKJAX_MEMORY_BUDGET`` (the lanes only) still work and say they are
deprecated. JAX-free.
"""

from __future__ import annotations

import math
import os
import re
import sys

VAR = "GROKJAX_MEMORY"
LIMIT_ALIAS = "GROKJAX_MEMORY_LIMIT"  # deprecated: the refusal limit only
BUDGET_ALIAS = "GROKJAX_MEMORY_BUDGET"  # deprecated: the per-device lane budget only
_warned: set = set()


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def parse_bytes(text: str, name: str) -> float:
    """A size in bytes: a number (``1.5e9``) with an optional unit (``512MiB``, ``2GB``, ``10G``:
    K, M, G, T are powers of 1000, Ki, Mi, Gi, Ti of 1024). ValueError (one line naming
    ``name``) unless it is a positive, finite size."""
    v = text.strip()
    m = re.fullmatch(r"([0-9.eE+]+)\s*([KMGT]i?B?|B)?", v)
    try:
        x = float(m.group(1))
    except (AttributeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a size in bytes such as 2e9, 512MiB or 10GB, got {v!r}")
    unit = m.group(2) or ""
    if unit and unit != "B":
        k = "KMGT".index(unit[0]) + 1
        x *= 2 ** (10 * k) if "i" in unit else 1000**k
    return x


def env_bytes(var: str) -> float | None:
    """The size in bytes of the environment variable ``var`` (``parse_bytes``), or None when it
    is unset or empty."""
    text = os.environ.get(var, "")
    return parse_bytes(text, var) if text.strip() else None


def _setting(alias: str) -> float | None:
    """``GROKJAX_MEMORY``, else the deprecated ``alias`` (one line on stderr the first time)."""
    value = env_bytes(VAR)
    if value is not None:
        return value
    value = env_bytes(alias)
    if value is not None and alias not in _warned:
        _warned.add(alias)
        print(f"grokjax: {alias} is deprecated; set {VAR} instead", file=sys.stderr)
    return value


def check_environment() -> None:
    """ValueError naming the variable when a memory setting is not a size."""
    for var in (VAR, LIMIT_ALIAS, BUDGET_ALIAS):
        env_bytes(var)


def memory_limit() -> int:
    """The memory a plan may need, in bytes: ``GROKJAX_MEMORY``, else this machine's physical
    memory (the host builds every table and array first)."""
    limit = _setting(LIMIT_ALIAS)
    if limit is not None:
        return int(limit)
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: nothing is refused


def device_budget() -> float | None:
    """The bytes per device a vmapped phase may fill (``GROKJAX_MEMORY``), or None: the
    engine then asks the device."""
    return _setting(BUDGET_ALIAS)


def check_fits(nbytes: float, what: str) -> None:
    """Raises ValueError (one line naming the size) when ``nbytes`` exceed the memory."""
    limit = memory_limit()
    if nbytes > limit:
        raise ValueError(
            f"{what} needs {fmt_bytes(nbytes)}, more than this machine's "
            f"{fmt_bytes(limit)} of memory"
        )


def lane_bytes(
    *,
    n_rows: int,
    n_train: int,
    n_inputs: int,
    n_classes: int,
    width: int,
    n_params: int,
    itemsize: int,
    table: int = 0,
) -> dict:
    """A rough upper estimate of one lane's program: the shared table, the lane's train and
    test rows, parameters with gradient and AdamW moments, and the activations of a full-batch
    step and a full eval (logits and hidden layers, forward and backward). Returns
    {"table", "lane", "total"} in bytes; it is meant to refuse what cannot fit, not to plan."""
    data = n_rows * (n_inputs + 1) * max(itemsize, 4)
    params = 4 * n_params * itemsize
    acts = max(n_rows, n_train) * (3 * n_classes + 4 * width) * itemsize
    lane = data + params + acts
    return {"table": table, "lane": lane, "total": table + lane}


def static_memory(static, lanes: int = 1, points: int = 120) -> dict:
    """A rough estimate of the memory of one lane of ``static``'s program (``lane_bytes``,
    from its task's sizes and its model's parameters and width) and of the host arrays
    (``points`` curve points of every metric) of ``lanes`` lanes, in bytes."""
    import jax
    import numpy as np

    from grokjax import lane, models, tasks

    spec = static.model
    model = lane.model_of(static)
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
    est = lane_bytes(
        **tasks.get(static.op).memory(static),
        width=models.get(spec.kind).width(spec),
        n_params=n_params,
        itemsize=8 if spec.dtype == "float64" else 4,
    )
    est["host"] = lanes * points * (12 + len(model.groups)) * 8
    return est
