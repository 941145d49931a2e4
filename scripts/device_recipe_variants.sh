#!/usr/bin/env bash
# Which part of a recipe keeps a model in CTC's blank phase? Several variants of this
# project's trainer on one synthetic corpus at once on one GPU, one fixed stage (no length
# schedule: one program per variant), the loss curves and sample transcripts compared.
# Made for issue 21: the paper recipe (6L-256D, FIDELITY options, MADGRAD 3e-3, warm-up
# 300) stayed at loss ~26 (nats per second of audio, the original's logged loss) for 1,773
# steps of 512 x 128 -> 16,384 x 4 frames in both trainers (2026-12-08).
#
#   bash scripts/device_recipe_variants.sh          (run tool, carry [".whl", ".debs",
#                                                    ".cache/synth"]; ~9 minutes)
# Variants (VARIANTS, one "NAME|CONFIG|OVERRIDES" a line; OVERRIDES space-separated
# --config.A.B=V): the first group starts at once; the names in LATE start LATE_S seconds
# later, after the first group has compiled, so that a variant with the same program (only
# lr, warm-up or init differ: runtime values) loads it from the shared compilation cache.
# Knobs (env): HOURS (8), MINUTES (5), FRAMES (512), BATCH (64), LIMIT_S (380: each
# variant's training seconds, LATE ones LIMIT_S - LATE_S), LATE_S (110), WORK
# (/tmp/variants).
# What comes back ($OUT, <= 8 files): log.txt, <name>.jsonl per variant (metrics, one line
# per 10 steps), logs.tgz (each variant's stdout: sample transcripts every 200 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/variants}
HOURS=${HOURS:-8}
MINUTES=${MINUTES:-5}
FRAMES=${FRAMES:-512}
BATCH=${BATCH:-64}
LIMIT_S=${LIMIT_S:-380}
LATE_S=${LATE_S:-110}
PAPER=experiments/paper.py:rb_6l_256d_8h
VARIANTS=${VARIANTS:-"paper|$PAPER|
project|$PAPER,project|
lecun|$PAPER|--config.model.param_init=lecun
lr1e-3|$PAPER|--config.optim.lr=1e-3"}
LATE=${LATE-"lecun lr1e-3"}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1
. scripts/device_site.sh
site_install
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_COMPILATION_CACHE_DIR=$WORK/jax_cache
date -u; nvidia-smi --query-gpu=name --format=csv,noheader || true
if [ ! -f "$WORK/synth/train/.done" ]; then
  bash scripts/device_synth.sh --out "$WORK/synth/train" --hours "$HOURS" --split train \
    --seed 0 --minutes "$MINUTES" --no-progress
  python3 -m lcasr_jax.cli data cache "$WORK/synth" | tail -1
  touch "$WORK/synth/train/.done"  # after the features: a failed cache is made again
fi
run() {  # name config limit overrides...
  local name=$1 config=$2 limit=$3; shift 3
  rm -rf "$WORK/$name"
  python3 -m lcasr_jax.cli train --time-limit-s "$limit" --config "$config" \
    --workdir "$WORK/$name" --config.data.kind=recordings --config.data.path="$WORK/synth" \
    --config.sequence.length="$FRAMES" --config.sequence.batch_size="$BATCH" \
    --config.sequence.increase_every=-1 --config.optim.warmup_steps=300 \
    --config.train.max_epochs=1000 --config.train.gpu_compile=fast \
    --config.log.every_steps=10 --config.log.sample_every_steps=200 "$@" \
    >"$WORK/$name.log" 2>&1 || echo "$name: rc $?"
  cp "$WORK/$name/metrics.jsonl" "$OUT/$name.jsonl" 2>/dev/null || echo "$name: no metrics"
}
pids=()
for late in 0 1; do
  if [ "$late" = 1 ]; then [ -n "$LATE" ] && sleep "$LATE_S"; fi
  while IFS='|' read -r name config overrides; do
    [ -n "$name" ] || continue
    is_late=0; for l in $LATE; do [ "$l" = "$name" ] && is_late=1; done
    [ "$is_late" = "$late" ] || continue
    limit=$LIMIT_S; [ "$late" = 1 ] && limit=$((LIMIT_S - LATE_S))
    echo "start $name ($config $overrides) for $limit s: $(date -u +%T)"
    # shellcheck disable=SC2086
    run "$name" "$config" "$limit" $overrides </dev/null & pids+=($!)
  done <<<"$VARIANTS"
done
for p in "${pids[@]}"; do wait "$p" || true; done
tar -C "$WORK" -czf "$OUT/logs.tgz" $(cd "$WORK" && ls ./*.log)
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path
for f in sorted(Path(sys.argv[1]).glob("*.jsonl")):
    rows = [json.loads(line) for line in f.read_text().splitlines() if '"loss"' in line]
    if not rows:
        continue
    means = [sum(r["loss"] for r in rows[i:i + 20]) / len(rows[i:i + 20])
             for i in range(0, len(rows), 20)]
    print(f"{f.stem}: {rows[-1]['step']} steps; loss per 200 steps:",
          " ".join(f"{m:.1f}" for m in means))
PY
date -u
