"""The driver every experiment shares: parse, check, start the run directory, run the plan's
phases (polite on SIGTERM / SIGINT) and write the results files and timing."""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import time
from typing import Callable

import numpy as np

from grokjax import cli
from grokjax.config import RunOptions, Spec
from grokjax.dryrun import check_plan
from grokjax.parser import parse_run_args
from grokjax.phases import PhaseOutcome, run_phase
from grokjax.rundir import check_run_dir, corrupt_dirs, start_dir, undo_start


def main(spec: Spec, argv=None) -> int:
    """Parses ``argv`` and runs the experiment (configuration errors raise UsageError)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, opts = parse_run_args(spec, argv)
    return run(spec, cfg, opts, command=f"python -m experiments.{spec.name} " + shlex.join(argv))


def run(spec: Spec, cfg, opts: RunOptions | None = None, command: str = "") -> int:
    """Runs (or resumes) the experiment of ``cfg`` and writes its run directory.

    Everything that can be checked is checked before anything is written: the run directory
    (``check_run_dir``) and the whole plan (``check_plan``: models, lane columns, memory). A
    start that still fails before its first phase finished removes what it wrote, so that the
    corrected command is not refused as "a different configuration"."""
    opts = opts or RunOptions()
    check_environment()
    if not opts.fresh:
        check_run_dir(cfg, spec.config_format, hint=opts.restart_hint)
    # (before any JAX computation: check_plan traces the models' shapes)
    cli.initialize_distributed()
    cli.check_backend()
    import jax

    if cfg.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    check_plan(spec, cfg)
    writer = jax.process_index() == 0
    resuming = os.path.exists(os.path.join(cfg.out, "config.json")) and not opts.fresh
    created, lock = start_dir(cfg, opts.fresh, resuming) if writer else ([], None)
    try:
        if resuming and writer:
            print(f"resuming the run in {cfg.out} (to start over: {opts.restart_hint})", flush=True)
        try:
            return _run_phases(spec, cfg, opts, command, writer, resuming)
        except BaseException:
            if writer and not resuming:
                undo_start(cfg, created)
            raise
    finally:
        if lock is not None:
            lock.release()


def check_environment() -> None:
    """The environment variables a run reads, checked before any work (UsageError naming the
    variable): the memory setting (``memory.check_environment``) and the multi-host settings
    (``cli.distributed_settings``)."""
    from grokjax import memory

    try:
        memory.check_environment()
    except ValueError as e:
        raise cli.UsageError(str(e)) from None
    cli.distributed_settings()


def _run_phases(
    spec: Spec, cfg, opts: RunOptions, command: str, writer: bool, resuming: bool
) -> int:
    from grokjax import results
    from grokjax.engine import Engine, Interrupted

    name = spec.name
    t0 = time.time()
    rows, runs, phases, engines = [], [], {}, {}

    with cli.StopSignals(name) as stop:
        try:
            plan = spec.plan(cfg)
            sent = None
            while True:
                try:
                    phase = plan.send(sent) if sent is not None else next(plan)
                except StopIteration:
                    break
                label = phase.label or f"[{phase.name}] "
                if stop():  # a signal that arrived while no phase was running
                    raise Interrupted(0, None, label)
                engine = engines.get(phase.static)
                if engine is None:
                    engine = engines[phase.static] = Engine(phase.static, lane_mode=opts.lane_mode)
                res = run_phase(
                    engine,
                    phase.meta,
                    cfg,
                    label=label,
                    name=phase.name,
                    opts=opts,
                    should_stop=stop,
                    writer=writer,
                )
                phases[phase.name] = res.stats
                new_rows = results.lane_rows(
                    phase.meta, res, lane_offset=len(rows) if phase.record else 0
                )
                if phase.record:
                    rows += new_rows
                    runs.append(res)
                sent = PhaseOutcome(new_rows, res)
        except Interrupted as e:
            where = (
                f"after step {e.step} of {e.label.strip()}; checkpoint written"
                if e.checkpoint_step is not None
                else f"before {e.label.strip()}; finished phases are saved"
            )
            print(
                f"{name}: stopped by {stop.name or 'request'} {where} in {cfg.out}\n"
                f"{name}: to resume, run the same command: {command}",
                file=sys.stderr,
                flush=True,
            )
            return stop.exit_code
    if not writer:
        return 0
    if not rows:
        raise cli.UsageError("no lanes were run (the plan yielded no phase)")
    # (from here on the run's results exist: a failure must not remove config.json)
    return _write_results(spec, cfg, rows, runs, phases, t0, resuming)


def _write_results(spec, cfg, rows, runs, phases, t0, resuming) -> int:
    from grokjax import results

    # (a resumed run directory that was moved now records where it is; the same bytes as the
    # config.json written at the start otherwise)
    results.write_json(os.path.join(cfg.out, "config.json"), dataclasses.asdict(cfg))
    results.write_lanes_csv(os.path.join(cfg.out, "lanes.csv"), rows)
    results.write_curves(os.path.join(cfg.out, "curves.npz"), runs)
    lanes = results.read_lanes_csv(os.path.join(cfg.out, "lanes.csv"))
    fitted = spec.fit(lanes, cfg)
    fitted["lane_steps_executed"] = int(sum(st["lane_steps_executed"] for st in phases.values()))
    fitted["lane_steps_needed"] = int(sum(st["lane_steps_needed"] for st in phases.values()))
    fitted["config_sha256"] = results.config_digest(dataclasses.asdict(cfg))
    results.write_json(os.path.join(cfg.out, "fit.json"), fitted)
    curves = dict(np.load(os.path.join(cfg.out, "curves.npz")))
    figs = spec.figure(lanes, fitted, curves, cfg.out) or []
    timing = timing_report(phases, time.time() - t0, resuming)
    results.write_json(os.path.join(cfg.out, "timing.json"), timing)
    print(spec.summary(fitted, cfg), flush=True)
    names = ["config.json", "lanes.csv", "curves.npz", "fit.json", "timing.json"] + [
        os.path.basename(f) for f in figs
    ]
    print(f"wrote {cfg.out}/{{{', '.join(names)}}} in {timing['wall_s']:.0f}s", flush=True)
    for d in corrupt_dirs(cfg.out):
        print(
            f"note: unreadable checkpoints were set aside in {d} (not used; delete it when "
            f"no longer needed)",
            flush=True,
        )
    return 0


def timing_report(phases: dict, wall_s: float, resumed: bool) -> dict:
    """The non-deterministic facts of a run (kept out of fit.json so that it is comparable)."""
    import jax

    out = {
        "wall_s": round(wall_s, 1),
        "resumed": bool(resumed),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": jax.local_device_count(),
        "processes": jax.process_count(),
        "phases": {},
    }
    for name, st in phases.items():
        out["phases"][name] = {
            "wall_s": round(float(st.get("wall_s", 0.0)), 2),
            "loaded_from_phase_file": bool(st.get("loaded", False)),
            "resumed_from_step": st.get("resumed_from_step"),
            "programs": st.get("programs"),
            "shards": st.get("shards"),
            "devices": st.get("devices"),
            "param_dtype": st.get("param_dtype"),
            "lane_mode": st.get("lane_mode"),
        }
    return out


def main_cli(spec: Spec, argv=None) -> int:
    """``main`` with configuration errors turned into one line on stderr and exit status 2."""
    return cli.main_guard(spec.name, lambda a: main(spec, a), argv)


def entry_points(spec: Spec) -> tuple[Callable, Callable]:
    """An experiment module's ``main`` (configuration errors raise UsageError) and
    ``main_cli`` (they become one line on stderr and exit status 2), bound to ``spec``:
    ``main, main_cli = experiment.entry_points(SPEC)``."""

    def spec_main(argv=None) -> int:
        return main(spec, argv)

    def spec_main_cli(argv=None) -> int:
        return main_cli(spec, argv)

    spec_main.__doc__ = f"Runs python -m experiments.{spec.name} with ``argv``."
    spec_main_cli.__doc__ = f"``main`` of {spec.name} with one-line errors and exit status 2."
    return spec_main, spec_main_cli
