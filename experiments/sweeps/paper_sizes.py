"""The paper's model-size figure (rotary 1.5M, 6 heads of 128 unless named): 3, 6 and 9 layers
at 768D; 3L-2048D-16H; 6 and 12 layers at 256D (8 heads), each trained and evaluated at the
paper's ten contexts (10.24 s to 1 h), 3 repeats, on Earnings-22, TED-LIUM and Rev16 (the
original notebook's model_sizes*.pdf; moving window, overlap 0.875, greedy).

    lcasr-jax sweep --config experiments/sweeps/paper_sizes.py --out runs/paper/sizes
    lcasr-jax plot runs/paper/sizes/results.csv --figure sizes --out runs/paper/sizes/fig.png
    # one row: --config.only_models=rb_9l_768d_6h; the seed README's table columns only:
    # --config.contexts='(1024,16384,131072)'
"""

from lcasr_jax.sweeps.config import paper_sweep

MODELS = ("rb_3l_768d_6h", "rb_6l_768d_6h", "rb_9l_768d_6h", "rb_3l_2048d_16h",
          "rb_6l_256d_8h", "rb_12l_256d_8h")


def get_config():
    return paper_sweep(*MODELS)
