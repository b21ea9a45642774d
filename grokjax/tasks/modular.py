"""Modular arithmetic: (a ∘ b) mod p over all p² pairs (division: b ≠ 0) with per-seed
splits.

The full table is tiny (p² rows), so it lives on device whole; a split is a per-lane
permutation of row indices with a static train size, so lanes with different seeds share one
compiled program. A new operation is ``Modular(label)`` with ``label(a_N, b_N, p) -> y_N``
(numpy int arrays): ``tasks.register("x2xy", Modular(lambda a, b, p: (a * a + a * b) % p))``.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np

from grokjax import memory
from grokjax.tasks.base import TaskPlugin


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


def split_indices(key, n: int, n_train: int):
    """Per-seed train/test split of ``n`` rows; deterministic in ``key``, jit/vmap safe.

    Returns:
      ``(train_idx_T, test_idx_V)`` with T = n_train and V = n - n_train.
    """
    import jax

    perm_N = jax.random.permutation(key, n)
    return perm_N[:n_train], perm_N[n_train:]


def _div(a, b, p):
    return (a * np.array([pow(int(v), p - 2, p) for v in b])) % p


class Modular(TaskPlugin):
    """(a ∘ b) mod p: ``label(a_N, b_N, p)``; ``nonzero_b`` drops the pairs with b = 0;
    ``prime`` refuses a composite p."""

    def __init__(self, label: Callable, *, nonzero_b: bool = False, prime: bool = False):
        self.label, self.nonzero_b, self.prime = label, nonzero_b, prime

    def num_examples(self, p: int) -> int:
        return p * (p - 1) if self.nonzero_b else p * p

    def num_train(self, p: int, frac: float) -> int:
        """Static train-set size: round(frac · number of pairs)."""
        return int(round(frac * self.num_examples(p)))

    def table(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """All pairs and their labels: ``(ab_Nx2, y_N)`` int32, a-major, b-minor."""
        a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
        a, b = a.ravel(), b.ravel()
        if self.nonzero_b:
            keep = b != 0
            a, b = a[keep], b[keep]
        y = self.label(a, b, p)
        return np.stack([a, b], axis=1).astype(np.int32), np.asarray(y).astype(np.int32)

    def table_bytes(self, p: int) -> int:
        """Bytes of ``table(p)`` (int32 operand pairs and labels)."""
        return 3 * 4 * self.num_examples(p)

    def check(self, p, frac) -> None:
        """ValueError (one line) for an impossible p or train fraction."""
        if int(p) != p or p < 2:
            raise ValueError(f"p must be an integer >= 2, got {p}")
        if self.prime and not is_prime(int(p)):
            raise ValueError(f"division mod p needs a prime p, got {p}")
        if not 0.0 < frac < 1.0:
            raise ValueError(f"train fraction must lie in (0, 1), got {frac}")
        n_train = self.num_train(p, frac)
        if n_train < 1 or n_train >= self.num_examples(p):
            raise ValueError(f"train fraction {frac} at p={p} leaves an empty train or test set")
        memory.check_fits(
            self.table_bytes(p), f"the p={p} data table ({self.num_examples(p):,} pairs)"
        )

    def validate(self, static) -> None:
        self.check(static.model.p, static.frac)

    def num_classes(self, static) -> int:
        return static.model.p

    def lane_data(self, static):
        p = static.model.p
        ab_np, y_np = self.table(p)
        n_rows, n_train = ab_np.shape[0], self.num_train(p, static.frac)

        def lane_data(split_key):
            train_idx, test_idx = split_indices(split_key, n_rows, n_train)
            ab, y = jnp.asarray(ab_np), jnp.asarray(y_np)
            return ab[train_idx], y[train_idx], ab[test_idx], y[test_idx]

        return lane_data

    def example(self, static):
        return jnp.zeros((1, 2), jnp.int32)

    def memory(self, static) -> dict:
        p = static.model.p
        return dict(
            n_rows=self.num_examples(p),
            n_train=self.num_train(p, static.frac),
            n_inputs=2,
            n_classes=p + 1,  # room for a model whose logits span the '=' token too
            table=self.table_bytes(p),
        )


ADD = Modular(lambda a, b, p: (a + b) % p)
SUB = Modular(lambda a, b, p: (a - b) % p)
MUL = Modular(lambda a, b, p: (a * b) % p)
DIV = Modular(_div, nonzero_b=True, prime=True)
