"""Multi-head self-attention with rotary positions, key padding and local windows."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from lcasr_jax.kernels.attention import dot_product_attention
from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.init import bias_init, kernel_init
from lcasr_jax.model.positions import apply_rotary
from lcasr_jax.model.runtime import Runtime
from lcasr_jax.sharding import bound_mesh

ATTENTION_OUT = "attention_out"  # checkpoint name of the attention output (remat policies)


class SelfAttention(nn.Module):
    """(batch, time, d_model) -> (batch, time, d_model).

    q/k/v come from one projection with kernel (d_model, 3, heads, head_dim); the output
    projection kernel is (heads, head_dim, d_model). Padded frames are zeroed before the
    projection and before the output projection, as in the original.
    With `mutable=['attention']`, q and k (after rotary) are sown as 'q' and 'k'.
    """

    config: ModelConfig
    runtime: Runtime = Runtime()  # dtype, attention_impl

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array, valid: jax.Array,
                 rotary: tuple[jax.Array, jax.Array] | None) -> jax.Array:
        cfg, rt = self.config, self.runtime
        x = jnp.where(valid[..., None], x, 0).astype(rt.dtype)
        qkv = nn.DenseGeneral(
            (3, cfg.n_heads, cfg.head_dim), use_bias=cfg.qkv_bias, dtype=rt.dtype, name="qkv",
            kernel_init=kernel_init(cfg.param_init, cfg.d_model,
                                    ("embed", "qkv", "heads", "kv")),
            bias_init=bias_init(cfg.param_init, cfg.d_model, ("qkv", "heads", "kv")),
        )(x)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (batch, time, heads, head_dim)
        q = nn.with_logical_constraint(q, ("batch", "length", "heads", "kv"),
                                      mesh=bound_mesh())
        if rotary is not None:
            cos, sin = rotary
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if not self.is_initializing():  # init's variables stay {params, batch_stats, buffers}
            # For analysis only (lcasr_jax.analysis.attention): kept when the 'attention'
            # collection is mutable, a no-op otherwise (the normal forward is unchanged).
            self.sow("attention", "q", q)
            self.sow("attention", "k", k)
        out = dot_product_attention(
            q, k, v, lengths, window=cfg.attention_window, implementation=rt.attention_impl)
        out = checkpoint_name(out, ATTENTION_OUT)  # (batch, time, heads, head_dim)
        out = jnp.where(valid[:, :, None, None], out, 0)
        return nn.DenseGeneral(
            cfg.d_model, axis=(-2, -1), use_bias=False, dtype=rt.dtype, name="out",
            kernel_init=kernel_init(cfg.param_init, cfg.n_heads * cfg.head_dim,
                                    ("heads", "kv", "embed")),
        )(out)
