"""Test helpers shared by the experiment tests: a dry run of a plan with made-up outcomes, and
the one-line-error check of an experiment's command line."""

import os

import numpy as np

from grokjax import experiment


def dry_run(plan, cfg, extra: dict, result=lambda n: None) -> list:
    """The phases ``plan(cfg)`` yields when every lane of every phase grokked: each outcome row
    is the lane's metadata plus ``grokked``, ``diverged`` and ``extra``; ``result(n)`` is the
    phase's RunResult (n lanes)."""
    phases, gen, sent = [], plan(cfg), None
    while True:
        try:
            ph = gen.send(sent) if sent is not None else next(gen)
        except StopIteration:
            return phases
        phases.append(ph)
        n = len(ph.meta["seed"])
        rows = [
            {
                **{
                    k: (v[i].item() if isinstance(v[i], np.generic) else v[i])
                    for k, v in ph.meta.items()
                },
                "grokked": True,
                "diverged": False,
                **extra,
            }
            for i in range(n)
        ]
        sent = experiment.PhaseOutcome(rows, result(n))


def assert_one_line_error(main_cli, args, msg, capsys, tmp_path) -> None:
    """``main_cli`` on the tiny preset with ``args`` exits 2 with one line holding ``msg`` and
    writes nothing."""
    out = tmp_path / "x"
    assert main_cli(["--preset", "tiny", "--out", str(out)] + list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def one_line(text: str) -> str:
    """The one line of ``text`` (a refusal on stderr): no traceback, exactly one line."""
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def snapshot(d) -> dict:
    """(bytes, mtime) of every file under ``d``: compare before and after a refusal."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            out[p] = (open(p, "rb").read(), os.stat(p).st_mtime_ns)
    return out
