"""The candidate measurements of each paper reference in the loaded runs: for a
:class:`grokjax.paper.Reference` the function :data:`MEASURES` names by ``ref.measure`` finds
every group of lanes with the design the number needs and measures it with
:mod:`grokjax.measures` (the numbers an experiment's fit.json states the same way). The
comparison with the paper (:mod:`grokjax.compare`) judges them. JAX-free.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from grokjax import cells, fit, measures, paper
from grokjax.runs import Run
from grokjax.tables import fmt

__all__ = ["Candidate", "MEASURES", "candidates"]


@dataclasses.dataclass
class Candidate:
    """One measurement of a reference's number: the run, its settings, the value (None: not
    identifiable), its CI and a note on how it was measured."""

    run: Run
    cond: dict
    measured: float | None
    ci: list | None = None
    note: str = ""


def _model_ok(ref: paper.Reference, cond: dict) -> bool:
    """A run is a candidate for a reference only with the same kind of model (with or without
    LayerNorm: where it sits is a protocol difference, shown but not judged), and at the
    reference's p (parity: n_bits) when it ``requires_p``."""
    keys = ("model", "layernorm") + (("p", "n_bits") if ref.requires_p else ())
    for k in keys:
        if k not in ref.protocol or cond.get(k) is None:
            continue
        have, want = cond[k], ref.protocol[k]
        if k == "layernorm":
            have, want = have != "none", want != "none"
        if not cells.same(have, want):
            return False
    return True


def _censored_note(m: dict, run, idx) -> str:
    """Lane counts of a cell median, and the budget when the median lies beyond it."""
    note = f"n={m['n']}, {m['n_censored']} censored"
    if m["median"] is None:
        note += f" (median beyond the budget {fmt(float(np.max(measures.times(run, idx)[0])))})"
    return note


# ---------------------------------------------------------------------------------------------
# free runs: W_c, its seed CV and exponent, median T_grok
# ---------------------------------------------------------------------------------------------


def _free_cells(ref, runs):
    """(run, condition, lane indices) of the free lanes of each setting with the reference's
    kind of model."""
    for run in runs:
        for cond, idx in cells.free_groups(run):
            if _model_ok(ref, cond):
                yield run, cond, idx


def free_wc(ref, runs) -> list[Candidate]:
    """W_c (median norm at T_grok) of the free lanes of each setting, with its bootstrap CI."""
    out = []
    for run, cond, idx in _free_cells(ref, runs):
        w = measures.wc(run, idx)
        out.append(Candidate(run, cond, w["median"], w["ci"], f"n={w['n']}"))
    return out


def free_wc_cv(ref, runs) -> list[Candidate]:
    """Seed CV of W_c of each setting with two or more grokked free lanes."""
    out = []
    for run, cond, idx in _free_cells(ref, runs):
        w = measures.wc(run, idx)
        if w["n"] >= 2:
            out.append(Candidate(run, cond, w["cv"], None, f"n={w['n']}"))
    return out


def free_tgrok(ref, runs) -> list[Candidate]:
    """Median T_grok of the free lanes of each setting, with its bootstrap CI."""
    out = []
    for run, cond, idx in _free_cells(ref, runs):
        m = measures.tgrok(run, idx)
        out.append(Candidate(run, cond, m["median"], m["ci"], _censored_note(m, run, idx)))
    return out


def _p_power_law(run, cond, per_p: dict) -> Candidate:
    """A Candidate for the power law in p of ``per_p`` ({p: median norm})."""
    ps = list(per_p)
    pl = measures.power_law(per_p)
    note = f"{len(ps)} values of p, R²={fmt(pl['r2'])}"
    return Candidate(run, dict(cond, p=tuple(ps)), pl["exponent"], pl["exponent_ci"], note)


