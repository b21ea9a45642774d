"""Orbax checkpoints of a running lane program, written between chunks.

One checkpoint holds three items, so that a run can continue exactly where it stopped:

* ``state`` -- the stacked lane state as the device holds it (params, optimizer state, step,
  latches, per-lane data split), one array per leaf named by its path, in the current slot
  layout and with its sharding; PRNG key leaves (if any) as raw key data;
* ``host``  -- the engine's host-side arrays: the slot -> lane map, which slots are real,
  per-lane end steps and activity flags, host copies of the latches and the curves so far;
* ``meta``  -- JSON: format version, the run's fingerprint (static config, lanes, chunking),
  step, lane-steps executed, program sizes used, wall time so far.

Saves are asynchronous (Orbax copies the arrays to host before ``save`` returns, so the next
chunk may donate them) and keep the newest ``Policy.keep``. Restore walks from the newest
checkpoint back, moving unreadable ones aside (``<dir>.corrupt/``) and saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import logging
import os
import re
import shutil
import time
from typing import Callable

import jax
import numpy as np

FORMAT = 1


class CheckpointMismatch(ValueError):
    """A readable checkpoint that belongs to a different run (other lanes or settings)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a file too large, no permission): one
    line naming the directory and the cause; the partial checkpoint has been removed."""


class _OrbaxErrors(logging.Filter):
    """Keeps Orbax's own ERROR records (a failed background save logs a traceback per thread)
    off stderr while a checkpointer that reports the failure itself in one line is open."""

    def __init__(self):
        super().__init__()
        self.records: list = []

    def filter(self, record) -> bool:
        if record.levelno >= logging.ERROR and "orbax" in (record.pathname or ""):
            self.records.append(record)
            return False
        return True


class _OrbaxTasks(logging.Filter):
    """Keeps asyncio's "Task exception was never retrieved" records of Orbax's own write tasks
    off stderr. A failed background save can leave Orbax tasks (``async_serialize_from_host``)
    whose exception nobody retrieves; asyncio logs each whenever it is collected, which may be
    long after the checkpointer closed (at exit, say). The failure itself has already been
    reported in one line, so these records only repeat it as tracebacks. Once a save has
    failed in this process, the filter stays on for good."""

    sticky = False

    def filter(self, record) -> bool:
        text = record.getMessage()
        return not ("never retrieved" in text and "orbax" in text)


_ORBAX_TASKS = _OrbaxTasks()


def _write_error(directory: str, e: BaseException) -> CheckpointWriteError:
    """The one-line error of a failed save: the OS error behind Orbax's wrapping, if any."""
    text = " ".join(str(e).split())
    code = None
    cur: BaseException | None = e
    while cur is not None and code is None:
        if isinstance(cur, OSError) and cur.errno:
            code = cur.errno
        cur = cur.__cause__ or cur.__context__
    if code is None:
        m = re.search(r"os_error_code='?(\d+)", text)
        code = int(m.group(1)) if m else None
    if code is None:
        for c in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EROFS):
            if os.strerror(c) in text:
                code = c
                break
    why = os.strerror(code) if code else (text[:200] or type(e).__name__)
    return CheckpointWriteError(
        code or errno.EIO,
        f"{why} (while saving a checkpoint; the partial one was removed)",
        directory,
    )


@dataclasses.dataclass(frozen=True)
class Policy:
    """When to checkpoint: every ``every_chunks`` chunks or ``every_minutes`` minutes
    (whichever comes first; 0 switches a criterion off), keeping the newest ``keep``."""

    every_chunks: int = 0
    every_minutes: float = 5.0
    keep: int = 3

    def validate(self) -> None:
        if self.every_chunks < 0:
            raise ValueError(f"checkpoint interval in chunks must be >= 0, got {self.every_chunks}")
        if not self.every_minutes >= 0:
            raise ValueError(
                f"checkpoint interval in minutes must be >= 0, got {self.every_minutes}"
            )
        if self.keep < 1:
            raise ValueError(f"must keep at least one checkpoint, got {self.keep}")

    def due(self, chunks_since: int, seconds_since: float) -> bool:
        by_count = self.every_chunks > 0 and chunks_since >= self.every_chunks
        by_time = self.every_minutes > 0 and seconds_since >= 60 * self.every_minutes
        return by_count or by_time


def _name(path) -> str:
    parts = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(tree) -> dict:
    """``{path name: leaf}``; typed PRNG keys become their raw key data."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        flat[_name(path)] = jax.random.key_data(leaf) if _is_key(leaf) else leaf
    return flat


def unflatten(like, flat: dict):
    """Inverse of ``flatten`` given a tree (or abstract tree) of the same structure."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, ref in paths:
        v = flat[_name(path)]
        if _is_key(ref):
            v = jax.random.wrap_key_data(v, impl=jax.random.key_impl(ref))
        leaves.append(v)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def abstract(tree, sharding=None) -> dict:
    """Restore target for ``flatten(tree)``: ShapeDtypeStructs, with ``sharding`` if given."""

    def leaf(x):
        if _is_key(x):
            x = jax.eval_shape(jax.random.key_data, x)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return {k: leaf(v) for k, v in flatten(tree).items()}


