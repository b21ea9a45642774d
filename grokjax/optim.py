"""Weight-norm clamp as an optax ``GradientTransformation``.

The grokking delay law is stated in terms of the global L2 norm of the
weight matrices, ``||W||`` over ``E, W1, W2`` (biases and normalisation
scales excluded).  This module provides

* :func:`global_norm` -- the one norm computation, shared by the clamp and
  by the metrics code, so that the clamped norm and the reported norm are the
  same number;
* :func:`weight_matrices` -- the mask selecting the leaves that norm is
  taken over (every leaf with ``ndim >= 2``);
* :func:`clamp_norm` -- a transformation, chained *last* after any
  optimizer, that rescales the masked parameters so that after
  ``optax.apply_updates`` their global norm equals a target.

Everything is written with ``jnp.where`` rather than Python control flow on
array values, so the target, the active window and the mask may all be traced
values (different per lane under ``jax.vmap``) and one compiled program serves
every target, including the "no clamp" target ``0``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "ClampNormState",
    "clamp_norm",
    "global_norm",
    "weight_matrices",
]

# A mask is a pytree of booleans shaped like the tree it masks (leaves may be
# Python bools or scalar boolean arrays, possibly traced), or a callable that
# builds such a pytree from the tree.
MaskOrFn = Union[Any, Callable[[Any], Any], None]

_MODES = ("continuous", "one_shot")


# --------------------------------------------------------------------------- #
# Masks and the norm
# --------------------------------------------------------------------------- #


def _static_bool(m):
    """Returns ``m`` as a Python bool when it is a concrete host boolean."""
    if isinstance(m, (bool, np.bool_)):
        return bool(m)
    if isinstance(m, np.ndarray) and m.shape == () and m.dtype == np.bool_:
        return bool(m)
    return m


def _flatten_with_mask(tree, mask: MaskOrFn):
    """Flattens ``tree`` and returns its leaves, aligned mask leaves, treedef.

    Mask leaves that are concrete host booleans come back as Python ``bool``
    so callers can skip ``False`` leaves statically; everything else (jax
    arrays, tracers) is returned as is and must be used arithmetically.
    """
    leaves, treedef = jax.tree.flatten(tree)
    if mask is None:
        return leaves, [True] * len(leaves), treedef
    if callable(mask):
        mask = mask(tree)
    try:
        mask_leaves = treedef.flatten_up_to(mask)
    except (ValueError, TypeError) as e:
        hint = ""
        if isinstance(mask, (bool, np.bool_)):
            hint = (
                " (a bare bool: if clamp_norm is wrapped in "
                "optax.inject_hyperparams with a callable mask, pass "
                "static_args='mask', or the mask is taken for a schedule)"
            )
        raise ValueError(
            "`mask` must be a pytree of booleans with the same structure as "
            "the parameters (or a callable returning one); got a mask whose "
            f"structure does not match{hint}: {e}"
        ) from e
    return leaves, [_static_bool(m) for m in mask_leaves], treedef


def _compute_dtype(x) -> jnp.dtype:
    """The dtype norms are accumulated in: the leaf's own, at least float32."""
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


def _norm_of_leaves(leaves, mask_leaves) -> jax.Array:
    """sqrt(sum of squares) over the selected leaves (the shared kernel)."""
    total = None
    for x, m in zip(leaves, mask_leaves):
        if m is False:
            continue
        x = jnp.asarray(x)
        dt = _compute_dtype(x)
        sq = jnp.square(x.astype(dt))
        if m is True:
            s = jnp.sum(sq)
        else:
            m = jnp.asarray(m)
            if m.ndim == 0:
                s = jnp.where(m, jnp.sum(sq), jnp.zeros((), dt))
            else:  # an elementwise mask broadcastable to the leaf
                s = jnp.sum(jnp.where(m, sq, jnp.zeros((), dt)))
        total = s if total is None else total + s
    if total is None:
        dt = _compute_dtype(leaves[0]) if leaves else jnp.float32
        return jnp.zeros((), dt)
    return jnp.sqrt(total)


