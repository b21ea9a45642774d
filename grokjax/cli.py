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


def _value(v):
    """A list entry as a value: numbers as floats; a string as the tuple of its ``:``-separated
    parts, each a float where it reads as one ('unembed:1.0' and 'unembed:1' are one value)."""
    if not isinstance(v, str):
        return (float(v),)
    parts = []
    for part in v.split(":"):
        part = part.strip()
        try:
            parts.append(float(part))
        except ValueError:
            parts.append(part)
    return tuple(parts)


def _close(a, b) -> bool:
    """Equal as list entries, compared by value (see ``_value``): the same words, and numbers
    as close as numpy.isclose says (the tolerance the fits use to pick a cell's lanes, so that
    such values would pool)."""
    a, b = _value(a), _value(b)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif not (x == y or abs(x - y) <= 1e-8 + 1e-5 * abs(y)):
            return False
    return True


def same_value(a, b) -> bool:
    """True when ``a`` and ``b`` are one value as list entries (``_close``): how every list
    flag's repeats and every 'must be one of --x' check compare."""
    return _close(a, b)


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


def distributed_settings(environ=None) -> dict | None:
    """The multi-host settings of the environment, checked (UsageError, one line), or None
    when the job runs on one host.

    Multi-host mode is on when ``GROKJAX_DISTRIBUTED`` is true or ``JAX_COORDINATOR_ADDRESS``
    is set. Returns the keyword arguments for ``jax.distributed.initialize``: the coordinator
    address (host:port), the process count and this process's id where the environment gives
    them (JAX finds them itself on Cloud TPU, SLURM, Open MPI and Kubernetes)."""
    environ = os.environ if environ is None else environ
    flag = environ.get("GROKJAX_DISTRIBUTED", "").strip().lower()
    if flag not in ("", "0", "false", "no", "off", "1", "true", "yes", "on"):
        raise UsageError(f"GROKJAX_DISTRIBUTED must be 1 or 0, got {flag!r}")
    address = environ.get("JAX_COORDINATOR_ADDRESS", "").strip()
    if flag not in ("1", "true", "yes", "on") and not address:
        return None
    kw = {}
    if address:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"JAX_COORDINATOR_ADDRESS must be host:port (port 1-65535), got {address!r}"
            )
        kw["coordinator_address"] = address
    for var, key, lo in (
        ("JAX_NUM_PROCESSES", "num_processes", 1),
        ("JAX_PROCESS_ID", "process_id", 0),
    ):
        text = environ.get(var, "").strip()
        if not text:
            continue
        try:
            kw[key] = int(text)
        except ValueError:
            raise UsageError(f"{var} must be an integer, got {text!r}") from None
        if kw[key] < lo:
            raise UsageError(f"{var} must be >= {lo}, got {kw[key]}")
    if "process_id" in kw and "num_processes" in kw and kw["process_id"] >= kw["num_processes"]:
        raise UsageError(
            f"JAX_PROCESS_ID must be below JAX_NUM_PROCESSES ({kw['num_processes']}), "
            f"got {kw['process_id']}"
        )
    return kw


def initialize_distributed(environ=None) -> bool:
    """Calls ``jax.distributed.initialize()`` when the job is launched on several hosts.

    Multi-host mode is on when ``GROKJAX_DISTRIBUTED=1`` or ``JAX_COORDINATOR_ADDRESS`` is set.
    JAX then finds the coordinator, process count and process id itself on Cloud TPU, SLURM,
    Open MPI and Kubernetes; elsewhere set ``JAX_COORDINATOR_ADDRESS`` (host:port of process
    0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on every process. Call it before any other
    JAX work (``experiment.run`` does, before its checks trace the models). Returns True when
    it initialized the distributed runtime; a setting it cannot use, or a runtime that cannot
    be joined, is a one-line UsageError.
    """
    kw = distributed_settings(environ)
    if kw is None:
        return False
    import jax

    if jax.distributed.is_initialized():
        return False
    try:
        jax.distributed.initialize(**kw)
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = (
            "; where JAX cannot detect the cluster, set JAX_COORDINATOR_ADDRESS (host:port of "
            "process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID on every process"
            if "coordinator_address" not in kw
            else ""
        )
        raise UsageError(
            f"cannot join the multi-host job ({_describe(kw)}): {first}{hint}"
        ) from None
    return True


def _describe(kw: dict) -> str:
    names = {
        "coordinator_address": "JAX_COORDINATOR_ADDRESS",
        "num_processes": "JAX_NUM_PROCESSES",
        "process_id": "JAX_PROCESS_ID",
    }
    return ", ".join(f"{names[k]}={v}" for k, v in kw.items()) or "settings detected by JAX"


def check_backend() -> None:
    """UsageError (one line) unless JAX can start a backend: ``JAX_PLATFORMS=cuda`` on a machine
    without a GPU makes every JAX call fail, some with a bare AssertionError."""
    import jax

    try:
        jax.devices()
    except Exception as e:  # noqa: BLE001 -- any failure to start is reported the same way
        why = (str(e).strip().splitlines() or [""])[0] or type(e).__name__
        platforms = os.environ.get("JAX_PLATFORMS", "")
        raise UsageError(
            f"JAX cannot start a backend (JAX_PLATFORMS={platforms!r}): {why}; unset "
            f"JAX_PLATFORMS or install that platform's jax plugin"
        ) from None


class DirLock:
    """An exclusive lock on a run directory for as long as the job runs: a second process on
    the same ``--out`` is refused in one line instead of running the whole job again beside
    the first. The lock is ``flock`` on the directory itself (no file is written; the kernel
    releases it when the process ends, however it ends)."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> "DirLock":
        import fcntl

        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(
                f"{self.path} is in use by another process running this job; wait for it "
                f"to finish or pick another --out"
            ) from None
        except OSError:  # a file system without locks: run unlocked, as before
            pass
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
