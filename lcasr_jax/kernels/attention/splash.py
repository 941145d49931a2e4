"""TPU splash attention (Pallas Mosaic TPU) with segment ids for padding and a local mask.

Valid tokens get segment 1 and padding segment 0, so padded queries only see padded keys
(finite) and are then zeroed. The local mask lets splash skip blocks outside the window.
By default the kernel is chosen when the program is lowered (`lax.platform_dependent`):
Mosaic on TPU, interpret mode elsewhere (slow on CPU: ~1-2 s per call), so one traced
program exports for TPU from a CPU machine (tests/test_tpu_export.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as sa


def _kernel(time: int, heads: int, window: tuple[int, int], block: int, interpret: bool):
    left, right = (None if w < 0 else w for w in window)
    if left is None and right is None:
        head_mask = sa.FullMask((time, time))
    else:
        head_mask = sa.LocalMask((time, time), window_size=(left, right), offset=0)
    sizes = sa.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                          block_q_dkv=block, block_kv_dkv=block,
                          block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)
    return sa.make_splash_mha_single_device(sa.MultiHeadMask([head_mask] * heads),
                                            block_sizes=sizes, interpret=interpret)


def splash_attention(q, k, v, lengths=None, *, window=(-1, -1), scale=None,
                     block: int = 512, interpret: bool | None = None):
    """See `lcasr_jax.kernels.attention.dot_product_attention`; q/k/v (batch, time, heads, dim)."""

    batch, time, heads, dim = q.shape
    scale = dim ** -0.5 if scale is None else scale
    block = min(block, -(-time // 128) * 128)
    padded = -(-time // block) * block
    if lengths is None:
        lengths = jnp.full((batch,), time, jnp.int32)
    seg = (jnp.arange(padded)[None] < lengths[:, None]).astype(jnp.int32)  # (batch, padded)
    pad = ((0, 0), (0, padded - time), (0, 0), (0, 0))
    to_heads = lambda x: jnp.pad(x, pad).transpose(0, 2, 1, 3)  # (batch, heads, padded, dim)
    make = functools.partial(_kernel, padded, heads, (int(window[0]), int(window[1])), block)

    def runs(interpret_mode: bool):  # the kernel over the batch: (batch, heads, padded, dim)
        kernel = make(interpret_mode)
        return jax.vmap(lambda qi, ki, vi, si: kernel(qi, ki, vi,
                                                      segment_ids=sa.SegmentIds(q=si, kv=si)))

    args = (to_heads(q * jnp.asarray(scale, q.dtype)), to_heads(k), to_heads(v), seg)
    if interpret is None:  # decided per lowering platform, not by the default backend
        out = jax.lax.platform_dependent(*args, tpu=runs(False), default=runs(True))
    else:
        out = runs(interpret)(*args)
    out = out.transpose(0, 2, 1, 3)[:, :time]
    valid = jnp.arange(time)[None, :, None, None] < lengths[:, None, None, None]
    return jnp.where(valid, out, 0).astype(q.dtype)
