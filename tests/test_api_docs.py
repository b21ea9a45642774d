"""Every ```python block of docs/api.md runs, in order, in one namespace (from the checkout's
root, so that results/ is there; runs/ is redirected to a temporary directory)."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks() -> list[str]:
    with open(os.path.join(ROOT, "docs", "api.md")) as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), flags=re.S)


def test_docs_api_has_snippets():
    assert len(blocks()) >= 3


def test_every_docs_api_snippet_runs(tmp_path, monkeypatch, capsys):
    os.symlink(os.path.join(ROOT, "results"), tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for code in blocks():
        exec(compile(code, "docs/api.md", "exec"), ns)
    out = capsys.readouterr().out
    assert "Results(delay_sweep, 8 lanes, out='runs/api-sweep')" in out
    assert re.search(r"alpha = -?\d+\.\d\d, R² = ", out)
    assert (tmp_path / "runs" / "api-sweep" / "t_grok.png").stat().st_size > 1000
    assert ns["res"].out is None and ns["paper"].config["seeds"] == 16
    # your model on your task: 4 free + 4 × 3 clamped lanes, every one grokked, the same events
    # in both lane modes (asserted in the snippet), and a delay law over the three held norms
    vmap = ns["vmap"]
    assert vmap.n_lanes == 16 and set(vmap.lanes["model"]) == {"ln_mlp"}
    assert vmap.lanes["grokked"].all() and len(ns["law"]["cells"]) == 3
    assert re.search(r"LN-MLP on a² \+ b² mod 23: alpha = -?\d+\.\d\d, R² = ", out)