def _paper_ps(ref, run, idx, keep_all_below: int | None = None):
    """``idx`` restricted to the reference's moduli when its protocol names several (delay_sweep
    also runs p = 31); with ``keep_all_below``, unrestricted when fewer p than that remain."""
    want = ref.protocol.get("p")
    if not isinstance(want, tuple):
        return idx
    inside = idx[np.isin(run.lanes["p"][idx], want)]
    if keep_all_below is not None and len(cells.values(run, inside, "p")) < keep_all_below:
        return idx
    return inside


def _ps_with_rhos(run, idx) -> list:
    """The p of ``idx`` held at two or more rho (the ones a shared-slope fit can use)."""
    return [
        p
        for p in cells.values(run, idx, "p")
        if len(cells.values(run, idx[run.lanes["p"][idx] == p], "rho")) >= 2
    ]


def wc_exponent(ref, runs) -> list[Candidate]:
    """Power law of W_c in p over the free lanes of each setting at ``min_p`` or more p (of the
    reference's p, when its protocol names them)."""
    out = []
    need = ref.select.get("min_p", 3)
    allowed = ref.protocol.get("p")
    allowed = None if allowed is None else np.atleast_1d(allowed)
    for run in runs:
        keys = tuple(k for k in cells.FREE_KEYS if k != "p")
        for cond, idx in cells.groups(run, run.arm("free") & run.ok(), keys):
            if not _model_ok(ref, cond):
                continue
            per_p = {}
            for p in cells.values(run, idx, "p"):
                if allowed is not None and not np.isin(p, allowed):
                    continue
                w = measures.wc(run, idx[run.lanes["p"][idx] == p])["median"]
                if w is not None:
                    per_p[p] = w
            if len(per_p) >= need:
                out.append(_p_power_law(run, cond, per_p))
    return out


