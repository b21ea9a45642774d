"""Benchmark of the lane engine: throughput, FLOP rate, eval cost, memory, compile time.

Run:

    python -m experiments.bench                      # paper MLP at p=59, 1/8/32/128 lanes
    python -m experiments.bench --model attn --lanes 1,8,32
    python -m experiments.bench --check --lanes 64,256,1024         # on a GPU (gpu_check.sh)

Cost: about a minute per model on a 2-core CPU. It prints one table: lanes, lane-steps/s,
achieved matmul GFLOP/s and its % of a float32 GEMM ceiling measured on the same machine,
eval overhead %, compile seconds and memory per lane, then the executed/needed lane-step ratio
of a short run with early stopping. This is a benchmark that prints figures, not a test.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from grokjax import cli


def gemm_ceiling(n: int = 2048, reps: int = 5) -> float:
    """Best-of float32 GEMM rate on the default device, GFLOP/s."""
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def time_chunks(engine, hp, n_blocks: int, reps: int):
    """(compile + first call seconds, best seconds of one chunk)."""
    import jax
    t = time.perf_counter()
    state = engine.init(hp)
    state, _ = engine.chunk(state, hp, n_blocks)
    jax.block_until_ready(state)
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        state, m = engine.chunk(state, hp, n_blocks)
        jax.block_until_ready((state, m))
        best = min(best, time.perf_counter() - t)
    return first, best


def bench_model(kind: str, p: int, lanes: list[int], steps: int, reps: int, ceiling: float):
    from grokjax.data import num_train
    from grokjax.engine import Static, make_hparams
    from grokjax.models import ModelSpec, train_step_flops, forward_matmul_flops
    from grokjax.runner import Engine

    spec = ModelSpec(kind=kind, p=p, d=128, hidden=256 if kind == "mlp" else 512)
    frac = 0.4
    n_tr = num_train(p, frac)
    n_te = p * p - n_tr
    rows = []
    for ev_label, ev in (("eval10", 10), ("noeval", steps)):
        static = Static(model=spec, frac=frac, eval_every=ev)
        engine = Engine(static)
        n_blocks = max(1, steps // ev)
        for n in lanes:
            hp = make_hparams(len(engine.fns.groups), seed=np.arange(n), budget=10 ** 7)
            first, best = time_chunks(engine, hp, n_blocks, reps)
            rate = n * n_blocks * ev / best
            rows.append((ev_label, n, rate, first))
            print(f"  [{kind} {ev_label}] lanes {n:5d}: {rate:9,.0f} lane-steps/s", flush=True)
    flops_step = train_step_flops(spec, n_tr) + forward_matmul_flops(spec, n_te) / 10
    static = Static(model=spec, frac=frac, eval_every=10)
    engine = Engine(static)
    try:
        mem = engine.memory_bytes(steps)[1]
    except Exception:  # a backend without memory analysis
        mem = None
    table = []
    for n in lanes:
        r10 = next(r for r in rows if r[0] == "eval10" and r[1] == n)
        r0 = next(r for r in rows if r[0] == "noeval" and r[1] == n)
        gflops = r10[2] * flops_step / 1e9
        table.append(dict(model=kind, lanes=n, rate=r10[2], gflops=gflops,
                          pct=100 * gflops / ceiling, eval_pct=100 * (r0[2] / r10[2] - 1),
                          compile_s=r10[3], mem=mem))
    return table


def waste_ratio() -> str:
    """Executed / needed lane-steps of a short early-stopping run (tiny model, varied rho)."""
    from grokjax.engine import Static, make_hparams
    from grokjax.models import ModelSpec
    from grokjax.runner import Engine
    engine = Engine(Static(model=ModelSpec(p=31, d=64, hidden=128), frac=0.7))
    seeds = np.tile(np.arange(8), 3)
    target = np.repeat([0.0, 32.0, 39.0], 8)
    hp = make_hparams(3, seed=seeds, lr=1e-2, target_norm=target, t_int=50, budget=4000)
    r = engine.run(hp, chunk_steps=200, progress=None)
    s = r.stats
    return (f"early stopping (24 lanes, tiny MLP, 3 held norms): executed / needed lane-steps = "
            f"{s['lane_steps_executed']:,} / {s['lane_steps_needed']:,} = "
            f"{s['lane_steps_executed'] / s['lane_steps_needed']:.2f}, programs {s['programs']}")


def check_against_cpu() -> str:
    """Runs one small lane batch on the default device and on the CPU (subprocess) and
    compares every lane's events and norms. Returns a one-line verdict; raises on mismatch."""
    import json
    import os
    import subprocess
    code = (
        "import json, numpy as np\n"
        "from grokjax.engine import Static, make_hparams\n"
        "from grokjax.models import ModelSpec\n"
        "from grokjax.runner import Engine\n"
        "e = Engine(Static(model=ModelSpec(p=31, d=64, hidden=128), frac=0.7))\n"
        "hp = make_hparams(3, seed=np.tile(np.arange(4), 2), lr=1e-2,\n"
        "                  target_norm=np.repeat([0.0, 33.0], 4), t_int=50, budget=2000)\n"
        "r = e.run(hp, chunk_steps=200, progress=None)\n"
        "print(json.dumps({'t_grok': r.latches['t_grok'].tolist(),\n"
        "                  'norm': r.latches['norm_at_grok'].tolist()}))\n")
    def run(env_extra):
        env = dict(os.environ, **env_extra)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=900)
        return json.loads(out.stdout.strip().splitlines()[-1])
    dev, cpu = run({}), run({"JAX_PLATFORMS": "cpu"})
    t_dev, t_cpu = np.array(dev["t_grok"], float), np.array(cpu["t_grok"], float)
    n_dev, n_cpu = np.array(dev["norm"], float), np.array(cpu["norm"], float)
    same_grok = np.array_equal(t_dev >= 0, t_cpu >= 0)
    ok = t_dev >= 0
    rel_t = np.max(np.abs(t_dev[ok] - t_cpu[ok]) / t_cpu[ok]) if ok.any() else 0.0
    rel_n = np.nanmax(np.abs(n_dev - n_cpu) / n_cpu) if ok.any() else 0.0
    verdict = (f"device vs CPU on 8 lanes: same lanes grok: {same_grok}; max |dT_grok|/T_grok = "
               f"{rel_t:.3f}; max relative norm difference at T_grok = {rel_n:.2e}")
    if not same_grok or rel_t > 0.05 or rel_n > 1e-2:
        raise SystemExit("MISMATCH: " + verdict)
    return verdict


