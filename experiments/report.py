"""Figures, tables and the paper comparison from run directories.

    python -m experiments.report RUN_DIR [RUN_DIR ...] [--out DIR] [--results-md FILE]
    python -m experiments.report results/* --out figures/paper --results-md docs/results.md

Reads each run directory (config.json, lanes.csv, curves.npz), recomputes every statistic from
the lanes with grokjax.fit and writes into --out (default figures/): report.md, report.json,
the tables tgrok_matrix / alpha / wc (.md and .csv) and the figures (.png and .pdf); a report
already in figures/ is replaced only when --out names it. Each headline number is set next to
the paper's value with a pass/FAIL status at a stated tolerance; runs that do not follow the
paper's protocol are "not comparable", and experiments that are absent are "not run". It prints
a summary (the pass / FAIL / not run counts, each FAIL, where report.md is), not the report.
--results-md also writes the measured results as one page (docs/results.md).

A directory among the arguments that holds no run at all (neither config.json nor lanes.csv,
like results/heldout-prediction) is skipped with a note, so results/* works; a missing path, a
damaged run directory, or --out inside a run directory is a one-line error with exit status 2,
before anything is written.
"""

from __future__ import annotations

import os
import sys

from grokjax import cli


DEFAULT_OUT = "figures"
REPORT_FILES = ("report.md", "report.json")
RUN_MARKERS = ("config.json", "lanes.csv", "phases", "checkpoints")


def default_out(out: str | None) -> str:
    """``--out`` as given, or the default figures/ unless it already holds a report: that one
    is replaced only when asked for by name (``--out figures``), never by default."""
    if out is not None:
        return out
    if any(os.path.exists(os.path.join(DEFAULT_OUT, f)) for f in REPORT_FILES):
        raise cli.UsageError(
            f"{DEFAULT_OUT}/ already holds a report; pass --out {DEFAULT_OUT} "
            f"to replace it or --out DIR to write elsewhere"
        )
    return DEFAULT_OUT


def is_run_dir(path: str) -> bool:
    """Whether ``path`` is (the start of) a run directory: it holds config.json, lanes.csv,
    phases/ or checkpoints/."""
    return os.path.isdir(path) and any(os.path.lexists(os.path.join(path, m)) for m in RUN_MARKERS)


def run_dir_around(path: str) -> str | None:
    """The run directory ``path`` is or lies inside (the nearest), or None."""
    p = os.path.abspath(path)
    while True:
        if is_run_dir(p):
            return p
        parent = os.path.dirname(p)
        if parent == p:
            return None
        p = parent


def refuse_inside_run(path: str, flag: str, what: str) -> None:
    """A one-line error when ``path`` is or lies inside a run directory."""
    run = run_dir_around(path)
    if run is not None:
        where = (
            "is"
            if os.path.abspath(path) == run
            else f"lies inside {os.path.relpath(run)}, which is"
        )
        raise cli.UsageError(
            f"{flag} {path} {where} a run directory; {what} would be written among its "
            f"results: pass {flag} a directory outside it"
        )


def select_runs(paths: list[str]) -> tuple[list[str], list[str]]:
    """(run directories, notes on the arguments skipped): a missing path is an error; a
    directory holding nothing of a run (no config.json or lanes.csv) is skipped, so a glob such
    as results/* may be given; a file is an error."""
    runs, notes = [], []
    for p in paths:
        if not os.path.lexists(p):
            raise cli.UsageError(f"{p}: not a run directory (no such file or directory)")
        if not os.path.isdir(p):
            raise cli.UsageError(f"{p}: not a run directory (a file)")
        if not any(os.path.exists(os.path.join(p, f)) for f in ("config.json", "lanes.csv")):
            notes.append(f"skipped {p}: not a run directory (no config.json or lanes.csv)")
            continue
        runs.append(p)
    if not runs:
        raise cli.UsageError(f"no run directory among {' '.join(paths)}")
    return runs, notes


