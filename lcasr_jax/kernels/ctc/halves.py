"""Meet in the middle: the one plan that both CTC backends run each sequence by.

Each of N sequences becomes two rows: row n is its first `split` frames, row N + n the
rest, reversed in time and in labels. The alpha recursion of a reversed row is the beta
recursion of the original, so one forward pass over 2N rows computes alpha up to the split
and beta down to it together, in half the serial frames; the loss is where they meet.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Halves(NamedTuple):
    """The 2N rows of N sequences."""

    split: jax.Array  # (N,) int32 frames of each sequence's first row
    frames: jax.Array  # (2N,) int32 frames per row
    labels: jax.Array  # (2N, L) int32 labels per row (reversed for rows >= N; pad: blank)
    label_lengths: jax.Array  # (2N,) int32


def plan(labels: jax.Array, label_lengths: jax.Array, frames: jax.Array, blank_id: int,
         block: int = 1) -> Halves:
    """labels: (N, L) int32 (padding beyond label_lengths: the blank); label_lengths,
    frames: (N,) int32. The split is a whole number of `block`-frame blocks, half of them
    rounded up (block 1: ceil(frames / 2)), so a first row's blocks are its sequence's own.
    """
    max_labels = labels.shape[1]
    blocks = -(-frames // block)
    split = jnp.minimum((blocks + 1) // 2 * block, frames)
    j = jnp.arange(max_labels)
    back = jnp.clip(label_lengths[:, None] - 1 - j, 0, max_labels - 1)
    rev = jnp.take_along_axis(labels, back, axis=1)
    rev = jnp.where(j[None] < label_lengths[:, None], rev, blank_id)
    return Halves(split, jnp.concatenate([split, frames - split]),
                  jnp.concatenate([labels, rev]).astype(jnp.int32),
                  jnp.concatenate([label_lengths, label_lengths]))
