"""Benchmark of the lane engine: throughput, FLOP rate, eval cost, memory, compile time.

Run:

    python -m experiments.bench                      # paper MLP at p=59, 1/8/32/128 lanes
    python -m experiments.bench --model attn --lanes 1,8,32
    python -m experiments.bench --check --lanes 64,256,1024         # on a GPU (gpu_check.sh)
    python -m experiments.bench --host --steps 100     # host vs device time per chunk, tiny
                                                       # MLP, 1..4096 lanes in one vmap

Cost: ~10 minutes for the MLP default on a 2-core CPU (the 128-lane rounds dominate; use
``--lanes 1,8 --reps 3`` for a one-minute look). Every lane count is timed with and without
evaluation, round-robin over ``--reps`` rounds, so that a shared machine's changing speed hits
all of them alike; rates are medians over the rounds, the eval overhead is the median of each
round's own pair, and "spread" is the range of the rounds (how far to trust a row).

It prints one table: lanes, lane-steps/s, that rate relative to the first row (the per-lane
efficiency), GFLOP/s executed and its % of a float32 GEMM ceiling measured on the same
machine (the better of a measurement before and after the runs), the model's FLOPs as a % of
that ceiling (the FLOPs the direct, table-free formulation of the same model would need: the
MFU-style figure), eval overhead %, spread %, compile + first chunk seconds and memory per
lane; then the executed / needed lane-step ratio of a short run with early stopping. This is a
benchmark that prints figures, not a test.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from grokjax import cli

from experiments.bench_checks import check_against_cpu, gpu_check_summary, sweep_progress


# ---------------------------------------------------------------------------------------------
# FLOP counts of the models (what the utilisation figures divide by)
# ---------------------------------------------------------------------------------------------


def forward_matmul_flops(spec, batch: int) -> int:
    """Matmul FLOPs (2·M·N·K each) of one forward pass over ``batch`` rows, as formulated here
    (per-token tables computed once, then gathered)."""
    from grokjax import models

    return models.get(spec.kind).matmul_flops(spec, batch)


def reference_matmul_flops(spec, batch: int) -> int:
    """Matmul FLOPs of one forward pass written directly, without per-token tables: every row's
    embedded operands go through every matrix (mlp: [E[a], E[b]] @ W1 on all rows; attn: keys
    and values of all three positions, the query of the last). This is the model's own FLOP
    count, the numerator of MFU-style utilisation; ``forward_matmul_flops`` counts what this
    implementation executes."""
    from grokjax import models

    return models.get(spec.kind).matmul_flops(spec, batch, reference=True)


def train_step_flops(spec, n_train: int, reference: bool = False) -> int:
    """Forward + backward matmul FLOPs of one full-batch step (backward = 2 × forward), as
    executed here or (``reference``) as the direct formulation would need."""
    fwd = reference_matmul_flops if reference else forward_matmul_flops
    return 3 * fwd(spec, n_train)


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
    return 2 * n**3 / best / 1e9


def round_robin(calls: dict, reps: int) -> dict:
    """Times every call round-robin, once each per round, so that a drift in the machine's
    speed (common on shared VMs) hits all of them alike. Each call runs to completion.
    Returns {key: [seconds of each round]}."""
    times = {key: [] for key in calls}
    for _ in range(reps):
        for key, call in calls.items():
            t = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - t)
    return times


def time_interleaved(configs: dict, n_blocks: dict, reps: int) -> dict:
    """Times one chunk of every configuration per round (``round_robin``).

    ``configs`` maps a key to (engine, hparams), ``n_blocks`` maps it to the chunk's blocks.
    Returns {key: (compile + first chunk seconds, [seconds of each timed chunk])}.
    """
    import jax

    state = {}

    def chunk(key):
        engine, hp = configs[key]
        state[key], m = engine.chunk(state[key], hp, n_blocks[key])
        jax.block_until_ready((state[key], m))

    first = {}
    for key, (engine, hp) in configs.items():
        t = time.perf_counter()
        state[key] = engine.init(hp)
        chunk(key)
        first[key] = time.perf_counter() - t
    times = round_robin({key: (lambda key=key: chunk(key)) for key in configs}, reps)
    return {key: (first[key], times[key]) for key in configs}


def bench_model(kind: str, p: int, lanes: list[int], steps: int, reps: int) -> list[dict]:
    """One row per lane count: lane-steps/s (median over rounds), executed and model GFLOP/s,
    eval overhead %, spread of the rounds %, compile + first chunk seconds, memory per lane."""
    from grokjax.data import num_train
    from grokjax.lane import Static, make_hparams
    from grokjax.models import ModelSpec
    from grokjax.engine import Engine

    spec = ModelSpec(kind=kind, p=p, d=128, hidden=256 if kind == "mlp" else 512)
    frac = 0.4
    n_tr = num_train(p, frac)
    n_te = p * p - n_tr
    engines = {ev: Engine(Static(model=spec, frac=frac, eval_every=ev)) for ev in (10, steps)}
    configs, n_blocks = {}, {}
    for n in lanes:
        for ev, engine in engines.items():
            configs[n, ev] = (
                engine,
                make_hparams(len(engine.fns.groups), seed=np.arange(n), budget=10**7),
            )
            n_blocks[n, ev] = max(1, steps // ev)
    print(
        f"  [{kind}] {len(configs)} programs, timed round-robin: {reps} rounds of {steps} "
        f"steps each",
        flush=True,
    )
    timed = time_interleaved(configs, n_blocks, reps)
    # FLOPs per lane-step: the training step plus one test-set forward pass every 10 steps,
    # as executed here and as the direct (table-free) formulation would need.
    flops = train_step_flops(spec, n_tr) + forward_matmul_flops(spec, n_te) / 10
    model_flops = (
        train_step_flops(spec, n_tr, reference=True) + reference_matmul_flops(spec, n_te) / 10
    )
    try:
        mem = engines[10].memory_bytes(steps)[1]
    except Exception:  # a backend without memory analysis
        mem = None
    table = []
    for n in lanes:
        t10, t0 = np.array(timed[n, 10][1]), np.array(timed[n, steps][1])
        rate = n * steps / np.median(t10)
        table.append(
            dict(
                model=kind,
                lanes=n,
                rate=rate,
                gflops=rate * flops / 1e9,
                model_gflops=rate * model_flops / 1e9,
                # each round's own pair: both chunks ran at the same machine speed
                eval_pct=100 * float(np.median(t10 / t0 - 1)),
                spread=100 * float((t10.max() - t10.min()) / np.median(t10)),
                compile_s=timed[n, 10][0],
                mem=mem,
            )
        )
    for r in table:
        r["per_lane"] = 100 * r["rate"] / table[0]["rate"]
    return table


TINY_MLP = dict(kind="mlp", p=13, d=16, hidden=32)
PAPER_MLP = dict(kind="mlp", p=59, d=128, hidden=256)


def host_overhead(
    lanes: list[int],
    lane_mode: str = "vmap",
    model: dict = TINY_MLP,
    chunk_steps: int = 100,
    chunks: int = 4,
) -> list[dict]:
    """Device, bookkeeping and host time per chunk of ``Engine.run``, one row per lane count,
    with lane-steps/s, executed TFLOP/s and memory per lane.

    Every lane trains ``chunks`` full chunks (a learning rate too small to grok, a budget that
    ends with the last chunk), so the lane count stays fixed; the first chunk (compiles) is not
    timed. Device time: from dispatching the chunk until its outputs are ready; bookkeeping:
    the small device programs between chunks (records, latches, finished lanes, refills,
    repacking; dispatch until their scalars are read); host time: the rest of the host loop
    (Python: decisions, progress line, checkpoint policy)."""
    from grokjax.data import num_train
    from grokjax.lane import Static, make_hparams
    from grokjax.models import ModelSpec
    from grokjax.engine import Engine

    spec = ModelSpec(**model)
    frac = 0.5
    n_tr = num_train(spec.p, frac)
    n_te = spec.p * spec.p - n_tr
    engine = Engine(Static(model=spec, frac=frac, eval_every=10), lane_mode=lane_mode)
    flops = train_step_flops(spec, n_tr) + forward_matmul_flops(spec, n_te) / 10
    try:
        mem = engine.memory_bytes(chunk_steps)[1]
    except Exception:  # a backend without memory analysis
        mem = None
    rows = []
    for n in lanes:
        hp = make_hparams(
            len(engine.fns.groups), seed=np.arange(n), lr=1e-6, budget=chunks * chunk_steps - 1
        )
        r = engine.run(hp, chunk_steps=chunk_steps, progress=None, max_lanes=None)
        t = r.stats["chunk_timing"]
        k = max(t["chunks"] - 1, 1)
        dev, book, host = t["device_s"] / k, t["book_s"] / k, t["host_s"] / k
        rate = n * chunk_steps / dev
        rows.append(
            dict(
                lanes=n,
                mode=r.stats["lane_mode"],
                model=f"{spec.kind} p={spec.p}",
                device_ms=1e3 * dev,
                book_ms=1e3 * book,
                host_ms=1e3 * host,
                host_pct=100 * host / dev,
                book_pct=100 * book / dev,
                rate=rate,
                tflops=rate * flops / 1e12,
                mem=mem,
                chunks=k,
            )
        )
    return rows


def print_host_table(rows: list[dict]) -> None:
    print(
        "| lane mode | lanes | device ms/chunk | bookkeeping ms/chunk (device) "
        "| host ms/chunk (Python) | host % of device | bookkeeping % of device "
        "| lane-steps/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['lanes']} | {r['device_ms']:.1f} | {r['book_ms']:.2f} | "
            f"{r['host_ms']:.2f} | {r['host_pct']:.2f} | {r['book_pct']:.2f} | "
            f"{r['rate']:,.0f} |"
        )


def formulation_check(p: int, steps: int = 200, reps: int = 5) -> dict:
    """Steps/s of one paper-MLP lane's loss gradient + SGD step, written directly
    ([E[a], E[b]] @ W1 on every row) and with the per-token tables that ``grokjax.models``
    uses, timed alternately. Returns rates and the matmul GFLOP/s each one executes."""
    import jax
    import jax.numpy as jnp
    from grokjax import data, models

    spec = models.ModelSpec(kind="mlp", p=p)
    model = models.make_model(spec)
    params = model.init(jax.random.key(0))
    ab, y = data.make_table(p)
    rows = np.random.default_rng(0).permutation(len(y))[: data.num_train(p, 0.4)]
    n_tr = rows.size
    ab, y = jnp.asarray(ab[rows]), jnp.asarray(y[rows])
    gelu = lambda x: jax.nn.gelu(x, approximate=False)

    def direct(P, ab_Bx2):
        E = P["embed"]["E"]
        x_Bx2D = jnp.concatenate([E[ab_Bx2[:, 0]], E[ab_Bx2[:, 1]]], axis=1)
        h_BxH = gelu(x_Bx2D @ P["hidden"]["W1"] + P["hidden"]["b1"])
        return h_BxH @ P["out"]["W2"] + P["out"]["b2"]

    def program(apply):
        def loss(P):
            logp = jax.nn.log_softmax(apply(P, ab))
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(P, _):
            g = jax.grad(loss)(P)
            return jax.tree.map(lambda w, d: w - 1e-3 * d, P, g), None

        return jax.jit(lambda P: jax.lax.scan(step, P, None, length=steps)[0])

    progs = {"direct": program(direct), "tables": program(model.apply)}
    calls = {k: (lambda f=f: jax.block_until_ready(f(params))) for k, f in progs.items()}
    for call in calls.values():  # compile
        call()
    times = round_robin(calls, reps)
    flops = {
        "direct": train_step_flops(spec, n_tr, reference=True),
        "tables": train_step_flops(spec, n_tr),
    }
    return {
        k: dict(rate=steps / np.median(v), gflops=steps / np.median(v) * flops[k] / 1e9)
        for k, v in times.items()
    }


def add_ceiling(table: list[dict], ceiling: float) -> None:
    """Adds each row's executed and model FLOP rates as % of ``ceiling`` (GFLOP/s)."""
    for r in table:
        r["pct"] = 100 * r["gflops"] / ceiling
        r["model_pct"] = 100 * r["model_gflops"] / ceiling


