#!/usr/bin/env bash
# GPU check, about 8 minutes on one data-centre GPU; run from anywhere:
#
#     bash experiments/gpu_check.sh                  # table printed, and in $OUT/gpu_check.md
#     SWEEP_SECONDS=600 bash experiments/gpu_check.sh    # a longer look at the paper preset
#     GPU_CHECK_TINY=1 bash experiments/gpu_check.sh     # the CPU rehearsal (tests/test_bench.py)
#
# 1. device vs CPU: 8 lanes (free and clamped) on this device and on the CPU, same events;
# 2. the paper MLP (p=59) at 64/256/1024/4096 lanes in one vmapped program (lane mode vmap):
#    lane-steps/s, executed TFLOP/s, memory per lane, host and bookkeeping time as % of the
#    chunk's device time;
# 3. python -m experiments.delay_sweep --preset paper under a wall-clock cap (SIGTERM: it
#    checkpoints and stops), then how far it got;
# then one table (also written to $OUT/gpu_check.md when OUT is set). Float32 matmuls run at
# full precision (Static.precision "highest": no TF32).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}:."
WORK="$(mktemp -d)"
if [ "${GPU_CHECK_TINY:-0}" = "1" ]; then
  CHECK=(--tiny); BENCH=(--lanes 1,4 --steps 20 --chunks 2)
  SWEEP=(--preset tiny); CAP="${SWEEP_SECONDS:-15}"
else
  CHECK=(); BENCH=(--paper-mlp --lanes 64,256,1024,4096 --steps 200 --chunks 3)
  SWEEP=(--preset paper); CAP="${SWEEP_SECONDS:-200}"
fi
python -c 'import jax; print("devices:", jax.devices(), flush=True)'
python -m experiments.bench --check-only "${CHECK[@]}" --json "$WORK/check.json" || true
python -m experiments.bench --host --lane-mode vmap "${BENCH[@]}" --json "$WORK/bench.json" \
  || true
echo "delay_sweep ${SWEEP[*]}: stopped after ${CAP}s"
timeout -s TERM -k 60 "$CAP" python -m experiments.delay_sweep "${SWEEP[@]}" \
  --out "$WORK/sweep" > "$WORK/sweep.log" 2>&1 || true
tail -n 3 "$WORK/sweep.log"
python -m experiments.bench --sweep-progress "$WORK/sweep" "$WORK/sweep.log" > "$WORK/sweep.txt"
echo
python -m experiments.bench --summary "$WORK"
rm -rf "$WORK"
