"""The model's one attention entry point, dispatching to a selectable backend (one module
per backend in this package: xla, cudnn, pallas_gpu, splash).

Every backend computes, per batch item and head,

    out[i] = sum_j softmax_j(scale * q[i] . k[j] + mask[i, j]) v[j]

over keys j with j < length (key padding) and i - left <= j <= i + right (local window,
-1 meaning unbounded). Query rows i >= length are padding: their output is exactly zero
(forward and backward), never NaN.

Under `lcasr_jax.sharding.bind(mesh)` the opaque backends (all but 'xla': XLA
cannot partition a cuDNN or Pallas call, it would gather the batch onto every device) run
per batch shard.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from lcasr_jax.kernels.attention import cudnn, pallas_gpu, splash, xla
from lcasr_jax.kernels.shard import per_batch_shard

Span = tuple[int, int]  # (left, right) attention span in tokens, -1 unbounded
Backend = Callable[..., jax.Array]

# Each backend: fn(q, k, v, lengths, *, window, scale), selectable as implementation=name.
_BACKENDS: dict[str, Backend] = {
    "xla": xla.xla_attention,
    "pallas_gpu": pallas_gpu.pallas_attention,
    "splash": splash.splash_attention,
}
if jax.default_backend() == "gpu":  # cuDNN exists only there
    _BACKENDS["cudnn"] = cudnn.cudnn_attention


def available_backends() -> tuple[str, ...]:
    return tuple(sorted(_BACKENDS))


def resolve_implementation(
    implementation: str, window: Span = (-1, -1), dtype=jnp.bfloat16
) -> str:
    """Map 'auto' to the fastest correct backend for the default platform.

    GPU (benchmarks/RESULTS.md, H100, bf16): cuDNN for full attention, our Pallas
    kernel for local windows (it skips out-of-window blocks; cuDNN cannot do them); float32
    inputs take the chunked XLA path (neither fused kernel was measured in float32).
    TPU: splash. Elsewhere: the chunked XLA reference.
    """
    if implementation != "auto":
        if implementation not in _BACKENDS:
            raise ValueError(
                f"kernels/attention: unknown attention implementation {implementation!r}; "
                f"choose from {('auto',) + available_backends()}")
        return implementation
    platform = jax.default_backend()
    if platform == "gpu" and jnp.dtype(dtype).itemsize == 2:
        if tuple(window) == (-1, -1) and "cudnn" in _BACKENDS:
            return "cudnn"
        return "pallas_gpu"
    if platform == "tpu" and "splash" in _BACKENDS:
        return "splash"
    return "xla"


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    lengths: jax.Array | None = None,
    *,
    window: Span = (-1, -1),
    scale: float | None = None,
    implementation: str = "auto",
) -> jax.Array:
    """Multi-head attention with key padding and an optional two-sided local window.

    Args:
      q, k, v: (batch, time, heads, head_dim).
      lengths: (batch,) int32 valid tokens per item, or None for all valid.
      window: (left, right) in tokens; -1 is unbounded.
      scale: logit scale, default 1/sqrt(head_dim).
      implementation: 'auto' or a registered backend name ('xla', 'pallas_gpu', 'cudnn',
        'splash').

    Returns:
      (batch, time, heads, head_dim) in q's dtype; zero on padded query rows.
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    name = resolve_implementation(implementation, window, q.dtype)
    backend = functools.partial(_BACKENDS[name], window=tuple(window), scale=scale)
    if name == "xla":  # XLA partitions it; other backends are opaque kernels
        return backend(q, k, v, lengths)
    if lengths is None:
        return per_batch_shard(backend, q, k, v)
    return per_batch_shard(backend, q, k, v, lengths)
