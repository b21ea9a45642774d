"""One lane's pure functions: what the engine vmaps so that one program advances many runs.

A *lane* is one full-batch AdamW run of a model (``grokjax.models``) on a task
(``grokjax.tasks``), both looked up by name.
Everything that differs between runs of one shape is a per-lane value (``LaneHParams``: seed,
learning rate, weight decay, clamp target / start / duration, the parameter groups the norm
covers, an initial-scale multiplier, a step budget) and is vmapped; everything that changes
shapes (``Static``: task, p, train fraction or parity sizes, model, widths, LayerNorm, dtype,
eval cadence) makes a separate program.

Reading order: ``make_lane_fns`` builds the pure per-lane functions (init, one training step,
one eval block, a chunk of blocks). ``grokjax.engine`` jits the vmapped chunk and drives it
from the host.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from grokjax import models, tasks
from grokjax.data import lane_keys
from grokjax.models import ModelSpec, make_model
from grokjax.optim import clamp_norm, global_norm
from grokjax.protocol import FOREVER, HEADLINE, LOSSES, MEM_THRESHOLD, THRESHOLDS


@dataclasses.dataclass(frozen=True)
class Static:
    """Everything that fixes shapes or the graph; one compiled program per value."""

    model: ModelSpec = ModelSpec()
    op: str = "add"
    frac: float = 0.4
    eval_every: int = 10
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    # A lane that groks (headline threshold) at T stops latching at T + max(min_margin, margin·T),
    # so its results do not depend on how long the program keeps it (packing never matters).
    margin: float = 0.1
    min_margin: int = 200
    # Matmul precision of the whole program. "highest" keeps float32 matmuls in float32 on GPUs
    # and TPUs (their default may round inputs to TF32/bf16, which moves T_grok); "default"
    # trades that for speed. No effect on CPU.
    precision: str = "highest"
    # The fields of the k-sparse parity task (``tasks.parity``; op "parity", model kind
    # "bits", model.p = n bits): n_train rows to train on and n_test to test on, drawn per
    # lane; the label is the parity of the first k_bits bits. Other tasks ignore them.
    n_train: int = 0
    n_test: int = 2000
    k_bits: int = 3
    # Eval schedule of the latches: 0 = every eval point (every ``eval_every`` steps); N > 0 =
    # only the points of an N-point geometric grid over each lane's budget (the paper's
    # measurement, N = 360; see ``on_geometric_grid``). Training and curves are unchanged.
    eval_grid: int = 0
    # How -log p_y is rounded (``protocol.LOSSES``): "log_softmax" or the collapse-free "margin".
    loss: str = "log_softmax"

    def validate(self) -> None:
        self.model.validate()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        task, model = tasks.get(self.op), models.get(self.model.kind)
        if task.inputs != model.inputs:
            if task.inputs != "pairs":
                ok = [k for k in models.names() if models.get(k).inputs == task.inputs]
                raise ValueError(
                    f"the {self.op} task needs model kind {' or '.join(map(repr, ok))}, "
                    f"got {self.model.kind!r}"
                )
            ok = [k for k in tasks.names() if tasks.get(k).inputs == model.inputs]
            raise ValueError(
                f"model kind {self.model.kind!r} needs op {' or '.join(map(repr, ok))}, "
                f"got {self.op!r}"
            )
        task.validate(self)
        if self.precision not in (
            "highest",
            "high",
            "default",
            "float32",
            "tensorfloat32",
            "bfloat16",
        ):
            raise ValueError(f"unknown matmul precision {self.precision!r}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.eval_grid < 0 or self.eval_grid == 1:
            raise ValueError(
                f"eval_grid must be 0 (every eval) or >= 2 points, got {self.eval_grid}"
            )


FINGERPRINT_VERSION = 1
# Fields a version-1 fingerprint leaves out at these values: they were added after run
# directories were first fingerprinted, and at these values they change nothing.
_V1_OMIT_AT = {"eval_grid": 0, "loss": "log_softmax"}


def static_fingerprint(static: Static) -> str:
    """The text of ``static`` that run fingerprints hash (``engine.run_fingerprint``), version
    ``FINGERPRINT_VERSION``: ``Static(name=value, ...)`` over every field, except the fields
    only other tasks read (``tasks.fields_of_others``: the parity sizes on a modular task) and
    the ``_V1_OMIT_AT`` fields at those values, so that the phase
    files of run directories written before those fields existed stay valid. A new field that
    changes results must appear here (add it to ``_V1_OMIT_AT`` at the value that reproduces the
    old behaviour); any other change of this text is a new version. A model or task registered
    by the user's code adds what it computes (``behaviour``: :func:`behaviour_digest`), so that
    a run directory does not resume over a plug-in that changed under the same name."""
    others = tasks.fields_of_others(static.op)
    names = [
        f.name
        for f in dataclasses.fields(static)
        if f.name not in others
        and not (f.name in _V1_OMIT_AT and getattr(static, f.name) == _V1_OMIT_AT[f.name])
    ]
    items = [f"{n}={getattr(static, n)!r}" for n in names]
    if not (models.shipped(static.model.kind) and tasks.shipped(static.op)):
        items.append(f"behaviour={behaviour_digest(static)!r}")
    return f"Static({', '.join(items)})"


def behaviour_digest(static: Static) -> str:
    """A short hash of what the model and task of ``static`` compute for the lane of seed 0:
    its train and test rows, the class count and parameter groups, the initial parameters and
    which of them are weights, the logits and the loss gradient on its first train rows, and
    its token embedding. An edit to a plug-in that changes any of them (its module, a helper it
    calls at any depth, an initializer, the task's rows) changes the digest; the same code run
    again (a notebook cell re-executed) gives the same one on the same JAX and device kind.
    Shipped plug-ins leave it out of the fingerprint (:func:`static_fingerprint`)."""
    return _behaviour_digest(static, models.get(static.model.kind), tasks.get(static.op))


@functools.lru_cache(maxsize=64)
def _behaviour_digest(static: Static, model_plugin, task_plugin) -> str:
    model = model_of(static)
    init_key, split_key = lane_keys(jnp.asarray(0))
    x_tr, y_tr, x_te, y_te = task_plugin.lane_data(static)(split_key)
    params = model.init(init_key)
    rows, labels = x_tr[:64], y_tr[:64]

    def loss(p):
        logits = model.apply(p, rows)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32))
        nll = -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1))
        return nll, logits

    grads, logits = jax.grad(loss, has_aux=True)(params)
    h = hashlib.sha256(f"{model.num_classes} {tuple(model.groups)}".encode())
    arrays = {
        "data": (x_tr, y_tr, x_te, y_te),
        "params": params,
        "weights": model.weights(params),
        "logits": logits,
        "grads": grads,
        "embedding": model.embedding(params),
    }
    for path, a in jax.tree_util.tree_flatten_with_path(arrays)[0]:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{jax.tree_util.keystr(path)}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def model_of(static: Static) -> models.Model:
    """The model of ``static`` sized for its task (its class count and input rows); cached
    per (static, model plug-in, task plug-in)."""
    return _model_of(static, models.get(static.model.kind), tasks.get(static.op))


@functools.lru_cache(maxsize=256)
def _model_of(static: Static, plugin, task) -> models.Model:
    return make_model(static.model, task.num_classes(static), task.example(static))


class LaneHParams(NamedTuple):
    """Per-lane values, each an array with a leading lane axis."""

    seed: np.ndarray  # int: init and split
    lr: np.ndarray
    wd: np.ndarray
    target_norm: np.ndarray  # 0 = free lane (no clamp)
    t_int: np.ndarray  # int: first clamped update
    clamp_steps: np.ndarray  # int: FOREVER = continuous, 1 = one-shot
    groups: np.ndarray  # bool [lanes, n_groups]: groups the norm and the clamp cover
    init_scale: np.ndarray  # multiplies every weight matrix at init
    budget: np.ndarray  # int: last step at which events may latch


def make_hparams(
    n_groups: int,
    *,
    seed,
    lr=1e-3,
    wd=1.0,
    target_norm=0.0,
    t_int=0,
    clamp_steps=FOREVER,
    groups=None,
    init_scale=1.0,
    budget=10_000,
    dtype=np.float32,
) -> LaneHParams:
    """Broadcasts scalars / sequences to a ``LaneHParams`` with one row per lane."""
    seed = np.atleast_1d(np.asarray(seed, np.int64))
    n = seed.shape[0]
    f = lambda v, t: np.broadcast_to(np.asarray(v, t), (n,)).copy()
    if groups is None:
        groups = np.ones((n, n_groups), bool)
    groups = np.broadcast_to(np.asarray(groups, bool), (n, n_groups)).copy()
    return LaneHParams(
        seed.astype(np.int32),
        f(lr, dtype),
        f(wd, dtype),
        f(target_norm, dtype),
        f(t_int, np.int32),
        f(clamp_steps, np.int32),
        groups,
        f(init_scale, dtype),
        f(budget, np.int32),
    )


class Latches(NamedTuple):
    """Per-lane events, latched on device at eval steps (-1 / NaN = not yet)."""

    t_mem: jax.Array  # int
    norm_at_mem: jax.Array
    t_grok: jax.Array  # int [K]: first eval step with test acc >= THRESHOLDS[k]
    norm_at_grok: jax.Array  # [K]
    group_norm_at_grok: jax.Array  # [G] at the headline threshold
    collapse_at_grok: jax.Array  # softmax-collapse fraction at the headline T_grok
    diverged_step: jax.Array  # int: first step with a non-finite loss


class LaneData(NamedTuple):
    """A lane's train and test rows, as its task makes them: int operand pairs [.., 2]
    (modular tasks) or float vectors [.., n] in the model dtype (parity's ±1 bits)."""

    x_train: jax.Array  # [T, 2] int or [T, n] float
    y_train: jax.Array  # [T]
    x_test: jax.Array  # [V, 2] int or [V, n] float
    y_test: jax.Array  # [V]


class LaneState(NamedTuple):
    params: dict
    opt_state: tuple
    step: jax.Array  # int: updates applied so far
    latches: Latches
    data: LaneData


class Metrics(NamedTuple):
    """One eval point per block, at the block's first step (params after `step` updates)."""

    step: jax.Array
    train_loss: jax.Array
    train_acc: jax.Array
    test_loss: jax.Array
    test_acc: jax.Array
    norm: jax.Array
    group_norms: jax.Array  # [G]
    collapse: jax.Array  # fraction of train rows whose correct-class probability rounds to 1
    fourier_gini: jax.Array  # Gini coefficient of the embedding's power over token frequency
    spectral_entropy: jax.Array  # normalised entropy of that power spectrum, in [0, 1]
    # (both NaN for a model without a token embedding, such as bits)


def fourier_stats(E_PxD):
    """Fourier concentration of a token embedding: power over token frequency (the DFT along
    the token axis, summed over width, DC removed) -> (Gini coefficient, normalised entropy).
    A Fourier-sparse embedding (the grokked solution) has Gini near 1 and low entropy.

    The DFT is two small matmuls with constant cos/sin tables and the Gini coefficient its
    sort-free pairwise form: on CPU this costs a fraction of ``jnp.fft.rfft`` + ``jnp.sort``,
    which took as long as the rest of an eval block together.
    """
    p = E_PxD.shape[0]
    k_F = np.arange(1, p // 2 + 1)  # rfft frequencies without DC
    angle_FxP = 2 * np.pi * np.outer(k_F, np.arange(p)) / p
    hi = jax.lax.Precision.HIGHEST
    re_FxD = jnp.matmul(jnp.asarray(np.cos(angle_FxP), E_PxD.dtype), E_PxD, precision=hi)
    im_FxD = jnp.matmul(jnp.asarray(np.sin(angle_FxP), E_PxD.dtype), E_PxD, precision=hi)
    power_F = jnp.sum(re_FxD**2 + im_FxD**2, axis=1)
    n = power_F.shape[0]
    total = jnp.maximum(jnp.sum(power_F), jnp.finfo(E_PxD.dtype).tiny)
    # Gini = sum_ij |x_i - x_j| / (2 n sum_i x_i)
    gini = jnp.sum(jnp.abs(power_F[:, None] - power_F[None, :])) / (2.0 * n * total)
    q = power_F / total
    entropy = -jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.where(q > 0, q, 1.0)), 0.0))
    return gini.astype(E_PxD.dtype), (entropy / jnp.log(jnp.maximum(n, 2))).astype(E_PxD.dtype)


