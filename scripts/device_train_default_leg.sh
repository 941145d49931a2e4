#!/usr/bin/env bash
# One training leg of the default model on a GPU machine (python3, jax 0.11.x, no network):
# (1) the corpus: HOURS of DRY train speech (`data synth --dry`, all cores; augmentation
# happens on the GPU inside training) and the wet held-out dev/test splits (unseen voice
# families and books), skipped when already made (a warm machine keeps $WORK); (2) train one
# leg (<= LEG_S seconds) of experiments/default.py:$RECIPE, starting from PREV (a previous
# leg's bf16 model dir, or a model.tar) when given; (3) evaluate on the test split at
# 10/40/160/320/600 s (averaged moving window, overlap 0.875).
#
#   bash scripts/device_train_default_leg.sh [all|corpus|train]
#   all (default): (1)-(3) in one call of < 10 minutes. Leg 1 only: carry [".debs", ".whl",
#          ".cache/synth"] (made here by `bash scripts/device_synth.sh --fetch`); with the
#          tracked legs/model.tar as well the working tree would exceed the run tool's 64 MiB
#          (33 tracked + 18 + 29 carried).
#   corpus: (1) only, under $WORK, then exits; carry [".debs", ".whl", ".cache/synth"], with
#          legs/model.tar moved out of the working tree here (`bash scripts/legs_stash.sh out`).
#   train:  (2)-(3) from the corpus that `corpus` left in $WORK: the next call on the SAME
#          warm machine (it keeps /tmp ~30 s between calls), carry [".whl"], legs/model.tar
#          back (`bash scripts/legs_stash.sh back`). Without that corpus (the machine was
#          released) it stops at once with one line: run `corpus` again.
#   Leg 2, 3, ...: `corpus` then `train` (legs/README.md has the exact sequence); it starts
#   from legs/model.tar, the previous leg's model.tar committed there.
#
# What comes back: the run tool returns at most 8 files from $OUT (hidden lock files count
# too), each <= 16 MiB, <= 64 MiB in all, <= 2 folders deep; the rest is dropped silently.
# So the eval dir and the results tables (and their .lock files) live under $WORK, and $OUT
# gets only (a count ends each call: scripts/out_limits.sh):
#   corpus (2): log.txt, synth_rate.txt
#   train  (6): log.txt, metrics.jsonl, wer_by_context.txt, results.tgz (results.csv,
#               results_recordings.csv, eval/), model.tar.part-aa + model.tar.part-ab
#               (the bf16 model dir "model" as a tar, ~18 MB, split in 15 MiB parts:
#               `cat model.tar.part-* > legs/model.tar`; a model.tar under 15 MiB comes whole)
#   all    (7): both lists (log.txt once)
# Time: each call stays within BUDGET (570 s; the run tool's limit is 600): training gets
# min(LEG_S, what is left after the corpus, minus EVAL_RESERVE_S for the evaluation). `all`:
# corpus ~1-2 min (100 h dry on 16 cores; dev/test wet), start-up ~1 min, training ~4-5
# min, evaluation ~2.5 min. `train` (corpus already there): training ~6 min; with EVAL=0
# (no evaluation: an intermediate leg) 8 min.
# Knobs (env): HOURS (100), LEG_S (480: at most this many training seconds), BUDGET (570),
# EVAL (1), EVAL_RESERVE_S (160), RECIPE ("original": the paper's
# options, experiments/default.py RECIPE_FIELDS; "" for none), EPOCHS (3: the leg's cosine
# length in passes), TEST_HOURS (1.5), DEV_HOURS (0.5), CONTEXTS (frames), WORK
# (/tmp/lcasr_leg), EXTRA (more train overrides), PY (python3), WHEELS_DIR (.whl).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:-all}
case "$STAGE" in all|corpus|train) ;; *) echo "stage: all | corpus | train"; exit 2 ;; esac
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
if [ "$STAGE" = train ] && [ -n "$PREV" ] && [ ! -e "$PREV" ]; then
  echo "no $PREV: put it back here (bash scripts/legs_stash.sh back) and call train again," \
    "or PREV= for a leg from scratch"
  exit 3
fi
[ -n "$PREV" ] && [ ! -e "$PREV" ] && [ "$STAGE" = all ] && { echo "no $PREV: leg 1, from scratch"; PREV=""; }
export PY
DATA=$WORK/synth
RUN=$WORK/run-$(date +%s)
mkdir -p "$OUT" "$WORK"
. scripts/out_limits.sh
exec > >(tee -a "$OUT/log.txt") 2>&1
if [ "$STAGE" = train ] && [ ! -f "$DATA/.complete" ]; then
  echo "no corpus in $DATA (machine released since the corpus call?): run" \
    "\`device_train_default_leg.sh corpus\` again, then train (legs/README.md)"
  exit 3
fi
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
. scripts/device_site.sh
site_install "$WORK/site" "$WHEELS_DIR"
synth() {  # split hours seed [--dry]
  s=$(date +%s)
  bash scripts/device_synth.sh --out "$DATA/$1" --hours "$2" --split "$1" --seed "$3" \
    --no-progress ${4:-} 2>&1 | grep -v "skipped .* sentence groups" | tail -n 2
  echo "synth $1: $(( $(date +%s) - s )) s" | tee -a "$OUT/synth_rate.txt"
}
if [ "$STAGE" != train ]; then
  rm -f "$DATA/.complete"
  synth dev "$DEV_HOURS" 1
  synth test "$TEST_HOURS" 2
  synth train "$HOURS" 0 --dry
  grep "made" "$OUT/log.txt" | tail -n 3 >> "$OUT/synth_rate.txt" || true
  for sp in dev test train; do
    [ -f "$DATA/$sp/manifest.json" ] || { echo "corpus: no $DATA/$sp/manifest.json"; exit 1; }
  done
  touch "$DATA/.complete"
  echo "corpus: $(( $(date +%s) - t0 )) s"
  [ "$STAGE" = corpus ] && { out_check; echo "corpus stage done: next, the train stage"; exit 0; }
fi
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
out_split "$OUT/model.tar"  # > 15 MiB: model.tar.part-aa, -ab (cat model.tar.part-* >...)
if [ "$EVAL" != 1 ]; then
  echo "EVAL=0: no evaluation"; out_check; echo "total $(( $(date +%s) - t0 )) s"; exit 0
fi
RES=$RUN/results  # results.csv, results_recordings.csv (+ their locks), eval/: results.tgz
mkdir -p "$RES"
for ctx in $CONTEXTS; do
  [ "$(left)" -gt 20 ] || { echo "eval: out of time before context $ctx"; break; }
  timeout $(( $(left) + 20 )) "$PY" -m lcasr_jax.cli eval --checkpoint "$RUN/model" \
    --dataset synth --data-dir "$DATA" --split test --seq-len "$ctx" --overlap-ratio 0.875 \
    --mode averaged_moving_window --name "ctx$ctx" \
    --out "$RES/eval" --results-table "$RES/results.csv" --quiet 2>&1 | tail -n 3 || true
done
"$PY" - "$RES/results.csv" "$RUN/model/config.json" <<'PY' | tee "$OUT/wer_by_context.txt"
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
out_pack "$OUT/results.tgz" "$RES"
out_check
echo "total: $(( $(date +%s) - t0 )) s"
