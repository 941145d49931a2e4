"""Exact CTC loss for long sequences, dispatching to an XLA or a Pallas (Triton GPU) backend.

Both backends work on the extended label sequence (blank, l1, blank, l2, ..., blank) of S =
2 * max_labels + 1 states, gather only those columns of the log-probabilities per time step,
and run the alpha recursion in log space on a state kept normalised (max subtracted, offset
summed in double-float), so float32 rounding stays at the scale of one frame rather than of
the whole log-likelihood. The gradient comes from the beta recursion (custom VJP); memory is
O(frames * classes) for the gradient plus alpha checkpoints (every ~sqrt(frames) frames for
XLA; every tile of the Pallas wavefront, ctc_pallas.py), never the (frames, S) lattice.

Infeasible alignments (fewer frames than labels plus repeats) give loss 0 and gradient 0
(`zero_infinity`), never NaN; empty targets give -sum_t log p(blank).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lcasr_jax.kernels import ctc_xla
from lcasr_jax.model.config import BLANK_ID


def extended_labels(labels: jax.Array, label_lengths: jax.Array, blank_id: int):
    """Extended states for (batch, L) labels.

    Returns:
      ext: (batch, 2L+1) int32 class of each state (blank at even states).
      skip: (batch, 2L+1) bool, state s may be entered from s-2 (label differs from the last).
      required: (batch,) int32 frames an alignment needs (labels + repeated neighbours).
    """
    batch, max_labels = labels.shape
    n_states = 2 * max_labels + 1
    labels = labels.astype(jnp.int32)
    label_lengths = label_lengths.astype(jnp.int32)
    ext = jnp.full((batch, n_states), blank_id, jnp.int32)
    ext = ext.at[:, 1::2].set(labels)
    skip = ctc_xla.skip_states(ext)
    in_range = jnp.arange(max_labels)[None] < label_lengths[:, None]
    repeats = jnp.sum((labels[:, 1:] == labels[:, :-1]) & in_range[:, 1:], axis=1)
    required = label_lengths + repeats
    return ext, skip, required


def ctc_loss(
    logits: jax.Array,
    logit_lengths: jax.Array,
    labels: jax.Array,
    label_lengths: jax.Array,
    *,
    blank_id: int = BLANK_ID,
    implementation: str = "auto",
) -> jax.Array:
    """Per-sequence CTC negative log-likelihood.

    Args:
      logits: (batch, frames, classes) raw scores, any float dtype; log_softmax is applied
        here in float32 (the Pallas kernel folds it into its reads of the logits).
      logit_lengths: (batch,) int32 valid frames.
      labels: (batch, max_labels) int32, padded beyond label_lengths.
      label_lengths: (batch,) int32 valid labels.
      blank_id: class index of the CTC blank.
      implementation: 'auto' (Pallas on GPU, else XLA), 'xla', 'pallas_gpu' (Triton) or
        'pallas_interpret' (the same kernels in interpret mode, for CPU tests).

    Returns:
      (batch,) float32 loss; 0 (with zero gradient) where no alignment exists.
    """
    if logits.ndim != 3 or labels.ndim != 2:
        raise ValueError(f"ctc.py: logits must be (batch, frames, classes) and labels "
                         f"(batch, max_labels), got {logits.shape} and {labels.shape}")
    batch, n_frames, n_classes = logits.shape
    if implementation == "auto":  # benchmarks/RESULTS.md: Pallas wins at every length
        small = n_frames * n_classes < 2**31  # the kernel's offsets are int32
        implementation = "pallas_gpu" if jax.default_backend() == "gpu" and small else "xla"
    frames = jnp.clip(logit_lengths.astype(jnp.int32), 0, n_frames)
    label_lengths = jnp.clip(label_lengths.astype(jnp.int32), 0, labels.shape[1])
    # Padding may hold anything (-1, ids >= classes): make every gathered column valid.
    in_range = jnp.arange(labels.shape[1])[None] < label_lengths[:, None]
    labels = jnp.where(in_range, jnp.clip(labels.astype(jnp.int32), 0, n_classes - 1), blank_id)
    ext, skip, required = extended_labels(labels, label_lengths, blank_id)
    feasible = required <= frames
    if implementation == "xla":
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        nll = ctc_xla.ctc_nll(log_probs, ext, skip, label_lengths, frames)
    elif implementation in ("pallas_gpu", "pallas_interpret"):
        from lcasr_jax.kernels import ctc_pallas

        nll = ctc_pallas.ctc_nll(logits, labels, label_lengths, frames,  # log_softmax inside
                                 blank_id=blank_id,
                                 interpret=implementation == "pallas_interpret")
    else:
        raise ValueError(f"ctc.py: unknown implementation {implementation!r}; "
                         "choose from 'auto', 'xla', 'pallas_gpu', 'pallas_interpret'")
    # Where the alignment is infeasible the cotangent is cut here, so the gradient is 0.
    return jnp.where(feasible, nll, 0.0)