class LaneFns(NamedTuple):
    init: Callable  # hp -> LaneState
    chunk: Callable  # (LaneState, hp, n_blocks[, max_blocks]) -> (LaneState, Metrics[blocks])
    groups: tuple


def lane_end(static: Static, t_grok, budget, xp=np):
    """Last step at which a lane may latch events: budget, or T_grok plus the margin."""
    after = t_grok + xp.maximum(static.min_margin, xp.ceil(static.margin * t_grok)).astype(
        t_grok.dtype
    )
    return xp.where(t_grok >= 0, xp.minimum(after, budget), budget)


def on_geometric_grid(t, budget, points: int, eval_every: int, xp=np):
    """Whether eval step ``t`` (a multiple of ``eval_every``) is a point of the geometric grid.

    The grid is the paper's: ``points`` values v_k = budget^(k / (points - 1)), k = 0 …
    points-1, each step floor(v_k) rounded up to the engine's eval cadence (a multiple of
    ``eval_every``; duplicates merge). So t is on it when some v_k lies in
    [t - eval_every + 1, t + 1). Computed in float32 (numpy or jnp alike); step 0 never is.
    """
    f = np.float32
    t = xp.asarray(t)
    lo = xp.maximum(t - (eval_every - 1), 1).astype(f)
    hi = (t + 1).astype(f)
    scale = f(points - 1) / xp.log(xp.maximum(xp.asarray(budget), 2).astype(f))
    k_lo = xp.ceil(xp.log(lo) * scale)
    return (t > 0) & (k_lo < xp.log(hi) * scale) & (k_lo <= points - 1)


