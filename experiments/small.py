"""Small model (~7M params, ~14 MB in bf16) trained on the embedded synthetic long-form corpus.

6 layers, d 192, 6 heads x 32, 128 subsampling channels, rotary 1.5M. Sequence schedule
10 s x 64 -> 160 s x 4 (doubling every 500 recordings). Resumable in short device calls:

  lcasr-jax train --config experiments/small.py --config.data.path=DATASET_DIR \\
      --workdir runs/small --time-limit-s 540

(a folder of recording JSONs + audio instead of a built dataset, e.g. on the GPU image
without tfds: --config.data.kind=recordings --config.data.path=CORPUS_DIR); re-run the
same command to continue (each call stops and checkpoints at the time limit);
each call ends by writing WORKDIR/model (bf16, about 14 MB), loadable with load_pretrained.
"""

from lcasr_jax.train.config import base_config


def get_config():
    cfg = base_config(n_layers=6, d_model=192, n_heads=6, head_dim=32,
                      subsampling_conv_channels=128, rotary_base_freq=1_500_000.0)
    cfg.optim.update(lr=3e-3, warmup_steps=500)
    cfg.sequence.update(length=1024, batch_size=64, increase_every=500, stop_after=10**9,
                        max_sequence_length=16384)
    cfg.train.update(max_epochs=40, compute_dtype="bfloat16")
    cfg.data.update(kind="corpus", split="train")
    cfg.checkpoint.update(every_steps=200, keep=2, async_save=True, export_dtype="bfloat16")
    cfg.log.update(every_steps=20, sample_every_steps=500, dev_every_steps=500)
    return cfg
