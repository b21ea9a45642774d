"""Every experiment of the paper at one preset, then the report over all of them.

    python -m experiments.reproduce                   # preset quick (default)
    python -m experiments.reproduce --preset paper    # GPU-sized
    python -m experiments.reproduce --list            # the experiments, their cost and the
                                                      # runs committed under results/

Runs delay_sweep, critical_norm, lr_matrix, dense_rho, norm_controls, log_delay,
transformer and parity in turn, each into ``<runs>/<name>-<preset>`` (the experiments' own
default directories under ``--runs``, default ``runs``). A run directory that already holds finished results of the same
configuration is skipped; an unfinished one is resumed (phase files and checkpoints), and one
written by another configuration is an error (the experiment's one-line message; move it aside
or pick another --runs). Then ``experiments.report`` reads every run directory that holds
results and writes report.md, report.json, the tables and the figures into --out (default
figures/); experiments that have no results are listed there as "not run".

Cost: the quick preset runs each experiment in 0.5-6.5 CPU minutes (18 min for all of them on
a 2-core CPU, 2026-11-29); the paper preset is GPU-sized (see each experiment's docstring and
--list). ``--only`` restricts the set, e.g. ``--only critical_norm,lr_matrix``.
"""

from __future__ import annotations

import json
import os
import sys

from grokjax import cli

import experiments.catalog  # noqa: F401  (registers every experiment)
from grokjax import registry

EXPERIMENTS = registry.names()  # the catalog's order


def run_dir(runs: str, name: str, preset: str) -> str:
    return os.path.join(runs, f"{name}-{preset}")


def cost_line(name: str, preset: str) -> str:
    from grokjax import experiment

    spec = registry.get(name)
    cfg = experiment.config_for(spec, preset)
    return spec.cost(cfg) if spec.cost is not None else "unknown"


def measured_line(runs: str, name: str, preset: str) -> str:
    """The training time of this preset's run directory here, if one finished: the sum of its
    phases' wall times from timing.json (what the lanes cost, loaded phases included)."""
    path = os.path.join(run_dir(runs, name, preset), "timing.json")
    try:
        with open(path) as f:
            t = json.load(f)
        secs = sum(float(p.get("wall_s", 0.0)) for p in t.get("phases", {}).values())
    except (OSError, ValueError, AttributeError, TypeError):
        return "not run here yet"
    return (
        f"ran here in {secs / 60:.1f} min of training ({t.get('backend', '?')}, "
        f"{t.get('devices', '?')} device(s))"
    )


RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


def committed_runs(name: str, preset: str, results: str = RESULTS) -> list[tuple[str, float]]:
    """The runs of experiment ``name`` at ``preset`` committed under results/: (directory
    name, minutes of training from timing.json, NaN where unknown), sorted by name."""
    out = []
    try:
        entries = sorted(os.listdir(results))
    except OSError:
        return out
    for d in entries:
        try:
            with open(os.path.join(results, d, "config.json")) as f:
                cfg = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(cfg, dict) or cfg.get("experiment") != name:
            continue
        if cfg.get("preset") != preset:
            continue
        try:
            with open(os.path.join(results, d, "timing.json")) as f:
                mins = float(json.load(f)["wall_s"]) / 60
        except (OSError, ValueError, KeyError, TypeError):
            mins = float("nan")
        out.append((d, mins))
    return out


def committed_line(name: str, preset: str, results: str = RESULTS) -> str:
    """What --list says of the runs committed under results/ (empty when there are none)."""
    runs = committed_runs(name, preset, results)
    if not runs:
        return ""
    mins = sum(m for _, m in runs if m == m)
    return (
        f"; committed under results/: {', '.join(d for d, _ in runs)} "
        f"({mins:.0f} min of training in all)"
    )


def parse_args(argv):
    ap = cli.Parser(prog="python -m experiments.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="quick", help="quick (default), paper or tiny")
    ap.add_argument("--runs", default="runs", help="parent directory of the run directories")
    ap.add_argument(
        "--out",
        default=None,
        help="report directory (default figures/, only while it holds no report: "
        "an existing report is replaced only with an explicit --out)",
    )
    ap.add_argument(
        "--only",
        type=lambda s: [x for x in s.split(",") if x.strip()],
        help=f"comma-separated subset of {', '.join(EXPERIMENTS)}",
    )
    ap.add_argument(
        "--list",
        action="store_true",
        help="print the experiments and their estimated cost, run nothing",
    )
    args = ap.parse_args(argv)
    names = args.only or list(EXPERIMENTS)
    bad = [n for n in names if n not in EXPERIMENTS]
    if bad:
        raise cli.UsageError(
            f"unknown experiment(s) {', '.join(bad)}; choose from {', '.join(EXPERIMENTS)}"
        )
    if args.preset not in ("quick", "paper", "tiny"):
        raise cli.UsageError(f"unknown preset {args.preset!r}; choose one of quick, paper, tiny")
    dup = cli.duplicates(names)
    if dup:
        raise cli.UsageError(f"--only: {', '.join(dup)} given twice")
    if not args.list:
        from experiments import report as report_cli

        args.out = report_cli.default_out(args.out)
        cli.check_writable(args.out, "--out")
        cli.check_writable(args.runs, "--runs")
    elif os.path.lexists(args.runs) and not os.path.isdir(args.runs):
        raise cli.UsageError(f"--runs {args.runs} is a file, not a directory")
    if not args.list:
        from experiments import report as report_cli

        # --runs is the parent of the run directories: never one itself, nor inside one
        report_cli.refuse_inside_run(args.runs, "--runs", "every experiment's run directory")
    args.names = names
    return args


def restart_hint(out: str) -> str:
    """What reproduce advises about a run directory it cannot continue (it has no --fresh)."""
    return (
        f"move {out} aside (or run python -m experiments.<name> with --fresh --out {out}), "
        f"or pick another --runs"
    )


def main(argv=None) -> int:
    from grokjax import experiment

    args = parse_args(argv)
    if args.list:
        for name in args.names:
            print(
                f"{name:14s} {args.preset:6s} {cost_line(name, args.preset)}; "
                f"{measured_line(args.runs, name, args.preset)}"
                f"{committed_line(name, args.preset)}  "
                f"-> {run_dir(args.runs, name, args.preset)}"
            )
        return 0
    # every run directory and every plan checked before the first experiment starts
    todo = []
    for name in args.names:
        spec = registry.get(name)
        out = run_dir(args.runs, name, args.preset)
        cfg = experiment.config_for(spec, args.preset, out)
        experiment.check_run_dir(cfg, spec.config_format, hint=restart_hint(out))
        if not experiment.is_complete(out):
            experiment.check_plan(spec, cfg)
        todo.append((name, spec, out, cfg))
    done = []
    for name, spec, out, cfg in todo:
        if experiment.is_complete(out):
            print(f"reproduce: {name}: finished earlier in {out}, skipped", flush=True)
        else:
            print(f"reproduce: {name}: running the {args.preset} preset into {out}", flush=True)
            opts = experiment.RunOptions(restart_hint=restart_hint(out))
            code = experiment.run(
                spec,
                cfg,
                opts,
                command=f"python -m experiments.reproduce --preset "
                f"{args.preset} --runs {args.runs}",
            )
            if code:
                return code
        done.append(out)
    from experiments import report as report_cli

    return report_cli.main(done + ["--out", args.out])


def main_cli(argv=None) -> int:
    return cli.main_guard("reproduce", main, argv)


if __name__ == "__main__":
    sys.exit(main_cli())
