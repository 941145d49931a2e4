"""cuDNN fused attention (GPU only, 16-bit inputs, full attention) through
`jax.nn.dot_product_attention`; key padding as sequence lengths.

cuDNN cannot do a two-sided window without a causal mask, nor float32: `resolve_impl`
(kernels/attention/__init__.py) sends such calls to 'pallas_gpu' and 'xla' before they get
here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cudnn_attention(q, k, v, lengths=None, *, scale=None):
    """Full attention of 16-bit q, k, v (batch, time, heads, dim); see
    `lcasr_jax.kernels.attention.dot_product_attention`."""
    batch, time, _, dim = q.shape
    if q.dtype not in (jnp.bfloat16, jnp.float16):
        raise ValueError(f"kernels/attention/cudnn.py: cuDNN needs 16-bit inputs, got "
                         f"{q.dtype} (resolve_impl sends float32 to 'xla')")
    if lengths is None:
        lengths = jnp.full((batch,), time, jnp.int32)
    lengths = jnp.minimum(lengths.astype(jnp.int32), time)
    # A zero-length row (a padded row of the original's lockstep tail steps) makes cuDNN's
    # backward NaN (H100, cuDNN 9, 2026-12-07: every bf16 replay step with a padded row was
    # skipped). Such a row attends to its first key instead; its output is zeroed below, so
    # its gradient is exactly zero.
    kernel_lengths = jnp.maximum(lengths, 1)
    if time % 2:  # cuDNN's masked training path needs even sequence lengths
        pad = ((0, 0), (0, 1), (0, 0), (0, 0))
        q, k, v = (jnp.pad(x, pad) for x in (q, k, v))
    out = jax.nn.dot_product_attention(
        q, k, v, scale=dim ** -0.5 if scale is None else scale,
        query_seq_lengths=kernel_lengths, key_value_seq_lengths=kernel_lengths,
        implementation="cudnn")
    out = out[:, :time]
    valid = jnp.arange(time)[None, :, None, None] < lengths[:, None, None, None]
    return jnp.where(valid, out, 0).astype(q.dtype)
