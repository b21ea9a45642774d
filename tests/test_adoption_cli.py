"""What a new user of the report and reproduce commands meets: ``results/*`` as the report's
arguments, a summary instead of the whole report, refusals that name the problem in one line
(exit 2, nothing written), and ``reproduce --list`` knowing the runs committed under results/."""

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_report import make_run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cmd(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def one_line_error(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def snapshot(d) -> dict:
    out = {}
    for base, _, files in os.walk(d):
        for f in files:
            p = os.path.join(base, f)
            st = os.stat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def run(tmp_path):
    return make_run(str(tmp_path / "runs" / "sweep"), p=(59,), seeds=4)


def test_report_out_into_a_run_directory_is_refused(run, tmp_path):
    before = snapshot(run)
    for out in (run, os.path.join(run, "report")):
        line = one_line_error(cmd("experiments.report", run, "--out", out))
        assert line.startswith("report: error: --out ") and "run directory" in line, line
        assert snapshot(run) == before
        assert not os.path.exists(os.path.join(run, "report"))


def test_report_on_a_missing_run_names_it_not_figures(tmp_path):
    # even where figures/ already holds a report (which used to be the complaint)
    os.makedirs(tmp_path / "figures")
    (tmp_path / "figures" / "report.json").write_text("{}")
    line = one_line_error(cmd("experiments.report", "/nonexistent/run", cwd=str(tmp_path)))
    assert line == (
        "report: error: /nonexistent/run: not a run directory (no such file or directory)"
    )
    assert os.listdir(tmp_path / "figures") == ["report.json"]


def test_report_takes_a_glob_skips_non_runs_and_prints_a_summary(run, tmp_path):
    parent = os.path.dirname(run)
    os.makedirs(os.path.join(parent, "notes"))  # like results/heldout-prediction
    with open(os.path.join(parent, "notes", "prediction.json"), "w") as f:
        f.write("{}")
    out = str(tmp_path / "rep")
    md = str(tmp_path / "docs" / "results.md")
    os.makedirs(os.path.dirname(md))
    args = sorted(os.path.join(parent, d) for d in os.listdir(parent))
    r = cmd("experiments.report", *args, "--out", out, "--results-md", md)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == (
        f"skipped {os.path.join(parent, 'notes')}: not a run directory (no config.json or "
        "lanes.csv)"
    )
    n = sum(1 for _ in open(os.path.join(run, "lanes.csv"))) - 1
    assert lines[1].startswith(f"read 1 run(s), {n} lanes (")
    assert lines[2].startswith("paper comparison: ") and " pass, " in lines[2]
    assert any(x.startswith(f"wrote {out}/report.md (the full report)") for x in lines)
    assert lines[-1] == f"wrote {md}"
    assert len(lines) < 20 and "## Headline numbers" not in r.stdout
    text = open(md).read()
    # generated from the report, with the command that made it and links to the full report
    assert f"`python -m experiments.report {parent}/* --out {out} --results-md {md}`" in text
    assert "](../rep/report.md)" in text
    for section in ("## Runs", "## Each number of the paper", "## Each experiment", "## Tables"):
        assert section in text
    assert f"| `sweep` | delay_sweep | {n} |" in text
    # nothing but runs: an error naming the arguments
    line = one_line_error(
        cmd("experiments.report", os.path.join(parent, "notes"), "--out", str(tmp_path / "o2"))
    )
    assert "no run directory among" in line and not os.path.exists(tmp_path / "o2")


def test_reproduce_runs_that_is_a_run_directory_is_refused(run, tmp_path):
    before = snapshot(os.path.dirname(run))
    for runs in (run, os.path.join(run, "nested")):
        line = one_line_error(
            cmd(
                "experiments.reproduce",
                "--preset",
                "tiny",
                "--runs",
                runs,
                "--out",
                str(tmp_path / "rep"),
                "--only",
                "delay_sweep",
            )
        )
        assert line.startswith("reproduce: error: --runs ") and "run directory" in line, line
    assert snapshot(os.path.dirname(run)) == before
    assert not os.path.exists(tmp_path / "rep")


def test_reproduce_list_names_the_committed_runs(tmp_path):
    from experiments import reproduce

    results = tmp_path / "results"
    shutil.copytree(os.path.join(ROOT, "results", "dense_rho-paper"), results / "dense_rho-paper")
    (results / "notes").mkdir()
    line = reproduce.committed_line("dense_rho", "paper", str(results))
    assert line == "; committed under results/: dense_rho-paper (132 min of training in all)"
    assert reproduce.committed_line("dense_rho", "quick", str(results)) == ""
    assert reproduce.committed_line("parity", "paper", str(results)) == ""
    r = cmd("experiments.reproduce", "--list", "--preset", "paper", "--runs", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    lines = {x.split()[0]: x for x in r.stdout.splitlines()}
    assert "committed under results/: dense_rho-paper" in lines["dense_rho"]
    # every experiment's line names its committed paper runs, or none where there are none
    for name, text in lines.items():
        committed = reproduce.committed_line(name, "paper", os.path.join(ROOT, "results"))
        assert ("committed under results/" in text) == bool(committed), (name, text)
        assert committed.split(" (")[0] in text