def waste_ratio() -> str:
    """Executed / needed lane-steps of a short early-stopping run (tiny model, varied rho)."""
    from grokjax.lane import Static, make_hparams
    from grokjax.models import ModelSpec
    from grokjax.engine import Engine

    engine = Engine(Static(model=ModelSpec(p=31, d=64, hidden=128), frac=0.7))
    seeds = np.tile(np.arange(8), 3)
    target = np.repeat([0.0, 32.0, 39.0], 8)
    hp = make_hparams(3, seed=seeds, lr=1e-2, target_norm=target, t_int=50, budget=4000)
    r = engine.run(hp, chunk_steps=200, progress=None)
    s = r.stats
    return (
        f"early stopping (24 lanes, tiny MLP, 3 held norms): executed / needed lane-steps = "
        f"{s['lane_steps_executed']:,} / {s['lane_steps_needed']:,} = "
        f"{s['lane_steps_executed'] / s['lane_steps_needed']:.2f}, programs {s['programs']}"
    )


def check_memory(args) -> None:
    """Refuses (one line, naming the size) a benchmark whose tables or lanes cannot fit."""
    from grokjax import data
    from grokjax.lane import Static
    from grokjax.experiment import static_memory
    from grokjax.models import ModelSpec

    try:
        data.validate_task(args.p, "add", 0.4)
        for kind in ("mlp", "attn") if args.model == "both" else (args.model,):
            spec = ModelSpec(kind=kind, p=args.p, d=128, hidden=256 if kind == "mlp" else 512)
            mem = static_memory(Static(model=spec, frac=0.4), max(args.lanes))
            data.check_fits(mem["total"], f"one {kind} lane at p={args.p}")
            data.check_fits(mem["host"], f"the curves of {max(args.lanes):,} lanes")
    except ValueError as e:
        raise cli.UsageError(str(e)) from None