def latch(
    static: Static, lat: Latches, t, budget, train_acc, test_acc, norm, group_norms, collapse
) -> Latches:
    """Latches the events of one eval point at step ``t`` (pure; one lane).

    T_mem is the first eval step with train accuracy >= MEM_THRESHOLD; T_grok[k] the first with
    test accuracy >= THRESHOLDS[k]; the norms are recorded at those steps. Nothing latches after
    the lane's end step or once it has diverged; with ``static.eval_grid`` only the points of
    the geometric grid over the budget latch.
    """
    live = (t <= lane_end(static, lat.t_grok[HEADLINE], budget, jnp)) & (lat.diverged_step < 0)
    if static.eval_grid:
        live = live & on_geometric_grid(t, budget, static.eval_grid, static.eval_every, jnp)
    mem_now = live & (lat.t_mem < 0) & (train_acc >= MEM_THRESHOLD)
    grok_now = live & (lat.t_grok < 0) & (test_acc >= jnp.asarray(THRESHOLDS))
    head_now = grok_now[HEADLINE]
    return Latches(
        t_mem=jnp.where(mem_now, t, lat.t_mem),
        norm_at_mem=jnp.where(mem_now, norm, lat.norm_at_mem),
        t_grok=jnp.where(grok_now, t, lat.t_grok),
        norm_at_grok=jnp.where(grok_now, norm, lat.norm_at_grok),
        group_norm_at_grok=jnp.where(head_now, group_norms, lat.group_norm_at_grok),
        collapse_at_grok=jnp.where(head_now, collapse, lat.collapse_at_grok),
        diverged_step=lat.diverged_step,
    )


