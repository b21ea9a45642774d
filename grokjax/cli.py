"""Command-line plumbing shared by the experiments: one-line errors, list parsing."""

from __future__ import annotations

import argparse
import sys


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
