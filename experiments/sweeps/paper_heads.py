"""The paper's head-count figure: 6L-768D rotary 1.5M with 6, 12 and 24 heads (head sizes
128, 64, 32), at the paper's ten contexts (10.24 s to 1 h), 3 repeats, on Earnings-22,
TED-LIUM and Rev16 (the original notebook's wer_head_size_earnings.pdf is Earnings-22).

    lcasr-jax sweep --config experiments/sweeps/paper_heads.py --out runs/paper/heads
    lcasr-jax plot runs/paper/heads/results.csv --figure heads --out runs/paper/heads/fig.png
"""

from lcasr_jax.sweeps.config import paper_sweep

MODELS = ("rb_6l_768d_6h", "rb_6l_768d_12h", "rb_6l_768d_24h")


def get_config():
    return paper_sweep(*MODELS)
