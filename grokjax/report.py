"""Figures, tables and the comparison with the paper, recomputed from run directories.

``build(run_dirs, out)`` reads each run directory (``config.json``, ``lanes.csv``,
``curves.npz``; ``fit.json`` is not needed: every statistic is recomputed from the lanes with
:mod:`grokjax.fit`) and writes into ``out``:

* ``report.md`` (and ``report.json`` with the same numbers at full precision): the runs with
  their censored / diverged lane counts, which experiments were run, every headline number next
  to the paper's value (:mod:`grokjax.paper`) with the relative difference and a status, the
  tables, each experiment's own section and the list of figures;
* tables as Markdown and CSV: ``tgrok_matrix``, ``alpha``, ``wc`` (and ``layernorm_cv`` when
  attention runs exist, ``table2`` when parity runs do);
* figures as PNG and PDF (see :func:`grokjax.plots.make_figures`).

The work is done by one module per job, each importing only those before it:
:mod:`grokjax.runs` (reading run directories), :mod:`grokjax.cells` (lanes grouped by setting
and their numbers), :mod:`grokjax.tables` (tables and the Markdown / CSV / JSON text),
:mod:`grokjax.compare` (the comparison with the paper; each number a measure of
:mod:`grokjax.measures`, as in the experiments' fit.json) and :mod:`grokjax.plots` (figures).
The experiments come from :mod:`grokjax.registry`: the report lists every registered one
and reruns the fit, summary and figure of those with ``section`` (per run, and per design
run in parts, pooled; the figure from :data:`grokjax.plots.EXPERIMENT_FIGURES` where it has
one, which puts the paper's values and CIs on it). The registry imports its catalog
(``experiments.catalog``) on the first look-up, so ``build`` gives the same report whether or
not its caller imported the catalog, and a catalog that cannot be imported is an error; an
experiment found in a run directory but registered by no catalog gets the generic tables and
figures only, and is listed as not known to the report.
"""

from __future__ import annotations

import dataclasses
import os

from grokjax import compare, plots, registry, report_md, tables
from grokjax.runs import CONFIG_FIELDS, POOL_AXES, load_runs, pool, read_lanes


__all__ = ["build", "experiments", "experiment_sections"]

UNKNOWN = "not known to the report: only generic tables/figures"


def experiments(runs: list) -> list[dict]:
    """The registered experiments (in registration order) and then any other experiment the
    runs hold, each with its runs and what it measures."""
    about = {s.name: s.about for s in registry.specs()}
    names = list(about) + sorted({r.experiment for r in runs} - set(about))
    rows = []
    for e in names:
        rs = [r.name for r in runs if r.experiment == e]
        rows.append(
            {
                "experiment": e,
                "status": "run" if rs else "not run",
                "runs": rs,
                "about": about.get(e, UNKNOWN),
            }
        )
    return rows


def experiment_sections(runs: list, out: str) -> list[dict]:
    """Per run of a registered experiment with a ``section``: its fit recomputed from
    lanes.csv with the experiment's own fit function, its summary text and its figure (file
    names prefixed with the run name), and the same over each design run in parts
    (:func:`grokjax.runs.pool` along every axis: seed blocks, lr columns, moduli), so a design
    run as separate jobs also reads as a whole. Such experiments without a run get a "not run"
    entry."""
    rows = []
    pooled = [r for axis in POOL_AXES for r in pool(runs, axis)]
    for spec in registry.specs():
        if not spec.section:
            continue
        rs = [r for r in runs + pooled if r.experiment == spec.name]
        if not rs:
            rows.append(
                _section(spec.name, None, "not run", f"not run (python -m experiments.{spec.name})")
            )
            continue
        for run in rs:
            rows.append(_run_section(spec, run, out))
    return rows


def _section(name, run, status, text, fitted=None, figures=()) -> dict:
    return {
        "experiment": name,
        "run": run,
        "status": status,
        "text": text,
        "fit": fitted,
        "figures": list(figures),
    }


