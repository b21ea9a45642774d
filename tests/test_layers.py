"""The imports follow the data flow: experiment -> engine -> run directory -> fit -> report.

Reading stored results needs no JAX, and the library never imports the application.
"""

import ast
import glob
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the modules that build or run programs; every other grokjax module imports without JAX
NEEDS_JAX = {"lane", "engine", "book", "hostloop", "models", "optim", "data", "checkpoint"}
BLOCK = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("jax", "jaxlib", "flax", "optax", "orbax"):
                raise ImportError("JAX is blocked in this test: " + name)
    sys.meta_path.insert(0, _Block())
    """
)


def _modules():
    return sorted(
        os.path.basename(f)[:-3]
        for f in glob.glob(os.path.join(ROOT, "grokjax", "*.py"))
        if not f.endswith("__init__.py")
    )


def _imports(path):
    """Every module name imported anywhere in ``path`` (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "grokjax":
                names |= {f"grokjax.{a.name}" for a in node.names}
    return names


def _run(code):
    return subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_library_never_imports_the_application():
    for m in _modules():
        bad = [
            n
            for n in _imports(os.path.join(ROOT, "grokjax", f"{m}.py"))
            if n.split(".")[0] == "experiments"
        ]
        assert not bad, f"grokjax/{m}.py imports {bad}"


def test_run_directory_layer_does_not_import_the_engine():
    for m in ("protocol", "results", "fit", "registry", "estimate"):
        got = _imports(os.path.join(ROOT, "grokjax", f"{m}.py"))
        bad = sorted(n for n in got if n.removeprefix("grokjax.") in NEEDS_JAX | {"experiment"})
        assert not bad, f"grokjax/{m}.py imports {bad}"


def test_everything_but_the_engine_imports_without_jax():
    free = [m for m in _modules() if m not in NEEDS_JAX]
    assert {"results", "fit", "plots", "report", "registry", "protocol"} <= set(free)
    r = _run(
        "import importlib\n"
        f"for m in {free!r}:\n"
        "    importlib.import_module('grokjax.' + m)\n"
        "import experiments.catalog\n"
        "from grokjax import registry\n"
        "print(len(registry.names()))\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["8"]
    # and the blocker does block: the engine cannot be imported in that process
    r = _run("import grokjax.engine")
    assert r.returncode != 0 and "JAX is blocked" in r.stderr


def test_report_over_committed_results_without_jax(tmp_path):
    out = tmp_path / "report"
    run = os.path.join(ROOT, "results", "critical_norm-paper-p59")
    r = _run(
        "import sys\n"
        "from experiments import report\n"
        f"sys.exit(report.main([{run!r}, '--out', {str(out)!r}]))\n"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    text = (out / "report.md").read_text()
    assert "critical_norm" in text and "W_c" in text


def test_the_registry_lists_the_catalog_order_whatever_was_imported_first():
    r = _run(
        "import experiments.parity, experiments.lr_matrix, experiments.catalog as c\n"
        "from grokjax import registry\n"
        "print(','.join(registry.names())); print(','.join(c.NAMES))\n"
    )
    assert r.returncode == 0, r.stderr
    got, want = r.stdout.split()
    assert got == want and want.split(",")[:2] == ["delay_sweep", "critical_norm"]
    assert len(want.split(",")) == 8