def wc_lr_cv(ref, runs) -> list[Candidate]:
    """CV of W_c across the reference's lrs, per group of free lanes at the other settings."""
    out = []
    lrs = ref.select["lrs"]
    for run in runs:
        keys = tuple(k for k in cells.FREE_KEYS if k != "lr")
        for cond, idx in cells.groups(run, run.arm("free") & run.ok(), keys):
            if not _model_ok(ref, cond):
                continue
            wcs = []
            for lr in lrs:
                sel = idx[np.isclose(run.lanes["lr"][idx], lr)]
                wcs.append(measures.wc(run, sel)["median"] if sel.size else None)
            if sum(w is not None for w in wcs) < 2 or not all(
                np.isclose(run.lanes["lr"][idx], lr).any() for lr in lrs
            ):
                continue
            good = np.array([w for w in wcs if w is not None])
            cv = fit.cv(good) if len(good) == len(lrs) else None
            out.append(
                Candidate(
                    run,
                    dict(cond, lr=tuple(lrs)),
                    cv,
                    None,
                    "W_c per lr: " + ", ".join(f"{lr:g}: {fmt(w)}" for lr, w in zip(lrs, wcs)),
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# clamped runs: the delay law, cell medians, fold changes, saturation
# ---------------------------------------------------------------------------------------------


def law_candidates(ref, runs, shared: bool, metric: str) -> list[Candidate]:
    """The delay law's ``metric`` ("alpha" with its CI, or "r2") per setting of clamped lanes
    in the reference's rho range: one fit per p, or (``shared``) one alpha with an intercept
    per p over the p with two or more rho."""
    out = []
    sel = ref.select
    for run in runs:
        mask = cells.rho_mask(run, sel.get("rho_min"), sel.get("rho_max"))
        keys = tuple(k for k in cells.CLAMP_KEYS if k != "p") if shared else cells.CLAMP_KEYS
        for cond, idx in cells.clamp_groups(run, keys, mask):
            if not _model_ok(ref, cond):
                continue
            if shared:
                idx = _paper_ps(ref, run, idx, keep_all_below=sel.get("min_p", 2))
                ps = _ps_with_rhos(run, idx)
                if len(ps) < sel.get("min_p", 2):
                    continue
                idx = idx[np.isin(run.lanes["p"][idx], ps)]
                cond = dict(cond, p=tuple(ps))
            rhos = cells.values(run, idx, "rho")
            if len(rhos) < sel.get("min_rho", 2):
                continue
            law = measures.delay_law(run, idx, group="p" if shared else None)
            if law["alpha"] is None and metric == "alpha":
                out.append(
                    Candidate(
                        run,
                        cond,
                        None,
                        None,
                        f"alpha not identifiable ({len(law['excluded_cells'])} cells censored)",
                    )
                )
                continue
            note = (
                f"rho {fmt(min(rhos))}–{fmt(max(rhos))} ({len(rhos)} values), "
                f"{law['n_lanes']} lanes, {law['n_censored']} censored"
            )
            if law["excluded_cells"]:
                note += f", {len(law['excluded_cells'])} cells beyond the budget left out"
            if metric == "alpha":
                out.append(Candidate(run, cond, law["alpha"], law["alpha_ci"], note))
                continue
            k = law["model_comparison"]["k_shared"] - 1  # alpha and one intercept per group
            if law["r2"] is not None and law["n_cells_fit"] <= k:  # a line through every cell
                note = (
                    f"R² is 1 by construction: {law['n_cells_fit']} cells, {k} parameters; {note}"
                )
                out.append(Candidate(run, cond, None, None, note))
            else:
                out.append(Candidate(run, cond, law["r2"], None, note))
    return out


def cell_tgrok(ref, runs) -> list[Candidate]:
    """Median T_grok of the clamped lanes at the reference's ``rho``, per setting."""
    out = []
    r0 = ref.select["rho"]
    for run in runs:
        for cond, idx in cells.clamp_groups(run, mask=cells.rho_mask(run, r0, r0)):
            if not _model_ok(ref, cond):
                continue
            m = measures.tgrok(run, idx)
            out.append(
                Candidate(
                    run, dict(cond, rho=r0), m["median"], m["ci"], _censored_note(m, run, idx)
                )
            )
    return out


def norm_fold(ref, runs) -> list[Candidate]:
    """Fold change of the median T_grok from ``rho_lo`` to ``rho_hi`` at fixed settings."""
    out = []
    lo, hi = ref.select["rho_lo"], ref.select["rho_hi"]
    for run in runs:
        t, c = run.times()
        for cond, idx in cells.clamp_groups(run):
            if not _model_ok(ref, cond):
                continue
            a = idx[np.isclose(run.lanes["rho"][idx], lo)]
            b = idx[np.isclose(run.lanes["rho"][idx], hi)]
            if not (a.size and b.size):
                continue
            f = fit.fold_change(t[a], t[b], c[a], c[b])
            note = f"median {fmt(f['median_a'])} at rho={lo:g}, {fmt(f['median_b'])} at rho={hi:g}"
            out.append(Candidate(run, cond, f["fold"], None, note))
    return out


def lr_fold(ref, runs) -> list[Candidate]:
    """Fold change of the median T_grok across the reference's lrs, the median over the rho
    at which every one of them was run."""
    out = []
    lrs = ref.select["lrs"]
    for run in runs:
        t, c = run.times()
        keys = tuple(k for k in cells.CLAMP_KEYS if k != "lr")
        for cond, idx in cells.clamp_groups(run, keys):
            if not _model_ok(ref, cond):
                continue
            folds, rhos = [], []
            for rho in cells.values(run, idx, "rho"):
                cell = idx[np.isclose(run.lanes["rho"][idx], rho)]
                have = [lr for lr in lrs if np.isclose(run.lanes["lr"][cell], lr).any()]
                if len(have) < len(lrs):
                    continue
                cell = cell[np.isin(np.round(run.lanes["lr"][cell], 12), np.round(lrs, 12))]
                f = fit.fold_change_across(
                    np.round(run.lanes["lr"][cell], 12), "lr", t[cell], c[cell]
                )
                rhos.append(rho)
                folds.append(f["fold"])
            if not rhos:
                continue
            good = [f for f in folds if f is not None]
            med = float(np.median(good)) if good else None
            note = "per rho: " + ", ".join(f"{r:g}: {fmt(f)}" for r, f in zip(rhos, folds))
            out.append(Candidate(run, dict(cond, lr=tuple(lrs)), med, None, note))
    return out


def saturation(ref, runs) -> list[Candidate]:
    """Median T_grok at the reference's ``rho`` over the extrapolation of the law fitted on
    rho <= ``rho_max``."""
    out = []
    r_hi, r_max = ref.select["rho"], ref.select["rho_max"]
    for run in runs:
        t, c = run.times()
        for cond, idx in cells.clamp_groups(run):
            if not _model_ok(ref, cond):
                continue
            top = idx[np.isclose(run.lanes["rho"][idx], r_hi)]
            low = idx[run.lanes["rho"][idx] <= r_max + 1e-9]
            if not top.size or len(cells.values(run, low, "rho")) < ref.select.get("min_rho", 2):
                continue
            law = measures.delay_law(run, low, n_boot=0)
            med = fit.censored_median(t[top], c[top])
            pred = measures.extrapolated(law, r_hi)
            if pred is None or med is None:
                out.append(
                    Candidate(run, cond, None, None, "law or rho=1.30 median not identifiable")
                )
                continue
            out.append(
                Candidate(
                    run,
                    cond,
                    med / pred,
                    None,
                    f"median {fmt(med)} vs extrapolated {fmt(pred)} "
                    f"(alpha={fmt(law['alpha'])} on rho ≤ {r_max:g})",
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# controls: one-shot rescales and group clamps against the free control
# ---------------------------------------------------------------------------------------------


def _control_median(run: Run, cond: dict) -> float | None:
    """Median T_grok of the free lanes at the settings of ``cond`` (FREE_KEYS)."""
    t, c = run.times()
    m = run.arm("free") & run.ok()
    m &= cells.where(run.lanes, {k: cond.get(k) for k in cells.FREE_KEYS})
    return fit.censored_median(t[m], c[m]) if m.any() else None


def one_shot_fold(ref, runs) -> list[Candidate]:
    """Fold change of the median T_grok across the rho of one-shot rescales."""
    out = []
    for run in runs:
        for cond, idx in cells.groups(run, run.arm("one_shot") & run.ok(), cells.CONTROL_KEYS):
            if not _model_ok(ref, cond) or len(cells.values(run, idx, "rho")) < 2:
                continue
            f = measures.fold_across(run, idx, "rho")
            note = "medians: " + ", ".join(f"rho {k}: {fmt(v)}" for k, v in f["medians"].items())
            out.append(
                Candidate(
                    run,
                    cond,
                    f["fold"],
                    None,
                    note + (" (lower bound)" if f["lower_bound"] else ""),
                )
            )
    return out


def group_one_shot(ref, runs) -> list[Candidate]:
    """Largest |median T_grok / free control - 1| over the one-shot rescales of one group."""
    out = []
    for run in runs:
        t, c = run.times()
        arm = run.arm("group_one_shot")
        for cond, idx in cells.groups(run, arm & run.ok(), cells.CONTROL_KEYS):
            if not _model_ok(ref, cond):
                continue
            mc = _control_median(run, cond)
            devs = {}
            for g in cells.values(run, idx, "clamp_group"):
                sel = idx[run.lanes["clamp_group"][idx] == g]
                m = fit.censored_median(t[sel], c[sel])
                devs[g] = abs(m / mc - 1.0) if m is not None and mc else None
            measured = (
                max(devs.values()) if devs and all(v is not None for v in devs.values()) else None
            )
            out.append(
                Candidate(
                    run,
                    cond,
                    measured,
                    None,
                    f"control median {fmt(mc)}; "
                    + ", ".join(f"{g}: {fmt(v and 100 * v)} %" for g, v in devs.items()),
                )
            )
    return out


def group_clamp_fold(ref, runs) -> list[Candidate]:
    """Largest fold change (either way) of the median T_grok of a one-group clamp cell
    against the free control at the same settings."""
    out = []
    for run in runs:
        if "clamp_group" not in run.lanes:
            continue
        t, c = run.times()
        for cond, idx in cells.groups(run, run.arm("group_clamp") & run.ok(), cells.CONTROL_KEYS):
            if not _model_ok(ref, cond):
                continue
            mc = _control_median(run, cond)
            folds = {}
            for g in cells.values(run, idx, "clamp_group"):
                for r in cells.values(run, idx[run.lanes["clamp_group"][idx] == g], "rho"):
                    sel = idx[
                        (run.lanes["clamp_group"][idx] == g) & np.isclose(run.lanes["rho"][idx], r)
                    ]
                    m = fit.censored_median(t[sel], c[sel])
                    folds[f"{g} ρ={r:g}"] = m / mc if (m is not None and mc) else None
            good = [f for f in folds.values() if f is not None]
            measured = max(max(good), 1 / min(good)) if good and len(good) == len(folds) else None
            out.append(
                Candidate(
                    run,
                    cond,
                    measured,
                    None,
                    f"control median {fmt(mc)}; "
                    + ", ".join(f"{k}: {fmt(v)}×" for k, v in folds.items()),
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# LayerNorm models: the norm of each parameter group at T_grok
# ---------------------------------------------------------------------------------------------


def _ln_free_cells(ref, runs, group, pooled):
    """(run, condition, lane indices) of the grokked free lanes of LayerNorm models whose
    runs recorded ``group``'s norm, grouped by the free-run keys except those ``pooled``."""
    keys = tuple(k for k in cells.FREE_KEYS if k not in pooled)
    for run in runs:
        if cells.norm_column(group) not in run.lanes:
            continue
        for cond, idx in cells.groups(run, run.arm("free") & run.ok() & run.lanes["grokked"], keys):
            if _model_ok(ref, cond) and cond.get("layernorm") not in (None, "none"):
                yield run, cond, idx


def group_norm_cv(ref, runs) -> list[Candidate]:
    """CV of the norm at T_grok of the group ``select["group"]`` (``total``: the whole model)
    over the grokked free lanes of one setting, pooled over the train fractions run at that
    setting (at least two)."""
    out = []
    group = ref.select["group"]
    for run, cond, idx in _ln_free_cells(ref, runs, group, ("frac",)):
        fracs = cells.values(run, idx, "frac")
        if len(fracs) < 2 or idx.size < 3:
            continue
        w = cells.group_norm(run, idx, group)
        out.append(
            Candidate(
                run,
                dict(cond, frac=tuple(fracs)),
                w["cv"],
                None,
                f"n={idx.size} over {len(fracs)} fractions, median {fmt(w['median'])}",
            )
        )
    return out


def unembed_exponent(ref, runs) -> list[Candidate]:
    """Power law in p of the median unembedding norm at T_grok (free lanes pooled over the
    fractions at each p)."""
    out = []
    col = cells.norm_column("unembed")
    for run, cond, idx in _ln_free_cells(ref, runs, "unembed", ("p", "frac")):
        ps = cells.values(run, idx, "p")
        if len(ps) < ref.select.get("min_p", 2):
            continue
        med = [float(np.median(run.lanes[col][idx[run.lanes["p"][idx] == p]])) for p in ps]
        pl = measures.power_law(dict(zip(ps, med)))
        out.append(
            Candidate(
                run,
                dict(cond, p=tuple(ps), frac=cells.span(run, idx, "frac")),
                pl["exponent"],
                pl["exponent_ci"],
                "median ‖U‖ per p: " + ", ".join(f"{p}: {fmt(m)}" for p, m in zip(ps, med)),
            )
        )
    return out


def embed_exponent(ref, runs) -> list[Candidate]:
    """Power law in p of the median embedding norm ‖E‖ at T_grok (column norm_at_grok_embed)
    of the grokked free lanes of each setting at ``min_p`` or more of the reference's p."""
    out = []
    need = ref.select.get("min_p", 3)
    for run in runs:
        if "norm_at_grok_embed" not in run.lanes:
            continue
        keys = tuple(k for k in cells.FREE_KEYS if k != "p")
        grokked = run.lanes["grokked"]
        for cond, idx in cells.groups(run, run.arm("free") & run.ok() & grokked, keys):
            if not _model_ok(ref, cond):
                continue
            idx = _paper_ps(ref, run, idx)
            per_p = {}
            for p in cells.values(run, idx, "p"):
                e = measures.median_norm(run, idx[run.lanes["p"][idx] == p], "norm_at_grok_embed")
                if e is not None:
                    per_p[p] = e
            if len(per_p) >= need:
                out.append(_p_power_law(run, cond, per_p))
    return out


def absolute_norm_r2(ref, runs) -> list[Candidate]:
    """R² of ln T_grok against the held norm itself (rho·W_c, not rho): one slope per unit of
    ‖W‖ shared by the p with two or more rho in the reference's rho range, an intercept per
    p (the shared-alpha fit with the absolute norm in place of rho)."""
    out = []
    sel = ref.select
    for run in runs:
        mask = cells.rho_mask(run, sel.get("rho_min"), sel.get("rho_max"))
        keys = tuple(k for k in cells.CLAMP_KEYS if k != "p")
        for cond, idx in cells.clamp_groups(run, keys, mask):
            if not _model_ok(ref, cond):
                continue
            idx = _paper_ps(ref, run, idx)
            ps = _ps_with_rhos(run, idx)
            if len(ps) < sel.get("min_p", 2):
                continue
            idx = idx[np.isin(run.lanes["p"][idx], ps)]
            law = measures.absolute_norm(run, idx)
            note = (
                f"one slope, an intercept per p, over {len(ps)} values of p: {law['n_lanes']} "
                f"lanes, {law['n_censored']} censored; slope {fmt(law['alpha'])} per unit of ‖W‖"
            )
            out.append(Candidate(run, dict(cond, p=tuple(ps)), law["r2"], None, note))
    return out


# Which function measures a reference's number: ``paper.Reference.measure`` names one of these.
MEASURES = {
    "free_wc": free_wc,
    "free_wc_cv": free_wc_cv,
    "free_tgrok": free_tgrok,
    "wc_exponent": wc_exponent,
    "wc_lr_cv": wc_lr_cv,
    "alpha": functools.partial(law_candidates, shared=False, metric="alpha"),
    "alpha_r2": functools.partial(law_candidates, shared=False, metric="r2"),
    "alpha_shared": functools.partial(law_candidates, shared=True, metric="alpha"),
    "alpha_shared_r2": functools.partial(law_candidates, shared=True, metric="r2"),
    "cell_tgrok": cell_tgrok,
    "norm_fold": norm_fold,
    "lr_fold": lr_fold,
    "saturation": saturation,
    "one_shot_fold": one_shot_fold,
    "group_one_shot": group_one_shot,
    "group_clamp_fold": group_clamp_fold,
    "group_norm_cv": group_norm_cv,
    "unembed_exponent": unembed_exponent,
    "embed_exponent": embed_exponent,
    "absolute_norm_r2": absolute_norm_r2,
}


def candidates(ref: paper.Reference, runs: list[Run]) -> list[Candidate]:
    """Every measurement of ``ref``'s number in ``runs`` (by :data:`MEASURES`)."""
    try:
        measure = MEASURES[ref.measure]
    except KeyError:
        raise KeyError(f"no measurement {ref.measure!r} for reference {ref.key!r}") from None
    return measure(ref, runs)
