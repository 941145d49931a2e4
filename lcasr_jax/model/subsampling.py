"""Depthwise-striding convolutional subsampling (time / factor, e.g. 100 -> 12.5 frames/s)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.depthwise import DepthwiseConv, strided_taps
from lcasr_jax.model.feedforward import dense
from lcasr_jax.model.init import bias_init, kernel_init
from lcasr_jax.model.lengths import output_lengths
from lcasr_jax.model.norms import LayerNorm
from lcasr_jax.model.runtime import Runtime

_ACTIVATIONS = {
    "silu": nn.silu,
    "relu": nn.relu,
    "gelu": lambda x: nn.gelu(x, approximate=False),  # torch nn.GELU() is the exact erf form
    "none": lambda x: x,
}


class PatchConv(nn.Module):
    """(batch, time, freq, channels_in) -> (batch, time', freq', features): a full conv with
    zero padding (window - 1) // 2 (odd windows) and one stride on both axes, computed as one
    matmul: the window's strided taps stacked on the channel axis times the
    kernel flattened to (taps * channels_in, features). Same parameters as `nn.Conv` (kernel
    (*window, channels_in, features), bias (features,)). On an H200 at one hour the 3 x 3
    stride-2 first conv (1 -> 256 channels) takes 3.7 ms this way, 6.6 ms as XLA's conv
    (benchmarks/forward_parts.py); a 1 x 1 conv is just the matmul.
    """

    features: int
    window: tuple[int, int]
    stride: int
    dtype: jnp.dtype = jnp.float32
    param_init: str = "lecun"  # model/init.py

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels_in = x.shape[-1]
        fan_in = math.prod(self.window) * channels_in
        kernel = self.param(
            "kernel", kernel_init(self.param_init, fan_in, (None, None, None, "conv_out")),
            (*self.window, channels_in, self.features), jnp.float32)
        bias = self.param("bias", bias_init(self.param_init, fan_in, ("conv_out",)),
                          (self.features,), jnp.float32)
        pad = [((k - 1) // 2,) * 2 for k in self.window]
        x = jnp.pad(x.astype(self.dtype), ((0, 0), *pad, (0, 0)))
        taps = strided_taps(x, self.window, (self.stride,) * 2)
        patches = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
        weight = kernel.reshape(-1, self.features).astype(self.dtype)
        return jnp.einsum("btfk,kc->btfc", patches, weight) + bias.astype(self.dtype)


class DepthwiseStridingSubsampling(nn.Module):
    """(batch, frames, feat_in) -> (batch, ceil(frames / factor), d_model).

    Stage 1 is a full 3x3 stride-2 conv (1 -> C) then the activation; each further stage is
    a depthwise 3x3 stride-2 conv, a pointwise 1x1 conv, then the activation. Time is the
    image height, mel bins the width. Without `lengths` the padded input frames are NOT
    masked (as in the original), so frames past `length` inside the receptive field reach
    valid outputs. With `lengths` (batch,), frames past each stage's valid length are zeroed
    before every conv, so valid outputs equal those of the unpadded input (up to rounding).

    `start` (a traced int, a multiple of the factor) and `total` (frames) make `spec` a
    window of a longer recording starting at input frame `start` (possibly negative): rows
    outside [0, total) of every stage are zeroed before each conv, as the convs' zero
    padding of the whole recording would be (`chunked_subsampling`).
    """

    config: ModelConfig
    runtime: Runtime = Runtime()  # dtype, depthwise_impl

    @nn.compact
    def __call__(self, spec: jax.Array, lengths: jax.Array | None = None,
                 start: jax.Array | None = None, total: int | None = None) -> jax.Array:
        cfg, rt = self.config, self.runtime
        act = _ACTIVATIONS[cfg.subsampling_act]
        channels = cfg.conv_channels

        def mask(x, stages):  # zero rows past the valid length after `stages` stages
            if lengths is None and start is None:
                return x
            rows = jnp.arange(x.shape[1])[None, :]
            limit = None if lengths is None else output_lengths(lengths, 2 ** stages)[:, None]
            if start is not None:
                rows = rows + start // 2 ** stages
                end = output_lengths(total, 2 ** stages)
                limit = end if limit is None else jnp.minimum(limit, end)
                valid = (rows >= 0) & (rows < limit)
            else:
                valid = rows < limit
            return jnp.where(valid[:, :, None, None], x, 0)

        x = mask(spec[..., None].astype(rt.dtype), 0)  # (batch, time, freq, 1)
        init = cfg.param_init
        x = act(PatchConv(channels, (3, 3), 2, rt.dtype, init, name="conv_in")(x))
        for stage in range(1, int(math.log2(cfg.subsampling_factor))):
            x = DepthwiseConv(channels, (3, 3), (2, 2), ((1, 1), (1, 1)), rt.dtype,
                              rt.depthwise_impl, init, name=f"depthwise_{stage}")(
                mask(x, stage))
            x = act(PatchConv(channels, (1, 1), 1, rt.dtype, init,
                              name=f"pointwise_{stage}")(x))
        batch, time, freq, _ = x.shape
        # Flatten channel-major (index c * freq + f), as the original does.
        x = x.transpose(0, 1, 3, 2).reshape(batch, time, channels * freq)
        x = dense(cfg.d_model, cfg.subsampling_norm_out, rt.dtype, ("conv_flat", "embed"),
                  "out", channels * freq, init)(x)
        if cfg.subsampling_norm_out:  # always a LayerNorm, whatever default_norm says
            x = LayerNorm(name="norm_out")(x)
        return x


def chunked_subsampling(module: DepthwiseStridingSubsampling, spec: jax.Array,
                        lengths: jax.Array | None, chunk_frames: int,
                        remat: bool = False) -> jax.Array:
    """`module(spec, lengths)` computed `chunk_frames` input frames at a time (a lax.scan),
    each chunk with a halo of one output token's frames on its left (the only rows that a
    window's own zero padding corrupts; the stride-2 convs need no right halo). Equal to
    the unchunked call; with `remat` each chunk's backward recomputes that chunk alone, so
    the subsampling's peak memory is one chunk's, not the recording's.

    spec: (batch, frames, feat_in); chunk_frames: a multiple of the subsampling factor.
    """
    factor = module.config.subsampling_factor
    if chunk_frames % factor:
        raise ValueError(f"subsampling_chunk_frames={chunk_frames}: must be a multiple of "
                         f"the subsampling factor {factor}")
    batch, frames, feat = spec.shape
    tokens = -(-frames // factor)  # = output_lengths(frames, factor)
    chunks = -(-tokens * factor // chunk_frames)
    padded = jnp.pad(spec, ((0, 0), (factor, chunks * chunk_frames - frames), (0, 0)))

    def body(mdl, carry, index, padded):
        start = index * chunk_frames - factor  # global frame of the window's first row
        window = jax.lax.dynamic_slice_in_dim(padded, start + factor, chunk_frames + factor, 1)
        return carry, mdl(window, lengths, start, frames)[:, 1:]  # drop the halo token

    body = nn.remat(body) if remat else body
    scan = nn.scan(body, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=(0, nn.broadcast), out_axes=1)
    _, out = scan(module, None, jnp.arange(chunks), padded)  # (batch, chunks, tokens, d)
    return out.reshape(batch, -1, out.shape[-1])[:, :tokens]
