"""Tiny model on synthetic batches: CPU tests and smoke runs (seconds per step)."""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(n_layers=2, d_model=32, n_heads=2, head_dim=16,
                      subsampling_conv_channels=8, rotary_base_freq=1_500_000.0)
    cfg.seed = 0
    cfg.optim.update(lr=3e-3, warmup_steps=5)
    cfg.sequence.update(length=256, batch_size=8, increase_every=32, stop_after=10**9,
                        max_sequence_length=512)
    cfg.train.update(compute_dtype="float32", max_steps=20, time_limit_s=-1.0)
    cfg.mesh.update(data=-1, fsdp=1, seq=1)
    cfg.data.update(kind="synthetic", synthetic_recordings=1024)
    cfg.checkpoint.update(every_steps=5, keep=2, async_save=False)
    cfg.log.update(every_steps=1, sample_every_steps=10, tensorboard=True, progress=False)
    return cfg
