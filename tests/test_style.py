"""One style across the tree: ``ruff format`` and ``ruff check`` as configured in pyproject.toml.

Fix a failure with ``ruff format . && ruff check --fix .`` from the repository root.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_tree_is_formatted():
    r = _ruff("format", "--check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_tree_passes_lint():
    r = _ruff("check", ".")
    assert r.returncode == 0, r.stdout + r.stderr
