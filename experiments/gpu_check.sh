#!/usr/bin/env bash
# GPU check: correctness against the CPU on a small case, then the paper MLP (p=59) timed at
# 64, 256 and 1024 lanes, and the paper preset's wall time. Run from the repository root:
#
#     bash experiments/gpu_check.sh            # ~5 minutes on one data-centre GPU
#     SWEEP=1 bash experiments/gpu_check.sh    # also the full paper preset of delay_sweep
#
# Prints the table that goes into the README (lane-steps/s, TFLOP/s, memory per lane).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}:."
python - <<'PY'
import jax
print("devices:", jax.devices())
PY
python -m experiments.bench --check --model mlp --lanes 64,256,1024 --steps 400
python -m experiments.bench --model attn --lanes 64,256 --steps 200
if [ "${SWEEP:-0}" = "1" ]; then
  time python -m experiments.delay_sweep --preset paper --out runs/delay_sweep-paper
fi