class LaneCheckpointer:
    """Saves and restores the checkpoints of one lane program in ``directory``.

    Only process 0 writes; every process can restore. With several processes the lane state
    spans every process's devices: the engine gathers it to host arrays on every process before
    saving (``host_local``), process 0 saves those, and on restore every process reads the host
    arrays and puts its own shards back on its devices.
    """

    def __init__(self, directory: str, policy: Policy = Policy(), log: Callable | None = print):
        policy.validate()
        self.directory = os.path.abspath(directory)
        self.policy = policy
        self.log = log or (lambda s: None)
        self.writer = jax.process_index() == 0
        self.host_local = jax.process_count() > 1
        self._mngr = None
        self._last_save = time.monotonic()
        self._chunks_since = 0
        self.saved_steps: list[int] = []
        self._failed: CheckpointWriteError | None = None
        self._quiet: _OrbaxErrors | None = None

    # -- Orbax plumbing -------------------------------------------------------------------------
    def _manager(self):
        if self._mngr is None:
            import orbax.checkpoint as ocp
            from orbax.checkpoint.checkpoint_managers import preservation_policy

            pid = jax.process_index()
            if self.writer:
                os.makedirs(self.directory, exist_ok=True)
            options = ocp.CheckpointManagerOptions(
                preservation_policy=preservation_policy.LatestN(self.policy.keep),
                create=False,
                cleanup_tmp_directories=self.writer,
                read_only=not self.writer,
                enable_async_checkpointing=True,
                multiprocessing_options=ocp.options.MultiprocessingOptions(
                    primary_host=pid, active_processes={pid}
                ),
            )
            self._mngr = ocp.CheckpointManager(
                self.directory, options=options, item_names=("state", "host", "meta")
            )
            if self.writer and self._quiet is None:
                self._quiet = _OrbaxErrors()
                logging.getLogger("absl").addFilter(self._quiet)
                logging.getLogger("asyncio").addFilter(_ORBAX_TASKS)
        return self._mngr

    @contextlib.contextmanager
    def _writing(self):
        """Turns a failed save (now or in the background, seen at the next save, wait or close)
        into one :class:`CheckpointWriteError` and removes the partial checkpoint; after that,
        closing does not raise again."""
        if self._failed is not None:
            raise self._failed
        try:
            yield
        except Exception as e:  # noqa: BLE001 -- Orbax wraps the OS error in its own types
            self._failed = (
                e if isinstance(e, CheckpointWriteError) else _write_error(self.directory, e)
            )
            _ORBAX_TASKS.sticky = True
            self._drop_partial()
            raise self._failed from None

    def _drop_partial(self) -> None:
        """Removes the temporary directories of unfinished saves (``*.orbax-checkpoint-tmp*``)."""
        if not (self.writer and os.path.isdir(self.directory)):
            return
        for name in os.listdir(self.directory):
            if "orbax-checkpoint-tmp" in name:
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

    def steps(self) -> list[int]:
        if not os.path.isdir(self.directory):
            return []
        m = self._manager()
        m.reload()
        return sorted(m.all_steps())

    # -- saving -----------------------------------------------------------------------------------
    def tick(self) -> bool:
        """Counts one finished chunk; True when the policy says a checkpoint is due."""
        self._chunks_since += 1
        return self.policy.due(self._chunks_since, time.monotonic() - self._last_save)

    def save(self, step: int, state, host: dict, meta: dict) -> None:
        """Starts an asynchronous save of ``state`` (device arrays), ``host`` and ``meta``."""
        self._chunks_since, self._last_save = 0, time.monotonic()
        if not self.writer:
            return
        import orbax.checkpoint as ocp

        m = self._manager()
        meta = dict(meta, format=FORMAT, step=int(step))
        flat = flatten(state)
        if self.host_local:
            flat = jax.device_get(flat)
        with self._writing():
            m.save(
                int(step),
                force=True,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(flat),
                    host=ocp.args.StandardSave(host),
                    meta=ocp.args.JsonSave(meta),
                ),
            )
        self.saved_steps.append(int(step))

    def wait(self) -> None:
        if self._mngr is not None:
            with self._writing():
                self._mngr.wait_until_finished()

    def close(self) -> None:
        try:
            if self._mngr is not None:
                if self._failed is None:
                    with self._writing():
                        self._mngr.close()
                else:  # the failure was reported; closing only releases what it holds
                    with contextlib.suppress(Exception):
                        self._mngr.close()
                    self._drop_partial()
        finally:
            self._mngr = None
            if self._quiet is not None:
                logging.getLogger("absl").removeFilter(self._quiet)
                self._quiet = None
                if not _ORBAX_TASKS.sticky:  # after a failure, stray write tasks outlive us
                    logging.getLogger("asyncio").removeFilter(_ORBAX_TASKS)

    def discard(self) -> None:
        """Closes and deletes the checkpoints (once the caller has persisted the results)."""
        self.close()
        if self.writer and os.path.isdir(self.directory):
            shutil.rmtree(self.directory)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- restoring --------------------------------------------------------------------------------
    def restore(self, fingerprint: str, target: Callable[[dict], dict]):
        """Restores the newest readable checkpoint.

        Args:
          fingerprint: the run's fingerprint; a checkpoint with another one raises
            ``CheckpointMismatch`` (it belongs to other lanes or settings).
          target: ``meta -> {name: ShapeDtypeStruct}``, the restore target of the state (each
            with the sharding to restore into).

        Returns:
          ``(meta, flat_state, host)``, or None when there is no readable checkpoint. The state
          leaves are device arrays, or numpy arrays with several processes (``host_local``).
        """
        with _quiet_restore():
            return self._restore(fingerprint, target)

    def _restore(self, fingerprint: str, target: Callable[[dict], dict]):
        import orbax.checkpoint as ocp

        steps = list(reversed(self.steps()))
        for i, step in enumerate(steps):
            m = self._manager()
            earlier = i + 1 < len(steps)
            try:
                meta = m.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
                if meta.get("format") != FORMAT or meta.get("step") != step:
                    raise ValueError(
                        f"format {meta.get('format')} / step {meta.get('step')} in its metadata"
                    )
            except Exception as e:  # noqa: BLE001 -- any unreadable checkpoint falls back
                self._set_aside(step, e, earlier)
                continue
            if meta.get("fingerprint") != fingerprint:
                raise CheckpointMismatch(
                    f"checkpoint {self.directory}/{step} was written for other lanes or settings "
                    f"(code or configuration changed)"
                )
            try:
                abs_state = target(meta)
                state_args = ocp.args.StandardRestore(None if self.host_local else abs_state)
                r = m.restore(
                    step, args=ocp.args.Composite(state=state_args, host=ocp.args.StandardRestore())
                )
                flat, host = dict(r["state"]), _to_numpy(r["host"])
                _check(meta, flat, host, abs_state)
            except Exception as e:  # noqa: BLE001
                self._set_aside(step, e, earlier)
                continue
            return meta, flat, host
        return None

    def _set_aside(self, step: int, err: Exception, earlier: bool = True) -> None:
        msg = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        where = ""
        if self.writer:
            corrupt = self.directory + ".corrupt"
            os.makedirs(corrupt, exist_ok=True)
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            dest = os.path.join(corrupt, f"{step}-{stamp}")
            os.replace(os.path.join(self.directory, str(step)), dest)
            where = f", moved to {dest}"
        then = (
            "falling back to the previous one"
            if earlier
            else "no readable checkpoint is left, so this phase starts again from step 0"
        )
        self.log(f"checkpoint {self.directory}/{step} is unreadable ({msg}){where}; {then}")
        if self._mngr is not None:
            self._mngr.reload()


