"""Command-line plumbing shared by the experiments: one-line errors, list parsing, stopping on
SIGTERM / SIGINT between chunks, and multi-host start-up."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading

INT32_MAX = 2**31 - 1


class UsageError(ValueError):
    """A configuration error reported to the user as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit 2 (no usage dump).

    Abbreviated options are off: ``--seed 3`` must not silently mean ``--seeds 3`` (nor
    ``--seed-base``), and a flag added later must not change what an old command line means.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):  # noqa: D102
        raise UsageError(message)


def _close(a, b) -> bool:
    """Equal as list entries: the same string, or numbers as close as numpy.isclose says
    (the tolerance the fits use to pick a cell's lanes, so that such values would pool)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)


def duplicates(values) -> list:
    """The entries of ``values`` that repeat an earlier one (see ``_close``)."""
    out = []
    for i, v in enumerate(values):
        if any(_close(v, u) for u in values[:i]) and not any(_close(v, u) for u in out):
            out.append(v)
    return out


def _split(text: str, conv, what: str, unique: bool) -> list:
    try:
        vals = [conv(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
    dup = duplicates(vals) if unique else []
    if dup:
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(str, dup))} given twice in {text!r} (each value is one cell)"
        )
    return vals


def floats(text: str) -> list[float]:
    """'0.85,1,1.15' -> [0.85, 1.0, 1.15]; a repeated value is refused ('' is [])."""
    return _split(text, float, "numbers", True)


def ints(text: str) -> list[int]:
    """'41,59' -> [41, 59]; a repeated value is refused ('' is [])."""
    return _split(text, int, "integers", True)


def strings(text: str) -> list[str]:
    """'embed,out' -> ['embed', 'out']; a repeated value is refused ('' is [])."""
    return _split(text, str.strip, "names", True)


def float_values(text: str) -> list[float]:
    """Like ``floats`` but values may repeat (a list paired position by position with another,
    e.g. the step budgets of --budget-rho)."""
    return _split(text, float, "numbers", False)


def int_values(text: str) -> list[int]:
    """Like ``ints`` but values may repeat."""
    return _split(text, int, "integers", False)


def boolean(text: str) -> bool:
    """'1'/'true'/'yes' -> True, '0'/'false'/'no' -> False; anything else is refused."""
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def check_writable(path: str, flag: str = "--out") -> None:
    """UsageError unless ``path`` is, or could be created as, a directory this process may
    write to (nothing is written: the nearest existing ancestor is inspected)."""
    if not path:
        raise UsageError(f"{flag}: empty path")
    full = os.path.abspath(path)
    if len(os.fsencode(full)) >= 4096:
        raise UsageError(f"{flag} {path}: path too long ({len(full)} characters)")
    if os.path.lexists(full) and not os.path.isdir(full):
        raise UsageError(f"{flag} {path} is a file, not a directory")
    probe, missing = full, []
    while not os.path.lexists(probe):
        probe, tail = os.path.split(probe)
        missing.append(tail)
    if not os.path.isdir(probe):
        raise UsageError(f"{flag} {path}: {probe} is a file, not a directory")
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in missing:
        if len(os.fsencode(part)) > name_max:
            raise UsageError(
                f"{flag} {path}: the name {part[:40]}... is longer than the "
                f"{name_max} characters this file system allows"
            )
    try:
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only or not os.access(probe, os.W_OK | os.X_OK):
        what = "a read-only file system" if read_only else "not writable"
        raise UsageError(f"{flag} {path}: {probe} is {what}")


def os_error_line(e: OSError) -> str:
    """An OSError as one line: what failed, on which file, why."""
    name = f" {e.filename}" if getattr(e, "filename", None) else ""
    why = e.strerror or errno.errorcode.get(e.errno or 0, "") or str(e)
    return f"cannot write or read{name}: {why}"


def main_guard(prog: str, main, argv=None) -> int:
    """Runs ``main(argv)``; a UsageError (a bad input), an OSError (a file that cannot be read
    or written) or a MemoryError becomes one line on stderr and exit status 2."""
    try:
        return main(argv) or 0
    except UsageError as e:
        msg = " ".join(str(e).split("\n"))
    except OSError as e:
        msg = os_error_line(e)
    except MemoryError:
        msg = "out of memory (lower the lane count, widths or p)"
    print(f"{prog}: error: {msg}", file=sys.stderr, flush=True)
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
        msg = (
            f"{self.prog + ': ' if self.prog else ''}received {self.name}: finishing the "
            f"current chunk, then writing a checkpoint (send it again to quit at once)\n"
        )
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
