"""Position-wise feed-forward: Linear(d -> 4d), tanh-approximate GELU, Linear(4d -> d)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.init import bias_init, kernel_init


def dense(features: int, use_bias: bool, dtype, axes: tuple[str, str], name: str,
          fan_in: int, param_init: str = "lecun") -> nn.Dense:
    """A Dense layer whose kernel (in = fan_in, out) carries logical axis names `axes`,
    initialised by `param_init` (model/init.py)."""
    return nn.Dense(
        features, use_bias=use_bias, dtype=dtype, name=name,
        kernel_init=kernel_init(param_init, fan_in, axes),
        bias_init=bias_init(param_init, fan_in, (axes[1],)),
    )


class FeedForward(nn.Module):
    """(batch, time, d_model) -> (batch, time, d_model). The hidden width is always 4 d."""

    config: ModelConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        h = dense(4 * cfg.d_model, cfg.bias_in_ff, self.dtype, ("embed", "mlp"), "fc1",
                  cfg.d_model, cfg.param_init)(x)
        h = nn.gelu(h, approximate=True)
        return dense(cfg.d_model, cfg.bias_in_ff, self.dtype, ("mlp", "embed"), "fc2",
                     4 * cfg.d_model, cfg.param_init)(h)