def main(argv=None) -> int:
    ap = cli.Parser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mlp", help="mlp, attn or both")
    ap.add_argument("--p", type=int, default=59)
    ap.add_argument("--lanes", type=cli.ints, default=[1, 8, 32, 128])
    ap.add_argument("--steps", type=int, default=200, help="steps per timed chunk")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--check", action="store_true",
                    help="first compare a small run on this device against the CPU")
    args = ap.parse_args(argv)
    if args.model not in ("mlp", "attn", "both"):
        raise cli.UsageError(f"unknown --model {args.model!r}; choose mlp, attn or both")
    if not args.lanes or min(args.lanes) < 1:
        raise cli.UsageError("--lanes must be positive integers")
    if args.steps < 10 or args.p < 2:
        raise cli.UsageError("--steps must be >= 10 and --p >= 2")
    if args.check:
        print(check_against_cpu(), flush=True)
    import jax
    dev = jax.devices()[0]
    ceiling = gemm_ceiling()
    print(f"device: {dev.platform} {dev.device_kind} x{jax.device_count()}; "
          f"float32 GEMM ceiling {ceiling:,.0f} GFLOP/s", flush=True)
    table = []
    for kind in (("mlp", "attn") if args.model == "both" else (args.model,)):
        table += bench_model(kind, args.p, args.lanes, args.steps, args.reps, ceiling)
    print()
    print("| model | lanes | lane-steps/s | matmul GFLOP/s | % of ceiling | eval overhead % "
          "| compile+first s | memory/lane |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        mem = "n/a" if r["mem"] is None else f"{r['mem'] / 2**20:.2f} MiB"
        print(f"| {r['model']} | {r['lanes']} | {r['rate']:,.0f} | {r['gflops']:.1f} | "
              f"{r['pct']:.0f} | {r['eval_pct']:.1f} | {r['compile_s']:.1f} | {mem} |")
    print()
    print(waste_ratio())
    return 0


if __name__ == "__main__":
    sys.exit(cli.main_guard("bench", main))
