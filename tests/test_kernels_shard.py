"""Kernels under shard_map over the batch (8 fake CPU devices): same results as unsharded."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from lcasr_jax.kernels.attention import dot_product_attention
from lcasr_jax.kernels.ctc import ctc_loss
from lcasr_jax.kernels.shard import batch_sharded


def _mesh():
    devices = np.array(jax.devices()[:8]).reshape(4, 2, 1)
    return Mesh(devices, ("data", "fsdp", "seq"))


def test_attention_and_ctc_per_shard_match_unsharded():
    rng = np.random.default_rng(0)
    batch = 8
    q, k, v = (jnp.asarray(rng.normal(size=(batch, 24, 2, 8)), jnp.float32) for _ in range(3))
    lengths = jnp.asarray(rng.integers(1, 25, size=batch), jnp.int32)
    attn = lambda q, k, v, n: dot_product_attention(q, k, v, n, window=(3, 5),
                                                    implementation="xla")
    sharded = jax.jit(batch_sharded(attn, _mesh()))
    np.testing.assert_allclose(np.asarray(sharded(q, k, v, lengths)),
                               np.asarray(attn(q, k, v, lengths)), rtol=1e-6, atol=1e-6)

    logits = jnp.asarray(rng.normal(size=(batch, 20, 6)), jnp.float32)
    labels = jnp.asarray(rng.integers(1, 6, size=(batch, 4)), jnp.int32)
    frames = jnp.full((batch,), 20, jnp.int32)
    n_labels = jnp.asarray(rng.integers(0, 5, size=batch), jnp.int32)
    ctc = lambda x, f, y, n: ctc_loss(x, f, y, n, blank_id=0, implementation="xla")
    loss_fn = lambda f: (lambda x: f(x, frames, labels, n_labels).sum())
    sharded_ctc = batch_sharded(ctc, _mesh())
    g_sharded = jax.jit(jax.grad(loss_fn(sharded_ctc)))(logits)
    g_plain = jax.grad(loss_fn(ctc))(logits)
    np.testing.assert_allclose(np.asarray(sharded_ctc(logits, frames, labels, n_labels)),
                               np.asarray(ctc(logits, frames, labels, n_labels)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g_sharded), np.asarray(g_plain), rtol=1e-5, atol=1e-7)
