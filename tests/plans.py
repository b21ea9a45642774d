"""Test helpers shared by the experiment tests: a dry run of a plan with made-up outcomes, and
the one-line-error check of an experiment's command line."""

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