def empty_latches(n_groups: int, dtype=jnp.float32) -> Latches:
    """Latches of a lane with no events yet."""
    K = len(THRESHOLDS)
    neg, nan = jnp.array(-1, jnp.int32), jnp.array(jnp.nan, dtype)
    return Latches(
        neg,
        nan,
        jnp.full((K,), -1, jnp.int32),
        jnp.full((K,), jnp.nan, dtype),
        jnp.full((n_groups,), jnp.nan, dtype),
        nan,
        neg,
    )


def log_prob_of_label(logits_BxC, y_B, loss: str = "log_softmax"):
    """log p_y per row, rounded as ``loss`` says (``protocol.LOSSES``).

    "log_softmax": log_softmax(z)[y]. When every z_j - z_y is below about -16, the float32
    denominator rounds to 1, log p_y to exactly 0 and the correct-class gradient
    softmax_y - 1 with it (softmax collapse); which rows do depends on how the denominator
    is summed. "margin": -softplus(logsumexp_{j != y}(z_j - z_y)), the same value in exact
    arithmetic, whose correct-class gradient -sigmoid(.) stays ~ -(1 - p_y) instead of 0.
    """
    if loss == "margin":
        z_y_B = jnp.take_along_axis(logits_BxC, y_B[:, None], axis=1)[:, 0]
        is_y_BxC = jnp.arange(logits_BxC.shape[1])[None, :] == y_B[:, None]
        rest_BxC = jnp.where(is_y_BxC, -jnp.inf, logits_BxC - z_y_B[:, None])
        return -jax.nn.softplus(jax.nn.logsumexp(rest_BxC, axis=1))
    return jnp.take_along_axis(jax.nn.log_softmax(logits_BxC), y_B[:, None], axis=1)[:, 0]


