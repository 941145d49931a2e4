#!/usr/bin/env bash
# Issue 21 item 4 on a GPU: the original's trainer against this project's, same batches.
# Each call below runs in < 9 minutes on one H100/H200 and writes under $OUT.
#
# Here, once (needs PyPI and the original's checkout at $ORIGINAL, default /work/original):
#   bash scripts/device_train_parity.sh --fetch
#     -> .whl/replay/*.whl (einops at the replay's version; the GPU image has torch,
#        torchaudio, jax, pandas and sentencepiece: 64 MiB travel per call),
#        .original/original.tgz (the original's lcasr/ and exp/ folders, unmodified, and its
#        COMMIT, ~0.5 MB; git-ignored, never committed; unpacked there into $WORK/original)
#   bash scripts/device_synth.sh --fetch     (only for `data`: debs, wheels, text cache)
#   (that carry with the tracked tree is ~63.7 MiB of the 64 allowed: with a legs/model.tar in
#   the tree, move it out first, `bash scripts/legs_stash.sh out`, and back after the calls;
#   .whl/synth holds only the wheels .whl lacks: each wheel travels once)
# There (run tool, carry [".whl", ".original", ".debs", ".cache/synth"], one stage a call;
# `data` and `seed` need the machine to stay warm in between: $WORK lives on its disk):
#   bash scripts/device_train_parity.sh replay     (a) ~3 min: bf16 replay, both curves
#   bash scripts/device_train_parity.sh data       (b) ~6 min: synthetic corpus, both formats
#   bash scripts/device_train_parity.sh seed 1     (b) ~8 min: both trainers, seed 1, + WER
#   bash scripts/device_train_parity.sh seed 2     (b) same, seed 2
#   (`seed N original` / `seed N ours`: one trainer a call, if both do not fit in 9 min;
#   `data` then `seed 1 ours` in one call fills ours' compilation cache, $WORK/jax_cache,
#   so that the `seeds` call after it compiles nothing: with OURS_EXTRA
#   "--config.train.compile_ahead_stages=5" all six stage programs are queued at step 1)
#   bash scripts/device_train_parity.sh seeds      (b) instead of the two `seed` calls: both
#      trainers x seeds 1 and 2 at once on the one GPU (a 6L-256D model leaves it mostly
#      idle; the comparison is loss against recordings seen, so sharing the card changes
#      no number, only the wall time): one call; logs in results.tgz (logs/seed<S>_<who>.log)
# then here (each call's files in its own folder CALL*; see "What comes back"):
#   mkdir -p R && for t in CALL*/results.tgz CALL*/seed?.tgz; do tar -C R -xzf "$t"; done
#   python scripts/original_replay/parity_report.py R --out docs/
#
# What comes back: the run tool returns at most 8 files from $OUT (hidden lock files count
# too), each <= 16 MiB, <= 64 MiB in all, <= 2 folders deep; the rest is dropped silently.
# So eval dirs, results tables and their locks live under $WORK/results, and only these
# land in $OUT (each stage ends with a count: scripts/out_limits.sh):
#   replay  (6): log.txt, ours_steps.jsonl, original_steps.npz, original_meta.json,
#                deviation.json, loss_curves.png
#   data    (2): log.txt, data.txt
#   seed S  (4): log.txt, seed<S>_original_steps.npz, seed<S>_ours_metrics.jsonl (the curves,
#                copied as soon as each trainer stops), seed<S>.tgz (seed<S>/: both curves,
#                eval_<who>_<ctx>/ with the WER .json and per-recording tables)
#   seeds   (7): log.txt, seed{1,2}_original_steps.npz, seed{1,2}_ours_metrics.jsonl,
#                wer.txt (every WER, one line each), results.tgz (seed1/, seed2/ as above,
#                logs/seed<S>_<who>.log); packed at SEEDS_BUDGET_S (540 s) even if a run
#                still goes on
# Anything over 15 MiB is split into NAME.part-aa, NAME.part-ab, ...: `cat NAME.part-* > NAME`.
#
# (a) run_original.py under CUDA autocast bf16 (6L-256D model section, the replay corpus of
#     40 recordings, 3 epochs: >= 200 optimizer steps) and run_ours.py on the same batches
#     from the same initial weights with the paper options; compare_curves.py writes
#     deviation.json and loss_curves.png.
# (b) a 6L-256D model, 512 frames x 16 recordings doubling every 64 recordings to 16,384
#     frames, 3 epochs over a 12-h synthetic corpus (144 5-min recordings, 432 seen; 16,384
#     frames from the 320th on; ~1,600 optimizer steps), warm-up 300 steps,
#     lr 3e-3, the same for both trainers (same recordings seen); held-out WER on the test
#     split at 10 s, 160 s and the whole recording (averaged moving window, overlap 0.875).
# Knobs (env): WORK (/tmp/parity), HOURS (12), TEST_HOURS (1), MINUTES (5), EPOCHS (3),
# TORCH_DEVICE (cuda; cpu for a smoke run here), SEEDS_BUDGET_S (540), INCREASE (64:
# recordings per sequence-length stage), BATCH (16: recordings per batch at 512 frames),
# INIT (own: each trainer its own init, the original torch's defaults at seed 12345; lecun or
# torch: both from this project's init of that kind for the seed, make_init.py),
# LR (3.0e-3; keep the dot, "1.0e-3": YAML 1.1 reads "1e-3" as a string) and WARMUP (300
# steps): the same for both trainers, LIMIT_S (200: each trainer's training-time limit
# in `seed`; a run cut by it is evaluated as it stands and
# the log says so: then lower HOURS or EPOCHS, the budget must be the same recordings),
# OURS_SET (more run_ours.py --set KEY=VALUE options) and OURS_EXTRA (more `lcasr-jax train`
# overrides in `seed`), MODEL (a cut of the 6L-256D model for both trainers in `seed`, e.g.
# "n_layers=3 d_model=128 n_heads=4 subsampling_conv_channels=128": keys of the original's
# model section, the same names here; head_dim stays 32), DTYPE (bfloat16: the original under
# CUDA autocast, ours with the FIDELITY dtypes; float32: both in float32 throughout, as the
# original runs without CUDA, for a CPU run with TORCH_DEVICE=cpu), STEPS (stop both trainers
# after this many optimizer steps; the schedule's cosine still spans EPOCHS). INCREASE=-1: one
# fixed 512-frame stage (the original's "disabled"). Our side's fidelity options (issue 21
# item 1: torch init, BatchRenorm statistics, bf16 position tables, original batching,
# skip-step) come from
# `config_from_original` in `replay` and from experiments/paper.py's FIDELITY group in
# `seed`. The original seeds only its data order (training.random_seed): its init is
# always torch seed 12345, so its two "seeds" differ in batch order alone.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:?stage: --fetch | replay | data | seed N}
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/parity}
HOURS=${HOURS:-12}
INCREASE=${INCREASE:-64}
BATCH=${BATCH:-16}
INIT=${INIT:-own}
MODEL=${MODEL:-}
STEPS=${STEPS:-}
DTYPE=${DTYPE:-bfloat16}
LR=${LR:-3.0e-3}
WARMUP=${WARMUP:-300}
MINUTES=${MINUTES:-5}
EPOCHS=${EPOCHS:-3}
LIMIT_S=${LIMIT_S:-200}
OURS_SET=${OURS_SET:-}
OURS_EXTRA=${OURS_EXTRA:-}
TEMPLATE=exp/configs/paper_templates/exp_set_rot_encodings_6l_256.yaml
REPLAY_SCRIPTS=scripts/original_replay

