"""An independent plain-numpy reference of the paper's MLP training step, for auditing the engine.

What it is for: checking ``grokjax.lane`` against the paper's protocol written out by hand,
from the same initial weights and split, in float32 or float64. Nothing here uses JAX, optax
or the engine's table formulation; it is the protocol alone:

* modular addition rows (a, b) -> (a + b) mod p, full batch;
* the MLP: x = [E[a], E[b]] (direct concatenation, 2d wide), h = x @ W1 + b1,
  g = GELU(h) (the erf GELU), logits = g @ W2 + b2; mean cross-entropy;
* a hand-written backward pass (dE: the rows of dx summed per token, both operand slots);
* AdamW (b1 0.9, b2 0.999, eps 1e-8) with decoupled weight decay on the weight matrices
  E, W1, W2 only, in PyTorch's order (``p <- p - lr*wd*p``, then the bias-corrected
  ``p <- p - lr * m_hat / (sqrt(v_hat) + eps)``) or optax's (``p <- p - lr*(adam + wd*p)``);
* the clamp: after every update from ``t_int`` on, E, W1, W2 are rescaled by one common
  factor so that sqrt(|E|^2 + |W1|^2 + |W2|^2) = target_norm; moments are untouched.

``t_int`` follows the engine's convention: the update is clamped when the number of updates
applied *before* it is >= t_int (so with t_int = 500 the first clamped parameters are those
after update 501; the paper's runner clamps from the parameters after update 500, i.e.
t_int = 499 here).

Numerics switches, to swap one ingredient at a time when hunting a discrepancy:

* ``ftz``: flush subnormal values to zero in the forward/backward intermediates, the
  gradients, the moments and the parameters (what XLA:CPU does in hardware); numpy itself
  keeps subnormals;
* ``ce``: how the cross-entropy gradient is formed: ``"softmax"`` (softmax - onehot, softmax
  as exp(z - max) / sum) or ``"logsoftmax"`` (the reverse-mode of log_softmax as JAX's autodiff
  forms it: onehot cotangent plus sum(cotangent)/sum(exp) * exp(z - max)) or ``"torch"``
  (PyTorch's log_softmax backward: cotangent - exp(log_softmax) * sum(cotangent));
* ``order``: ``"torch"`` or ``"optax"`` AdamW arithmetic (see above);
* ``denom``: the softmax denominator sum(exp(z - max)) summed in numpy's float32 order
  (``"pairwise"``) or accumulated in float64 and rounded once (``"f64"``). Once the margins
  make 1 - p_y ~ 1e-7 (softmax collapse), which rows have s == 1 exactly, and so a zero
  correct-class gradient, depends on this order, and the dynamics with it.

Entry points: ``init_from(params)`` (a grokjax params pytree or a flat dict) -> state,
``grads(params, a, b, y)`` -> (loss, grads, stats), ``step(state, a, b, y, ...)`` -> state,
``evaluate(params, a, b, y)``, and ``run(params, data, steps, ...)`` -> a trajectory dict.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

MATRICES = ("E", "W1", "W2")
NAMES = ("E", "W1", "b1", "W2", "b2")


def flat_params(params, dtype=None) -> dict:
    """{E, W1, b1, W2, b2} numpy arrays from a grokjax MLP params pytree or a flat dict."""
    if "embed" in params:
        params = {
            "E": params["embed"]["E"],
            "W1": params["hidden"]["W1"],
            "b1": params["hidden"]["b1"],
            "W2": params["out"]["W2"],
            "b2": params["out"]["b2"],
        }
    out = {}
    for n in NAMES:
        x = np.asarray(params[n])
        out[n] = np.array(x, dtype=dtype or x.dtype, copy=True)
    return out


def _flush(x, on: bool):
    """Subnormals -> 0 (in place when possible) when ``on``."""
    if not on:
        return x
    x = np.asarray(x)
    tiny = np.finfo(x.dtype).tiny
    if x.ndim == 0:
        return x.dtype.type(0) if abs(x) < tiny else x
    x[np.abs(x) < tiny] = 0
    return x


def _gelu_cdf(h):
    """Phi(h) = (1 + erf(h / sqrt 2)) / 2; GELU(h) = h * Phi(h)."""
    return 0.5 * (1 + special.erf(h / h.dtype.type(math.sqrt(2.0))))


def _gelu_grad(h, cdf):
    """d/dh [h * Phi(h)] = Phi(h) + h * phi(h)."""
    pdf = np.exp(-0.5 * h * h) / h.dtype.type(math.sqrt(2.0 * math.pi))
    return cdf + h * pdf


def _onehot_T(idx, n: int, dtype):
    """[n, B] one-hot of ``idx`` transposed: ``_onehot_T(a) @ rows`` sums rows per token (the
    embedding gradient's scatter-add as a matmul; adding exact zeros changes no bit)."""
    out = np.zeros((n, len(idx)), dtype)
    out[idx, np.arange(len(idx))] = 1
    return out


def forward(P: dict, a, b):
    """Logits and the intermediates the backward pass needs."""
    x = np.concatenate([P["E"][a], P["E"][b]], axis=1)  # [B, 2d]
    h = x @ P["W1"] + P["b1"]  # [B, H]
    cdf = _gelu_cdf(h)
    g = h * cdf  # erf GELU
    logits = g @ P["W2"] + P["b2"]  # [B, p]
    return logits, (x, h, cdf, g)


def _softmax_parts(logits, denom: str = "pairwise"):
    """z = logits - max, e = exp(z), s = sum(e) per row. ``denom``: how s is summed in float32:
    numpy's own order ("pairwise"), or accumulated in float64 and rounded once ("f64")."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    if denom == "f64":
        s = e.astype(np.float64).sum(axis=1, keepdims=True).astype(e.dtype)
    else:
        s = e.sum(axis=1, keepdims=True)
    return z, e, s


def evaluate(P: dict, a, b, y) -> dict:
    """Mean cross-entropy, accuracy and collapse fraction (p_y == 1 in the working dtype)."""
    logits, _ = forward(P, a, b)
    z, e, s = _softmax_parts(logits)
    rows = np.arange(len(y))
    logp_y = z[rows, y] - np.log(s[:, 0])
    return {
        "loss": float(-logp_y.mean()),
        "acc": float(np.mean(logits.argmax(1) == y)),
        "collapse": float(np.mean(np.exp(logp_y) == 1)),
    }


def grads(P: dict, a, b, y, *, ce: str = "softmax", ftz: bool = False, denom: str = "pairwise"):
    """Loss, gradients of the mean cross-entropy w.r.t. every parameter, and stats."""
    B = len(y)
    dt = P["E"].dtype.type
    logits, (x, h, cdf, g) = forward(P, a, b)
    _flush(logits, ftz)
    z, e, s = _softmax_parts(logits, denom)
    _flush(e, ftz)
    rows = np.arange(B)
    logp_y = z[rows, y] - np.log(s[:, 0])
    loss = -logp_y.mean()
    if ce == "softmax":
        d = e / s
        _flush(d, ftz)
        d[rows, y] -= dt(1)
        d *= dt(1.0 / B)
    elif ce == "logsoftmax":  # JAX's reverse mode of mean(-take(log_softmax(z), y))
        ct = dt(-1.0 / B)  # cotangent of each logp_y
        d = np.zeros_like(logits)
        d[rows, y] = ct
        # logp = z - log(s): d/dz += -sum(ct) * exp(z) / s; JAX forms (-sum ct) / s first
        coef = (-ct) / s  # [B, 1]
        d += _flush(coef * e, ftz)
    elif ce == "torch":  # PyTorch's log_softmax backward: ct - exp(logp) * sum(ct)
        logp = z - np.log(s)
        ct = dt(-1.0 / B)
        d = _flush(np.exp(logp), ftz) * (-ct)
        d[rows, y] += ct
    else:
        raise ValueError(f"unknown ce {ce!r}")
    _flush(d, ftz)
    G = {"W2": g.T @ d, "b2": d.sum(axis=0)}
    dg = d @ P["W2"].T
    dh = dg * _gelu_grad(h, cdf)
    _flush(dh, ftz)
    G["W1"] = x.T @ dh
    G["b1"] = dh.sum(axis=0)
    dx = dh @ P["W1"].T
    D = P["E"].shape[1]
    n_tok = P["E"].shape[0]
    G["E"] = _onehot_T(a, n_tok, dx.dtype) @ dx[:, :D] + _onehot_T(b, n_tok, dx.dtype) @ dx[:, D:]
    for k in G:
        _flush(G[k], ftz)
    stats = {
        "loss": float(loss),
        "acc": float(np.mean(logits.argmax(1) == y)),
        "collapse": float(np.mean(np.exp(logp_y) == 1)),
    }
    return loss, G, stats


def global_norm(P: dict) -> float:
    """sqrt(|E|^2 + |W1|^2 + |W2|^2), accumulated in the parameters' dtype."""
    return float(np.sqrt(sum(np.sum(np.square(P[n])) for n in MATRICES)))


def init_from(params, dtype=None) -> dict:
    """Optimizer state from initial parameters: {params, m, v, t (updates so far)}."""
    P = flat_params(params, dtype)
    return {
        "params": P,
        "m": {n: np.zeros_like(x) for n, x in P.items()},
        "v": {n: np.zeros_like(x) for n, x in P.items()},
        "t": 0,
    }


def step(
    state: dict,
    a,
    b,
    y,
    *,
    lr=1e-3,
    wd=1.0,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    target_norm=0.0,
    t_int=0,
    order: str = "torch",
    ce: str = "softmax",
    ftz: bool = False,
    denom: str = "pairwise",
    G=None,
):
    """One full-batch AdamW update (and the clamp when due). Returns (state, stats).

    ``G`` may pass precomputed gradients (e.g. the engine's) to isolate the optimizer."""
    P, M, V = state["params"], state["m"], state["v"]
    dt = P["E"].dtype.type
    if G is None:
        _, G, stats = grads(P, a, b, y, ce=ce, ftz=ftz, denom=denom)
    else:
        stats = {}
    t = state["t"] + 1
    bc1, bc2 = dt(1 - b1**t), dt(1 - b2**t)
    lr_, wd_, b1_, b2_, eps_ = dt(lr), dt(wd), dt(b1), dt(b2), dt(eps)
    newP, newM, newV = {}, {}, {}
    for n in NAMES:
        g, p = G[n].astype(P[n].dtype), P[n]
        if order == "torch":
            m = M[n] + (dt(1) - b1_) * (g - M[n])  # lerp
            v = b2_ * V[n] + (dt(1) - b2_) * g * g
        else:
            m = (dt(1) - b1_) * g + b1_ * M[n]
            v = (dt(1) - b2_) * (g * g) + b2_ * V[n]
        _flush(m, ftz), _flush(v, ftz)
        adam = (m / bc1) / (np.sqrt(v / bc2) + eps_)
        decay = n in MATRICES
        if order == "torch":
            q = p * (dt(1) - lr_ * wd_) if decay else p.copy()
            q = q - lr_ * adam
        else:
            u = adam + wd_ * p if decay else adam
            q = p + (-lr_) * u
        newP[n], newM[n], newV[n] = _flush(q, ftz), m, v
    if target_norm and target_norm > 0 and state["t"] >= t_int:
        f = dt(target_norm) / dt(global_norm(newP))
        for n in MATRICES:
            newP[n] = _flush(newP[n] * f, ftz)
    return {"params": newP, "m": newM, "v": newV, "t": t}, stats


def run(
    params,
    data,
    steps: int,
    *,
    dtype=np.float32,
    target_norm=0.0,
    t_int=500,
    eval_every=10,
    stop_at_grok=True,
    grok_threshold=0.9,
    margin_steps=0,
    checkpoints=(),
    log_every=0,
    **step_kw,
) -> dict:
    """Trains from ``params`` on ``data`` = (x_train [T,2], y_train, x_test [V,2], y_test).

    Every ``eval_every`` steps (before that step's update, as the engine does) records step,
    train loss/acc/collapse, test loss/acc and the norm. Stops ``margin_steps`` after the first
    eval with test accuracy >= ``grok_threshold`` when ``stop_at_grok``. ``checkpoints``: steps
    at which to keep a copy of the parameters (returned under "checkpoints").
    Returns a dict of numpy arrays plus "t_grok" (-1 if not reached) and "checkpoints".
    """
    xtr, ytr, xte, yte = (np.asarray(z) for z in data)
    a, b, y = xtr[:, 0], xtr[:, 1], ytr
    state = init_from(params, dtype)
    keys = ("step", "train_loss", "train_acc", "collapse", "test_loss", "test_acc", "norm")
    traj = {k: [] for k in keys}
    ckpt, t_grok, stop_at = {}, -1, None
    checkpoints = set(int(c) for c in checkpoints)
    for t in range(steps + 1):
        if t in checkpoints:
            ckpt[t] = {n: x.copy() for n, x in state["params"].items()}
        if t == steps or (stop_at is not None and t >= stop_at):
            break
        do_eval = t % eval_every == 0
        if do_eval:
            ev = evaluate(state["params"], xte[:, 0], xte[:, 1], yte)
            norm = global_norm(state["params"])
        state, st = step(state, a, b, y, target_norm=target_norm, t_int=t_int, **step_kw)
        if do_eval:
            for k, val in (
                ("step", t),
                ("train_loss", st["loss"]),
                ("train_acc", st["acc"]),
                ("collapse", st["collapse"]),
                ("test_loss", ev["loss"]),
                ("test_acc", ev["acc"]),
                ("norm", norm),
            ):
                traj[k].append(val)
            if t_grok < 0 and ev["acc"] >= grok_threshold:
                t_grok = t
                if stop_at_grok:
                    stop_at = t + margin_steps + 1
            if log_every and t % log_every == 0:
                print(
                    f"  t={t} loss={st['loss']:.3e} acc={st['acc']:.3f} "
                    f"test={ev['acc']:.3f} norm={norm:.3f} collapse={st['collapse']:.3f}",
                    flush=True,
                )
    out = {k: np.asarray(v) for k, v in traj.items()}
    out["t_grok"] = t_grok
    out["checkpoints"] = ckpt
    out["final"] = state
    return out


def main(argv=None) -> int:
    """``python -m experiments.reference_mlp``: there is no job to run (the module is imported
    by the tests that audit the engine); --help describes it, anything else is refused."""
    from grokjax import cli

    ap = cli.Parser(
        prog="python -m experiments.reference_mlp",
        description=__doc__.split("\n\n")[0]
        + " A library, not a job: import it (init_from, grads, step, evaluate, run).",
    )
    ap.parse_args(argv)
    raise cli.UsageError(
        "nothing to run: this module is a library (the NumPy reference of the paper's MLP "
        "step); import it, as tests/test_reference_mlp.py does, or see --help"
    )


if __name__ == "__main__":
    import sys

    from grokjax import cli

    sys.exit(cli.main_guard("reference_mlp", main))
