"""Position-wise feed-forward: Linear(d -> 4d), tanh-approximate GELU, Linear(4d -> d)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig


def dense(features: int, use_bias: bool, dtype, axes: tuple[str, str], name: str) -> nn.Dense:
    """A Dense layer whose kernel (in, out) carries logical axis names `axes`."""
    return nn.Dense(
        features, use_bias=use_bias, dtype=dtype, name=name,
        kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)),
    )


class FeedForward(nn.Module):
    """(batch, time, d_model) -> (batch, time, d_model). The hidden width is always 4 d."""

    config: ModelConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        h = dense(4 * cfg.d_model, cfg.bias_in_ff, self.dtype, ("embed", "mlp"), "fc1")(x)
        h = nn.gelu(h, approximate=True)
        return dense(cfg.d_model, cfg.bias_in_ff, self.dtype, ("mlp", "embed"), "fc2")(h)
