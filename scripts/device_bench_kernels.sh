#!/usr/bin/env bash
# Two device calls (each < 10 minutes on an H100/H200), logs under $OUT (or ./runs/bench).
# Run from the repo root on the GPU machine, with .whl carried (README "GPU machines").
#   default: the CTC wavefront's float64 and bf16 check, the one-hour training step (time and
#            peak memory, remat 'full'), the 1-hour eval forward and its parts
#            (benchmarks/forward_parts.py).
#   EXTRA=1: CTC speed (Pallas and the XLA scan, 512 to 45,000 frames) and the Pallas
#            attention tile sweep at 45k tokens beside cuDNN.
set -uo pipefail
out=${OUT:-runs/bench}
mkdir -p "$out"
. scripts/device_site.sh
site_install || exit 1
export PYTHONUNBUFFERED=1
quiet() { grep -v cuda_timer; }
if [ "${EXTRA:-0}" = 1 ]; then
  timeout 250 python3 benchmarks/ctc.py --impls pallas_gpu xla --sizes 512 2048 8192 22500 \
    45000 --no-torch --reps 3 2>&1 | quiet | tee "$out/ctc.log" | grep '^|'
  timeout 240 python3 benchmarks/attention.py --full-only --sweep --backends cudnn pallas_gpu \
    2>&1 | quiet | tee "$out/attention_sweep.log" | grep '^|'
  exit 0
fi
timeout 170 python3 benchmarks/ctc.py --check 4000 --impls pallas_gpu --sizes 512 --no-torch \
  --reps 3 2>&1 | quiet | tee "$out/ctc_check.log" | grep '^|'
timeout 210 python3 benchmarks/model_step.py --repeats 3 --cases step@360000x1+remat 2>&1 \
  | quiet | tee "$out/step.log" | grep '^|'
timeout 150 python3 benchmarks/forward_parts.py 2>&1 | quiet | tee "$out/parts.log" \
  | grep '^|'
timeout 90 python3 benchmarks/eval_throughput.py --skip windows engine 2>&1 | quiet \
  | tee "$out/eval.log" | tail -12
