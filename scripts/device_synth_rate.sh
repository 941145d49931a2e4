#!/usr/bin/env bash
# Measure the dry-corpus rate on the GPU host (issue 22's target: 100 h of dry speech in
# <= 4 minutes on its 16 cores). Generates HOURS (default 100) of dry train speech with all
# cores into $WORK/synth/train (the folder scripts/device_train_default_leg.sh then reuses on
# a warm machine) and writes the generator's rate line and the wall time to
# $OUT/synth_rate.txt. Expected: ~1-2 minutes for 100 h (588x real time per core measured on
# the 2-core CPU machine, CPU time, 2026-12-07; x16 cores ~ 9,400x, less with flite's slow
# rms voice in the mix and hyper-threaded cores).
#   Here, once: bash scripts/device_synth.sh --fetch
#   There (carry [".debs", ".whl", ".cache/synth"]): bash scripts/device_synth_rate.sh [HOURS]
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${1:-100}
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/lcasr_leg}
mkdir -p "$OUT" "$WORK"
t0=$(date +%s.%N)
bash scripts/device_synth.sh --out "$WORK/synth/train" --hours "$HOURS" --split train \
  --seed 0 --dry --no-progress 2>&1 | grep -v "skipped .* sentence groups" | tail -n 3 \
  | tee "$OUT/synth_rate.txt"
t1=$(date +%s.%N)
echo "cores $(nproc); wall $(awk "BEGIN{print $t1 - $t0}") s for $HOURS h (dry)" | tee -a "$OUT/synth_rate.txt"
du -sh "$WORK/synth/train" | tee -a "$OUT/synth_rate.txt"
