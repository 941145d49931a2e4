"""What both CTC backends share: log 0, double-float sums and the extended label states.

A (hi, lo) pair of float32 holds a log offset to about 48 bits, so a running sum of
per-frame maxima (~4e5 at 45,000 frames) keeps the precision of one frame.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG = -1e30  # log(0) stand-in: finite, so no inf - inf anywhere


def two_sum(a, b):
    """a + b = s + err exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def df_add(x, y):
    """Double-float (hi, lo) + (hi, lo)."""
    s, e = two_sum(x[0], y[0])
    e = e + (x[1] + y[1])
    hi = s + e
    return hi, e - (hi - s)


def skip_states(ext: jax.Array) -> jax.Array:
    """(batch, S) bool: state s may be entered from s - 2 (a label, not the first, unlike
    the label before it); ext: (batch, S) class of each extended state."""
    s = jnp.arange(ext.shape[1])
    prev2 = jnp.pad(ext, ((0, 0), (2, 0)), constant_values=-1)[:, :ext.shape[1]]
    return (s % 2 == 1)[None] & (s >= 3)[None] & (ext != prev2)


def extended_states(labels: jax.Array, blank_id: int) -> tuple[jax.Array, jax.Array]:
    """The extended sequence (blank, l1, blank, ..., lL, blank) of (batch, L) labels:
    ext (batch, 2L+1) int32 class of each state and skip (batch, 2L+1) bool (`skip_states`).
    """
    batch, max_labels = labels.shape
    ext = jnp.full((batch, 2 * max_labels + 1), blank_id, jnp.int32)
    ext = ext.at[:, 1::2].set(labels.astype(jnp.int32))
    return ext, skip_states(ext)


def required_frames(labels: jax.Array, label_lengths: jax.Array) -> jax.Array:
    """(batch,) int32 frames an alignment of (batch, L) labels needs: the labels plus one
    blank between each pair of equal neighbours."""
    label_lengths = label_lengths.astype(jnp.int32)
    in_range = jnp.arange(labels.shape[1])[None] < label_lengths[:, None]
    repeats = jnp.sum((labels[:, 1:] == labels[:, :-1]) & in_range[:, 1:], axis=1)
    return label_lengths + repeats