def _group_masks(params, groups: tuple, on, weights):
    """Mask pytree: the weights (``weights(params)``, the model's mask) of the groups
    switched on in ``on`` (a per-lane, possibly traced, bool vector over ``groups``)."""
    is_w = weights(params)
    return {
        g: jax.tree.map(lambda w, i=i: on[i] if w else False, is_w[g]) for i, g in enumerate(groups)
    }


def _make_tx(static: Static, groups: tuple, weights, hp: LaneHParams, params):
    """A lane's optimizer: AdamW (decay on the weights only), then the norm clamp of the
    groups switched on in ``hp.groups``."""
    return optax.chain(
        optax.adamw(
            hp.lr,
            b1=static.b1,
            b2=static.b2,
            eps=static.eps,
            weight_decay=hp.wd,
            mask=weights,
        ),
        clamp_norm(
            hp.target_norm,
            start_step=hp.t_int,
            num_steps=hp.clamp_steps,
            mask=_group_masks(params, groups, hp.groups, weights),
        ),
    )


def _norms(params, hp: LaneHParams, groups: tuple, weights):
    """The headline norm (the very computation the clamp uses) and per-group norms."""
    total = global_norm(params, _group_masks(params, groups, hp.groups, weights))
    is_w = weights(params)
    per_group = jnp.stack([global_norm(params[g], is_w[g]) for g in groups])
    return total, per_group


def _loss_and_stats(static: Static, model, params, x, y):
    """Mean loss, and (accuracy, fraction of rows whose label probability is exactly 1)."""
    with jax.default_matmul_precision(static.precision):
        logits_BxC = model.apply(params, x)
    logp_y_B = log_prob_of_label(logits_BxC, y, static.loss)
    loss = -jnp.mean(logp_y_B)
    acc = jnp.mean(jnp.argmax(logits_BxC, axis=1) == y)
    collapse = jnp.mean(jnp.exp(logp_y_B) == 1.0)
    return loss, (acc, collapse)


def _embedding_stats(model, params, dtype):
    """Fourier Gini and entropy of the token embedding (NaN for a model without one)."""
    E_PxD = model.embedding(params)
    if E_PxD is None:  # no token embedding to analyse
        nan = jnp.array(jnp.nan, dtype)
        return nan, nan
    return fourier_stats(E_PxD)


def _scan_blocks(block, state, n_blocks, max_blocks: int | None):
    """``n_blocks`` calls of ``block`` (state -> (state, metrics)); with ``max_blocks`` (static)
    compiled once for that length, the blocks past a traced ``n_blocks`` skipped by a real
    conditional (their metrics rows have step -1)."""
    if max_blocks is None:
        return jax.lax.scan(lambda s, _: block(s), state, None, length=n_blocks)
    blank = jax.tree.map(  # what a skipped block reports: step -1, NaN metrics
        lambda x: jnp.full(
            x.shape, -1 if jnp.issubdtype(x.dtype, jnp.integer) else jnp.nan, x.dtype
        ),
        jax.eval_shape(lambda s: block(s)[1], state),
    )
    return jax.lax.scan(
        lambda s, i: jax.lax.cond(i < n_blocks, block, lambda s: (s, blank), s),
        state,
        jnp.arange(max_blocks),
    )