def global_norm(tree, mask: MaskOrFn = None) -> jax.Array:
    """Global L2 norm ``sqrt(sum of squares)`` over the masked leaves of a tree.

    This is the norm :func:`clamp_norm` enforces; use it for reporting too so
    that the clamped and the reported norm are the same computation.

    Squares are accumulated in the leaves' dtype (float32 or float64; lower
    precision floats are accumulated in float32).  Masking is arithmetic
    (``jnp.where``), so mask leaves may be traced, e.g. a different mask per
    lane under ``jax.vmap``; a concrete Python ``False`` leaf is skipped.

    Args:
      tree: a pytree of arrays, e.g. model parameters.
      mask: ``None`` (every leaf), a pytree of booleans with the same structure
        as ``tree`` whose leaves are Python bools or scalar boolean arrays
        (possibly traced), or a callable ``tree -> such pytree`` such as
        :func:`weight_matrices`.

    Returns:
      A scalar array: the global L2 norm of the selected leaves (``0`` if none
      is selected).

    Example:
      >>> import jax.numpy as jnp
      >>> params = {"w": jnp.full((2, 2), 1.0), "b": jnp.full((2,), 5.0)}
      >>> print(global_norm(params, mask=weight_matrices))
      2.0
      >>> print(global_norm(params, mask={"w": False, "b": True}))
      7.071068
    """
    leaves, mask_leaves, _ = _flatten_with_mask(tree, mask)
    return _norm_of_leaves(leaves, mask_leaves)


def weight_matrices(params) -> Any:
    """Mask selecting weight matrices only: leaves with ``ndim >= 2``.

    Biases, LayerNorm scales and any other 1-D or 0-D leaf are excluded, which
    gives the paper's norm (``||W||`` over ``E, W1, W2``, no biases).  Usable
    directly as ``mask=weight_matrices`` in :func:`global_norm` and
    :func:`clamp_norm`.  Works on abstract values (``jax.ShapeDtypeStruct``).

    Note: call it on *unbatched* parameters.  Inside ``jax.vmap`` (where
    callable masks are evaluated) that is automatic; on parameters stacked
    along a leading lane axis outside ``vmap`` every bias would look 2-D.

    Args:
      params: a pytree of arrays.

    Returns:
      A pytree with the structure of ``params`` whose leaves are Python bools.

    Example:
      >>> import jax.numpy as jnp
      >>> weight_matrices({"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,))})
      {'b': False, 'w': True}
    """

    def is_matrix(x) -> bool:
        ndim = x.ndim if hasattr(x, "ndim") else np.ndim(x)
        return ndim >= 2

    return jax.tree.map(is_matrix, params)


# --------------------------------------------------------------------------- #
# The clamp
# --------------------------------------------------------------------------- #


class ClampNormState(NamedTuple):
    """State of :func:`clamp_norm`.

    Attributes:
      count: int32 number of ``update`` calls made so far; the clamp is active
        for update number ``count`` when
        ``start_step <= count < start_step + num_steps``.
    """

    count: jax.Array


def _is_python_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _concrete(x) -> Optional[np.ndarray]:
    """``x`` as a NumPy array when its value is known now (a Python number or list, a NumPy
    or a concrete JAX array); None when it is traced (its checks then fall to run time)."""
    if x is None or isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except Exception:  # noqa: BLE001 -- anything that is not an array is checked by its use
        return None


def _check_scalar(name: str, x) -> None:
    if x is not None and np.ndim(x) != 0:
        raise ValueError(
            f"clamp_norm: {name} must be a scalar (one value for all the masked leaves; a "
            f"value per lane is a traced scalar under jax.vmap), got shape {np.shape(x)}."
        )


def _check_target_fits(target: np.ndarray, dtype) -> None:
    """A positive concrete target that is 0 or inf in ``dtype`` would silently mean no clamp,
    or inf parameters."""
    t = float(target)
    if t > 0:
        with np.errstate(over="ignore", under="ignore"):
            v = float(np.asarray(t).astype(dtype))
        if v == 0 or not np.isfinite(v):
            raise ValueError(
                f"clamp_norm: target_norm {t:g} is {v:g} in {np.dtype(dtype).name}, the "
                f"dtype the parameters are rescaled in; pass a target it can represent "
                f"(or 0 for no clamp)."
            )


