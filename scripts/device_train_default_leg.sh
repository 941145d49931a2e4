#!/usr/bin/env bash
# One training leg of the default model on a GPU machine (python3, jax 0.11.x, no network),
# in one call of < 10 minutes: (1) the corpus: HOURS of DRY train speech (`data synth --dry`,
# all cores; augmentation happens on the GPU inside training) and the wet held-out dev/test
# splits (unseen voice families and books), skipped when already made (a warm machine keeps
# $WORK); (2) train one leg (<= LEG_S seconds) of experiments/default.py:$RECIPE, starting
# from PREV (a previous leg's bf16 model dir, or a model.tar) when given; (3) evaluate on the
# test split at 10/40/160/320/600 s (averaged moving window, overlap 0.875); (4) write
# under $OUT: model.tar (bf16 model dir "model": the next leg's PREV), metrics.jsonl,
# results.csv, wer_by_context.txt, synth_rate.txt, log.txt.
#
# Here, once:  bash scripts/device_synth.sh --fetch      (debs, wheels, text cache)
# There:       run tool, carry [".debs", ".whl", ".cache/synth"] (legs/model.tar is tracked):
#   bash scripts/device_train_default_leg.sh                       # leg 1
#   (leg 2, 3, ...: the same command; it starts from legs/model.tar, the previous leg's
#   $OUT/model.tar committed there: legs/README.md)
# Time: the whole call stays within BUDGET (570 s; the run tool's limit is 600): training gets
# min(LEG_S, what is left after the corpus, minus EVAL_RESERVE_S for the evaluation). First
# call: corpus ~1-2 min (100 h dry on 16 cores; dev/test wet), start-up ~1 min, training
# ~4-5 min, evaluation ~2.5 min. On a warm machine (corpus kept in $WORK) training gets
# ~6 min; with EVAL=0 (no evaluation: an intermediate leg) 8 min.
# Knobs (env): HOURS (100), LEG_S (480: at most this many training seconds), BUDGET (570),
# EVAL (1), EVAL_RESERVE_S (160), RECIPE ("original": the paper's
# options, experiments/default.py RECIPE_FIELDS; "" for none), EPOCHS (3: the leg's cosine
# length in passes), TEST_HOURS (1.5), DEV_HOURS (0.5), CONTEXTS (frames), WORK
# (/tmp/lcasr_leg), EXTRA (more train overrides), PY (python3), WHEELS_DIR (.whl).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/lcasr_leg}
HOURS=${HOURS:-100}
LEG_S=${LEG_S:-480}
BUDGET=${BUDGET:-570}
EVAL=${EVAL:-1}
EVAL_RESERVE_S=${EVAL_RESERVE_S:-160}
[ "$EVAL" = 1 ] || EVAL_RESERVE_S=0
RECIPE=${RECIPE-original}
EPOCHS=${EPOCHS:-3}
TEST_HOURS=${TEST_HOURS:-1.5}
DEV_HOURS=${DEV_HOURS:-0.5}
CONTEXTS=${CONTEXTS:-"1000 4000 16000 32000 60000"}
EXTRA=${EXTRA:-}
PY=${PY:-python3}
WHEELS_DIR=${WHEELS_DIR:-.whl}
PREV=${PREV-legs/model.tar}  # the previous leg's model (legs/README.md); "" = from scratch
[ -n "$PREV" ] && [ ! -e "$PREV" ] && { echo "no $PREV: leg 1, from scratch"; PREV=""; }
export PY
DATA=$WORK/synth
RUN=$WORK/run-$(date +%s)
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
if [ ! -f "$WORK/.site-ready" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$WHEELS_DIR"/*.whl
  touch "$WORK/.site-ready"
fi
export PYTHONPATH=$WORK/site:.
synth() {  # split hours seed [--dry]
  s=$(date +%s)
  bash scripts/device_synth.sh --out "$DATA/$1" --hours "$2" --split "$1" --seed "$3" \
    --no-progress ${4:-} 2>&1 | grep -v "skipped .* sentence groups" | tail -n 2
  echo "synth $1: $(( $(date +%s) - s )) s" | tee -a "$OUT/synth_rate.txt"
}
synth dev "$DEV_HOURS" 1
synth test "$TEST_HOURS" 2
synth train "$HOURS" 0 --dry
grep "made" "$OUT/log.txt" | tail -n 3 >> "$OUT/synth_rate.txt" || true
echo "corpus: $(( $(date +%s) - t0 )) s"
init=()
if [ -n "$PREV" ]; then
  if [ "${PREV%.tar}" != "$PREV" ]; then
    mkdir -p "$WORK/prev" && tar -C "$WORK/prev" -xf "$PREV" && PREV=$WORK/prev/model
  fi
  init=(--config.train.init_from="$PREV" --config.optim.warmup_steps=100)
fi
limit=$(( $(left) - EVAL_RESERVE_S - 60 ))  # start-up and the export
[ "$limit" -gt "$LEG_S" ] && limit=$LEG_S
[ "$limit" -lt 30 ] && limit=30  # a limit <= 0 would mean none
echo "training for at most $limit s"
# shellcheck disable=SC2086
"$PY" -m lcasr_jax.cli train --config="experiments/default.py${RECIPE:+:$RECIPE}" \
  --config.data.path="$DATA" --config.train.max_epochs="$EPOCHS" --workdir="$RUN" \
  --time-limit-s="$limit" "${init[@]}" $EXTRA 2>&1 \
  | tr '\r' '\n' | grep -v -i -E "warn|^\s*$" | tail -n 40
echo "trained: $(( $(date +%s) - t0 )) s"
cp "$RUN/metrics.jsonl" "$OUT/metrics.jsonl"
tar -C "$RUN" -cf "$OUT/model.tar" model
[ "$EVAL" = 1 ] || { echo "EVAL=0: no evaluation; total $(( $(date +%s) - t0 )) s"; exit 0; }
for ctx in $CONTEXTS; do
  [ "$(left)" -gt 20 ] || { echo "eval: out of time before context $ctx"; break; }
  timeout $(( $(left) + 20 )) "$PY" -m lcasr_jax.cli eval --checkpoint "$RUN/model" \
    --dataset synth --data-dir "$DATA" --split test --seq-len "$ctx" --overlap-ratio 0.875 \
    --mode averaged_moving_window --name "ctx$ctx" \
    --out "$OUT/eval" --results-table "$OUT/results.csv" --quiet 2>&1 | tail -n 3 || true
done
"$PY" - "$OUT/results.csv" "$RUN/model/config.json" <<'PY' | tee "$OUT/wer_by_context.txt"
import csv, json, sys
meta = json.load(open(sys.argv[2]))["metadata"]
print(f"after {meta['legs']} legs, {meta['total_steps']} steps "
      f"(sequence {meta['sequence']['cur_sequence_length']} frames): held-out test WER")
try:
    rows = [r for r in csv.DictReader(open(sys.argv[1])) if r.get("recording", "all") == "all"]
except FileNotFoundError:
    rows = []
    print("  no evaluation finished in this call (no results table)")
for r in rows:
    print(f"  {int(r['seq_len']) / 100:7.1f} s  WER {float(r['wer']):.4f}  ({r['words']} words)")
if len(rows) > 1:
    a, b = float(rows[0]["wer"]), float(rows[-1]["wer"])
    print(f"relative reduction {rows[0]['seq_len']} -> {rows[-1]['seq_len']} frames: "
          f"{100 * (a - b) / a:.1f} %")
PY
echo "total: $(( $(date +%s) - t0 )) s"
