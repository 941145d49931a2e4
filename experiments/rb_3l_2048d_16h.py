"""Paper model 3L-2048D-16H (16 heads x 128, 512 subsampling channels), rotary 1.5M.

From the original's template exp/configs/paper_templates/exp_set_seq_rotary_base_3l_2048.yaml:
MADGRAD lr 0.002, 5000 warm-up steps, clip 0.8; sequence schedule
512 frames x 704 recordings, doubling every 5000 recordings up to one hour.
Point it at a corpus with --config.data.path=DATASET_DIR.
"""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(
        n_layers=3, d_model=2048, n_heads=16, head_dim=128,
        subsampling_conv_channels=512, rotary_base_freq=1_500_000.0)
    cfg.optim.update(lr=0.002, warmup_steps=5000)
    cfg.train.remat = "none"
    return cfg