def _checked_args(target_norm, start_step, num_steps, mode: str, eps):
    """Validates :func:`clamp_norm`'s arguments (see its Raises); returns ``num_steps`` (1 for
    ``mode="one_shot"``) and the concrete ``target_norm`` (None when traced or None)."""
    if mode not in _MODES:
        raise ValueError(f"clamp_norm: unknown mode {mode!r}; expected one of {_MODES}.")
    if mode == "one_shot":
        if num_steps is not None:
            raise ValueError(
                "clamp_norm: mode='one_shot' means num_steps=1; do not pass num_steps as well."
            )
        num_steps = 1
    for name, x in (("target_norm", target_norm), ("start_step", start_step),
                    ("num_steps", num_steps), ("eps", eps)):  # fmt: skip
        _check_scalar(name, x)
    target_c, steps_c, eps_c = _concrete(target_norm), _concrete(num_steps), _concrete(eps)
    if target_c is not None:
        t = float(target_c)
        if not np.isfinite(t) or t < 0:
            raise ValueError(
                f"clamp_norm: target_norm must be finite and >= 0 (0 or None disables the "
                f"clamp), got {t}."
            )
    if steps_c is not None and not float(steps_c) >= 0:
        raise ValueError(f"clamp_norm: num_steps must be >= 0 or None, got {num_steps}.")
    if eps_c is not None and not (np.isfinite(float(eps_c)) and float(eps_c) > 0):
        raise ValueError(f"clamp_norm: eps must be finite and > 0, got {eps}.")
    return num_steps, target_c


def _check_masked_leaves(p_leaves: list, m_leaves: list, target_c) -> None:
    """Every masked parameter is floating-point, and a concrete target is representable in
    the dtype it is rescaled in."""
    for p, m in zip(p_leaves, m_leaves):
        if m is False:
            continue
        dt = jnp.result_type(p)
        if not jnp.issubdtype(dt, jnp.floating):
            raise ValueError(
                f"clamp_norm: a masked parameter has dtype {dt}; only floating-point "
                f"parameters can be rescaled (leave it out of the mask)."
            )
        if target_c is not None:
            _check_target_fits(target_c, _compute_dtype(jnp.asarray(p)))


def _clamped_updates(p_leaves, u_leaves, m_leaves, target, active, eps) -> list:
    """The update leaves that land the masked parameters on norm ``target`` where ``active``
    (and the leaf's mask) holds, and the updates as given elsewhere."""
    # (params + updates) exactly as optax.apply_updates forms it.
    new_leaves = [
        None if m is False else jnp.asarray(p + u).astype(jnp.result_type(p))
        for p, u, m in zip(p_leaves, u_leaves, m_leaves)
    ]
    norm = _norm_of_leaves(new_leaves, m_leaves)
    denom = jnp.maximum(norm, eps)
    # (a traced eps <= 0 on all-zero parameters: zero stays zero instead of 0 * inf = NaN)
    factor = target / jnp.where(denom > 0, denom, jnp.ones_like(denom))

    out = []
    for p, u, new, m in zip(p_leaves, u_leaves, new_leaves, m_leaves):
        if m is False:
            out.append(u)
            continue
        dt = _compute_dtype(new)
        scaled = (new.astype(dt) * factor.astype(dt)).astype(new.dtype)
        u_clamped = (scaled - p).astype(jnp.result_type(u))
        use = active if m is True else jnp.logical_and(active, m)
        out.append(jnp.where(use, u_clamped, u))
    return out


