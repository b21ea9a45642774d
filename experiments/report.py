"""Figures, tables and the paper comparison from run directories.

    python -m experiments.report RUN_DIR [RUN_DIR ...] [--out DIR]

Reads each run directory (config.json, lanes.csv, curves.npz), recomputes every statistic from
the lanes with grokjax.fit and writes into --out (default figures/): report.md (also printed),
report.json, the tables tgrok_matrix / alpha / wc (.md and .csv) and the figures (.png and
.pdf); a report already in figures/ is replaced only when --out names it. Each headline number
is set next to the paper's value with a pass/FAIL status at a stated tolerance; runs that do
not follow the paper's protocol are "not comparable", and experiments that are absent are "not
run". A run directory that cannot be read is a one-line
error with exit status 2.
"""

from __future__ import annotations

import os
import sys

from grokjax import cli


DEFAULT_OUT = "figures"
REPORT_FILES = ("report.md", "report.json")


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


def parse_args(argv):
    ap = cli.Parser(prog="python -m experiments.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    ap.add_argument(
        "--out",
        default=None,
        help=f"output directory (default {DEFAULT_OUT}/, only while it holds no "
        f"report: an existing report is replaced only with an explicit --out)",
    )
    args = ap.parse_args(argv)
    args.out = default_out(args.out)
    cli.check_writable(args.out, "--out")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import experiments.catalog  # noqa: F401  (registers every experiment's fit, summary, figure)
    from grokjax import report, runs, tables

    try:
        data = report.build(args.runs, args.out)
    except runs.RunDirError as e:
        raise cli.UsageError(str(e)) from None
    print(data["text"], end="")
    for line in tables.summary_lines(data["runs"], data["comparison"]):
        print(line)
    print(f"wrote {args.out}/report.md, report.json, tables and figures")
    return 0


def main_cli(argv=None) -> int:
    """``main`` with errors turned into one line on stderr and exit status 2."""
    return cli.main_guard("report", main, argv)


if __name__ == "__main__":
    sys.exit(main_cli())
