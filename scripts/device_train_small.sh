#!/usr/bin/env bash
# Train the shipped small model on a fresh GPU machine (no internet), in one <= 10 min call:
# generate the synthetic corpus (train / dev / test), train experiments/small.py, evaluate
# on the held-out test split, and leave the model, metrics and WER under $OUT.
#
# Here, once:  bash scripts/device_synth.sh --fetch      (debs, wheels, text cache)
# There:       carry [".debs", ".whl", ".cache/synth"]; run
#              bash scripts/device_train_small.sh [TRAIN_HOURS] [TIME_LIMIT_S]
# The .whl folder holds the py3.12 wheels the GPU image lacks (see README, "GPU machines").
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${1:-20}
LIMIT=${2:-390}
OUT=${OUT:-/tmp/out}
DATA=/tmp/synth
RUN=/tmp/run
mkdir -p "$OUT"
. scripts/device_site.sh
site_install
t0=$(date +%s)
bash scripts/device_synth.sh --out "$DATA/train" --hours "$HOURS" --split train --seed 0 --no-progress
bash scripts/device_synth.sh --out "$DATA/dev" --hours 0.5 --split dev --seed 1 --no-progress
bash scripts/device_synth.sh --out "$DATA/test" --hours 1 --split test --seed 2 --no-progress
echo "corpus: $(( $(date +%s) - t0 )) s"
python3 -m lcasr_jax.cli train --config=experiments/small.py --config.data.kind=recordings \
  --config.data.path="$DATA" --workdir="$RUN" --time-limit-s="$LIMIT" 2>&1 \
  | tr '\r' '\n' | grep -v -i -E "warn|^\s*$" | tail -n 60
python3 -m lcasr_jax.cli eval --checkpoint "$RUN/model" --dataset synth --data-dir "$DATA" \
  --split test --seq-len 4096 --overlap-ratio 0.875 --mode averaged_moving_window \
  --out "$OUT/eval" --quiet 2>&1 | tail -n 20
tar -C "$RUN" -cf "$OUT/model.tar" model
cp "$RUN/metrics.jsonl" "$OUT/metrics.jsonl"
