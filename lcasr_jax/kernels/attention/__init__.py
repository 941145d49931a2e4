"""The model's one attention entry point, dispatching to a backend of `BACKENDS` by name
(one module per backend in this package: xla, cudnn, pallas_gpu, splash); 'auto' and the
cuDNN fallbacks are `resolve_impl`'s choice per call.

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


def _xla(q, k, v, lengths, *, window, scale, interpret):
    return xla.xla_attention(q, k, v, lengths, window=window, scale=scale)


def _cudnn(q, k, v, lengths, *, window, scale, interpret):
    return cudnn.cudnn_attention(q, k, v, lengths, scale=scale)


def _pallas_gpu(q, k, v, lengths, *, window, scale, interpret):
    return pallas_gpu.pallas_attention(q, k, v, lengths, window=window, scale=scale,
                                       interpret=interpret)


def _splash(q, k, v, lengths, *, window, scale, interpret):
    return splash.splash_attention(q, k, v, lengths, window=window, scale=scale,
                                   interpret=interpret)


# name -> fn(q, k, v, lengths, *, window, scale, interpret) -> out; see the module docstring.
BACKENDS: dict[str, Callable[..., jax.Array]] = {
    "xla": _xla, "cudnn": _cudnn, "pallas_gpu": _pallas_gpu, "splash": _splash}
IMPLS = ("auto", *BACKENDS)


def resolve_impl(implementation: str, platform: str | None = None, window: Span = (-1, -1),
                 dtype=jnp.bfloat16) -> str:
    """The backend that runs a call with this `window` and input `dtype` on `platform`
    (default: jax's default backend).

    'auto' (benchmarks/RESULTS.md, H100, bf16): on GPU, cuDNN for full attention and our
    Pallas kernel for local windows (it skips out-of-window blocks); float32 inputs take the
    chunked XLA path (neither fused kernel was measured in float32). TPU: splash. Elsewhere:
    the chunked XLA reference.
    'cudnn' falls back, here and nowhere else, where cuDNN cannot run the call: a local
    window goes to 'pallas_gpu' (cuDNN has no two-sided window without a causal mask),
    float32 inputs to 'xla' (cuDNN needs 16-bit inputs); off a GPU it is an error.
    """
    if implementation not in IMPLS:
        raise ValueError(f"kernels/attention: unknown attention implementation "
                         f"{implementation!r}; choose from {', '.join(IMPLS)}")
    platform = platform or jax.default_backend()
    full, half = tuple(window) == (-1, -1), jnp.dtype(dtype).itemsize == 2
    if implementation == "auto":
        if platform == "gpu" and half:
            return "cudnn" if full else "pallas_gpu"
        return "splash" if platform == "tpu" else "xla"
    if implementation == "cudnn":
        if platform != "gpu":
            raise ValueError(f"kernels/attention: 'cudnn' runs only on a GPU (platform "
                             f"{platform!r}); use 'auto' or 'xla'")
        if not half:
            return "xla"
        if not full:
            return "pallas_gpu"
    return implementation


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    lengths: jax.Array | None = None,
    *,
    window: Span = (-1, -1),
    scale: float | None = None,
    implementation: str = "auto",
    interpret: bool | None = None,
) -> jax.Array:
    """Multi-head attention with key padding and an optional two-sided local window.

    Args:
      q, k, v: (batch, time, heads, head_dim).
      lengths: (batch,) int32 valid tokens per item, or None for all valid.
      window: (left, right) in tokens; -1 is unbounded.
      scale: logit scale, default 1/sqrt(head_dim).
      implementation: 'auto' or a name in `BACKENDS` ('xla', 'cudnn', 'pallas_gpu',
        'splash'), resolved per call by `resolve_impl`.
      interpret: run a Pallas backend in interpret mode; None: pallas_gpu unless the
        default backend is a GPU, splash unless lowering for TPU.

    Returns:
      (batch, time, heads, head_dim) in q's dtype; zero on padded query rows.
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    name = resolve_impl(implementation, None, window, q.dtype)
    backend = functools.partial(BACKENDS[name], window=tuple(window), scale=scale,
                                interpret=interpret)
    if name == "xla":  # XLA partitions it; other backends are opaque kernels
        return backend(q, k, v, lengths)
    if lengths is None:
        return per_batch_shard(backend, q, k, v)
    return per_batch_shard(backend, q, k, v, lengths)
