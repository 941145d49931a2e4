"""Portable XLA attention, chunked over queries so memory stays linear in length.

Each block of `block_q` queries attends to all keys; the block body is rematerialised in
the backward pass, so neither pass ever holds a (time, time) score matrix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -1e30


def attention_mask(
    q_pos: jax.Array, k_pos: jax.Array, lengths: jax.Array, window: tuple[int, int]
) -> jax.Array:
    """Boolean (batch, q, k) mask: key valid, query valid and inside the window."""
    valid_k = k_pos[None, None, :] < lengths[:, None, None]
    valid_q = q_pos[None, :, None] < lengths[:, None, None]
    mask = valid_k & valid_q
    left, right = window
    rel = k_pos[None, :] - q_pos[:, None]
    if left >= 0:
        mask = mask & (rel >= -left)[None]
    if right >= 0:
        mask = mask & (rel <= right)[None]
    return mask


def _block(q, k, v, q_pos, lengths, window, scale):
    """q: (batch, block, heads, dim); k, v: (batch, time, heads, dim)."""
    k_pos = jnp.arange(k.shape[1])
    mask = attention_mask(q_pos, k_pos, lengths, window)  # (b, q, k)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    logits = jnp.where(mask[:, None], logits, NEG_INF)
    probs = jax.nn.softmax(logits, axis=-1)
    probs = jnp.where(mask[:, None], probs, 0.0)  # fully masked rows -> zeros, not uniform
    out = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v,
                     preferred_element_type=jnp.float32)
    return out.astype(q.dtype)


def xla_attention(q, k, v, lengths=None, *, window=(-1, -1), scale=None, block_q: int = 512):
    """Reference attention; see `lcasr_jax.kernels.attention.dot_product_attention`."""
    batch, time, heads, dim = q.shape
    if scale is None:
        scale = dim ** -0.5
    if lengths is None:
        lengths = jnp.full((batch,), time, jnp.int32)
    lengths = lengths.astype(jnp.int32)
    if time <= block_q:
        return _block(q, k, v, jnp.arange(time), lengths, window, scale)
    n_blocks = -(-time // block_q)
    pad = n_blocks * block_q - time
    qp = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0)))
    qb = qp.reshape(batch, n_blocks, block_q, heads, dim).swapaxes(0, 1)

    @jax.checkpoint
    def body(args):
        q_blk, start = args
        return _block(q_blk, k, v, start + jnp.arange(block_q), lengths, window, scale)

    starts = jnp.arange(n_blocks) * block_q
    out = jax.lax.map(body, (qb, starts))  # (n_blocks, batch, block, heads, dim)
    out = out.swapaxes(0, 1).reshape(batch, n_blocks * block_q, heads, dim)
    return out[:, :time]
