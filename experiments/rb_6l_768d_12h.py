"""Paper model 6L-768D-12H (12 heads x 64), rotary 1.5M.

From the original's template exp/configs/paper_templates/exp_set_rot_12h.yaml:
MADGRAD lr 0.003, 1500 warm-up steps, clip 0.8; sequence schedule
512 frames x 704 recordings, doubling every 5000 recordings up to one hour.
Point it at a corpus with --config.data.path=DATASET_DIR.
"""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(
        n_layers=6, d_model=768, n_heads=12, head_dim=64, rotary_base_freq=1_500_000.0)
    cfg.optim.update(lr=0.003, warmup_steps=1500)
    cfg.train.remat = "none"
    return cfg
