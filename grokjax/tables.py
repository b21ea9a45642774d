"""The report's tables and their text: the tables computed from loaded runs (lane counts, W_c,
the delay law's alpha, the median T_grok matrix, the per-group norm CV of attention runs,
Table 2 from the parity runs' fits), how the report writes numbers (:func:`fmt`), and the
rendering of tables as Markdown and CSV and of ``report.json`` (:func:`to_json`); the whole
``report.md`` is ``grokjax.report_md``'s. JAX-free.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from grokjax import cells, measures
from grokjax.runs import Run

__all__ = [
    "STATUS_ORDER",
    "fmt",
    "fmt_ci",
    "fmt_val",
    "run_counts",
    "wc_table",
    "alpha_table",
    "tgrok_matrix",
    "layernorm_table",
    "table2_rows",
    "csv_text",
    "tgrok_md",
    "alpha_md",
    "wc_md",
    "layernorm_md",
    "table2_md",
    "summary_lines",
    "md_table",
    "measured_text",
    "to_json",
]

STATUS_ORDER = ("pass", "FAIL", "inconclusive", "not comparable", "not run")


# ---------------------------------------------------------------------------------------------
# numbers as the report writes them
# ---------------------------------------------------------------------------------------------


def fmt(v, digits: int | str = 4, missing: str = "—") -> str:
    """How the report writes a number: 4 significant digits, integers from 1000 up; with a
    format string for ``digits`` (``"{:.2f}"``: an experiment's summary), that format.
    ``missing`` stands for None."""
    if v is None:
        return missing
    if isinstance(digits, str):
        return digits.format(v)
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not math.isfinite(v):
        return "—"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def fmt_ci(ci) -> str:
    """An interval [lo, hi] as the report writes it ("" when either end is missing)."""
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def fmt_val(v) -> str:
    """A setting's value (a tuple as {a, b}, a float with %g)."""
    if isinstance(v, tuple):
        return "{" + ", ".join(fmt_val(x) for x in v) + "}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def run_counts(run: Run) -> dict:
    """Lane counts of one run: free, clamped, grokked, censored (not grokked, not diverged),
    diverged."""
    L = run.lanes
    return {
        "run": run.name,
        "experiment": run.experiment,
        "preset": run.preset,
        "path": run.path,
        "lanes": run.n,
        "free": int(run.arm("free").sum()),
        "clamped": int(run.arm("clamp").sum()),
        "other": int((~run.arm("free") & ~run.arm("clamp")).sum()),
        "grokked": int(L["grokked"].sum()),
        "censored": int((~L["grokked"] & ~L["diverged"]).sum()),
        "diverged": int(L["diverged"].sum()),
    }


def wc_table(runs: list[Run]) -> list[dict]:
    """W_c per run and setting (p, fraction, lr, wd, model): median, CV, bootstrap CI, n;
    also the Kaplan-Meier median T_grok of the free lanes."""
    rows = []
    for run in runs:
        for cond, idx in cells.free_groups(run):
            w = cells.critical_norm(run, idx)
            m = measures.tgrok(run, idx, n_boot=0)
            rows.append(
                {
                    "run": run.name,
                    "experiment": run.experiment,
                    **cond,
                    "n_lanes": int(idx.size),
                    "n_grokked": int(w["n"]),
                    "Wc_median": w["median"],
                    "Wc_cv": w["cv"],
                    "Wc_ci_lo": w["ci"][0],
                    "Wc_ci_hi": w["ci"][1],
                    "Wc_n": w["n"],
                    "free_T_grok_median": m["median"],
                }
            )
    return rows


def alpha_table(runs: list[Run]) -> list[dict]:
    """The delay law per run: one row per (p, lr and other settings) with alpha, its bootstrap
    CI, R², the censored-MLE alpha and counts, and a ``shared`` row (one alpha, intercept per
    p) wherever a setting has several p."""
    rows = []
    for run in runs:
        for cond, idx in cells.clamp_groups(run):
            rhos = cells.values(run, idx, "rho")
            if len(rhos) < 2:
                continue
            law = cells.delay_law(run, idx)
            rows.append(_alpha_row(run, cond, idx, law, rhos))
        keys = tuple(k for k in cells.CLAMP_KEYS if k != "p")
        for cond, idx in cells.clamp_groups(run, keys):
            ps = cells.values(run, idx, "p")
            if len(ps) < 2:
                continue
            law = cells.delay_law(run, idx, group="p")
            if law["alpha"] is None:
                continue
            rows.append(
                _alpha_row(
                    run, dict(cond, p="shared"), idx, law, cells.values(run, idx, "rho"), ps=ps
                )
            )
    return rows


def _alpha_row(run, cond, idx, law, rhos, ps=None) -> dict:
    """One row of :func:`alpha_table` from a fitted delay law."""
    mle = law.get("mle") or {}
    return {
        "run": run.name,
        "experiment": run.experiment,
        **cond,
        "p_set": "" if ps is None else " ".join(str(p) for p in ps),
        "rho_min": min(rhos),
        "rho_max": max(rhos),
        "n_rho": len(rhos),
        "alpha": law["alpha"],
        "alpha_ci_lo": law["alpha_ci"][0],
        "alpha_ci_hi": law["alpha_ci"][1],
        "r2": law["r2"],
        "alpha_mle": mle.get("alpha"),
        "n_lanes": law["n_lanes"],
        "n_censored": law["n_censored"],
        "n_cells_fit": law["n_cells_fit"],
        "n_cells_excluded": len(law["excluded_cells"]),
    }


def tgrok_matrix(runs: list[Run], n_boot: int = cells.N_BOOT_MEDIAN) -> list[dict]:
    """Median T_grok per (setting, rho, lr) cell, long format: Kaplan-Meier median with a
    bootstrap CI, lane counts and censored / diverged counts. Free lanes are the row
    rho="free"; clamped lanes are split by clamp_mode and t_int as well."""
    rows = []
    keys = tuple(k for k in cells.CLAMP_KEYS if k not in ("lr", "t_int", "clamp_mode"))
    for run in runs:
        t, c = run.times()
        for cond, idx in cells.groups(run, run.arm("free") | run.arm("clamp"), keys):
            for cell_key, lanes in cells.groups(
                run, np.isin(np.arange(run.n), idx), ("arm", "clamp_mode", "t_int", "rho", "lr")
            ):
                div = run.lanes["diverged"][lanes]
                ok = lanes[~div & np.isfinite(t[lanes]) & (t[lanes] > 0)]
                m = measures.tgrok(run, ok, n_boot=n_boot)
                budget = float(np.max(t[ok][c[ok]])) if c[ok].any() else None
                rho = cell_key["rho"]
                rows.append(
                    {
                        "run": run.name,
                        "experiment": run.experiment,
                        **cond,
                        "arm": cell_key["arm"],
                        "clamp_mode": cell_key["clamp_mode"],
                        "t_int": cell_key["t_int"],
                        "rho": "free" if cell_key["arm"] == "free" else rho,
                        "lr": cell_key["lr"],
                        "n": int(lanes.size),
                        "n_censored": m["n_censored"],
                        "n_diverged": int(div.sum()),
                        "median": m["median"],
                        "ci_lo": m["ci"][0],
                        "ci_hi": m["ci"][1],
                        "censored_at": budget,
                    }
                )
    return rows


def layernorm_table(runs: list[Run]) -> list[dict]:
    """Per LayerNorm setting of attention runs (free grokked lanes per p): the CV across seeds
    of each parameter group's norm at T_grok and of the total norm (``cv_<group>``,
    ``cv_total``)."""
    rows = []
    for run in runs:
        attn = run.lanes["model"] == "attn"
        if not attn.any():
            continue
        names = cells.norm_groups(run)
        for cond, idx in cells.groups(
            run, attn & run.arm("free") & run.ok() & run.lanes["grokked"], cells.FREE_KEYS
        ):
            cv = cells.norm_cvs(run, idx, names)
            rows.append(
                {
                    "run": run.name,
                    **cond,
                    "n": int(idx.size),
                    **{f"cv_{g}": v for g, v in cv.items()},
                }
            )
    return rows


def table2_rows(sections: list[dict]) -> list[dict]:
    """The paper's Table 2 as generated by the parity runs' own fits (one row per run and
    property: the paper's entries for modular arithmetic and for parity, the measured
    evidence and whether the parity entry holds)."""
    rows = []
    for s in sections:
        if s["experiment"] != "parity" or not s.get("fit"):
            continue
        for r in s["fit"].get("table2", []):
            rows.append(
                {
                    "run": s["run"],
                    "property": r["property"],
                    "paper_modular": r.get("paper_modular"),
                    "paper_parity": r.get("paper_parity"),
                    "measured": r.get("evidence"),
                    "transfers": r.get("transfers"),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


def md_table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (cells with | escaped, newlines as spaces)."""
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def csv_text(rows: list[dict]) -> str:
    """Rows as CSV: the union of their keys as columns, floats at full precision."""
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_cell(r.get(k)) for k in cols})
    return buf.getvalue()


def _csv_cell(v):
    """A CSV cell: empty for None / NaN, repr for floats, a tuple space-separated."""
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    if isinstance(v, tuple):
        return " ".join(str(x) for x in v)
    return v


def measured_text(r: dict) -> str:
    """A comparison row's measured value with its unit and CI, scaled for display."""
    if r["measured"] is None:
        return "—"
    s = r["scale"]
    txt = fmt(r["measured"] * s) + (f" {r['unit']}" if r["unit"] else "")
    ci = r.get("measured_ci")
    if ci and ci[0] is not None and ci[1] is not None:
        txt += f" [{fmt(ci[0] * s)}, {fmt(ci[1] * s)}]"
    elif ci and ci[0] is not None:
        txt += f" [{fmt(ci[0] * s)}, ∞)"
    return txt


def tgrok_md(rows: list[dict]) -> str:
    """Markdown: one rho × lr matrix per (run, setting)."""
    if not rows:
        return "_no lanes_"
    parts = []
    keyf = lambda r: (
        r["run"],
        r.get("model"),
        r.get("layernorm"),
        r.get("d"),
        r.get("hidden"),
        r.get("frac"),
        r.get("wd"),
        r.get("p"),
        r.get("n_bits"),
        r.get("n_train"),
    )
    blocks: dict = {}
    for r in rows:
        blocks.setdefault(keyf(r), []).append(r)
    for rs in blocks.values():
        clamp_kinds = {(r["clamp_mode"], r["t_int"]) for r in rs if r["arm"] == "clamp"}

        def label(r):
            if r["arm"] == "free":
                return "free"
            txt = "ρ = ?" if r["rho"] is None else f"{r['rho']:g}"
            if len(clamp_kinds) > 1:
                txt += f" ({r['clamp_mode']}, t_int={r['t_int']})"
            return txt

        order = lambda r: (
            r["arm"] != "free",
            str(r["clamp_mode"]),
            cells.sort_key(r["t_int"]),
            cells.sort_key(None if r["rho"] == "free" else r["rho"]),
        )
        lrs = sorted({r["lr"] for r in rs}, key=cells.sort_key)
        labels = list(dict.fromkeys(label(r) for r in sorted(rs, key=order)))
        cell = {(label(r), r["lr"]): r for r in rs}
        body = []
        for lab in labels:
            line = [lab]
            for lr in lrs:
                r = cell.get((lab, lr))
                if r is None:
                    line.append("")
                    continue
                if r["median"] is None:
                    txt = f"> {fmt(r['censored_at'])}" if r["censored_at"] else "—"
                else:
                    txt = fmt(r["median"])
                    if r["ci_lo"] is not None:
                        txt += f" [{fmt(r['ci_lo'])}, {fmt(r['ci_hi']) if r['ci_hi'] else '∞'}]"
                txt += f" ({r['n_censored']}/{r['n']} cens."
                txt += f", {r['n_diverged']} div.)" if r["n_diverged"] else ")"
                line.append(txt)
            body.append(line)
        r0 = rs[0]
        size = (
            f"n_bits={r0['n_bits']}, {r0.get('model')}, n_train={r0.get('n_train')}"
            if r0.get("p") is None and r0.get("n_bits") is not None
            else f"p={r0.get('p')}, {r0.get('model')}, frac={fmt_val(r0.get('frac'))}"
        )
        head = f"**{r0['run']}** — {size}, wd={fmt_val(r0.get('wd'))}"
        parts.append(head + "\n\n" + md_table(["ρ \\ lr"] + [f"{lr:g}" for lr in lrs], body))
    return "\n\n".join(parts)


def _p(r: dict):
    """A row's p, or for parity (no p) its n_bits as n=..."""
    if r.get("p") is None and r.get("n_bits") is not None:
        return f"n={r['n_bits']}"
    return r["p"]


def _frac(r: dict) -> str:
    """A row's train fraction, or for parity (no p) its training rows as m=..."""
    if r.get("p") is None and r.get("n_train") is not None:
        return f"m={fmt_val(r['n_train'])}"
    return fmt_val(r.get("frac"))


def alpha_md(rows: list[dict]) -> str:
    """Markdown of :func:`alpha_table`."""
    if not rows:
        return "_no clamped lanes at two or more rho_"
    body = [
        [
            r["run"],
            r.get("model"),
            _p(r) if r["p"] != "shared" else f"shared ({r['p_set']})",
            fmt_val(r.get("lr")),
            f"{fmt(r['rho_min'])}–{fmt(r['rho_max'])} ({r['n_rho']})",
            fmt(r["alpha"]),
            fmt_ci([r["alpha_ci_lo"], r["alpha_ci_hi"]]),
            fmt(r["r2"]),
            fmt(r["alpha_mle"]),
            r["n_lanes"],
            r["n_censored"],
            r["n_cells_excluded"],
        ]
        for r in rows
    ]
    return md_table(
        [
            "run",
            "model",
            "p",
            "lr",
            "ρ range (values)",
            "α",
            "95% CI",
            "R²",
            "α (censored MLE)",
            "lanes",
            "censored",
            "cells left out",
        ],
        body,
    )


def wc_md(rows: list[dict]) -> str:
    """Markdown of :func:`wc_table`."""
    if not rows:
        return "_no free lanes_"
    body = [
        [
            r["run"],
            r.get("model"),
            _p(r),
            _frac(r),
            fmt_val(r.get("lr")),
            fmt_val(r.get("wd")),
            fmt(r["Wc_median"]),
            fmt(None if r["Wc_cv"] is None else 100 * r["Wc_cv"]),
            fmt_ci([r["Wc_ci_lo"], r["Wc_ci_hi"]]),
            f"{r['Wc_n']}/{r['n_lanes']}",
            fmt(r["free_T_grok_median"]),
        ]
        for r in rows
    ]
    return md_table(
        [
            "run",
            "model",
            "p",
            "frac",
            "lr",
            "wd",
            "W_c (median)",
            "CV (%)",
            "95% CI",
            "n grokked / lanes",
            "free T_grok median",
        ],
        body,
    )


def layernorm_md(rows: list[dict]) -> str:
    """Markdown of :func:`layernorm_table`, CVs in %."""
    groups = [k[3:] for k in rows[0] if k.startswith("cv_")]
    body = [
        [r["run"], r.get("layernorm"), r["p"], r["n"]]
        + [fmt(None if r[f"cv_{g}"] is None else 100 * r[f"cv_{g}"]) for g in groups]
        for r in rows
    ]
    return md_table(["run", "LayerNorm", "p", "n"] + [f"CV {g} (%)" for g in groups], body)


def table2_md(rows: list[dict]) -> str:
    """Markdown of :func:`table2_rows`."""
    return md_table(
        [
            "property",
            "paper: modular MLP",
            "paper: parity",
            "measured (parity run)",
            "holds for parity here",
            "run",
        ],
        [
            [
                r["property"],
                r["paper_modular"],
                r["paper_parity"],
                r["measured"],
                f"**{r['transfers']}**",
                r["run"],
            ]
            for r in rows
        ],
    )


def summary_lines(counts: list[dict], comparison: list[dict]) -> list[str]:
    """One line per run (censored / diverged lanes) and the tally of comparison statuses."""
    lines = [
        f"{c['run']} ({c['experiment']}, {c['lanes']} lanes): {c['censored']} censored, "
        f"{c['diverged']} diverged"
        for c in counts
    ]
    tally = {s: sum(r["status"] == s for r in comparison) for s in STATUS_ORDER}
    lines.append("paper comparison: " + ", ".join(f"{v} {k}" for k, v in tally.items()))
    return lines


def to_json(data: dict) -> str:
    """report.json: ``data`` at full precision (NaN and inf as null), one key per line."""
    return json.dumps(_jsonable(data), indent=1, allow_nan=False) + "\n"


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