_LOOP_CLOSED = "Event loop is closed"
_hook_installed = False


def _drop_closed_loop(previous):
    """An unraisable hook that drops TensorStore's late callbacks into the event loop Orbax
    closed after a failed read (one traceback per pending read, all noise) and passes on
    everything else."""

    def hook(u):
        if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == _LOOP_CLOSED:
            return
        previous(u)

    return hook


class _quiet_restore:
    """While restoring: absl's ERROR lines about unreadable files off (the restore reports each
    unreadable checkpoint in one line itself), TensorStore's closed-loop callbacks dropped."""

    def __enter__(self):
        import logging
        import sys

        global _hook_installed
        if not _hook_installed:  # (they arrive asynchronously, also after the restore returned)
            sys.unraisablehook = _drop_closed_loop(sys.unraisablehook)
            _hook_installed = True
        self._logger = logging.getLogger("absl")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)
        return self

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)


def _to_numpy(tree):
    return jax.tree.map(np.asarray, tree)


def _check(meta: dict, flat: dict, host: dict, abs_state) -> None:
    """Consistency checks that catch a checkpoint whose files do not belong together."""
    size = int(meta["size"])
    if np.shape(host["slots"]) != (size,) or np.shape(host["real"]) != (size,):
        raise ValueError("slot map does not match the state size")
    for k, v in flat.items():
        if np.shape(v)[:1] != (size,):
            raise ValueError(f"state leaf {k} has shape {np.shape(v)}, expected {size} lanes")
    if set(abs_state) != set(flat):
        raise ValueError("state leaves differ from the program's")
    for k, a in abs_state.items():
        if tuple(np.shape(flat[k])) != tuple(a.shape) or np.dtype(flat[k].dtype) != np.dtype(
            a.dtype
        ):
            raise ValueError(
                f"state leaf {k} is {flat[k].dtype}{list(np.shape(flat[k]))}, "
                f"expected {a.dtype}{list(a.shape)}"
            )
