"""The paper's figure 1: WER and its reduction from 10 s of context, for the main model
(6L-768D-6H, rotary 1.5M) trained and evaluated at each context from 10.24 s to 1 hour,
3 repeats, on Earnings-22, TED-LIUM and Rev16 (moving window, overlap 0.875, greedy).

    lcasr-jax sweep --config experiments/sweeps/paper_figure1.py --out runs/paper/figure1 \
        --config.datasets.tedlium.data_dir=~/data/TEDLIUM_release1  # etc., per dataset

Each context has its own checkpoint per repeat (hf://rjflynn2/lcasr-6L-768D-6H-RB-1p5M/
n_seq_sched_<frames>_rp_<repeat>): 30 checkpoints, each loaded once for its 3 test sets.
This American Life: --config.datasets.this_american_life.enabled=True.
"""

from lcasr_jax.sweeps.config import paper_sweep


def get_config():
    return paper_sweep("rb_6l_768d_6h")
