#!/usr/bin/env bash
# One device call (about a minute on an H100/H200): does CUDA autocast compute the position
# tables and BatchRenorm statistics as this project's bf16 options do (issue 21)? The CPU
# tests can only emulate CUDA autocast (CPU autocast leaves the rotary einsum in float32).
# Run from the repo root on the GPU machine; writes $OUT/autocast_check.{json,log}; exits 1
# if a bf16 option is further from autocast than one bf16 step on > 0.1 % of the values.
set -uo pipefail
out=${OUT:-runs/autocast}
mkdir -p "$out"
. scripts/device_site.sh
site_install || exit 1
export PYTHONUNBUFFERED=1
timeout 300 python3 scripts/check_autocast_cuda.py --out "$out" 2>&1 | grep -v cuda_timer \
  | tee "$out/autocast_check.log"
exit "${PIPESTATUS[0]}"
