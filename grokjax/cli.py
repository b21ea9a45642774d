"""Command-line plumbing shared by the experiments: one-line errors, list parsing, stopping on
SIGTERM / SIGINT between chunks, and multi-host start-up."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


class UsageError(ValueError):
    """A configuration error reported to the user as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit 2 (no usage dump)."""

    def error(self, message):  # noqa: D102
        raise UsageError(message)


def floats(text: str) -> list[float]:
    """'0.85,1,1.15' -> [0.85, 1.0, 1.15]."""
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return vals


def ints(text: str) -> list[int]:
    """'41,59' -> [41, 59]."""
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return vals


def main_guard(prog: str, main, argv=None) -> int:
    """Runs ``main(argv)``; a UsageError/ValueError in set-up becomes one line and exit 2."""
    try:
        return main(argv) or 0
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


class StopSignals:
    """Turns the first SIGTERM / SIGINT into a polite request to stop.

    Inside ``with StopSignals() as stop:``, the first signal only sets a flag (``stop()`` is
    then True) and prints one line; the lane runner polls it between chunks, writes a
    checkpoint and stops. A second signal of the same kind acts as usual (SIGTERM kills,
    SIGINT raises KeyboardInterrupt). Outside the main thread it installs nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, prog: str = ""):
        self.prog = prog
        self.signum: int | None = None
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def _handle(self, signum, frame):  # noqa: ARG002
        self.signum = signum
        if signum in self._old:
            signal.signal(signum, self._old[signum])
        msg = (f"{self.prog + ': ' if self.prog else ''}received {self.name}: finishing the "
               f"current chunk, then writing a checkpoint (send it again to quit at once)\n")
        try:
            os.write(sys.stderr.fileno(), msg.encode())
        except (OSError, ValueError):
            pass

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it (143, 130)."""
        return 128 + (self.signum or signal.SIGTERM)


def initialize_distributed(environ=None) -> bool:
    """Calls ``jax.distributed.initialize()`` when the job is launched on several hosts.

    Multi-host mode is on when ``GROKJAX_DISTRIBUTED=1`` or ``JAX_COORDINATOR_ADDRESS`` is set.
    JAX then finds the coordinator, process count and process id itself on Cloud TPU, SLURM,
    Open MPI and Kubernetes; elsewhere set ``JAX_COORDINATOR_ADDRESS`` (host:port of process
    0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on every process. Call it before any other
    JAX work. Returns True when it initialized the distributed runtime.
    """
    environ = os.environ if environ is None else environ
    on = environ.get("GROKJAX_DISTRIBUTED", "").lower() in ("1", "true", "yes")
    if not (on or environ.get("JAX_COORDINATOR_ADDRESS")):
        return False
    import jax
    if jax.distributed.is_initialized():
        return False
    kw = {}
    try:
        if environ.get("JAX_NUM_PROCESSES"):
            kw["num_processes"] = int(environ["JAX_NUM_PROCESSES"])
        if environ.get("JAX_PROCESS_ID"):
            kw["process_id"] = int(environ["JAX_PROCESS_ID"])
    except ValueError:
        raise UsageError("JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers") from None
    jax.distributed.initialize(**kw)
    return True
