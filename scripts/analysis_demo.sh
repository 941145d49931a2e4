#!/usr/bin/env bash
# The README's "Analyses" demo: every analysis of lcasr-jax on held-out synthetic speech with
# the shipped model (lcasr_jax/assets/default_model), on CPU. Generated data and results go
# to runs/analysis (ignored by git); the figures are copied to docs/analysis.
#   bash scripts/analysis_demo.sh    # 28 minutes on the shared 2-core CPU machine (2026-12-03)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
lcasr() { nice "$PY" -m lcasr_jax.cli "$@"; }
R=runs/analysis
DOCS=docs/analysis
mkdir -p "$R" "$DOCS"

# 1. Held-out test speech (unseen voices and books), and babble noise from other speakers.
[ -f "$R/data/manifest.json" ] || lcasr data synth --out "$R/data" --hours 0.1 --minutes 3 \
    --split test --seed 1234 --workers 2 --no-progress
[ -f "$R/babble/manifest.json" ] || lcasr data synth --out "$R/babble" --hours 0.02 \
    --minutes 1 --split dev --seed 99 --workers 2 --no-progress

# 2. WER against SNR per context (Gaussian noise; babble at one context) and loss vs context.
EVAL=(eval --dataset synth --data-dir "$R/data" --overlap-ratio 0.875 --loss --quiet
      --out "$R/eval" --name default_model)
for ctx in 1000 4000 16000; do               # 10, 40, 160 s
  lcasr "${EVAL[@]}" --seq-len "$ctx"
  for snr in 0 5 10 20; do
    lcasr "${EVAL[@]}" --seq-len "$ctx" --noise "gaussian:$snr"
  done
done
for snr in 0 5 10 20; do
  lcasr "${EVAL[@]}" --seq-len 4000 --noise "background:$R/babble:$snr" --name babble
done
lcasr analyze figures "$R/eval/results.csv" --out "$R/figures"

# 3. Attended distance per layer (160-s windows) and a heat map of a 40-s window.
lcasr analyze attention --dataset synth --data-dir "$R/data" --capture chunked \
    --seq-len 16000 --out "$R/attention" --quiet
lcasr analyze attention --dataset synth --data-dir "$R/data" --capture chunked \
    --seq-len 4000 --limit 1 --out "$R/attention_40s" --quiet

# 4. Context attribution: 10-s windows of the first 2 minutes of two recordings.
lcasr analyze attribution --dataset synth --data-dir "$R/data" --limit 2 --max-seconds 120 \
    --segment 1000 --measure logp --batch-size 4 --out "$R/attribution" --quiet

cp "$R/figures/wer_vs_snr.png" "$R/figures/loss_vs_context.png" \
   "$R/attention/attention_distance.png" "$R/attention_40s/attention_heatmaps.png" \
   "$R/attribution/attribution.png" "$DOCS/"
cat "$R/attention/attention.csv" | head -4
echo "figures in $DOCS"
