"""The tasks: modular arithmetic (a ∘ b) mod p over all p² pairs with per-seed splits, and
k-sparse parity on ±1 bit vectors drawn per seed.

Modular: the full table is tiny (p² rows), so it lives on device whole; a split is a per-lane
permutation of row indices with a static train size, so lanes with different seeds share
one compiled program. Parity: every lane draws its own train and test rows from its split key
(static sizes), so again one program serves every seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

OPERATIONS = ("add", "sub", "mul", "div")
PARITY = "parity"  # the k-sparse parity task (model kind "bits"); not a modular operation


def is_prime(n: int) -> bool:
    """Trial-division primality test (p is small here)."""
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def validate_task(p: int, op: str = "add", frac: float = 0.4) -> None:
    """Raises ValueError with a one-line message for an impossible task."""
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; choose one of {', '.join(OPERATIONS)}")
    if int(p) != p or p < 2:
        raise ValueError(f"p must be an integer >= 2, got {p}")
    if op == "div" and not is_prime(int(p)):
        raise ValueError(f"division mod p needs a prime p, got {p}")
    if not 0.0 < frac < 1.0:
        raise ValueError(f"train fraction must lie in (0, 1), got {frac}")
    n_train = num_train(p, frac, op)
    if n_train < 1 or n_train >= num_examples(p, op):
        raise ValueError(f"train fraction {frac} at p={p} leaves an empty train or test set")
    check_fits(table_bytes(p, op), f"the p={p} data table ({num_examples(p, op):,} pairs)")


# ---------------------------------------------------------------------------------------------
# memory estimates: refuse what cannot fit before allocating it
# ---------------------------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def memory_limit() -> int:
    """This machine's physical memory in bytes (the host builds every table and array first);
    ``GROKJAX_MEMORY_LIMIT`` (bytes) overrides it."""
    import os

    limit = env_bytes("GROKJAX_MEMORY_LIMIT")
    if limit is not None:
        return int(limit)
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: nothing is refused


def parse_bytes(text: str, name: str) -> float:
    """A size in bytes: a number (``1.5e9``) with an optional unit (``512MiB``, ``2GB``, ``10G``:
    K, M, G, T are powers of 1000, Ki, Mi, Gi, Ti of 1024). ValueError (one line naming
    ``name``) unless it is a positive, finite size."""
    import math
    import re

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
    import os

    text = os.environ.get(var, "")
    return parse_bytes(text, var) if text.strip() else None


def check_fits(nbytes: float, what: str) -> None:
    """Raises ValueError (one line naming the size) when ``nbytes`` exceed the memory."""
    limit = memory_limit()
    if nbytes > limit:
        raise ValueError(
            f"{what} needs {fmt_bytes(nbytes)}, more than this machine's "
            f"{fmt_bytes(limit)} of memory"
        )


def table_bytes(p: int, op: str = "add") -> int:
    """Bytes of ``make_table(p, op)`` (int32 operand pairs and labels)."""
    return 3 * 4 * num_examples(p, op)


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


def num_examples(p: int, op: str = "add") -> int:
    """Number of rows of the full table (division excludes b = 0)."""
    return p * (p - 1) if op == "div" else p * p


def num_train(p: int, frac: float, op: str = "add") -> int:
    """Static train-set size: round(frac · number of pairs)."""
    return int(round(frac * num_examples(p, op)))


def make_table(p: int, op: str = "add") -> tuple[np.ndarray, np.ndarray]:
    """All pairs and their labels.

    Returns:
      ``(ab_Nx2, y_N)`` int32 arrays; row order is a-major, b-minor.
    """
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    if op == "add":
        y = (a + b) % p
    elif op == "sub":
        y = (a - b) % p
    elif op == "mul":
        y = (a * b) % p
    elif op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
        y = (a * np.array([pow(int(v), p - 2, p) for v in b])) % p
    else:
        raise ValueError(f"unknown operation {op!r}")
    return np.stack([a, b], axis=1).astype(np.int32), y.astype(np.int32)


def split_indices(key: jax.Array, n: int, n_train: int) -> tuple[jax.Array, jax.Array]:
    """Per-seed train/test split of ``n`` rows; deterministic in ``key``, jit/vmap safe.

    Returns:
      ``(train_idx_T, test_idx_V)`` with T = n_train and V = n - n_train.
    """
    perm_N = jax.random.permutation(key, n)
    return perm_N[:n_train], perm_N[n_train:]


def lane_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The init and split keys of one lane, derived from its integer seed only.

    Lanes that share a seed share init and split whatever else differs between them
    (the matched counterfactual of a clamped lane and its free control).
    """
    key = jax.random.key(jnp.asarray(seed, jnp.uint32))
    init_key, split_key = jax.random.split(key)
    return init_key, split_key