def other_modes(args) -> int:
    """--summary, --sweep-progress, --check-only and --host."""
    import json
    import os

    if args.summary:
        if not os.path.isdir(args.summary):
            raise cli.UsageError(f"--summary {args.summary}: no such directory")
        table = gpu_check_summary(args.summary)
        print(table)
        if os.environ.get("OUT"):
            os.makedirs(os.environ["OUT"], exist_ok=True)
            with open(os.path.join(os.environ["OUT"], "gpu_check.md"), "w") as f:
                f.write(table + "\n")
        return 0
    if args.sweep_progress:
        print(sweep_progress(*args.sweep_progress))
        return 0
    rows = None
    if args.check_only:
        import jax

        dev = jax.devices()[0]
        verdict = check_against_cpu(tiny=args.tiny)
        print(verdict, flush=True)
        rows = dict(
            device=f"{dev.platform} {dev.device_kind} x{jax.device_count()}", verdict=verdict
        )
    else:
        lanes = args.lanes or [1, 64, 256, 1024, 4096]
        if min(lanes) < 1 or max(lanes) > 1_000_000:
            raise cli.UsageError("--lanes must be integers in [1, 1,000,000]")
        if args.lane_mode not in ("auto", "walk", "vmap"):
            raise cli.UsageError(f"--lane-mode must be auto, walk or vmap, got {args.lane_mode!r}")
        if args.chunks < 2 or not 10 <= args.steps <= 10**6:
            raise cli.UsageError("--chunks must be >= 2 and --steps in [10, 10^6] with --host")
        rows = host_overhead(
            lanes,
            args.lane_mode,
            PAPER_MLP if args.paper_mlp else TINY_MLP,
            chunk_steps=args.steps // 10 * 10,
            chunks=args.chunks,
        )
        print_host_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def _parser() -> cli.Parser:
    """The command line (one declaration per option)."""
    ap = cli.Parser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mlp", help="mlp, attn or both")
    ap.add_argument("--p", type=int, default=59)
    ap.add_argument(
        "--lanes",
        type=cli.ints,
        help="lane counts (default 1,8,32,128; with --host 1,64,256,1024,4096)",
    )
    ap.add_argument("--steps", type=int, default=200, help="steps per timed chunk")
    ap.add_argument("--reps", type=int, default=5, help="timed rounds (medians are reported)")
    ap.add_argument(
        "--check",
        action="store_true",
        help="first compare a small run on this device against the CPU",
    )
    ap.add_argument(
        "--check-only",
        dest="check_only",
        action="store_true",
        help="only the device-vs-CPU comparison (8 lanes)",
    )
    ap.add_argument(
        "--host",
        action="store_true",
        help="instead of the throughput table: device, bookkeeping and host time "
        "per chunk of Engine.run (tiny MLP, p=13) per lane count",
    )
    ap.add_argument(
        "--paper-mlp",
        dest="paper_mlp",
        action="store_true",
        help="with --host: the paper MLP (p=59, d=128, H=256)",
    )
    ap.add_argument(
        "--lane-mode",
        dest="lane_mode",
        default="vmap",
        help="with --host: vmap (default), walk or auto",
    )
    ap.add_argument(
        "--chunks",
        type=int,
        default=4,
        help="with --host: chunks per lane count, the first not timed (default 4)",
    )
    ap.add_argument(
        "--tiny",
        action="store_true",
        help="with --check-only: a tiny model (the CPU rehearsal of gpu_check.sh)",
    )
    ap.add_argument("--json", help="with --host / --check-only: also write the rows as JSON")
    ap.add_argument(
        "--summary",
        metavar="DIR",
        help="print the table of experiments/gpu_check.sh from its files in DIR "
        "(also written to $OUT/gpu_check.md when OUT is set)",
    )
    ap.add_argument(
        "--sweep-progress",
        dest="sweep_progress",
        nargs=2,
        metavar=("OUT", "LOG"),
        help="one line: how far the run in OUT (its output in LOG) got",
    )
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.summary or args.sweep_progress or args.check_only or args.host:
        return other_modes(args)
    _validate(args)
    check_memory(args)
    if args.check:
        print(check_against_cpu(), flush=True)
    return throughput(args)


