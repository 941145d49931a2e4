#!/usr/bin/env bash
# One device call (~10 minutes on an H100/H200): the CTC wavefront with float64 checks and
# its untried options (deferred label atomics, warps per program), the one-hour training step
# with the Pallas and the XLA CTC (to attribute peak memory), and the 1-hour eval forward.
# Logs under $OUT (or ./runs/bench).
# Run from the repo root on the GPU machine, with .whl carried (README "GPU machines").
set -uo pipefail
out=${OUT:-runs/bench}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1
timeout 200 python3 benchmarks/ctc.py --check 4000 --impls pallas_gpu xla --sizes 8192 45000 \
  --no-torch --reps 3 2>&1 | tee "$out/ctc.log" | grep '^|'
timeout 150 python3 benchmarks/ctc.py --impls pallas_gpu --sizes 512 --no-torch --reps 3 \
  --tiles 45000 --occ-list atomic deferred --warps-list 0 1 4 2>&1 | tee "$out/tiles.log" \
  | grep '^|'
timeout 200 python3 benchmarks/model_step.py --repeats 3 \
  --cases step@360000x1+remat,step@360000x1+remat+xlactc 2>&1 | tee "$out/step.log" | grep '^|'
timeout 120 python3 benchmarks/eval_throughput.py 2>&1 | tee "$out/eval.log" | tail -12