if [ "$STAGE" = "--fetch" ]; then
  plats=()
  for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
    plats+=(--platform "$p"); done
  ${PIP:-.venv/bin/python -m pip} download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${plats[@]}" -d .whl/replay \
    einops==0.8.2
  # one tar: the run tool counts each small file's disk blocks, and the call is near 64 MiB
  tmp=$(mktemp -d)
  cp -r "${ORIGINAL:-/work/original}/lcasr" "${ORIGINAL:-/work/original}/exp" "$tmp/"
  git -C "${ORIGINAL:-/work/original}" rev-parse HEAD > "$tmp/COMMIT"  # dump.py records it
  rm -rf "$tmp/exp/configs/bin" "$tmp/exp/configs/old"
  rm -rf .original && mkdir -p .original
  tar -C "$tmp" -czf .original/original.tgz lcasr exp COMMIT && rm -rf "$tmp"
  du -sh .original .whl/replay
  exit 0
fi

mkdir -p "$OUT" "$WORK"
. scripts/out_limits.sh
RES=$WORK/results  # what results.tgz / seed<S>.tgz hold
# once per machine; stages may run at once (`seeds`, or `replay` beside `data`)
. scripts/device_site.sh
site_install /tmp/site .whl .whl/replay
ORIG=$WORK/original  # the original's lcasr/ and exp/, unpacked from .original/original.tgz
(
  flock 9
  if [ ! -f "$ORIG/COMMIT" ]; then
    rm -rf "$ORIG" && mkdir -p "$ORIG" && tar -C "$ORIG" -xzf .original/original.tgz
  fi
) 9>"$WORK/original.lock"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
# a `seed` run started by `seeds` (SUB=1) writes only to its log under $RES/logs
[ "${SUB:-0}" = 1 ] || exec > >(tee -a "$OUT/log.txt") 2>&1
date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c 'import jax, torch; print("jax", jax.__version__, "torch", torch.__version__)'