def clamp_norm(
    target_norm: Optional[jax.typing.ArrayLike],
    *,
    start_step: jax.typing.ArrayLike = 0,
    num_steps: Optional[jax.typing.ArrayLike] = None,
    mode: str = "continuous",
    mask: MaskOrFn = None,
    eps: jax.typing.ArrayLike = 1e-12,
) -> optax.GradientTransformation:
    """Clamps the global norm of the (masked) parameters to ``target_norm``.

    Chain it *last*, after the optimizer.  Given the optimizer's updates
    ``u`` and the current ``params``, it returns ``u'`` such that
    ``optax.apply_updates(params, u')`` has global L2 norm ``target_norm`` over
    the masked leaves.  One common factor is applied to every masked leaf::

      new = (params + u) * f,   f = target_norm / max(||params + u||, eps)
      u'  = new - params

    Leaves outside the mask get ``u`` back bit-identically; so do all leaves
    while the clamp is inactive.  The optimizer's own state (e.g. Adam
    moments) is untouched since the clamp runs after it.

    The clamp is active on update number ``count`` (counted by this
    transformation from 0) when ``start_step <= count < start_step +
    num_steps``.  A ``target_norm`` of ``0`` (or, traced, any non-positive or NaN
    value) means "no clamp"; this is decided with ``jnp.where``, so clamped and free
    runs share one compiled program and ``target_norm``, ``start_step`` and
    ``num_steps`` may all be traced (e.g. a different value per lane under
    ``jax.vmap``).

    Args:
      target_norm: the norm to hold the masked parameters at.  A scalar, which
        may be traced.  ``0`` disables the clamp at run time; ``None`` disables
        it statically.
      start_step: the first update (0-based count of this transformation's own
        ``update`` calls) on which to clamp.  Updates before it pass through
        unchanged.
      num_steps: for how many updates to clamp from ``start_step``; ``None``
        means forever.  When traced, pass a large value (or ``jnp.inf``) for
        "forever"; the window test ``count - start_step < num_steps`` does not
        overflow for ``num_steps`` up to the int32 maximum.
      mode: ``"continuous"`` (default) or ``"one_shot"``; the latter is sugar
        for ``num_steps=1``: rescale once at ``start_step``, after which the
        norm moves freely.
      mask: which leaves the norm is taken over and rescaled: ``None`` (all
        leaves), a pytree of booleans shaped like the params (Python bools or
        scalar boolean arrays, possibly traced) or a callable ``params ->
        such pytree``, e.g. :func:`weight_matrices`.
      eps: lower bound on the norm in the denominator, so a zero-norm input
        gives a finite result (zero stays zero).

    Returns:
      An ``optax.GradientTransformation`` whose state is a
      :class:`ClampNormState`.  Its ``update`` requires ``params``.

    Raises:
      ValueError: on an unknown ``mode``, on ``num_steps`` given together with
        ``mode="one_shot"``, on a ``target_norm``, ``start_step``, ``num_steps``
        or ``eps`` that is not a scalar, on a concrete (not traced)
        ``target_norm`` that is negative, NaN or infinite, a negative
        ``num_steps`` or an ``eps`` that is not finite and > 0; and from
        ``update``: when ``params`` is not passed, when a masked parameter is
        not floating-point, or when a positive concrete ``target_norm`` is 0 or
        infinite in the dtype the parameters are rescaled in (1e-300 in
        float32 would otherwise silently mean "no clamp").

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> params = {"w": jnp.ones((4, 4)), "b": jnp.zeros((4,))}
      >>> tx = optax.chain(optax.adamw(1e-2, weight_decay=1.0),
      ...                  clamp_norm(3.0, mask=weight_matrices))
      >>> state = tx.init(params)
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, state = tx.update(grads, state, params)
      >>> params = optax.apply_updates(params, updates)
      >>> print(round(float(global_norm(params, weight_matrices)), 4))
      3.0

      To read or change the target from the optimizer state, wrap it with
      ``optax.inject_hyperparams``; a callable mask must be declared static
      (inject_hyperparams treats callables as schedules otherwise)::

        tx = optax.inject_hyperparams(clamp_norm, static_args="mask")(
            target_norm=55.0, mask=weight_matrices)
        state.hyperparams["target_norm"] = 40.0
    """
    num_steps, target_c = _checked_args(target_norm, start_step, num_steps, mode, eps)

    def init_fn(params):
        del params
        return ClampNormState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "clamp_norm needs the current parameters to rescale them: pass "
                "params to update, i.e. tx.update(updates, state, params)."
            )
        new_state = ClampNormState(count=optax.safe_increment(state.count))
        if target_norm is None:
            return updates, new_state

        count = state.count
        target = jnp.asarray(target_norm)
        active = jnp.logical_and(count >= start_step, target > 0)
        if num_steps is not None:
            active = jnp.logical_and(active, count - start_step < num_steps)

        p_leaves, m_leaves, treedef = _flatten_with_mask(params, mask)
        u_leaves = treedef.flatten_up_to(updates)
        _check_masked_leaves(p_leaves, m_leaves, target_c)

        out = _clamped_updates(p_leaves, u_leaves, m_leaves, target, active, eps)
        return jax.tree.unflatten(treedef, out), new_state

    return optax.GradientTransformation(init_fn, update_fn)