def parse_args(argv):
    ap = cli.Parser(prog="python -m experiments.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (results/* works)")
    ap.add_argument(
        "--out",
        default=None,
        help=f"output directory (default {DEFAULT_OUT}/, only while it holds no "
        f"report: an existing report is replaced only with an explicit --out)",
    )
    ap.add_argument(
        "--results-md",
        default=None,
        metavar="FILE",
        help="also write the measured results as one Markdown page (e.g. docs/results.md)",
    )
    args = ap.parse_args(argv)
    args.runs, args.notes = select_runs(args.runs)
    args.out = default_out(args.out)
    refuse_inside_run(args.out, "--out", "the report's ~20 files")
    cli.check_writable(args.out, "--out")
    if args.results_md is not None:
        if os.path.isdir(args.results_md):
            raise cli.UsageError(f"--results-md {args.results_md} is a directory, not a file")
        refuse_inside_run(os.path.dirname(args.results_md) or ".", "--results-md", "it")
        cli.check_writable(os.path.dirname(args.results_md) or ".", "--results-md")
    return args


def summary(data: dict, out: str, notes=()) -> list[str]:
    """What the report prints: the runs and lanes read, the pass / FAIL / not run counts, each
    FAIL in one line, where report.md is."""
    from grokjax import tables
    from grokjax.report import tally

    t = tally(data["comparison"])
    lanes = sum(c["lanes"] for c in data["runs"])
    cens = sum(c["censored"] for c in data["runs"])
    lines = list(notes)
    lines.append(f"read {len(data['runs'])} run(s), {lanes} lanes ({cens} censored)")
    lines.append(
        f"paper comparison: {t['pass']} pass, {t['FAIL']} FAIL, {t['not run']} not run "
        f"({t['inconclusive']} inconclusive, {t['not comparable']} not comparable)"
    )
    for r in data["comparison"]:
        if r["status"] == "FAIL":
            s = r.get("scale") or 1.0
            lines.append(
                f"  FAIL {r['key']}: {tables.fmt(r['measured'] * s)} against "
                f"{r['paper_text']} ({r['tolerance']}) in {r['run']}"
            )
    figs = sum(len(f.get("files", [])) for f in data["figures"])
    figs += sum(len(s["figures"]) for s in data["sections"])
    lines.append(
        f"wrote {os.path.join(out, 'report.md')} (the full report), report.json, "
        f"tables and {figs} figure files"
    )
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    import experiments.catalog  # noqa: F401  (registers every experiment's fit, summary, figure)
    from grokjax import report, runs
    from grokjax.results import write_text

    try:
        data = report.build(args.runs, args.out)
    except runs.RunDirError as e:
        raise cli.UsageError(str(e)) from None
    for line in summary(data, args.out, args.notes):
        print(line)
    if args.results_md is not None:
        cmd = "python -m experiments.report " + " ".join(
            [_glob_hint(args.runs), "--out", args.out, "--results-md", args.results_md]
        )
        write_text(args.results_md, report.results_md(data, args.out, args.results_md, cmd))
        print(f"wrote {args.results_md}")
    return 0


def _glob_hint(runs: list[str]) -> str:
    """The run arguments as a reader would type them: ``results/*`` when they are every run
    directory under one parent, else the list."""
    parents = {os.path.dirname(os.path.normpath(r)) for r in runs}
    if len(parents) == 1:
        parent = parents.pop()
        every = sorted(
            os.path.join(parent, d)
            for d in os.listdir(parent or ".")
            if os.path.isdir(os.path.join(parent, d))
            and any(
                os.path.exists(os.path.join(parent, d, f)) for f in ("config.json", "lanes.csv")
            )
        )
        if every == sorted(os.path.normpath(r) for r in runs):
            return os.path.join(parent, "*")
    return " ".join(runs)


def main_cli(argv=None) -> int:
    """``main`` with errors turned into one line on stderr and exit status 2."""
    return cli.main_guard("report", main, argv)


if __name__ == "__main__":
    sys.exit(main_cli())
