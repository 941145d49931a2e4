"""The paper's positional-encoding figure (6L-768D-6H): rotary (theta 1.5M), sinusoidal
(SinePos), none (NoPos), at the paper's ten contexts (10.24 s to 1 h), 3 repeats, on
Earnings-22, TED-LIUM and Rev16 (the original notebook's wer_pos_earnings.pdf is
Earnings-22). Rotary theta 10k is off: its checkpoints are in the original's 2023-preprint
branch, not on the hub; pass a local path with --config.models.rotary10k_6l_768d_6h.
checkpoint=DIR/n_seq_sched_{seq_len}_rp_{repeat} and enabled=True.

    lcasr-jax sweep --config experiments/sweeps/paper_positions.py --out runs/paper/positions
    lcasr-jax plot runs/paper/positions/results.csv --figure positions \
        --out runs/paper/positions/fig.png
"""

from lcasr_jax.sweeps.config import model, paper_sweep


def get_config():
    cfg = paper_sweep("rb_6l_768d_6h", "sine_6l_768d_6h", "nopos_6l_768d_6h")
    cfg.models.rotary10k_6l_768d_6h = model("", enabled=False)
    return cfg
