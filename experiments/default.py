"""Default model (11.4 M params, ~23 MB in bf16) for the embedded synthetic corpus.

8 layers, d 224, 7 heads x 32, 128 subsampling channels, rotary 1.5M (as small.py, deeper
and wider). Sequence schedule 10 s x 64 -> 600 s x 1 (length doubles, batch halves every
400 recordings; the last step is clipped to 60,000 frames = 10 minutes, about one whole
corpus recording), so the model sees several minutes of context; SpecAugment on from the
start with the original's experiment settings (2 time masks by proportion 0.1 / 0.5,
2 frequency masks of up to 27 bins, mean fill). The cosine decay spans `max_epochs` passes
over the corpus: scripts/device_train_default.sh sets it for the corpus and device time.

  lcasr-jax train --config=experiments/default.py --config.data.kind=recordings \\
      --config.data.path=CORPUS_DIR --workdir=runs/default --time-limit-s=420

Re-run the same command to continue; each call ends by writing WORKDIR/model (bf16).
"""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(n_layers=8, d_model=224, n_heads=7, head_dim=32,
                      subsampling_conv_channels=128, rotary_base_freq=1_500_000.0)
    cfg.optim.update(lr=3e-3, warmup_steps=500)
    cfg.sequence.update(length=1024, batch_size=64, increase_every=400, stop_after=10**9,
                        max_sequence_length=60000)
    cfg.train.update(max_epochs=8, compute_dtype="bfloat16", spec_augment_after_n_epochs=0)
    cfg.spec_augment.update(n_time_masks=2, time_mask_param=-1, n_freq_masks=2,
                            freq_mask_param=27, min_p=0.1, max_p=0.5, zero_masking=False)
    cfg.data.update(kind="corpus", split="train")
    cfg.checkpoint.update(every_steps=250, keep=2, async_save=True, export_dtype="bfloat16")
    cfg.log.update(every_steps=20, sample_every_steps=500, dev_every_steps=500)
    return cfg
