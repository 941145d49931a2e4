#!/usr/bin/env bash
# One device call (~6 minutes on an H100/H200): the CTC wavefront with its float64 check and
# speed from 512 to 45,000 frames, its label-occupancy modes at 45,000 frames, and the
# one-hour training step (time and peak memory). Logs under $OUT (or ./runs/bench).
# Run from the repo root on the GPU machine, with .whl carried (README "GPU machines").
# EXTRA=1 adds the one-hour step with the XLA CTC (memory attribution) and the eval forward.
set -uo pipefail
out=${OUT:-runs/bench}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1
quiet() { grep -v cuda_timer; }
timeout 150 python3 benchmarks/ctc.py --check 4000 --impls pallas_gpu \
  --sizes 512 2048 8192 22500 45000 --no-torch --reps 3 2>&1 | quiet | tee "$out/ctc.log" \
  | grep '^|'
timeout 120 python3 benchmarks/ctc.py --impls pallas_gpu --sizes 512 --no-torch --reps 3 \
  --tiles 45000 --occ-list atomic deferred 2>&1 | quiet | tee "$out/tiles.log" | grep '^|'
cases=step@360000x1+remat
[ "${EXTRA:-0}" = 1 ] && cases=$cases,step@360000x1+remat+xlactc
timeout 220 python3 benchmarks/model_step.py --repeats 3 --cases "$cases" 2>&1 | quiet \
  | tee "$out/step.log" | grep '^|'
if [ "${EXTRA:-0}" = 1 ]; then
  timeout 100 python3 benchmarks/eval_throughput.py 2>&1 | quiet | tee "$out/eval.log" | tail -12
fi