def _run_section(spec, run, out: str) -> dict:
    """One run's section: the experiment's fit, summary and figure over the run's lanes."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    cfg = spec.config_cls(**{k: v for k, v in run.config.items() if k in fields})
    # a pooled run (no directory of its own) has only its parts' lanes, already joined
    lanes = read_lanes(os.path.join(run.path, "lanes.csv")) if run.path else dict(run.lanes)
    for k in CONFIG_FIELDS:  # settings recorded once in config.json, per lane here
        if k not in lanes and k in run.lanes:
            lanes[k] = run.lanes[k]
    try:
        fitted = spec.fit(lanes, cfg)
        text = spec.summary(fitted, cfg)
        draw = plots.EXPERIMENT_FIGURES.get(spec.name, spec.figure)
        figs = draw(lanes, fitted, run.curves, out, prefix=f"{run.name}_") or []
    except (KeyError, ValueError, TypeError, IndexError) as e:
        # e.g. a run directory written before the experiment recorded its cell columns: the
        # generic tables still use it; its own section says why it is absent
        text = (
            f"cannot recompute {spec.name} from {run.path}/lanes.csv "
            f"({type(e).__name__}: {e})".replace("\n", " ")
        )
        return _section(spec.name, run.name, "unreadable", text)
    return _section(
        spec.name, run.name, "run", text, fitted, [os.path.relpath(f, out) for f in figs]
    )


def build(run_dirs: list[str], out: str) -> dict:
    """Loads the runs, writes report.md, report.json, the tables and the figures into ``out``;
    returns the report data (``text`` holds report.md)."""
    from grokjax.results import write_text

    runs = load_runs(run_dirs)
    os.makedirs(out, exist_ok=True)
    tbl = {
        "tgrok_matrix": tables.tgrok_matrix(runs),
        "alpha": tables.alpha_table(runs),
        "wc": tables.wc_table(runs),
    }
    ln_rows = tables.layernorm_table(runs)
    if ln_rows:
        tbl["layernorm_cv"] = ln_rows
    md = {
        "tgrok_matrix": tables.tgrok_md(tbl["tgrok_matrix"]),
        "alpha": tables.alpha_md(tbl["alpha"]),
        "wc": tables.wc_md(tbl["wc"]),
    }
    if ln_rows:
        md["layernorm_cv"] = tables.layernorm_md(ln_rows)
    for k, rows in tbl.items():
        write_text(os.path.join(out, f"{k}.csv"), tables.csv_text(rows))
        write_text(os.path.join(out, f"{k}.md"), md[k] + "\n")
    data = {
        "runs": [tables.run_counts(r) for r in runs],
        "experiments": experiments(runs),
        "comparison": compare.compare(runs),
        "tables": tbl,
        "tables_md": md,
    }
    data["figures"] = plots.make_figures(runs, out, ln_rows)
    data["sections"] = experiment_sections(runs, out)
    t2 = tables.table2_rows(data["sections"])
    if t2:
        tbl["table2"] = t2
        md["table2"] = tables.table2_md(t2)
        write_text(os.path.join(out, "table2.csv"), tables.csv_text(t2))
        write_text(os.path.join(out, "table2.md"), md["table2"] + "\n")
    text = report_md.render(data)
    write_text(os.path.join(out, "report.md"), text)
    write_text(
        os.path.join(out, "report.json"),
        tables.to_json({k: v for k, v in data.items() if k != "tables_md"}),
    )
    data["text"] = text
    return data


# ---------------------------------------------------------------------------------------------
# docs/results.md: the measured results as a reader wants them, generated from the report
# ---------------------------------------------------------------------------------------------

JUDGED = ("pass", "FAIL", "inconclusive")


def tally(comparison: list[dict]) -> dict:
    """{status: rows} over the comparison, every status of :data:`tables.STATUS_ORDER`."""
    return {s: sum(r["status"] == s for r in comparison) for s in tables.STATUS_ORDER}


def headline_rows(comparison: list[dict]) -> list[dict]:
    """One row per paper number: the measurement on the most seeds (a run in parts pooled
    counts with all its seeds) among those judged against the paper, else the first row, with
    the statuses of every run that measured it."""
    by_key: dict[str, list[dict]] = {}
    for r in comparison:
        by_key.setdefault(r["key"], []).append(r)
    out = []
    for key, rows in by_key.items():
        judged = [r for r in rows if r["status"] in JUDGED]
        best = (
            max(judged, key=lambda r: (r.get("seeds") or 0, "+" in (r["run"] or "")))
            if judged
            else rows[0]
        )
        counts = {s: sum(r["status"] == s for r in judged) for s in JUDGED}
        out.append({**best, "all_runs": counts})
    return out


def _measured(r: dict) -> str:
    if r.get("measured") is None:
        return "—"
    s = r.get("scale") or 1.0
    txt = tables.fmt(r["measured"] * s) + (f" {r['unit']}" if r.get("unit") else "")
    ci = r.get("measured_ci")
    if ci and ci[0] is not None and ci[1] is not None:
        txt += f" [{tables.fmt(ci[0] * s)}, {tables.fmt(ci[1] * s)}]"
    return txt


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def results_md(data: dict, out: str, md_path: str, command: str) -> str:
    """The text of ``docs/results.md``: the runs, one row per paper number (its best-seeded
    measurement, status and how every other run fared), each experiment's summary with links to
    its figures, and the alpha and W_c tables; the rest (every row, the T_grok matrices) is in
    ``out``/report.md, linked."""
    rel = os.path.relpath(os.path.abspath(out), os.path.dirname(os.path.abspath(md_path)))
    lines = _md_header(data, rel, command)
    lines += _md_runs(data["runs"])
    lines += _md_numbers(data["comparison"])
    lines += _md_sections(data["sections"], rel)
    lines += _md_tables(data["tables_md"], rel)
    return "\n".join(lines)


def _md_header(data: dict, rel: str, command: str) -> list:
    """Title, provenance and the pass / FAIL / not run tally."""
    t = tally(data["comparison"])
    return [
        "# Results",
        "",
        f"<!-- Generated by `{command}`; do not edit by hand: rerun it after a run is added "
        "to results/ (tests/test_adoption_results_md.py checks that it is current). -->",
        "",
        "Every number here is recomputed from the committed runs' `lanes.csv` (`results/`) "
        "by the report, and judged against the paper's value (`grokjax/paper.py`) at a stated "
        "tolerance. The full report, with every run's row and every table and figure: "
        f"[`{rel}/report.md`]({rel}/report.md).",
        "",
        f"**{t['pass']} pass, {t['FAIL']} FAIL, {t['not run']} not run** "
        f"({t['inconclusive']} inconclusive, {t['not comparable']} not comparable), counted "
        "over every run that measures each number.",
        "",
    ]


def _md_runs(runs: list) -> list:
    """## Runs: one row per run with its lane counts and training time."""
    lines = [
        "## Runs",
        "",
        "| run | experiment | lanes | free / clamped / other | grokked | censored | "
        "training time |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for c in runs:
        wall = _wall_time(c.get("path"))
        lines.append(
            f"| `{c['run']}` | {c['experiment']} | {c['lanes']} | "
            f"{c['free']} / {c['clamped']} / {c['other']} | {c['grokked']} | {c['censored']} | "
            f"{wall} |"
        )
    return lines + [
        "",
        "Training time: `timing.json`'s wall time on the 2-core CPU these runs were made on "
        "(often shared with other jobs: an upper bound).",
        "",
    ]


def _md_numbers(comparison: list) -> list:
    """## Each number of the paper: its best-seeded measurement and how every run fared."""
    lines = [
        "## Each number of the paper",
        "",
        "The measurement on the most seeds per cell (runs of one design made in parts are "
        "pooled); *all runs* counts every run that measured it (pass / FAIL / inconclusive).",
        "",
        "| quantity | measured | seeds | run | paper | tolerance | status | all runs |",
        "|---|---|---:|---|---|---|---|---|",
    ]
    for r in headline_rows(comparison):
        st = r["status"]
        st = f"**{st}**" if st in JUDGED else st
        allr = (
            " / ".join(str(r["all_runs"][s]) for s in JUDGED) if any(r["all_runs"].values()) else ""
        )
        cells = (
            r["quantity"],
            _measured(r),
            r.get("seeds") or "",
            f"`{r['run']}`" if r.get("run") else "",
            r.get("paper_text") or "",
            r.get("tolerance") or "",
            st,
            allr,
        )
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return lines


def _md_sections(sections: list, rel: str) -> list:
    """## Each experiment: its summary text and links to its figures."""
    lines = ["", "## Each experiment", ""]
    for s in sections:
        head = f"### {s['experiment']}" + (f": `{s['run']}`" if s["run"] else "")
        lines += [head, ""]
        if s["status"] != "run":
            lines += [s["text"], ""]
            continue
        lines += ["```text", s["text"].rstrip(), "```", ""]
        for f in s["figures"]:
            lines.append(f"Figure: [`{f}`]({rel}/{f})")
        if s["figures"]:
            lines.append("")
    return lines


def _md_tables(tables_md: dict, rel: str) -> list:
    """## Tables: alpha per p, W_c per setting, and a link to the T_grok matrices."""
    return [
        "## Tables",
        "",
        "### Delay-law slope α per p",
        "",
        tables_md["alpha"],
        "",
        "### Critical norm W_c per setting",
        "",
        tables_md["wc"],
        "",
        f"The median T_grok of every cell (ρ × lr per run): [`{rel}/tgrok_matrix.md`]"
        f"({rel}/tgrok_matrix.md).",
        "",
    ]


def _wall_time(path: str | None) -> str:
    import json

    try:
        with open(os.path.join(path, "timing.json")) as f:
            s = float(json.load(f)["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return "—"
    return f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"