def _train_step(static: Static, make_tx, loss_and_stats, state: LaneState, hp: LaneHParams):
    """One optimizer step of one lane; returns the new state and (loss, accuracy, collapse)
    before the step."""
    d = state.data
    (loss, (acc, collapse)), grads = jax.value_and_grad(loss_and_stats, has_aux=True)(
        state.params, d.x_train, d.y_train
    )
    tx = make_tx(hp, state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # A diverged lane is frozen: it keeps its last finite state and stops moving.
    ok = jnp.isfinite(loss) & (state.latches.diverged_step < 0)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    lat = state.latches
    in_run = state.step <= lane_end(static, lat.t_grok[HEADLINE], hp.budget, jnp)
    diverged_step = jnp.where(
        (lat.diverged_step < 0) & ~jnp.isfinite(loss) & in_run, state.step, lat.diverged_step
    )
    new = LaneState(
        keep(params, state.params),
        keep(opt_state, state.opt_state),
        state.step + 1,
        lat._replace(diverged_step=diverged_step),
        d,
    )
    return new, (loss, acc, collapse)


def make_lane_fns(static: Static) -> LaneFns:
    """Pure per-lane functions for one static configuration."""
    static.validate()
    task = tasks.get(static.op)
    model = model_of(static)
    groups, weights = model.groups, model.weights
    dtype = jnp.dtype(static.model.dtype)
    task_data = task.lane_data(static)
    make_tx = functools.partial(_make_tx, static, groups, weights)
    loss_and_stats = functools.partial(_loss_and_stats, static, model)
    train_step = functools.partial(_train_step, static, make_tx, loss_and_stats)

    def init(hp: LaneHParams) -> LaneState:
        init_key, split_key = lane_keys(hp.seed)
        params = model.init(init_key)
        params = jax.tree.map(
            lambda x, w: x * hp.init_scale.astype(x.dtype) if w else x, params, weights(params)
        )
        tx = make_tx(hp, params)
        return LaneState(
            params,
            tx.init(params),
            jnp.array(0, jnp.int32),
            empty_latches(len(groups), dtype),
            LaneData(*task_data(split_key)),
        )

    def block(state: LaneState, hp: LaneHParams):
        """Evaluates at the current step, then trains ``eval_every`` steps."""
        t = state.step
        test_loss, (test_acc, _) = loss_and_stats(
            state.params, state.data.x_test, state.data.y_test
        )
        total, per_group = _norms(state.params, hp, groups, weights)
        state, (tr_loss, tr_acc, tr_collapse) = jax.lax.scan(
            lambda s, _: train_step(s, hp), state, None, length=static.eval_every
        )
        train_loss, train_acc, collapse = tr_loss[0], tr_acc[0], tr_collapse[0]  # at step t

        lat = latch(
            static, state.latches, t, hp.budget, train_acc, test_acc, total, per_group, collapse
        )
        gini, entropy = _embedding_stats(model, state.params, dtype)
        metrics = Metrics(
            t, train_loss, train_acc, test_loss, test_acc, total, per_group, collapse, gini, entropy
        )
        return state._replace(latches=lat), metrics

    def chunk(state: LaneState, hp: LaneHParams, n_blocks, max_blocks: int | None = None):
        """Advances ``n_blocks`` eval blocks (``n_blocks · eval_every`` steps).

        With ``max_blocks`` (static) the program is compiled once for that length and
        ``n_blocks`` may be a traced scalar shared by all lanes: blocks past it are skipped by a
        real conditional (their metrics rows have step -1), so a host loop can end a chunk
        exactly where the next lane finishes without compiling a new program.
        """
        return _scan_blocks(lambda s: block(s, hp), state, n_blocks, max_blocks)

    return LaneFns(init, chunk, groups)
