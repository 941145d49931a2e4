#!/usr/bin/env bash
# The README's figures, each drawn by `lcasr-jax plot` (PNG 200 dpi + PDF + SVG):
#  1. the paper's figures from the original's published results tables
#     (docs/figures/original, commit 88da226): figure 1, model sizes, heads, positions, noise;
#  2. the same commands on this machine's own small CPU runs: a sweep of the shipped model
#     on 3.5 min of held-out synthetic speech (4 contexts x clean, 0 and 10 dB Gaussian
#     noise), attention capture of one 40-s window, attribution of the first minute.
# Generated data and results go to $R (default runs/figures, ignored by git); the PNGs are
# copied to docs/figures.
#   bash scripts/paper_figures.sh   # about 12 minutes on the shared 2-core CPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
lcasr() { nice "$PY" -m lcasr_jax.cli "$@"; }
O=docs/figures/original
R=${R:-runs/figures}
DOCS=docs/figures
mkdir -p "$R" "$DOCS"

# 1. The paper's figures from the original's tables.
lcasr plot "$O/evals_rb.csv" --figure figure1 --out "$R/paper/figure1.png"
lcasr plot "$O"/evals_rotary_pos_3l.csv "$O"/evals_rb.csv "$O"/evals_rotary_pos_6l_256d.csv \
    "$O"/evals_rotary_pos_12l_256d.csv "$O"/evals_rb_9l_768d.csv "$O"/evals_rb_3l_2048d.csv \
    --figure sizes --out "$R/paper/sizes/sizes.png" \
    --label "rotary_pos_3l=3L, 768D, 6H" --label "rb_n_seq_sched=6L, 768D, 6H" \
    --label "rotary_pos_6l_256d=6L, 256D, 8H" --label "rotary_pos_12l_256d=12L, 256D, 8H" \
    --label "rb_n_seq_sched_9l_768d=9L, 768D, 6H" \
    --label "rb_n_seq_sched_3l_2048d=3L, 2048D, 16H"
lcasr plot "$O"/evals_rb.csv "$O"/evals_rb_12h.csv "$O"/evals_rb_24h.csv --figure heads \
    --out "$R/paper/heads/heads.png" --label "rb_n_seq_sched=6 heads (128 each)" \
    --label "rb_n_seq_sched_12h=12 heads (64)" --label "rb_n_seq_sched_24h=24 heads (32)"
lcasr plot "$O"/evals_rb.csv "$O"/evals_rotary_10k.csv "$O"/evals_fourier_pos.csv \
    "$O"/evals_no_rotary.csv --figure positions --out "$R/paper/positions/positions.png" \
    --label "rb_n_seq_sched=Rotary (θ = 1.5M)" --label "r10k_n_seq_sched=Rotary (θ = 10k)" \
    --label "fourier_pos=Sinusoidal" --label "no_rotary=No positional encoding"
lcasr plot "$O"/evals_rb.csv "$O"/evals_rb_rev16_bnoise*.csv --figure noise --split test \
    --label evals_rb_rev16_bnoise=0 --out "$R/paper/noise.png"

# 2. Small CPU runs of this project, the same figure commands.
[ -f "$R/data/manifest.json" ] || lcasr data synth --out "$R/data" --hours 0.05 \
    --minutes 1.5 --split test --seed 1234 --workers 2 --no-progress
lcasr sweep --config experiments/sweeps/demo.py --out "$R/sweep" --quiet \
    --config.datasets.synth.data_dir="$R/data" --config.datasets.synth.generate_hours=0 \
    "--config.contexts=(10.0,20.0,40.0,80.0)" "--config.models.shipped.repeats=(1,)" \
    "--config.options.noise=('none','gaussian:0','gaussian:10')"
lcasr plot "$R/sweep/results.csv" --out "$R/own/sweep.png"
lcasr plot "$R/sweep/results.csv" --figure noise --out "$R/own/noise.png"
lcasr analyze attention --dataset synth --data-dir "$R/data" --seq-len 4000 --limit 1 \
    --windows 1 --out "$R/attention" --quiet
lcasr plot "$R/attention/attention.npz" --figure attention --out "$R/own/attention.png"
lcasr analyze attribution --dataset synth --data-dir "$R/data" --limit 1 --max-seconds 60 \
    --window 500 --batch-size 4 --out "$R/attribution" --quiet
lcasr plot "$R/attribution/attribution.npz" --figure attribution \
    --out "$R/own/attribution.png"

cp "$R/paper/figure1.png" "$R/paper/sizes/sizes.png" "$R/paper/heads/heads.png" \
   "$R/paper/positions/positions.png" "$R/paper/noise.png" "$DOCS/"
for f in sweep noise attention attention_heatmaps attribution; do
  cp "$R/own/$f.png" "$DOCS/own_$f.png"
done
echo "figures in $DOCS (PDF and SVG beside each PNG under $R)"
