"""Positional information: rotary (half-split, GPT-NeoX convention) and learnable Fourier."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig


def rotary_inv_freq(head_dim: int, base: float) -> jax.Array:
    """1 / base^(2i / head_dim), float32, length head_dim / 2."""
    exponents = jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim
    return (1.0 / (base ** exponents)).astype(jnp.float32)


def autocast_product(a: jax.Array, b: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """a * b (broadcast) in float32, or with dtype=bfloat16 as CUDA autocast computes the
    original's position einsum/matmul (an outer product, no sum): both factors rounded to
    bf16, multiplied in float32, the product rounded to bf16 (returned as float32)."""
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    if dtype == jnp.float32:
        return a * b
    down = lambda v: v.astype(dtype).astype(jnp.float32)  # noqa: E731
    return down(down(a) * down(b))


def rotary_table(
    length: int, inv_freq: jax.Array, interpolation_factor: jax.Array,
    table_dtype: jnp.dtype = jnp.float32,
) -> tuple[jax.Array, jax.Array]:
    """cos, sin tables of shape (length, head_dim) for positions 0..length-1, in table_dtype.

    With table_dtype=bfloat16 they are computed as the original's training computed them
    under CUDA bf16 autocast: its einsum of positions and frequencies runs in bf16 (positions
    past 256 round to multiples of 2, ..., 256 past 32768), then cos/sin of the bf16 angles,
    rounded to bf16. (CPU autocast leaves that einsum in float32; its evaluation used float32.)
    """
    t = jnp.arange(length, dtype=jnp.float32) / interpolation_factor.astype(jnp.float32)
    angles = autocast_product(t[:, None], inv_freq[None, :], table_dtype)
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles).astype(table_dtype), jnp.sin(angles).astype(table_dtype)


def apply_rotary(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate x (batch, time, heads, head_dim) with tables (time, head_dim)."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    return (x * cos + rotated * sin).astype(x.dtype)


class RotaryFrequencies(nn.Module):
    """Holds `inv_freq` and `interpolation_factor`.

    Both live in the 'buffers' collection (inv_freq in 'params' when learned_rotary), so
    values loaded from a checkpoint win over the config, as in the original.
    """

    config: ModelConfig

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array]:
        cfg = self.config
        init = lambda: rotary_inv_freq(cfg.head_dim, cfg.rotary_base_freq)
        if cfg.learned_rotary:
            inv_freq = self.param("inv_freq", lambda _: init())
        else:
            inv_freq = self.variable("buffers", "inv_freq", init).value
        factor = self.variable(
            "buffers", "interpolation_factor",
            lambda: jnp.asarray(cfg.rotary_interpolation_factor, jnp.float32)).value
        return inv_freq, factor


class FourierPositions(nn.Module):
    """Learnable Fourier features: pe[n] = [cos(n w), sin(n w)] / sqrt(d), added once.

    Positions start at 0 for every input (no offset). table_dtype=float32 forms the phases
    and table in float32; bfloat16 as the original's training under CUDA autocast: the phase
    matmul in bf16 (`autocast_product`), cos/sin and the division by sqrt(d) rounded to bf16.
    """

    d_model: int
    table_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("w_r", nn.initializers.normal(1.0), (1, self.d_model // 2))
        n = jnp.arange(x.shape[1], dtype=jnp.float32)[:, None]
        phase = autocast_product(n, w[0][None, :], self.table_dtype)
        pe = jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], -1)
        if self.table_dtype == jnp.float32:
            pe = pe / jnp.sqrt(jnp.float32(self.d_model))
        else:  # torch divides a bf16 tensor by a scalar as a multiplication by its inverse
            scale = 1 / jnp.sqrt(jnp.float32(self.d_model))
            pe = (pe.astype(self.table_dtype).astype(jnp.float32) * scale).astype(
                self.table_dtype)
        return (x.astype(jnp.float32) + pe[None].astype(jnp.float32)).astype(x.dtype)
