"""Paper model 12L-256D-8H (8 heads x 32), rotary 1.5M.

From the original's template exp/configs/paper_templates/exp_set_rot_encodings_12l_256.yaml:
MADGRAD lr 0.003, 1500 warm-up steps, clip 0.8; sequence schedule
512 frames x 704 recordings, doubling every 5000 recordings up to one hour.
Point it at a corpus with --config.data.path=DATASET_DIR.
"""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(
        n_layers=12, d_model=256, n_heads=8, head_dim=32, rotary_base_freq=1_500_000.0)
    cfg.optim.update(lr=0.003, warmup_steps=1500)
    cfg.train.remat = "none"
    return cfg