# Ours' run of seed S as config overrides (its train command; check_original_stop; make_init),
# one a line: the schedule, recipe, model cut and dtypes the original's YAML below gives the
# original
schedule_overrides() {  # seed
  printf '%s\n' "seed=$1" sequence.length=512 "sequence.batch_size=$BATCH" \
    "sequence.increase_every=$INCREASE" sequence.stop_after=1000000000 \
    sequence.max_sequence_length=16384 "optim.warmup_steps=$WARMUP" "optim.lr=$LR" \
    "train.max_epochs=$EPOCHS"
  [ -z "$STEPS" ] || echo "train.max_steps=$STEPS"
  for kv in $MODEL; do echo "model.$kv"; done
  [ "$DTYPE" = bfloat16 ] || printf '%s\n' "train.compute_dtype=$DTYPE" \
    "train.position_dtype=$DTYPE" "model.batch_renorm_dtype=$DTYPE"
}

# The original's trainer stops with an error where a stage change falls on an epoch's last
# batch (train/original.py `original_stop`): refuse such a run before it takes the GPU.
check_original_stop() {  # seed
  # shellcheck disable=SC2046
  python3 - "$WORK/original_format/audio_txt_pairs.json" $(schedule_overrides "$1") <<'PY'
import json, sys
from lcasr_jax.configs import load_config
from lcasr_jax.train.original import original_stop
pairs = json.load(open(sys.argv[1]))
cfg = load_config("experiments/paper.py:rb_6l_256d_8h", sys.argv[2:])
stop = original_stop([float(p["duration"]) for p in pairs.values()], cfg)
if stop is not None:
    sys.exit(f"seed {cfg.seed}: a sequence stage changes on an epoch's last batch at "
             f"recording {stop}, where the original's trainer stops with an error: change "
             "HOURS, BATCH, INCREASE or EPOCHS")
PY
}

# INIT=lecun|torch: both trainers of seed S start from this project's initial weights at that
# init (make_init.py, once per seed, under $WORK/init<S>); INIT=own: each trainer its own
make_init() {  # seed
  [ "$INIT" = own ] || [ -f "$WORK/init$1/init.pt" ] || python3 $REPLAY_SCRIPTS/make_init.py \
    --config experiments/paper.py:rb_6l_256d_8h --set $(schedule_overrides "$1") \
    "model.param_init=$INIT" --out "$WORK/init$1" | tail -1
}

case "$STAGE" in
replay)
  rep=$WORK/replay_bf16
  rm -rf "$rep"
  timeout 240 python3 $REPLAY_SCRIPTS/run_original.py --original "$ORIG" --out "$rep" --device cuda \
    --dtype bfloat16 --model-template $TEMPLATE --corpus-n 40 --max-epochs 3 \
    --snapshots '' --no-init-stats | grep -v -E '^(chunk|loss:)' | tail -5
  cp "$rep/steps.npz" "$OUT/original_steps.npz"  # the original's curve comes back whatever
  cp "$rep/meta.json" "$OUT/original_meta.json"   # happens to ours
  # run alone: beside `data` (16 synthesis workers) its per-shape compiles took 80 s a step
  # 'fast' compiles (train/gpu_compile.py): one program per shape, 373 short steps
  timeout 280 python3 $REPLAY_SCRIPTS/run_ours.py --replay "$rep" --dtype bfloat16 \
    --set train.gpu_compile=${GPU_COMPILE:-fast} --out "$OUT/ours_steps.jsonl" $OURS_SET || echo "ours: stopped (rc $?), compared so far"
  python3 $REPLAY_SCRIPTS/compare_curves.py --replay "$rep" --ours "$OUT/ours_steps.jsonl" --out "$OUT"
  ;;
