#!/usr/bin/env bash
# Train the default model on a GPU machine (no internet) in chained calls of < 9.5 minutes.
# Each call: generate (or finish) the synthetic corpus (train / dev / test, all cores),
# cache its features, train experiments/default.py until the call's time budget minus the
# evaluation reserve (resuming from $WORK/run, which survives while the machine stays warm),
# export the bf16 model and measure held-out WER at several contexts. Leaves under $OUT:
# metrics.jsonl, model.tar (the converted model dir "model", as lcasr_jax/assets/default_model),
# results.csv + wer_by_context.txt (test split: unseen voice families and books), log.txt.
#
# Here, once:  bash scripts/device_synth.sh --fetch      (debs, wheels, text cache)
# There:       carry [".debs", ".whl", ".cache/synth"]; keep the machine warm (WORK must
#              survive) and run the same command until the schedule is done:
#              EVAL_FIRST=0 bash scripts/device_train_default.sh [TRAIN_HOURS] [BUDGET_S]
# Measured on one H200 with 16 cores (2026-12-03): the corpus generator makes 256-322x real
# time (not ~1,700x), i.e. ~40 h per 9-min call, so 100 h takes 2-3 calls before training
# starts (a call trains only once the corpus is complete); features 88 s per 40 h; training
# ~3.5 steps/s at sequences up to 41 s, each step ~65,536 frames (about one 10-min corpus
# recording); the default schedule reaches 600 s after 2,400 recordings. So: 100 h with
# EPOCHS=6 is about 5 calls (2 corpus, 3 training); 50 h with EPOCHS=7 and
# EXTRA=--config.sequence.increase_every=250 fits 3 calls (README, "Attempt of 2026-12-03").
# Knobs (env): WORK (/tmp/lcasr_default), EPOCHS (8: the cosine decay's length in passes
# over the corpus; keep it fixed across calls), TEST_HOURS (1.5), DEV_HOURS (0.5), MINUTES
# (10: mean recording length), CONTEXTS (frames, 10 ms),
# EVAL_RESERVE_S (150), CONFIG (experiments/default.py), EXTRA (more train overrides),
# PY (python3), WHEELS_DIR (.whl; with SYNTH_WHL, other wheels for a CPU dry run),
# EVAL_FIRST (1; 0: the first call, which starts with no checkpoint, trains through the
# evaluation reserve and evaluates nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
HOURS=${1:-100}
BUDGET=${2:-555}
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/lcasr_default}
EPOCHS=${EPOCHS:-8}
TEST_HOURS=${TEST_HOURS:-1.5}
DEV_HOURS=${DEV_HOURS:-0.5}
MINUTES=${MINUTES:-10}
CONTEXTS=${CONTEXTS:-"1024 4096 16384 60000"}
EVAL_RESERVE_S=${EVAL_RESERVE_S:-150}
CONFIG=${CONFIG:-experiments/default.py}
EXTRA=${EXTRA:-}
PY=${PY:-python3}
WHEELS_DIR=${WHEELS_DIR:-.whl}
export PY
DATA=$WORK/synth
RUN=$WORK/run
mkdir -p "$OUT" "$WORK"
rm -f "$OUT/results.csv"
exec > >(tee -a "$OUT/log.txt") 2>&1
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
skip_eval=0  # EVAL_FIRST=0: a call that starts with no checkpoint trains instead of evaluating
if [ "${EVAL_FIRST:-1}" = 0 ] && [ -z "$(ls -A "$RUN/checkpoints" 2>/dev/null)" ]; then
  skip_eval=1
  EVAL_RESERVE_S=0
fi
. scripts/device_site.sh
site_install "$WORK/site" "$WHEELS_DIR"
synth() {  # split hours seed [timeout_s]: resumable; a timeout leaves the rest for next call
  timeout "${4:-100000}" bash scripts/device_synth.sh --out "$DATA/$1" --hours "$2" \
    --split "$1" --seed "$3" --minutes "$MINUTES" --no-progress 2>&1 | grep -v "skipped .* sentence groups" || true
  [ -f "$DATA/$1/manifest.json" ]
}
ok=1
synth dev "$DEV_HOURS" 1 || ok=0
synth test "$TEST_HOURS" 2 || ok=0
synth train "$HOURS" 0 $(( $(left) - EVAL_RESERVE_S - 90 )) || ok=0
echo "corpus: $(( $(date +%s) - t0 )) s (complete: $ok)"
if [ "$ok" = 1 ]; then
  timeout $(( $(left) - EVAL_RESERVE_S - 30 )) "$PY" -m lcasr_jax.cli data cache "$DATA" \
    || echo "feature cache unfinished (the loader computes the rest)"
  echo "features: $(( $(date +%s) - t0 )) s"
  limit=$(( $(left) - EVAL_RESERVE_S - 40 ))  # start-up and the final export
  if [ "$limit" -gt 30 ]; then
    # shellcheck disable=SC2086
    "$PY" -m lcasr_jax.cli train --config="$CONFIG" --config.data.kind=recordings \
      --config.data.path="$DATA" --config.train.max_epochs="$EPOCHS" --workdir="$RUN" \
      --time-limit-s="$limit" $EXTRA 2>&1 \
      | tr '\r' '\n' | grep -v -i -E "warn|^\s*$" | tail -n 40
  fi
fi
echo "trained: $(( $(date +%s) - t0 )) s"
[ -f "$RUN/metrics.jsonl" ] && cp "$RUN/metrics.jsonl" "$OUT/metrics.jsonl"
[ -d "$RUN/model" ] && tar -C "$RUN" -cf "$OUT/model.tar" model
if [ -d "$RUN/model" ] && [ "$skip_eval" = 0 ]; then
  for ctx in $CONTEXTS; do
    [ "$(left)" -gt 25 ] || { echo "eval: out of time before context $ctx"; break; }
    timeout $(( $(left) - 5 )) "$PY" -m lcasr_jax.cli eval --checkpoint "$RUN/model" \
      --dataset synth --data-dir "$DATA" --split test --seq-len "$ctx" --overlap-ratio 0.875 \
      --mode averaged_moving_window --name "ctx$ctx" \
      --out "$OUT/eval" --results-table "$OUT/results.csv" --quiet 2>&1 | tail -n 3 || true
  done
  [ -f "$OUT/results.csv" ] && "$PY" - "$OUT/results.csv" "$RUN/metrics.jsonl" <<'PY' \
    | tee "$OUT/wer_by_context.txt"
import csv, json, sys
last = [json.loads(x) for x in open(sys.argv[2]) if '"loss"' in x][-1]
print(f"after step {last['step']} (seq_len {last['seq_len']}): held-out test WER by context")
for r in csv.DictReader(open(sys.argv[1])):
    if r["recording"] == "all":
        print(f"  {int(r['seq_len']) / 100:7.1f} s  WER {float(r['wer']):.4f}  ({r['words']} words)")
PY
fi
echo "total: $(( $(date +%s) - t0 )) s"
