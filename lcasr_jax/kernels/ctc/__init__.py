"""Exact CTC loss for long sequences, dispatching to an XLA or a Pallas (Triton GPU) backend.

Both backends work on the extended label sequence (blank, l1, blank, l2, ..., blank) of S =
2 * max_labels + 1 states, gather only those columns of the log-probabilities per time step,
and run the alpha recursion in log space on a state kept normalised (max subtracted, offset
summed in double-float), so float32 rounding stays at the scale of one frame rather than of
the whole log-likelihood. The gradient comes from the beta recursion (custom VJP); memory is
O(frames * classes) for the gradient plus alpha checkpoints (every ~sqrt(frames) frames for
XLA; every tile of the Pallas wavefront), never the (frames, S) lattice. Both run each
sequence as two rows meeting in the middle (halves.py).

Files: numerics.py (log 0, double-float sums, extended states: shared), halves.py (the
half-split plan: shared), xla.py (the scan), pallas_gpu.py + tiles.py + lanes.py (the
wavefront, its per-tile code and its rows as lanes).

Infeasible alignments (fewer frames than labels plus repeats) give loss 0 and gradient 0
(`zero_infinity`), never NaN; empty targets give -sum_t log p(blank).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lcasr_jax.kernels.ctc import xla
from lcasr_jax.kernels.ctc.numerics import required_frames


def ctc_loss(
    logits: jax.Array,
    logit_lengths: jax.Array,
    labels: jax.Array,
    label_lengths: jax.Array,
    *,
    blank_id: int,
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
        raise ValueError(f"kernels/ctc: logits must be (batch, frames, classes) and labels "
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
    feasible = required_frames(labels, label_lengths) <= frames
    if implementation == "xla":
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        nll = xla.ctc_nll(log_probs, labels, label_lengths, frames, blank_id=blank_id)
    elif implementation in ("pallas_gpu", "pallas_interpret"):
        from lcasr_jax.kernels.ctc import pallas_gpu

        nll = pallas_gpu.ctc_nll(logits, labels, label_lengths, frames,  # log_softmax inside
                                 blank_id=blank_id,
                                 interpret=implementation == "pallas_interpret")
    else:
        raise ValueError(f"kernels/ctc: unknown implementation {implementation!r}; "
                         "choose from 'auto', 'xla', 'pallas_gpu', 'pallas_interpret'")
    # Where the alignment is infeasible the cotangent is cut here, so the gradient is 0.
    return jnp.where(feasible, nll, 0.0)