data)
  for split in train:$HOURS:0 test:${TEST_HOURS:-1}:2; do
    IFS=: read -r name hours seed <<<"$split"
    [ -f "$WORK/synth/$name/.done" ] && continue
    bash scripts/device_synth.sh --out "$WORK/synth/$name" --hours "$hours" --split "$name" \
      --seed "$seed" --minutes "$MINUTES" --no-progress
    touch "$WORK/synth/$name/.done"
  done
  # the paper configs read features made with torchaudio resampling where the cache knows
  # resamplers (16-kHz synthetic audio is not resampled: the features are the same)
  rs=$(python3 -m lcasr_jax.cli data cache --help | grep -q -- --resampler \
    && echo "--resampler torchaudio" || true)
  python3 -m lcasr_jax.cli data cache "$WORK/synth" $rs
  python3 $REPLAY_SCRIPTS/export_original.py --kind recordings --src "$WORK/synth" --split train \
    --out "$WORK/original_format" | tail -1
  du -sh "$WORK"/* | tee "$OUT/data.txt"
  ;;
seed)
  S=${2:?seed number}
  D=$WORK/seed$S
  SEED_RES=$RES/seed$S  # what parity_report.py reads: seed<S>/{curves, eval_<who>_<ctx>}
  mkdir -p "$D" "$SEED_RES"
  WHO=${3:-both}
  [ "$WHO" = ours ] || [ "${SUB:-0}" = 1 ] || check_original_stop "$S"
  make_init "$S"
  orig_init=() ours_init=()
  if [ "$INIT" != own ]; then
    orig_init=(--init-weights "$WORK/init$S/init.pt")
    ours_init=(--config.model.param_init="$INIT" --config.train.init_from="$WORK/init$S/model")
  fi
  # one compilation cache for every run of ours on this machine (train and eval): the
  # schedule's six stage programs compile once (~60 s each on an H100 host), not per run
  export JAX_COMPILATION_CACHE_DIR=$WORK/jax_cache
  if [ "$WHO" != ours ]; then  # the template's model section, cut by MODEL
    # shellcheck disable=SC2086
    python3 - "$ORIG/$TEMPLATE" "$D/model.yaml" $MODEL <<'PY'
import sys
from omegaconf import OmegaConf
template = OmegaConf.load(sys.argv[1])
cut = OmegaConf.from_dotlist([f"model.{kv}" for kv in sys.argv[3:]])
OmegaConf.save(OmegaConf.merge({"model": template.model}, cut), sys.argv[2])
PY
  fi
  [ "$WHO" = ours ] || cat >"$D/original.yaml" <<EOF
model_class: SCConformerXL
optimizer: {name: madgrad, args: {lr: $LR}}
scheduler: {warmup_steps: $WARMUP}
audio_chunking: {size: 512, overlap: 0}
sequence_scheduler: {increase_every: $INCREASE, stop_after: 1000000000, start_after: 0,
  max_sequence_length: 16384, increase_by_multiplier: 2, batch_size_multiplier: 0.5,
  interpolate_rotary: false}
wandb: {use: false, project_name: parity, id: ''}
checkpointing: {dir: '', save_every_n_steps: 1000000000}
data: {path: ''}
training: {batch_size: $BATCH, backprop_every: 1, backwards_every: 1, max_seq_len: 0,
  clip_value: 0.8, intermediate_loss_weighting: 0.0, random_seed: $S, max_epochs: $EPOCHS,
  dtype: $DTYPE}
model: {}
EOF
  if [ "$WHO" != ours ]; then  # the original: its own main()/train(), steps recorded
    rm -rf "$D/original" "$D/original_model"
    python3 $REPLAY_SCRIPTS/run_original.py --original "$ORIG" --out "$D/original" --device "${TORCH_DEVICE:-cuda}" \
      --dtype "$DTYPE" --config "$D/original.yaml" --model-template "$D/model.yaml" "${orig_init[@]}" \
      --corpus "$WORK/original_format/audio_txt_pairs.json" --max-epochs "$EPOCHS" \
      --time-limit-s "$LIMIT_S" ${STEPS:+--steps "$STEPS"} --snapshots '' --no-init-stats --light 2>&1 \
      | grep -v -E '^(chunk|loss:)' | tr '\r' '\n' | grep -v '^\s*$' | tail -15 || true
    # the curve first: it comes back even if the evaluation runs out of time
    if cp "$D/original/steps.npz" "$SEED_RES/original_steps.npz" 2>/dev/null; then
      cp "$SEED_RES/original_steps.npz" "$OUT/seed${S}_original_steps.npz"
    else echo "original: no steps.npz"; fi
    # run_original.py's released-format copy ({'model', 'config': plain dict}); the
    # original's own step_N.pt pickles its OmegaConf object, which `convert` refuses
    ck=$D/original/work/released.pt
    if [ -f "$ck" ]; then
      python3 -m lcasr_jax.cli convert "$ck" "$D/original_model" --overwrite 2>&1 | tail -2 || true
    else echo "original: no $ck"; fi
  fi
  # ours: the paper config with the same schedule and the original's batching
  if [ "$WHO" != original ]; then
    rm -rf "$D/ours"
    mapfile -t schedule < <(schedule_overrides "$S")
    # shellcheck disable=SC2086
    python3 -m lcasr_jax.cli train --time-limit-s "$LIMIT_S" \
      --config experiments/paper.py:rb_6l_256d_8h --workdir "$D/ours" \
      --config.data.kind=recordings --config.data.path="$WORK/synth" \
      "${schedule[@]/#/--config.}" --config.train.batching=original \
      --config.train.nonfinite=skip --config.log.every_steps=1 "${ours_init[@]}" $OURS_EXTRA 2>&1 \
      | grep -v -i warn | tail -3 || true
    if cp "$D/ours/metrics.jsonl" "$SEED_RES/ours_metrics.jsonl" 2>/dev/null; then
      cp "$SEED_RES/ours_metrics.jsonl" "$OUT/seed${S}_ours_metrics.jsonl"
    else echo "ours: no metrics.jsonl"; fi
  fi
  whos="original ours"; [ "$WHO" != both ] && whos=$WHO
  for who in $whos; do
    m=$D/${who}_model; [ "$who" = ours ] && m=$D/ours/model
    [ -e "$m" ] || { echo "$who: no model"; continue; }
    for ctx in 1000 16000 360000; do
      rm -rf "$SEED_RES/eval_${who}_$ctx"
      python3 -m lcasr_jax.cli eval --checkpoint "$m" --dataset synth --data-dir "$WORK/synth" \
        --split test --seq-len $ctx --overlap-ratio 0.875 --mode averaged_moving_window \
        --out "$SEED_RES/eval_${who}_$ctx" --quiet 2>&1 | tail -2 || echo "eval $who $ctx failed"
    done
  done
  [ "${SUB:-0}" = 1 ] || out_pack "$OUT/seed$S.tgz" "$RES" "seed$S"
  ;;
seeds)
  t0=$(date +%s)
  for S in 1 2; do check_original_stop "$S"; make_init "$S"; done
  rm -rf "$RES" && mkdir -p "$RES/logs"
  pids=()
  for S in 1 2; do for who in original ours; do
    SUB=1 OUT=$OUT bash "$0" seed "$S" "$who" >"$RES/logs/seed${S}_$who.log" 2>&1 & pids+=($!)
  done; done
  rc=0
  for p in "${pids[@]}"; do  # until SEEDS_BUDGET_S, then pack what there is
    while kill -0 "$p" 2>/dev/null && [ $(( $(date +%s) - t0 )) -lt "${SEEDS_BUDGET_S:-540}" ]; do
      sleep 2; done
    if kill -0 "$p" 2>/dev/null; then echo "a seeds run still going at ${SEEDS_BUDGET_S:-540} s"; rc=1
    else wait "$p" || rc=1; fi
  done
  tail -n 4 "$RES"/logs/seed*_*.log
  # every WER in one small file (the eval dirs travel in results.tgz)
  python3 - "$RES" <<'PY' | tee "$OUT/wer.txt"
import json, sys
from pathlib import Path
for j in sorted(Path(sys.argv[1]).glob("seed*/eval_*_*/*.json")):
    try:
        w = json.loads(j.read_text()).get("overall", {}).get("wer")
    except (ValueError, AttributeError):
        continue
    if w is not None:
        print(j.parent.parent.name, j.parent.name, f"WER {w:.4f}")
PY
  out_pack "$OUT/results.tgz" "$RES" seed1 seed2 logs
  out_check
  [ "$rc" = 0 ] || { echo "a seeds run failed"; exit 1; }
  ;;
*) echo "unknown stage $STAGE"; exit 2 ;;
esac
[ "${SUB:-0}" = 1 ] || [ "$STAGE" = seeds ] || out_check
echo "stage $STAGE done: $(date -u)"
