"""The benchmark's table on a small model (its figures are printed, not asserted: only that
every column is computed and consistent), its FLOP counts and its bad-input errors."""

import numpy as np
import pytest

from experiments import bench
from experiments.bench import forward_matmul_flops, reference_matmul_flops, train_step_flops
from grokjax.models import ModelSpec


def test_bench_table_on_a_small_model():
    table = bench.bench_model("mlp", p=7, lanes=[1, 3], steps=20, reps=2)
    bench.add_ceiling(table, 100.0)
    assert [r["lanes"] for r in table] == [1, 3]
    for r in table:
        assert r["rate"] > 0 and r["compile_s"] > 0 and r["mem"] > 0
        assert np.isfinite(r["eval_pct"]) and r["spread"] >= 0
        # The direct formulation needs more FLOPs than the per-token tables execute.
        assert r["model_pct"] > r["pct"] > 0
        np.testing.assert_allclose(r["gflops"], r["pct"])  # ceiling 100 GFLOP/s
    assert table[0]["per_lane"] == pytest.approx(100)
    np.testing.assert_allclose(table[1]["per_lane"], 100 * table[1]["rate"] / table[0]["rate"])


def test_host_table_splits_each_chunk_into_device_bookkeeping_and_host_time(capsys):
    mode = "vmap"
    rows = bench.host_overhead([1, 3], lane_mode=mode, chunk_steps=20, chunks=3)
    assert [r["lanes"] for r in rows] == [1, 3] and {r["mode"] for r in rows} == {mode}
    for r in rows:
        assert r["chunks"] == 2 and r["device_ms"] > 0 and r["host_ms"] > 0
        assert r["book_ms"] > 0 and r["rate"] > 0 and r["tflops"] > 0 and r["mem"] > 0
        np.testing.assert_allclose(r["host_pct"], 100 * r["host_ms"] / r["device_ms"])
    bench.print_host_table(rows)
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_formulation_check_times_both_formulations():
    f = bench.formulation_check(p=7, steps=20, reps=1)
    assert set(f) == {"direct", "tables"}
    assert all(v["rate"] > 0 and v["gflops"] > 0 for v in f.values())


def test_flop_counts():
    mlp = ModelSpec(kind="mlp", p=59, d=128, hidden=256)
    # [E[a], E[b]] @ W1 and h @ W2 on every row: 2·B·(2d·H + H·p)
    assert reference_matmul_flops(mlp, 1392) == 2 * 1392 * (2 * 128 * 256 + 256 * 59)
    # The tables: two p×d×H products once, then only the output layer per row.
    assert forward_matmul_flops(mlp, 1392) == 4 * 59 * 128 * 256 + 2 * 1392 * 256 * 59
    assert train_step_flops(mlp, 1392, reference=True) == 3 * reference_matmul_flops(mlp, 1392)
    attn = ModelSpec(kind="attn", p=59, d=128, hidden=512)
    assert reference_matmul_flops(attn, 1392) > forward_matmul_flops(attn, 1392)
    bits = ModelSpec(kind="bits", p=30, hidden=512)
    assert reference_matmul_flops(bits, 1000) == forward_matmul_flops(bits, 1000)


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--model", "rnn"], "unknown --model"),
        (["--lanes", "0"], "--lanes"),
        (["--steps", "5"], "--steps"),
        (["--p", "1"], "--p"),
        (["--host", "--lane-mode", "fast"], "--lane-mode"),
        (["--host", "--chunks", "1"], "--chunks"),
    ],
)
def test_bad_input_is_one_line(args, msg, capsys):
    assert bench.cli.main_guard("bench", bench.main, args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1, err


def test_gpu_check_rehearsal_on_the_cpu(tmp_path):
    # experiments/gpu_check.sh at a tiny size on the CPU: every step runs and the one table
    # (device vs CPU, the vmap bench rows, the capped delay_sweep) lands in $OUT.
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", GPU_CHECK_TINY="1", SWEEP_SECONDS="10", OUT=str(tmp_path)
    )
    r = subprocess.run(
        ["bash", os.path.join(root, "experiments", "gpu_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    table = (tmp_path / "gpu_check.md").read_text().splitlines()
    assert table[:2] == ["| check | result |", "|---|---|"]
    rows = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    assert all(line.count("|") == 3 for line in table), table
    assert "| cpu" in rows["device"]
    assert "same lanes grok: True" in rows["device vs CPU, 8 lanes"]
    assert "lane-steps/s" in rows["bench mlp p=13, 1 lanes (vmap)"]
    assert "TFLOP/s" in rows["bench mlp p=13, 4 lanes (vmap)"]
    assert "phase(s) done" in rows["delay_sweep under a wall-clock cap"]
