"""Outputs of the original's BatchRenorm1d in training, the fixture of
tests/test_model_batch_renorm.py (tests/fixtures/original_batch_renorm/).

    python3 scripts/original_batch_renorm_dump.py ORIGINAL_CHECKOUT OUT.npz

ORIGINAL_CHECKOUT: a checkout of robflynnyh/long-context-asr (outside this repository); needs
torch (and what importing its `lcasr` package needs: scripts/original_replay/original_import.py
stands in for the absent torchaudio, wandb, librosa). For a (batch, channels, time) input x
and an upstream gradient g it records, per case, the module's output y, d(sum(y * g))/dx,
running_mean, running_std and num_batches_tracked after one training forward (and backward)
from running stats (0, ra_std) at counter `steps`:
  bf16:  x rounded to bf16 (the conv output under CUDA autocast), steps 0, ra_std 1;
  ckpt:  float32 x through torch.utils.checkpoint (as checkpoint_every_n_layers: 1 wraps
         each layer), steps 36000, ra_std 1: the forward runs twice.
The module gets no mask, as the original's conv module calls it: padded frames count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "original_replay"))
from original_import import _stub_missing  # noqa: E402

CASES = {"bf16": ("bfloat16", 0, False), "ckpt": ("float32", 36000, True)}


def main(original: str, out: str) -> None:
    import torch
    from torch.utils.checkpoint import checkpoint

    sys.dont_write_bytecode = True  # leave the original's checkout as it is
    sys.path.insert(0, original)
    _stub_missing()  # torchaudio, wandb, librosa when absent: importing lcasr needs them
    from lcasr.components.batchrenorm import BatchRenorm1d

    rng = np.random.default_rng(0)
    batch, channels, time = 2, 8, 24
    x = rng.normal(0.3, 1.7, (batch, channels, time)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    arrays = {"x": x, "g": g}
    for name, (dtype, steps, ckpt) in CASES.items():
        module = BatchRenorm1d(channels).train()
        module.num_batches_tracked += steps
        xi = torch.tensor(x).to(getattr(torch, dtype)).requires_grad_(True)
        y = checkpoint(module, xi, use_reentrant=True) if ckpt else module(xi)
        (y.float() * torch.tensor(g)).sum().backward()
        arrays.update({f"{name}_y": y.detach().float().numpy(),
                       f"{name}_y_dtype": np.array(str(y.dtype)),
                       f"{name}_grad": xi.grad.float().numpy(),
                       f"{name}_running_mean": module.running_mean.numpy(),
                       f"{name}_running_std": module.running_std.numpy(),
                       f"{name}_steps": np.array(int(module.num_batches_tracked)),
                       f"{name}_start_steps": np.array(steps)})
    np.savez(out, **arrays)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
