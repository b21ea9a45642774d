"""The comparison with the paper: for each :class:`grokjax.paper.Reference` the candidate
measurements in the loaded runs (:mod:`grokjax.candidates`, by ``ref.measure``), the
run settings against the reference's protocol (:func:`mismatches`) and one row per judged
candidate with its status (:func:`compare`).

Statuses: ``pass`` / ``FAIL`` (the run follows the paper's protocol and the number is / is not
within the stated tolerance), ``inconclusive`` (it follows the protocol but the number is not
identifiable, e.g. a median beyond the step budget), ``not comparable`` (the closest run
differs from the protocol: the differences are listed and the number is shown but not judged)
and ``not run`` (no run has the design the number needs). JAX-free.
"""

from __future__ import annotations

from grokjax import cells, paper
from grokjax.candidates import MEASURES, Candidate, candidates
from grokjax.runs import Run, pool
from grokjax.tables import fmt_val

__all__ = [
    "Candidate",
    "MEASURES",
    "mismatches",
    "candidates",
    "compare",
]


def mismatches(cond: dict, protocol: dict) -> list[tuple[str, str]]:
    """Where a run's settings ``cond`` differ from the paper's ``protocol``.

    ``cond`` values are single values, tuples (the subset spans several values, all must be
    allowed) or None (not recorded: counts as a difference, since it cannot be checked).
    ``protocol`` values are single values or tuples meaning "any of these".
    Returns [(key, "key=value (paper value)")]; empty means comparable.
    """
    out = []
    for k, want in protocol.items():
        have = cond.get(k)
        if have is None:
            out.append((k, f"{k} not recorded (paper {fmt_val(want)})"))
            continue
        allowed = want if isinstance(want, tuple) else (want,)
        haves = have if isinstance(have, tuple) else (have,)
        if not all(any(cells.same(h, w) for w in allowed) for h in haves):
            out.append((k, f"{k}={fmt_val(have)} (paper {fmt_val(want)})"))
    return out


# ---------------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------------


def _seeds(cand: Candidate) -> int | None:
    """Seeds behind a candidate, for the paper-scale tolerances: the distinct seeds of its run's
    lanes at its settings (a setting that spans several values, like p over a power law, matches
    them all), else its config's ``seeds``. A run whose parts differ in seed count (the
    transformer's LayerNorm parts run ``ln_seeds``) is so counted per part."""
    run = cand.run
    lanes = run.lanes
    if "seed" in lanes and len(lanes["seed"]):
        n = len(set(lanes["seed"][cells.where(lanes, cand.cond)].tolist()))
        if n:
            return n
    s = run.config.get("seeds")
    return int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None


def _schedule(run) -> str:
    """The eval schedule a run latched T_grok on (older runs: every eval point), and its loss
    rounding where it is not the default log_softmax."""
    text = (
        ""
        if run.config.get("eval_schedule", "every") == "every"
        else (f"; eval {run.config['eval_schedule']}")
    )
    if run.config.get("loss", "log_softmax") != "log_softmax":
        text += f"; loss {run.config['loss']}"
    return text


_COND_KEYS = ("model", "layernorm", "p", "n_bits", "frac", "n_train", "lr", "wd", "rho")


def _cond_text(cond: dict, keys=_COND_KEYS) -> str:
    parts = []
    for k in keys:
        if k not in cond or cond[k] is None:
            continue
        if k == "layernorm" and cond.get("model") == "mlp":
            continue
        parts.append(f"{k}={fmt_val(cond[k])}")
    return ", ".join(parts)


def _row(ref, status, cand=None, note="") -> dict:
    m = None if cand is None else cand.measured
    judged = status in ("pass", "FAIL")
    seeds = None if cand is None else _seeds(cand)
    if judged and m is not None:
        status = "pass" if ref.passes(m, seeds) else "FAIL"
    return {
        "key": ref.key,
        "quantity": ref.quantity,
        "run": "" if cand is None else cand.run.name,
        "condition": "" if cand is None else _cond_text(cand.cond) + _schedule(cand.run),
        "seeds": seeds,
        "measured": m,
        "measured_ci": None if cand is None else cand.ci,
        "scale": ref.scale,
        "unit": ref.unit,
        "paper": ref.value,
        "paper_text": ref.text(),
        "rel_diff": ref.rel_diff(m) if (judged and m is not None) else None,
        "tolerance": ref.tolerance_at(seeds).describe(ref),
        "status": status,
        "note": note,
    }


def compare(runs: list[Run], refs: list[paper.Reference] | None = None) -> list[dict]:
    """One or more rows per paper reference: measured value, paper value, relative difference,
    tolerance and status (see the module docstring)."""
    rows = []
    refs = refs or paper.references()
    # every number is also measured on runs of one design split by seed, pooled; a fit across
    # p or lr also on runs split along that axis
    axes = {"seed"} | {ref.pooled for ref in refs if ref.pooled}
    pooled = {axis: pool(runs, axis) for axis in sorted(axes)}
    for ref in refs:
        extra = [r for axis in sorted({"seed", ref.pooled} - {""}) for r in pooled[axis]]
        cands = candidates(ref, runs + extra)
        if not cands:
            rows.append(
                _row(
                    ref,
                    "not run",
                    note=f"needs {ref.needs or 'runs at this setting'}"
                    f" (experiment: {', '.join(ref.experiments)})",
                )
            )
            continue
        scored = [(c, mismatches(c.cond, ref.protocol)) for c in cands]
        match = [c for c, mm in scored if not mm]
        if match:
            for c in match:
                if c.measured is None:
                    rows.append(_row(ref, "inconclusive", c, c.note))
                else:
                    rows.append(_row(ref, "pass" if ref.passes(c.measured) else "FAIL", c, c.note))
            continue
        best, mm = min(scored, key=lambda cm: len(cm[1]))
        want_p = ref.protocol.get("p")
        if all(k == "p" for k, _ in mm) and not isinstance(want_p, tuple):
            rows.append(
                _row(
                    ref,
                    "not run",
                    note=f"no run at p={want_p} (closest: {mm[0][1]}; "
                    f"experiment: {', '.join(ref.experiments)})",
                )
            )
            continue
        rows.append(
            _row(
                ref,
                "not comparable",
                best,
                "not the paper's protocol: "
                + "; ".join(t for _, t in mm)
                + (f" [{best.note}]" if best.note else ""),
            )
        )
    return rows
