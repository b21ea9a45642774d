"""Inputs that were accepted and then gave a silent wrong number, did nothing useful, or ended
in a traceback (issue 26): list flags compared by value, flags that must name one of another
flag's values, fit ranges, values float32 rounds to 0, the environment, and the small entry
points. Each is refused in one line on stderr with exit status 2, before any work, and
leaves what is on disk as it was. No test here trains a lane (``_run_phases`` is a tripwire);
the few that need a fresh process (the JAX backend, ``python -m``) take a few seconds each."""

import dataclasses
import importlib
import os
import subprocess
import sys

import pytest

from plans import one_line, snapshot

from grokjax import cli, data, experiment, results, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GiB = 2**30


def entry(name):
    return importlib.import_module(f"experiments.{name}").main_cli


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    def tripwire(*a, **k):
        raise AssertionError("the bad input was accepted and the run started")

    monkeypatch.setattr(runner, "_run_phases", tripwire)
    monkeypatch.setenv("GROKJAX_MEMORY", str(16 * GiB))
    for var in ("GROKJAX_DISTRIBUTED", "JAX_COORDINATOR_ADDRESS", "GROKJAX_MEMORY_BUDGET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("GROKJAX_MEMORY_LIMIT", raising=False)


def existing_run(name: str, d) -> dict:
    """A run directory of ``name``'s tiny preset (config.json as a run writes it, results
    files with placeholder bytes); returns its snapshot."""
    spec = importlib.import_module(f"experiments.{name}").SPEC
    cfg = experiment.config_for(spec, "tiny", str(d))
    os.makedirs(d / "phases")
    results.write_json(str(d / "config.json"), dataclasses.asdict(cfg))
    for f in ("lanes.csv", "fit.json", "phases/p-free.npz"):
        (d / f).write_bytes(b"keep " + f.encode())
    return snapshot(d)


# (entry point, arguments after --preset tiny, a piece of the one-line message)
BAD = [
    # every list flag compared by value, not as text
    ("transformer", ["--parts", "ln_clamp", "--clamps", "unembed:1.0,unembed:1"], "given twice"),
    ("transformer", ["--clamps", "mlp:1.2, mlp:1.20,unembed:1"], "given twice"),
    ("transformer", ["--parts", "noln,noln"], "given twice"),
    ("delay_sweep", ["--rho", "1,1.0"], "given twice"),
    ("delay_sweep", ["--lr", "0.01,1e-2"], "given twice"),
    ("critical_norm", ["--frac", "0.7,0.70"], "given twice"),
    ("parity", ["--m-values", "200,200"], "given twice"),
    ("norm_controls", ["--groups", "embed, embed"], "given twice"),
    # a value that must be one of another flag's values
    ("critical_norm", ["--low-frac", "0.5", "--low-frac-p", "97"], "not among --p"),
    ("critical_norm", ["--ref-frac", "0.33"], "--ref-frac 0.33 is not among --frac"),
    ("delay_sweep", ["--extra-rho", "1.3"], "--extra-rho cells would not run"),
    # a fit range that holds fewer than two of its values
    ("dense_rho", ["--fit-lo", "5", "--fit-hi", "6"], "needs at least two"),
    ("dense_rho", ["--fit-lo", "1.0", "--fit-hi", "1.05"], "holds 1 of --rho"),
    ("transformer", ["--fit-lo", "2", "--fit-hi", "3"], "needs at least two"),
    # values float32 rounds to 0 (no training, or no clamp)
    ("delay_sweep", ["--lr", "1e-300"], "rounds to 0 in float32"),
    ("delay_sweep", ["--rho", "1e-300"], "rounds to 0 in float32"),
    ("lr_matrix", ["--lrs", "1e-40"], "rounds to 0 in float32"),
    ("norm_controls", ["--wd", "1e-45"], "rounds to 0 in float32"),
    # a test set drawn from the train set; inputs that compile for minutes
    ("parity", ["--n-bits", "6", "--m", "5000"], "would also be train rows"),
    ("parity", ["--n-bits", "100000"], "n_bits must be at most"),
    (
        "parity",
        ["--n-bits", "30", "--m-values", ",".join(str(m) for m in range(200, 200 + 5 * 120, 5))],
        "compile more than 100 programs",
    ),
    # --out '' is not the default directory
    ("delay_sweep", ["--out", ""], "--out: empty path"),
    ("critical_norm", ["--out", ""], "--out: empty path"),
]


@pytest.mark.parametrize("name,args,msg", BAD, ids=[f"{n}:{' '.join(a)[:60]}" for n, a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(name, args, msg, capsys, tmp_path):
    out = tmp_path / "x"
    argv = ["--preset", "tiny"] + ([] if "--out" in args else ["--out", str(out)]) + args
    cwd = os.getcwd()
    os.chdir(tmp_path)  # (--out '' once meant runs/<name>-tiny here)
    try:
        assert entry(name)(argv) == 2
    finally:
        os.chdir(cwd)
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"{name}: error: ") and msg in line, line
    assert not out.exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "name,args,msg", BAD[::4], ids=[f"{n}:{a[-1][:30]}" for n, a, _ in BAD[::4]]
)
def test_bad_input_leaves_an_existing_run_as_it_was(name, args, msg, capsys, tmp_path):
    if "--out" in args:
        pytest.skip("names its own --out")
    d = tmp_path / "run"
    before = existing_run(name, d)
    assert entry(name)(["--preset", "tiny", "--out", str(d)] + args) == 2
    # (refused as this input, or first as a configuration other than the run's)
    assert one_line(capsys.readouterr().err).startswith(f"{name}: error: ")
    assert snapshot(d) == before


def test_list_entries_are_compared_by_value():
    assert cli.same_value("unembed:1.0", "unembed:1")
    assert cli.same_value("mlp: 1.20", "mlp:1.2")
    assert cli.same_value(1e-2, 0.01)
    assert not cli.same_value("unembed:1", "embed:1")
    assert not cli.same_value("unembed:1", "unembed:1.1")
    assert not cli.same_value("a:1", "a:1:2")
    assert cli.duplicates(["unembed:1.0", "mlp:1", "unembed:1"]) == ["unembed:1"]


def test_valid_presets_pass_the_shared_checks():
    import experiments.catalog  # noqa: F401
    from grokjax import registry

    for spec in registry.specs():
        for preset in spec.presets:
            experiment.check_links(experiment.config_for(spec, preset, "/tmp/unused"))


# ---------------------------------------------------------------------------------------------
# the environment
# ---------------------------------------------------------------------------------------------

ENV = [
    ({"GROKJAX_MEMORY_BUDGET": "lots"}, "GROKJAX_MEMORY_BUDGET must be a size in bytes"),
    ({"GROKJAX_MEMORY_BUDGET": "-1"}, "GROKJAX_MEMORY_BUDGET must be a size in bytes"),
    ({"GROKJAX_MEMORY": "ten"}, "GROKJAX_MEMORY must be a size in bytes"),
    ({"GROKJAX_MEMORY_LIMIT": "ten"}, "GROKJAX_MEMORY_LIMIT must be a size in bytes"),
    ({"GROKJAX_MEMORY_LIMIT": "0"}, "GROKJAX_MEMORY_LIMIT must be a size in bytes"),
    ({"GROKJAX_DISTRIBUTED": "maybe"}, "GROKJAX_DISTRIBUTED must be 1 or 0"),
    ({"JAX_COORDINATOR_ADDRESS": "localhost"}, "JAX_COORDINATOR_ADDRESS must be host:port"),
    ({"JAX_COORDINATOR_ADDRESS": "h:99999"}, "JAX_COORDINATOR_ADDRESS must be host:port"),
    (
        {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234", "JAX_NUM_PROCESSES": "two"},
        "JAX_NUM_PROCESSES must be an integer",
    ),
    (
        {"GROKJAX_DISTRIBUTED": "1", "JAX_NUM_PROCESSES": "0"},
        "JAX_NUM_PROCESSES must be >= 1",
    ),
    (
        {
            "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234",
            "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": "2",
        },
        "JAX_PROCESS_ID must be below JAX_NUM_PROCESSES (2)",
    ),
]


@pytest.mark.parametrize(
    "env,msg", ENV, ids=[" ".join(f"{k}={v}" for k, v in e.items()) for e, _ in ENV]
)
def test_bad_environment_is_one_line_before_any_work(env, msg, capsys, tmp_path, monkeypatch):
    d = tmp_path / "run"
    before = existing_run("delay_sweep", d)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert entry("delay_sweep")(["--preset", "tiny", "--out", str(d)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("delay_sweep: error: ") and msg in line, line
    assert snapshot(d) == before


def test_memory_sizes_take_units(monkeypatch):
    monkeypatch.setenv("GROKJAX_MEMORY", "10GB")  # "could not convert string to float"
    assert data.memory_limit() == 10 * 10**9
    monkeypatch.setenv("GROKJAX_MEMORY", "2GiB")
    assert data.memory_limit() == 2 * GiB
    monkeypatch.delenv("GROKJAX_MEMORY")  # the old name still works
    monkeypatch.setenv("GROKJAX_MEMORY_LIMIT", str(16 * GiB))  # a plain number, as before
    assert data.memory_limit() == 16 * GiB


def run_module(args, env=None, timeout=120):
    e = dict(os.environ, **(env or {}))
    e.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_jax_platform_this_machine_lacks_is_one_line(tmp_path):
    out = tmp_path / "x"
    r = run_module(
        ["experiments.delay_sweep", "--preset", "tiny", "--out", str(out)],
        env={"JAX_PLATFORMS": "cuda"},
    )
    assert r.returncode == 2, r.stderr[-2000:]
    line = one_line(r.stderr)
    assert "JAX cannot start a backend (JAX_PLATFORMS='cuda')" in line, line
    assert not out.exists()


def test_distributed_without_a_cluster_to_detect_is_one_line(tmp_path):
    out = tmp_path / "x"
    r = run_module(
        ["experiments.delay_sweep", "--preset", "tiny", "--out", str(out)],
        env={"GROKJAX_DISTRIBUTED": "1", "JAX_PLATFORMS": "cpu"},
    )
    assert r.returncode == 2, r.stderr[-2000:]
    line = one_line(r.stderr)
    assert "cannot join the multi-host job" in line and "set JAX_COORDINATOR_ADDRESS" in line
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# the small entry points
# ---------------------------------------------------------------------------------------------


def test_reference_mlp_is_a_library_and_says_so():
    r = run_module(["experiments.reference_mlp", "--bogus-flag"])
    assert r.returncode == 2 and "unrecognized arguments: --bogus-flag" in one_line(r.stderr)
    r = run_module(["experiments.reference_mlp"])
    assert r.returncode == 2 and "nothing to run" in one_line(r.stderr)
    r = run_module(["experiments.reference_mlp", "--help"])
    assert r.returncode == 0 and "NumPy reference" not in r.stderr
    assert "usage: python -m experiments.reference_mlp" in r.stdout and "library" in r.stdout


def test_bench_summary_of_a_missing_directory(capsys, tmp_path):
    bench = importlib.import_module("experiments.bench")
    assert cli.main_guard("bench", bench.main, ["--summary", str(tmp_path / "nonexistent")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "--summary" in line and "no such directory" in line, line
    assert "not run" not in line


@pytest.mark.parametrize("value", ["0", "nan", "-1", "inf"])
def test_pool_sweeps_rho_max_must_be_positive(value, capsys, tmp_path):
    d = tmp_path / "run"
    before = existing_run("delay_sweep", d)
    assert entry("pool_sweeps")([str(d), "--rho-max", value]) == 2
    assert "--rho-max values must be positive" in one_line(capsys.readouterr().err)
    assert snapshot(d) == before


# ---------------------------------------------------------------------------------------------
# --help: every flag's choices and default, for every experiment
# ---------------------------------------------------------------------------------------------

EXPERIMENTS = [
    "delay_sweep",
    "critical_norm",
    "lr_matrix",
    "dense_rho",
    "norm_controls",
    "log_delay",
    "transformer",
    "parity",
]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_shows_choices_and_defaults(name, capsys):
    spec = importlib.import_module(f"experiments.{name}").SPEC
    with pytest.raises(SystemExit) as e:
        experiment.main(spec, ["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    presets = ",".join(spec.presets)
    for shown in (
        f"--preset {{{presets}}}",
        "(default: quick)",
        "--dtype {float32,float64}",
        "--loss {log_softmax,margin}",
        "--eval-schedule {every,geometric}",
        "--lane-mode {auto,walk,vmap}",
    ):
        assert shown in text, shown
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    for action in experiment.make_parser(spec)._actions:
        if action.dest in fields:
            assert "default" in (action.help or ""), action.option_strings
    if name == "delay_sweep":
        assert "--model {mlp,attn}" in text and "--p P moduli" in text
        assert "(default: 59; paper: 31,41,53,59,71, tiny: 31)" in text
    if name == "transformer":
        assert "--ln-mode {all,final}" in text and "--parts {noln,ln_free,ln_clamp}" in text


# ---------------------------------------------------------------------------------------------
# files come out with the user's umask (mkstemp alone makes them 0600)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        results.write_json(str(tmp_path / "config.json"), {"a": 1})
        results.write_lanes_csv(str(tmp_path / "lanes.csv"), [{"lane": 0, "p": 5}])
        results.write_text(str(tmp_path / "fit.json"), "{}\n")
    finally:
        os.umask(old)
    for f in ("config.json", "lanes.csv", "fit.json"):
        assert os.stat(tmp_path / f).st_mode & 0o777 == mode, f
