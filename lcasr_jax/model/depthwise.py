"""Depthwise convolution (one filter per channel) with two implementations of one layer.

'conv' is XLA's grouped convolution; 'shifts' sums the kernel's taps as strided slices of
the padded input times their weights (accumulated in float32), which XLA fuses into one
elementwise pass. 'shifts' is ~5x faster on CPU and 7x faster on an H200 for the conv
module's 1-D conv (benchmarks/forward_parts.py); 'auto' (`resolve_impl`) picks per platform
and stride. `BACKENDS` holds both by name, as kernels/attention and kernels/ctc hold theirs.
Both use the parameters of `nn.Conv(..., feature_group_count=channels)`: kernel
(*window, 1, channels) and bias (channels,), so checkpoints do not care which one runs.
"""

from __future__ import annotations

import functools
import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.init import bias_init, kernel_init


def strided_taps(x: jax.Array, window: tuple[int, ...],
                 strides: tuple[int, ...]) -> list[jax.Array]:
    """The window's taps of an already padded x (batch, *spatial, channels), in
    itertools.product order of the window: each the strided slice (batch, *out, channels)
    that tap multiplies in an unpadded convolution with these strides."""
    out = [(x.shape[1 + i] - window[i]) // strides[i] + 1 for i in range(len(window))]
    return [x[(slice(None), *(slice(d, d + s * (n - 1) + 1, s)
                              for d, s, n in zip(taps, strides, out, strict=True)))]
            for taps in itertools.product(*(range(k) for k in window))]


# Rematerialised: without it the backward would keep each tap's float32 slice (9 copies of
# the input at 4x its bf16 size); with it, only the input and the kernel, and it recomputes
# the slices, one elementwise pass.
@functools.partial(jax.checkpoint, static_argnums=(2, 3))
def depthwise_shifts(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...],
                     padding: tuple[tuple[int, int], ...]) -> jax.Array:
    """x: (batch, *spatial, channels); kernel: (*window, 1, channels) -> (batch, *out,
    channels) float32: sum over taps of the strided slice of padded x times its weight."""
    window = kernel.shape[:-2]
    x = jnp.pad(x, ((0, 0), *padding, (0, 0))).astype(jnp.float32)
    weights = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)
    total = None
    for tap, weight in zip(strided_taps(x, window, strides), weights, strict=True):
        term = tap * weight
        total = term if total is None else total + term
    return total


def grouped_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, strides: tuple[int, ...],
                 padding: tuple[tuple[int, int], ...]) -> jax.Array:
    """XLA's grouped convolution (one group per channel) plus bias, in x's dtype."""
    spatial = "".join("HWD"[i] for i in range(kernel.ndim - 2))
    y = jax.lax.conv_general_dilated(
        x, kernel, strides, padding, feature_group_count=kernel.shape[-1],
        dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))
    return y + bias


def summed_taps(x: jax.Array, kernel: jax.Array, bias: jax.Array, strides: tuple[int, ...],
                padding: tuple[tuple[int, int], ...]) -> jax.Array:
    """`depthwise_shifts` plus bias (accumulated in float32), in x's dtype."""
    y = depthwise_shifts(x, kernel, strides, padding)
    return (y + bias.astype(jnp.float32)).astype(x.dtype)


# name -> fn(x, kernel, bias, strides, padding) -> y; x (batch, *spatial, channels).
BACKENDS = {"conv": grouped_conv, "shifts": summed_taps}
IMPLS = ("auto", *BACKENDS)


def resolve_impl(impl: str, platform: str | None = None, strides: tuple[int, ...] = (1,)) -> str:
    """The implementation `impl` names for a conv with `strides` on `platform` (default:
    jax's default backend). 'auto': 'shifts', except strided convs on GPU (measured on an
    H200 at one hour: the conv module's 1-D conv 0.32 ms as shifts vs 2.27 ms grouped; the
    subsampling's 3 x 3 stride-2 one 2.14 vs 1.85 ms)."""
    if impl not in IMPLS:
        raise ValueError(f"depthwise_impl={impl!r}: choose one of {', '.join(IMPLS)}")
    if impl == "auto":
        strided = any(s != 1 for s in strides)
        platform = platform or jax.default_backend()
        return "conv" if strided and platform == "gpu" else "shifts"
    return impl


class DepthwiseConv(nn.Module):
    """Depthwise conv over (batch, *spatial, channels), `padding` per spatial axis."""

    features: int
    window: tuple[int, ...]
    strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dtype: jnp.dtype = jnp.float32
    depthwise_impl: str = "auto"  # IMPLS
    param_init: str = "lecun"  # model/init.py; torch's fan_in is the window's taps

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        blank = (None,) * len(self.window)
        taps = math.prod(self.window)
        kernel = self.param("kernel", kernel_init(self.param_init, taps, (*blank, None,
                                                                          "depthwise")),
                            (*self.window, 1, self.features), jnp.float32)
        bias = self.param("bias", bias_init(self.param_init, taps, ("depthwise",)),
                          (self.features,), jnp.float32)
        x, kernel, bias = x.astype(self.dtype), kernel.astype(self.dtype), bias.astype(self.dtype)
        backend = BACKENDS[resolve_impl(self.depthwise_impl, None, self.strides)]
        return backend(x, kernel, bias, self.strides, self.padding)