def _validate(args) -> None:
    """Refuses (one line) a throughput run with unknown or out-of-range options."""
    args.lanes = args.lanes or [1, 8, 32, 128]
    if args.model not in ("mlp", "attn", "both"):
        raise cli.UsageError(f"unknown --model {args.model!r}; choose mlp, attn or both")
    if not args.lanes or min(args.lanes) < 1:
        raise cli.UsageError("--lanes must be positive integers")
    if not 10 <= args.steps <= 10**9 or args.p < 2:
        raise cli.UsageError("--steps must be in [10, 10^9] and --p >= 2")
    if args.reps < 1:
        raise cli.UsageError(f"--reps must be >= 1, got {args.reps}")
    if max(args.lanes) > 1_000_000:
        raise cli.UsageError(f"--lanes must be at most 1,000,000, got {max(args.lanes)}")


def throughput(args) -> int:
    """The throughput table of ``args.model`` per lane count, then the formulation check (MLP)
    and the early-stopping waste ratio."""
    import jax

    dev = jax.devices()[0]
    before = gemm_ceiling()
    print(
        f"device: {dev.platform} {dev.device_kind} x{jax.device_count()}; "
        f"float32 GEMM ceiling {before:,.0f} GFLOP/s",
        flush=True,
    )
    table = []
    for kind in ("mlp", "attn") if args.model == "both" else (args.model,):
        table += bench_model(kind, args.p, args.lanes, args.steps, args.reps)
    # The ceiling is the better of two measurements, before and after the runs: a shared
    # machine that slowed down during one of them would otherwise inflate every percentage.
    after = gemm_ceiling()
    ceiling = max(before, after)
    print(f"float32 GEMM ceiling after the runs {after:,.0f} GFLOP/s; using {ceiling:,.0f}")
    add_ceiling(table, ceiling)
    print_throughput_table(table)
    if args.model in ("mlp", "both"):
        print_formulation(args.p, ceiling)
    print()
    print(waste_ratio())
    return 0


