"""Exact CTC loss for long sequences, dispatching to a backend of `BACKENDS` by name: 'xla'
(a scan), 'pallas_gpu' (a Triton wavefront; `interpret=True` runs it anywhere) or 'optax'
(`optax.ctc_loss`, a reference); 'auto' is `resolve_impl`'s choice per platform.

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

Whatever the backend: infeasible alignments (fewer frames than labels plus repeats) give
loss 0 and gradient 0 (`zero_infinity`), never NaN; empty targets give -sum_t log p(blank).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

import lcasr_jax.kernels.ctc.pallas_gpu as pallas_gpu
import lcasr_jax.kernels.ctc.xla as xla
from lcasr_jax.kernels.ctc.numerics import required_frames
from lcasr_jax.kernels.ctc.tiles import Tuning


def _xla(logits, labels, label_lengths, frames, *, blank_id, interpret, tuning):
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return xla.ctc_nll(log_probs, labels, label_lengths, frames, blank_id=blank_id)


def _pallas_gpu(logits, labels, label_lengths, frames, *, blank_id, interpret, tuning):
    return pallas_gpu.ctc_nll(logits, labels, label_lengths, frames,  # log_softmax inside
                              blank_id=blank_id, interpret=interpret, tuning=tuning)


def _optax(logits, labels, label_lengths, frames, *, blank_id, interpret, tuning):
    frame_pad = jnp.arange(logits.shape[1])[None] >= frames[:, None]
    label_pad = jnp.arange(labels.shape[1])[None] >= label_lengths[:, None]
    return optax.ctc_loss(logits.astype(jnp.float32), frame_pad.astype(jnp.float32), labels,
                          label_pad.astype(jnp.float32), blank_id=blank_id)


# name -> fn(logits, labels, label_lengths, frames, *, blank_id, interpret, tuning) -> (batch,)
# NLL; labels valid everywhere (padding replaced), lengths clipped to the arrays.
BACKENDS: dict[str, Callable[..., jax.Array]] = {
    "xla": _xla, "pallas_gpu": _pallas_gpu, "optax": _optax}
IMPLS = ("auto", *BACKENDS)


def resolve_impl(implementation: str, platform: str | None = None, *, frames: int = 0,
                 classes: int = 0) -> str:
    """The backend that `implementation` names on `platform` (default: jax's default
    backend). 'auto': the Pallas wavefront on GPU (it wins at every length,
    benchmarks/RESULTS.md) unless frames x classes overflow its int32 offsets, else XLA."""
    if implementation not in IMPLS:
        raise ValueError(f"kernels/ctc: unknown implementation {implementation!r}; choose "
                         f"from {', '.join(repr(n) for n in IMPLS)}")
    if implementation != "auto":
        return implementation
    platform = platform or jax.default_backend()
    return "pallas_gpu" if platform == "gpu" and frames * classes < 2**31 else "xla"


def ctc_loss(
    logits: jax.Array,
    logit_lengths: jax.Array,
    labels: jax.Array,
    label_lengths: jax.Array,
    *,
    blank_id: int,
    implementation: str = "auto",
    interpret: bool = False,
    tuning: Tuning | None = None,
) -> jax.Array:
    """Per-sequence CTC negative log-likelihood.

    Args:
      logits: (batch, frames, classes) raw scores, any float dtype; log_softmax is applied
        here in float32 (the Pallas kernel folds it into its reads of the logits).
      logit_lengths: (batch,) int32 valid frames.
      labels: (batch, max_labels) int32, padded beyond label_lengths.
      label_lengths: (batch,) int32 valid labels.
      blank_id: class index of the CTC blank.
      implementation: 'auto' or a name in `BACKENDS` (`resolve_impl`).
      interpret: run a Pallas backend in interpret mode (any platform; CPU tests).
      tuning: the Pallas wavefront's tile and loop settings (`tiles.Tuning`; None: its
        defaults).

    Returns:
      (batch,) float32 loss; 0 (with zero gradient) where no alignment exists.
    """
    if logits.ndim != 3 or labels.ndim != 2:
        raise ValueError(f"kernels/ctc: logits must be (batch, frames, classes) and labels "
                         f"(batch, max_labels), got {logits.shape} and {labels.shape}")
    batch, n_frames, n_classes = logits.shape
    name = resolve_impl(implementation, frames=n_frames, classes=n_classes)
    frames = jnp.clip(logit_lengths.astype(jnp.int32), 0, n_frames)
    label_lengths = jnp.clip(label_lengths.astype(jnp.int32), 0, labels.shape[1])
    # Padding may hold anything (-1, ids >= classes): make every gathered column valid.
    in_range = jnp.arange(labels.shape[1])[None] < label_lengths[:, None]
    labels = jnp.where(in_range, jnp.clip(labels.astype(jnp.int32), 0, n_classes - 1), blank_id)
    feasible = required_frames(labels, label_lengths) <= frames
    nll = BACKENDS[name](logits, labels, label_lengths, frames, blank_id=blank_id,
                         interpret=interpret, tuning=tuning or Tuning())
    # Where the alignment is infeasible the cotangent is cut here, so the gradient is 0.
    return jnp.where(feasible, nll, 0.0)


__all__ = ["BACKENDS", "IMPLS", "Tuning", "ctc_loss", "resolve_impl"]