def validate_parity(n_bits: int, k_bits: int, n_train: int, n_test: int) -> None:
    """Raises ValueError with a one-line message for an impossible k-sparse parity task."""
    if int(k_bits) != k_bits or k_bits < 1:
        raise ValueError(f"k_bits must be an integer >= 1, got {k_bits}")
    if int(n_bits) != n_bits or n_bits < k_bits:
        raise ValueError(f"n_bits must be an integer >= k_bits ({k_bits}), got {n_bits}")
    if int(n_train) != n_train or n_train < 1:
        raise ValueError(f"the parity task needs n_train >= 1 training rows, got {n_train}")
    if int(n_test) != n_test or n_test < 1:
        raise ValueError(f"the parity task needs n_test >= 1 test rows, got {n_test}")
    if n_bits > MAX_PARITY_BITS:
        raise ValueError(
            f"n_bits must be at most {MAX_PARITY_BITS:,} (the paper uses up to 40), got {n_bits}"
        )
    shared = parity_test_overlap(n_bits, n_train)
    if shared > MAX_TEST_OVERLAP:
        raise ValueError(
            f"with n_bits={n_bits} there are only 2^{n_bits} distinct inputs: about "
            f"{shared:.0%} of the test rows would also be train rows ({n_train} drawn), so "
            f"test accuracy would not measure generalisation; raise n_bits or lower the "
            f"train rows"
        )


MAX_PARITY_BITS = 4096
MAX_TEST_OVERLAP = 0.1  # at most 10 % of the test rows expected to repeat a train row


def parity_test_overlap(n_bits: int, n_train: int) -> float:
    """The expected fraction of test rows that equal some train row: rows are independent
    uniform draws from 2^n_bits inputs, so 1 - (1 - 2^-n_bits)^n_train."""
    import math

    return -math.expm1(n_train * math.log1p(-(2.0 ** -float(n_bits))))


def parity_labels(x_BxN, k_bits: int):
    """1 where the product of bits 0..k-1 is -1, else 0 (int32): the k-sparse parity of x."""
    prod_B = jnp.prod(x_BxN[:, :k_bits], axis=1)
    return (prod_B < 0).astype(jnp.int32)


def parity_data(
    key: jax.Array, n_bits: int, k_bits: int, n_train: int, n_test: int, dtype=jnp.float32
):
    """One lane's k-sparse parity data, deterministic in ``key``; jit/vmap safe.

    Every row is uniform in {-1, +1}^n_bits (independent draws, so a test row may repeat a
    train row when 2^n_bits is small). The relevant bits are the first ``k_bits``: the bits
    model's initialisation is exchangeable over its inputs, so which k bits carry the label
    does not matter, and fixing them keeps the task the same across seeds.

    Returns:
      ``(x_train_TxN, y_train_T, x_test_VxN, y_test_V)`` with T = n_train, V = n_test; x in
      ``dtype``, y int32 in {0, 1}.
    """
    x_RxN = jax.random.rademacher(key, (n_train + n_test, n_bits), dtype=jnp.int32).astype(dtype)
    y_R = parity_labels(x_RxN, k_bits)
    return x_RxN[:n_train], y_R[:n_train], x_RxN[n_train:], y_R[n_train:]
