"""The GPU check's pieces outside the throughput benchmark (``experiments/gpu_check.sh`` calls
them through ``python -m experiments.bench``): the device-vs-CPU comparison of one small lane
batch, the summary table of the check's files, and how far a capped sweep got."""

from __future__ import annotations

import sys

import numpy as np


def check_against_cpu(tiny: bool = False) -> str:
    """Runs one small lane batch on the default device and on the CPU (subprocess) and
    compares every lane's events and norms. Returns a one-line verdict; raises on mismatch.
    ``tiny``: a p=13 model for 200 steps (the CPU rehearsal of gpu_check.sh)."""
    import json
    import os
    import subprocess

    code = (
        "import json, numpy as np\n"
        "from grokjax.lane import Static, make_hparams\n"
        "from grokjax.models import ModelSpec\n"
        "from grokjax.engine import Engine\n"
        + (
            "e = Engine(Static(model=ModelSpec(p=13, d=16, hidden=32), frac=0.5))\n"
            "hp = make_hparams(3, seed=np.tile(np.arange(4), 2), lr=1e-2,\n"
            "                  target_norm=np.repeat([0.0, 9.0], 4), t_int=50, budget=200)\n"
            if tiny
            else "e = Engine(Static(model=ModelSpec(p=31, d=64, hidden=128), frac=0.7))\n"
            "hp = make_hparams(3, seed=np.tile(np.arange(4), 2), lr=1e-2,\n"
            "                  target_norm=np.repeat([0.0, 33.0], 4), t_int=50, budget=2000)\n"
        )
        + "r = e.run(hp, chunk_steps=200, progress=None)\n"
        "print(json.dumps({'t_grok': r.latches['t_grok'].tolist(),\n"
        "                  'norm': r.latches['norm_at_grok'].tolist()}))\n"
    )

    def run(env_extra):
        env = dict(os.environ, **env_extra)
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    dev, cpu = run({}), run({"JAX_PLATFORMS": "cpu"})
    t_dev, t_cpu = np.array(dev["t_grok"], float), np.array(cpu["t_grok"], float)
    n_dev, n_cpu = np.array(dev["norm"], float), np.array(cpu["norm"], float)
    same_grok = np.array_equal(t_dev >= 0, t_cpu >= 0)
    ok = t_dev >= 0
    rel_t = np.max(np.abs(t_dev[ok] - t_cpu[ok]) / t_cpu[ok]) if ok.any() else 0.0
    rel_n = np.nanmax(np.abs(n_dev - n_cpu) / n_cpu) if ok.any() else 0.0
    verdict = (
        f"device vs CPU on 8 lanes: same lanes grok: {same_grok}; "
        f"max abs(dT_grok)/T_grok = "
        f"{rel_t:.3f}; max relative norm difference at T_grok = {rel_n:.2e}"
    )
    if not same_grok or rel_t > 0.05 or rel_n > 1e-2:
        raise SystemExit("MISMATCH: " + verdict)
    return verdict


def sweep_progress(out: str, log: str) -> str:
    """How far a (capped) experiment run got: finished phases and its last progress line."""
    import os

    done = (
        sorted(f[:-4] for f in os.listdir(os.path.join(out, "phases")) if f.endswith(".npz"))
        if os.path.isdir(os.path.join(out, "phases"))
        else []
    )
    lines = [l.strip() for l in open(log, errors="replace")] if os.path.exists(log) else []
    last = next((l for l in reversed(lines) if "] step" in l), "no progress line")
    finished = any(l.startswith("wrote ") for l in lines)
    return (
        f"{'finished' if finished else 'stopped at the cap'}; {len(done)} phase(s) done "
        f"({', '.join(done) or 'none'}); last: {last}"
    )


def gpu_check_summary(directory: str) -> str:
    """The one table of ``experiments/gpu_check.sh`` from the JSON files it left in
    ``directory`` (check.json, bench.json, sweep.out + sweep.log)."""
    import json
    import os

    get = lambda name: json.load(open(os.path.join(directory, name)))
    cell = lambda text: str(text).replace("|", "/")  # its own "|" would split the cell
    rows = ["| check | result |", "|---|---|"]
    try:
        c = get("check.json")
        rows.append(f"| device | {c['device']} |")
        rows.append(f"| device vs CPU, 8 lanes | {cell(c['verdict'])} |")
    except (OSError, ValueError, KeyError) as e:
        rows.append(f"| device vs CPU, 8 lanes | not run ({type(e).__name__}) |")
    try:
        for r in get("bench.json"):
            mem = "n/a" if r["mem"] is None else f"{r['mem'] / 2**20:.2f} MiB"
            rows.append(
                f"| bench {r['model']}, {r['lanes']} lanes ({r['mode']}) | "
                f"{r['rate']:,.0f} lane-steps/s, {r['tflops']:.3f} TFLOP/s, "
                f"{mem}/lane, host {r['host_pct']:.2f} % + bookkeeping "
                f"{r['book_pct']:.2f} % of device time |"
            )
    except (OSError, ValueError, KeyError) as e:
        rows.append(f"| bench | not run ({type(e).__name__}) |")
    sweep = (
        open(os.path.join(directory, "sweep.txt")).read().strip()
        if os.path.exists(os.path.join(directory, "sweep.txt"))
        else "not run"
    )
    rows.append(f"| delay_sweep under a wall-clock cap | {cell(sweep)} |")
    return "\n".join(rows)
