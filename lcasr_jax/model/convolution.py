"""Conformer convolution module and the norms it can use (batch renorm by default)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.depthwise import DepthwiseConv
from lcasr_jax.model.feedforward import dense
from lcasr_jax.model.norms import LayerNorm
from lcasr_jax.model.runtime import Runtime


def _channel_param(module: nn.Module, name: str, init, dim: int) -> jax.Array:
    return module.param(name, nn.with_logical_partitioning(init, ("conv_inner",)), (dim,))


class BatchRenorm(nn.Module):
    """Batch renormalisation over (batch, time) per channel.

    Eval: y = (x - running_mean) / running_std * scale + bias (no epsilon; the stored
    statistic is a standard deviation, not a variance).
    Train: batch statistics (biased std + eps), corrected by
    r = clip(std_b / running_std, 1/rmax, rmax) and
    d = clip((mean_b - running_mean) / running_std, -dmax, dmax) with the original's rmax/dmax
    warm-up over its update counter; running stats move with momentum 0.01.

    The original's training differs from this project's default in three ways, each an
    attribute: `include_padding` (its statistics count the padded frames too: zeros before
    the depthwise conv, so there its bias and the edges of valid frames; ours count valid
    frames only; what counts is the original's batch tensor: rows with valid frames, up to
    the longest row, not the trainer's filler rows or padding to a fixed shape);
    `stats_dtype=bfloat16` (under CUDA autocast the conv output is bf16 and its mean, std,
    x - mean and (x - mean) / std are rounded to bf16, the rest in float32, and the output
    stays float32); `updates=2` (with torch.utils.checkpoint around every layer the forward
    runs again in the backward: running statistics and counter move twice per step, and
    the gradient comes from the second run, whose r and d use the once-updated statistics).
    """

    eps: float = 1e-3
    momentum: float = 0.01
    include_padding: bool = False
    stats_dtype: jnp.dtype = jnp.float32
    updates: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array, train: bool) -> jax.Array:
        dim = x.shape[-1]
        scale = _channel_param(self, "scale", nn.initializers.ones, dim)
        bias = _channel_param(self, "bias", nn.initializers.zeros, dim)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (dim,), jnp.float32)
        ra_std = self.variable("batch_stats", "std", jnp.ones, (dim,), jnp.float32)
        steps = self.variable("batch_stats", "steps", lambda: jnp.zeros((), jnp.float32))
        autocast = self.stats_dtype != jnp.float32
        low = lambda v: v.astype(self.stats_dtype).astype(jnp.float32)  # noqa: E731
        xf = low(x) if autocast else x.astype(jnp.float32)
        if train:
            if self.include_padding:  # the original's batch tensor: rows that have valid
                # frames, times up to the longest row (not this batch's padding past it)
                w = valid.any(1, keepdims=True) & valid.any(0, keepdims=True)
            else:
                w = valid
            w = w[..., None].astype(jnp.float32)
            count = jnp.maximum(w.sum((0, 1)), 1.0)
            mean = (xf * w).sum((0, 1)) / count
            std = jnp.sqrt((jnp.square(xf - mean) * w).sum((0, 1)) / count)
            if autocast:
                mean, std = low(mean), low(low(std) + self.eps)
                normed = low(low(xf - mean) / std)
            else:
                std = std + self.eps
                normed = (xf - mean) / std
            stats = (ra_mean.value, ra_std.value, steps.value)
            y = self._renorm(normed, mean, std, *stats)
            stats = self._update(mean, std, *stats)
            if self.updates == 2:  # value of the first run, gradient of the second
                again = self._renorm(normed, mean, std, *stats)
                y = jax.lax.stop_gradient(y) + (again - jax.lax.stop_gradient(again))
                stats = self._update(mean, std, *stats)
            if not self.is_initializing():
                ra_mean.value, ra_std.value, steps.value = stats
        else:
            y = (xf - ra_mean.value) / ra_std.value
        y = y * scale + bias
        return y if autocast else y.astype(x.dtype)

    @staticmethod
    def _renorm(normed, mean, std, ra_mean, ra_std, steps) -> jax.Array:
        rmax = jnp.clip(2 / 35000 * steps + 25 / 35, 1.0, 3.0)
        dmax = jnp.clip(5 / 20000 * steps - 25 / 20, 0.0, 5.0)
        r = jax.lax.stop_gradient(jnp.clip(std / ra_std, 1 / rmax, rmax))
        d = jax.lax.stop_gradient(jnp.clip((mean - ra_mean) / ra_std, -dmax, dmax))
        return normed * r + d

    def _update(self, mean, std, ra_mean, ra_std, steps):
        mean, std = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(std)
        return (ra_mean + self.momentum * (mean - ra_mean),
                ra_std + self.momentum * (std - ra_std), steps + 1)


class ConvModule(nn.Module):
    """(batch, time, d_model) -> (batch, time, d_model).

    pointwise (d -> 2 inner) -> GLU -> zero padded frames -> depthwise conv (same padding)
    -> norm -> SiLU -> pointwise (inner -> d).
    """

    config: ModelConfig
    runtime: Runtime = Runtime()  # dtype, depthwise_impl
    renorm_updates: int = 1  # BatchRenorm.updates

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array, train: bool) -> jax.Array:
        cfg, rt = self.config, self.runtime
        inner = cfg.conv_inner
        h = dense(2 * inner, True, rt.dtype, ("embed", "conv_inner"), "pointwise_conv1",
                  cfg.d_model, cfg.param_init)(x)
        h = h[..., :inner] * nn.sigmoid(h[..., inner:])
        h = jnp.where(valid[..., None], h, 0)
        pad = (cfg.conv_kernel_size - 1) // 2
        h = DepthwiseConv(inner, (cfg.conv_kernel_size,), (1,), ((pad, pad),), rt.dtype,
                          rt.depthwise_impl, cfg.param_init, name="depthwise_conv")(h)
        if cfg.conv_norm == "batch_renorm":
            h = BatchRenorm(include_padding=cfg.batch_renorm_padding,
                            stats_dtype=jnp.dtype(cfg.batch_renorm_dtype),
                            updates=self.renorm_updates, name="batch_renorm")(
                h, valid, train)
        elif cfg.conv_norm == "layer_norm":
            h = LayerNorm(axis_name="conv_inner", name="layer_norm")(h)
        h = nn.silu(h)
        return dense(cfg.d_model, True, rt.dtype, ("conv_inner", "embed"), "pointwise_conv2",
                     inner, cfg.param_init)(h)
