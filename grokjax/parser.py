"""An experiment's command line: the parser of its configuration flags and run options."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from grokjax import cli
from grokjax.config import (
    GEOMETRIC_POINTS,
    BaseConfig,
    RunOptions,
    Spec,
    config_for,
    declared,
    listed,
    repeatable,
)

BASE_FIELDS = tuple(f.name for f in dataclasses.fields(BaseConfig))


def make_parser(spec: Spec) -> cli.Parser:
    """The command line of ``spec``: --preset, its configuration flags and the run options."""
    ap = cli.Parser(
        prog=f"python -m experiments.{spec.name}", description=(spec.doc or "").split("\n\n")[0]
    )
    ap.add_argument(
        "--preset",
        default="quick",
        metavar="{" + ",".join(spec.presets) + "}",
        help="the configuration every other flag overrides (default: quick)",
    )
    (spec.add_arguments or field_arguments(spec.config_cls))(ap)
    ap.add_argument("--dtype", help="float32 (default) or float64 (the whole program in float64)")
    ap.add_argument("--op", help="operation (default add)")
    ap.add_argument(
        "--seed-base",
        dest="seed_base",
        type=int,
        help="first seed (default 0 or the preset's): seeds are seed_base, "
        "seed_base+1, ... so a run can draw a fresh seed set",
    )
    ap.add_argument(
        "--eval-schedule",
        dest="eval_schedule",
        help="every (default: T_grok latched at every eval, every 10 steps) or "
        f"geometric (the paper's {GEOMETRIC_POINTS}-point geometric grid over "
        "each lane's budget)",
    )
    ap.add_argument(
        "--loss",
        help="log_softmax (default, as the paper's cross-entropy) or margin (the same loss as "
        "softplus(logsumexp_{j≠y}(z_j − z_y)): no softmax collapse in float32)",
    )
    ap.add_argument(
        "--chunk-steps",
        dest="chunk_steps",
        type=int,
        help="steps per jitted call between host checks (default 500; part of the "
        "configuration: it decides when lanes are re-packed)",
    )
    ap.add_argument(
        "--out",
        help=f"run directory (default runs/{spec.name}-<preset>); an "
        "existing one with the same configuration is resumed",
    )
    add_run_options(ap)
    _show_choices_and_defaults(ap, spec)
    return ap


def add_run_options(ap) -> None:
    """The flags of ``RunOptions``: how the job runs, not what it computes."""
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="move an existing run directory aside (to <out>.old-<time>) and start "
        "over instead of resuming it",
    )
    ap.add_argument(
        "--checkpoint-every-chunks",
        dest="checkpoint_every_chunks",
        type=int,
        default=0,
        help="checkpoint every N chunks (default 0: by time only)",
    )
    ap.add_argument(
        "--checkpoint-minutes",
        dest="checkpoint_minutes",
        type=float,
        default=5.0,
        help="checkpoint at least every M minutes of training (default 5; 0: off)",
    )
    ap.add_argument(
        "--keep-checkpoints",
        dest="keep_checkpoints",
        type=int,
        default=3,
        help="checkpoints kept per phase (default 3)",
    )
    ap.add_argument(
        "--lane-mode",
        dest="lane_mode",
        default="auto",
        metavar="{auto,walk,vmap}",
        help="auto (default: walk on one CPU device, else vmap), walk (the host "
        "runs one lane's program per lane) or vmap (all lanes in one program)",
    )


def _preset_value(spec: Spec, preset: str, name: str):
    cfg = spec.config_cls()
    return spec.presets.get(preset, {}).get(name, getattr(cfg, name, None))


def _shown(v) -> str:
    if isinstance(v, (list, tuple)):
        return listed(v) if v else "none"
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _show_choices_and_defaults(ap, spec: Spec) -> None:
    """--help of every configuration flag shows its choices (``CHOICES``, as {a,b}) and its
    value in the default preset, and in the other presets where that differs."""
    choices = declared(spec.config_cls, "CHOICES")
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    for action in ap._actions:
        name = action.dest
        if name not in fields or name in ("preset", "out"):
            continue
        if name in choices and action.metavar is None:
            action.metavar = "{" + ",".join(choices[name]) + "}"
        if action.help and "default" in action.help:
            continue
        vals = {p: _shown(_preset_value(spec, p, name)) for p in spec.presets}
        first = next(iter(vals)) if "quick" not in vals else "quick"
        others = [f"{p}: {v}" for p, v in vals.items() if p != first and v != vals[first]]
        default = f"default: {vals[first]}" + (f"; {', '.join(others)}" if others else "")
        action.help = f"{action.help or ''} ({default})".strip()


def parse_run_args(spec: Spec, argv) -> tuple[Any, RunOptions]:
    """The configuration and run options of a command line, validated (UsageError if not)."""
    args = make_parser(spec).parse_args(argv)
    fields = {f.name for f in dataclasses.fields(spec.config_cls)} - {
        "experiment",
        "config_format",
        "preset",
        "out",
    }
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.out is not None:
        cli.check_writable(args.out, "--out")  # (an empty --out is refused, not the default)
    cfg = config_for(spec, args.preset, args.out or "", **overrides)
    opts = RunOptions(
        fresh=args.fresh,
        checkpoint_every_chunks=args.checkpoint_every_chunks,
        checkpoint_minutes=args.checkpoint_minutes,
        keep_checkpoints=args.keep_checkpoints,
        lane_mode=args.lane_mode,
    )
    opts.validate()
    return cfg, opts


def field_arguments(cfg_cls, helps: dict | None = None, skip: tuple = ()) -> Callable:
    """An ``add_arguments`` that adds ``--field-name`` for every field of ``cfg_cls`` beyond
    :class:`BaseConfig`'s and ``skip`` (lists comma-separated; the element type from the
    annotation, ``list[int]``, or else from the default)."""
    helps = helps or {}

    def add(ap) -> None:
        cfg = cfg_cls()
        rep = repeatable(cfg)
        for f in dataclasses.fields(cfg_cls):
            if f.name in BASE_FIELDS or f.name in skip:
                continue
            v = getattr(cfg, f.name)
            ann = str(f.type).replace(" ", "")  # e.g. "list[int]", "int|None": says more than
            if ann.startswith("list[") and ann.endswith("]"):  # an empty or None default
                v = v if v else {"int": [0], "float": [0.0], "str": [""]}.get(ann[5:-1], [])
            elif v is None:
                parts = set(ann.split("|"))
                v = 0 if "int" in parts else 0.0 if "float" in parts else v
            if isinstance(v, list):
                ints = v and all(isinstance(x, int) for x in v)
                if f.name in rep:
                    typ = cli.int_values if ints else cli.float_values
                else:
                    typ = cli.ints if ints else cli.floats
                if v and all(isinstance(x, str) for x in v):
                    typ = cli.strings
            elif isinstance(v, bool):
                typ = cli.boolean
            elif isinstance(v, int):
                typ = int
            elif isinstance(v, float):
                typ = float
            else:
                typ = str
            ap.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                type=typ,
                help=helps.get(f.name, "overrides the preset's value"),
            )

    return add
