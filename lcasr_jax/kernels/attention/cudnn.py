"""cuDNN fused attention (GPU only) through `jax.nn.dot_product_attention`.

cuDNN takes key padding as sequence lengths but cannot do a right window without a causal
mask, so windowed calls go to the Pallas kernel, which also skips out-of-window blocks.
cuDNN needs 16-bit inputs; float32 calls go to the chunked XLA backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lcasr_jax.kernels.attention.pallas_gpu import pallas_attention
from lcasr_jax.kernels.attention.xla import xla_attention


def cudnn_attention(q, k, v, lengths=None, *, window=(-1, -1), scale=None):
    """See `lcasr_jax.kernels.attention.dot_product_attention`."""
    batch, time, _, dim = q.shape
    if q.dtype not in (jnp.bfloat16, jnp.float16):
        return xla_attention(q, k, v, lengths, window=window, scale=scale)
    if tuple(window) != (-1, -1):
        return pallas_attention(q, k, v, lengths, window=window, scale=scale)
    if lengths is None:
        lengths = jnp.full((batch,), time, jnp.int32)
    lengths = jnp.minimum(lengths.astype(jnp.int32), time)
    if time % 2:  # cuDNN's masked training path needs even sequence lengths
        pad = ((0, 0), (0, 1), (0, 0), (0, 0))
        q, k, v = (jnp.pad(x, pad) for x in (q, k, v))
    out = jax.nn.dot_product_attention(
        q, k, v, scale=dim ** -0.5 if scale is None else scale,
        query_seq_lengths=lengths, key_value_seq_lengths=lengths, implementation="cudnn")
    out = out[:, :time]
    valid = jnp.arange(time)[None, :, None, None] < lengths[:, None, None, None]
    return jnp.where(valid, out, 0).astype(q.dtype)
