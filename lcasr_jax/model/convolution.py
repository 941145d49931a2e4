"""Conformer convolution module and the norms it can use (batch renorm by default)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.depthwise import DepthwiseConv
from lcasr_jax.model.feedforward import dense
from lcasr_jax.model.norms import LayerNorm


def _channel_param(module: nn.Module, name: str, init, dim: int) -> jax.Array:
    return module.param(name, nn.with_logical_partitioning(init, ("conv_inner",)), (dim,))


class BatchRenorm(nn.Module):
    """Batch renormalisation over (batch, time) per channel.

    Eval: y = (x - running_mean) / running_std * scale + bias (no epsilon; the stored
    statistic is a standard deviation, not a variance).
    Train: batch statistics over valid frames only (the original also counts padded frames;
    we exclude them), corrected by r = clip(std_b / running_std, 1/rmax, rmax) and
    d = clip((mean_b - running_mean) / running_std, -dmax, dmax) with the original's rmax/dmax
    warm-up; running stats move with momentum 0.01.
    """

    eps: float = 1e-3
    momentum: float = 0.01

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array, train: bool) -> jax.Array:
        dim = x.shape[-1]
        scale = _channel_param(self, "scale", nn.initializers.ones, dim)
        bias = _channel_param(self, "bias", nn.initializers.zeros, dim)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (dim,), jnp.float32)
        ra_std = self.variable("batch_stats", "std", jnp.ones, (dim,), jnp.float32)
        steps = self.variable("batch_stats", "steps", lambda: jnp.zeros((), jnp.float32))
        xf = x.astype(jnp.float32)
        if train:
            w = valid[..., None].astype(jnp.float32)
            count = jnp.maximum(w.sum((0, 1)), 1.0)
            mean = (xf * w).sum((0, 1)) / count
            std = jnp.sqrt((jnp.square(xf - mean) * w).sum((0, 1)) / count) + self.eps
            rmax = jnp.clip(2 / 35000 * steps.value + 25 / 35, 1.0, 3.0)
            dmax = jnp.clip(5 / 20000 * steps.value - 25 / 20, 0.0, 5.0)
            r = jax.lax.stop_gradient(jnp.clip(std / ra_std.value, 1 / rmax, rmax))
            d = jax.lax.stop_gradient(
                jnp.clip((mean - ra_mean.value) / ra_std.value, -dmax, dmax))
            y = (xf - mean) / std * r + d
            if not self.is_initializing():
                ra_mean.value += self.momentum * (jax.lax.stop_gradient(mean) - ra_mean.value)
                ra_std.value += self.momentum * (jax.lax.stop_gradient(std) - ra_std.value)
                steps.value += 1
        else:
            y = (xf - ra_mean.value) / ra_std.value
        return (y * scale + bias).astype(x.dtype)


class ConvModule(nn.Module):
    """(batch, time, d_model) -> (batch, time, d_model).

    pointwise (d -> 2 inner) -> GLU -> zero padded frames -> depthwise conv (same padding)
    -> norm -> SiLU -> pointwise (inner -> d).
    """

    config: ModelConfig
    dtype: jnp.dtype = jnp.float32
    depthwise_impl: str = "auto"  # model/depthwise.py

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array, train: bool) -> jax.Array:
        cfg = self.config
        inner = cfg.conv_inner
        h = dense(2 * inner, True, self.dtype, ("embed", "conv_inner"), "pointwise_conv1")(x)
        h = h[..., :inner] * nn.sigmoid(h[..., inner:])
        h = jnp.where(valid[..., None], h, 0)
        pad = (cfg.conv_kernel_size - 1) // 2
        h = DepthwiseConv(inner, (cfg.conv_kernel_size,), (1,), ((pad, pad),), self.dtype,
                          self.depthwise_impl, name="depthwise_conv")(h)
        if cfg.conv_norm == "batch_renorm":
            h = BatchRenorm(name="batch_renorm")(h, valid, train)
        elif cfg.conv_norm == "layer_norm":
            h = LayerNorm(axis_name="conv_inner", name="layer_norm")(h)
        h = nn.silu(h)
        return dense(cfg.d_model, True, self.dtype, ("conv_inner", "embed"), "pointwise_conv2")(h)
