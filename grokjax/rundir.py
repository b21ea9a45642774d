"""The run directory's lifecycle: refusing another configuration's directory, starting one
(locked, config.json written), undoing a failed start, moving one aside, telling it finished."""

from __future__ import annotations

import dataclasses
import json
import os
import time

from grokjax import cli
from grokjax.config import RESTART_HINT

COMPARED_EXCEPT = ("out",)  # a run directory may be moved and resumed under another path


def check_run_dir(cfg, config_format: int | None = None, hint: str = RESTART_HINT) -> None:
    """Refuses a run directory written by a different configuration or config format, or a
    non-empty directory that is not a run directory at all. ``hint`` says what to do instead
    (the entry point's own options)."""
    config_format = cfg.config_format if config_format is None else config_format
    path = os.path.join(cfg.out, "config.json")
    for sub in ("phases", "checkpoints"):
        p = os.path.join(cfg.out, sub)
        if os.path.lexists(p) and not os.path.isdir(p):
            raise cli.UsageError(
                f"{p} is not a directory (a run directory keeps its finished phases and "
                f"checkpoints there); {hint}"
            )
    if not os.path.exists(path):
        if os.path.isdir(cfg.out) and os.listdir(cfg.out):
            raise cli.UsageError(f"{cfg.out} is not empty and holds no config.json; {hint}")
        return
    try:
        with open(path) as f:
            old = json.load(f)
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError):
        raise cli.UsageError(f"{path} is unreadable; {hint}") from None
    if old.get("experiment", cfg.experiment) != cfg.experiment:
        raise cli.UsageError(
            f"{cfg.out} holds a run of experiment {old.get('experiment')!r}; {hint}"
        )
    if old.get("config_format", 1) != config_format:
        raise cli.UsageError(
            f"{cfg.out} was written by config format {old.get('config_format', 1)}, this "
            f"version writes format {config_format}; {hint}"
        )
    new = dataclasses.asdict(cfg)
    # a field that a run directory predates counts as its default (seed_base 0, ...)
    defaults = {f.name: getattr(type(cfg)(), f.name) for f in dataclasses.fields(cfg)}
    diff = sorted(
        k
        for k in set(old) | set(new)
        if k not in COMPARED_EXCEPT and old.get(k, defaults.get(k)) != new.get(k)
    )
    if diff:
        raise cli.UsageError(
            f"{cfg.out} holds a run with a different config (differs in: {', '.join(diff)}); {hint}"
        )


def is_complete(out: str) -> bool:
    """True when ``out`` holds the results of a finished run (fit.json is written last but
    one, before timing.json)."""
    return all(
        os.path.exists(os.path.join(out, f))
        for f in ("config.json", "lanes.csv", "curves.npz", "fit.json", "timing.json")
    )


def move_aside(out: str) -> str:
    """Renames ``out`` to ``<out>.old-<time>`` (never deletes anything); returns the new name."""
    base = f"{os.path.normpath(out)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    dest, k = base, 1
    while os.path.exists(dest):
        dest, k = f"{base}-{k}", k + 1
    os.replace(out, dest)
    return dest


def start_dir(cfg, fresh: bool, resuming: bool = False) -> tuple:
    """Moves an old run aside (``fresh``), creates ``cfg.out``, locks it against a second
    process (``cli.DirLock``) and writes config.json (not when ``resuming``: a resumed run
    directory keeps its config.json, with its ``out``, until the run finishes). Returns the
    directories it created (deepest last, for ``undo_start``) and the lock. A directory that
    cannot be created, written or locked is a one-line UsageError and leaves nothing behind."""
    from grokjax import results

    created, lock = [], None
    try:
        if fresh and os.path.exists(cfg.out):
            cli.DirLock(cfg.out).acquire().release()  # not while another process runs in it
            print(f"--fresh: moved the existing {cfg.out} to {move_aside(cfg.out)}", flush=True)
        missing, d = [], os.path.abspath(cfg.out)
        while not os.path.exists(d):
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            os.mkdir(d)
            created.append(d)
        lock = cli.DirLock(cfg.out).acquire()
        if not resuming:
            results.write_json(os.path.join(cfg.out, "config.json"), dataclasses.asdict(cfg))
    except (OSError, cli.UsageError) as e:
        if lock is not None:
            lock.release()
        undo_start(cfg, created, wrote_config=False)
        if isinstance(e, cli.UsageError):
            raise
        raise cli.UsageError(f"--out {cfg.out}: {e.strerror or e}") from None
    return created, lock


def undo_start(cfg, created: list, wrote_config: bool = True) -> None:
    """Removes what a start that failed before any lane work wrote: its config.json (only if
    nothing else is in the directory) and the directories it created (only if empty)."""
    try:
        left = os.listdir(cfg.out) if os.path.isdir(cfg.out) else []
        if wrote_config and left == ["config.json"]:
            os.remove(os.path.join(cfg.out, "config.json"))
        for d in reversed(created):
            os.rmdir(d)
    except OSError:
        pass


def corrupt_dirs(out: str) -> list:
    """The ``<phase>.corrupt`` directories of unreadable checkpoints set aside in ``out``."""
    base = os.path.join(out, "checkpoints")
    if not os.path.isdir(base):
        return []
    return sorted(os.path.join(base, d) for d in os.listdir(base) if d.endswith(".corrupt"))
