"""k-sparse parity on ±1 bit vectors: every lane draws its own train and test rows from its
split key (static sizes, so one program serves every seed); the label is the parity of the
first k bits. ``static.model.p`` is the number of bits n; the sizes are the ``Static`` fields
n_train, n_test and k_bits."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from grokjax.tasks.base import TaskPlugin

MAX_PARITY_BITS = 4096
MAX_TEST_OVERLAP = 0.1  # at most 10 % of the test rows expected to repeat a train row


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


def parity_test_overlap(n_bits: int, n_train: int) -> float:
    """The expected fraction of test rows that equal some train row: rows are independent
    uniform draws from 2^n_bits inputs, so 1 - (1 - 2^-n_bits)^n_train."""
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


class Parity(TaskPlugin):
    inputs = "vector"
    fields = ("n_train", "n_test", "k_bits")

    def validate(self, static) -> None:
        validate_parity(static.model.p, static.k_bits, static.n_train, static.n_test)

    def num_classes(self, static) -> int:
        return 2

    def lane_data(self, static):
        s, dtype = static, jnp.dtype(static.model.dtype)
        return lambda key: parity_data(key, s.model.p, s.k_bits, s.n_train, s.n_test, dtype)

    def example(self, static):
        return jnp.zeros((1, static.model.p), jnp.dtype(static.model.dtype))

    def memory(self, static) -> dict:
        return dict(
            n_rows=static.n_train + static.n_test,
            n_train=static.n_train,
            n_inputs=static.model.p,
            n_classes=2,
            table=0,
        )


PARITY = Parity()
