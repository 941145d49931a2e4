"""Normalisation layers with the original's exact numerics.

Hidden-state norms compute in float32 whatever the compute dtype, and cast back.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig

_ones = nn.initializers.ones
_zeros = nn.initializers.zeros


class LayerNorm(nn.Module):
    """torch.nn.LayerNorm over the last axis: biased variance, eps inside the sqrt."""

    eps: float = 1e-5
    use_bias: bool = True
    axis_name: str = "norm"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        dim = x.shape[-1]
        scale = self.param("scale", nn.with_logical_partitioning(_ones, (self.axis_name,)),
                           (dim,))
        xf = x.astype(jnp.float32)
        mean = xf.mean(-1, keepdims=True)
        var = jnp.square(xf - mean).mean(-1, keepdims=True)
        y = (xf - mean) * jnp.reciprocal(jnp.sqrt(var + self.eps)) * scale
        if self.use_bias:
            bias_init = nn.with_logical_partitioning(_zeros, (self.axis_name,))
            y = y + self.param("bias", bias_init, (dim,))
        return y.astype(x.dtype)


class RMSNorm(nn.Module):
    """RMS norm in either parameter convention of the original.

    style='lcasr' (built without apex): y = scale * x / (||x||_2 / sqrt(d) + 1e-8).
    style='apex' (FusedRMSNorm):        y = scale * x / sqrt(mean(x^2) + 1e-5).
    """

    style: str = "lcasr"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        dim = x.shape[-1]
        scale = self.param("scale", nn.with_logical_partitioning(_ones, ("norm",)), (dim,))
        xf = x.astype(jnp.float32)
        ms = jnp.square(xf).mean(-1, keepdims=True)
        if self.style == "lcasr":
            y = xf / (jnp.sqrt(ms) + 1e-8)
        else:
            y = xf * jnp.reciprocal(jnp.sqrt(ms + 1e-5))
        return (y * scale).astype(x.dtype)


def make_norm(config: ModelConfig, name: str) -> nn.Module:
    """The config's `default_norm` over d_model."""
    if config.default_norm == "rms_norm":
        return RMSNorm(style=config.rms_norm_style, name=name)
    return LayerNorm(name=name)