def print_throughput_table(table: list[dict]) -> None:
    """The benchmark's one table, a row per (model, lane count)."""
    print()
    print(
        "| model | lanes | lane-steps/s | per lane vs first row | executed GFLOP/s | % of ceiling "
        "| model FLOPs, % of ceiling | eval overhead % | spread % | compile+first s "
        "| memory/lane |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        mem = "n/a" if r["mem"] is None else f"{r['mem'] / 2**20:.2f} MiB"
        print(
            f"| {r['model']} | {r['lanes']} | {r['rate']:,.0f} | {r['per_lane']:.0f} % | "
            f"{r['gflops']:.1f} | {r['pct']:.0f} | {r['model_pct']:.0f} | "
            f"{r['eval_pct']:.1f} | {r['spread']:.0f} | {r['compile_s']:.1f} | {mem} |"
        )


def print_formulation(p: int, ceiling: float) -> None:
    """One line: the paper-MLP step written directly against the per-token tables."""
    f = formulation_check(p)
    print()
    print(
        "one paper-MLP lane, gradient + SGD step only (no eval, no AdamW): "
        + "; ".join(
            f"{k} {v['rate']:,.0f} steps/s, {v['gflops']:.0f} GFLOP/s executed "
            f"({100 * v['gflops'] / ceiling:.0f} % of the ceiling)"
            for k, v in f.items()
        )
        + f"; tables / direct = {f['tables']['rate'] / f['direct']['rate']:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(cli.main_guard("bench", main))
