"""Paper model 12L-768D-6H, rotary 1.5M (per-layer checkpointing).

From the original's template exp/configs/paper_templates/exp_set_seq_rotary_base_12l.yaml:
MADGRAD lr 0.002, 5000 warm-up steps, clip 0.8; sequence schedule
512 frames x 704 recordings, doubling every 5000 recordings up to one hour.
Point it at a corpus with --config.data.path=DATASET_DIR.
"""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(
        n_layers=12, d_model=768, n_heads=6, head_dim=128, rotary_base_freq=1_500_000.0)
    cfg.optim.update(lr=0.002, warmup_steps=5000)
    cfg.train.remat = "full"
    return cfg
