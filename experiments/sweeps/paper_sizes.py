"""The paper's model sizes, depths and head sizes (rotary 1.5M): 3, 6 and 9 layers at
768D; 3L-2048D; 6 and 12 layers at 256D; 6L-768D with 12 and 24 heads. The seed README's
columns: 10 s, 2.7 min and 20 min of context, 3 repeats, TED-LIUM and Earnings-22 (Rev16
off by default, as in the README's table).

    lcasr-jax sweep --config experiments/sweeps/paper_sizes.py --out runs/paper/sizes
    # one row: --config.only_models=rb_9l_768d_6h
"""

from lcasr_jax.sweeps.config import TABLE_CONTEXTS, base_config, paper_datasets, released

MODELS = ("rb_3l_768d_6h", "rb_6l_768d_6h", "rb_9l_768d_6h", "rb_3l_2048d_16h",
          "rb_6l_256d_8h", "rb_12l_256d_8h", "rb_6l_768d_12h", "rb_6l_768d_24h")


def get_config():
    cfg = base_config()
    for name in MODELS:
        cfg.models[name] = released(name)
    paper_datasets(cfg)
    cfg.datasets.rev16.enabled = False
    cfg.contexts = TABLE_CONTEXTS
    return cfg
