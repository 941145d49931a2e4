"""Kernels under shard_map over the batch (8 fake CPU devices): same results as unsharded."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lcasr_jax import sharding
from lcasr_jax.kernels.attention import dot_product_attention
from lcasr_jax.kernels.ctc import ctc_loss
from lcasr_jax.kernels.shard import batch_sharded


def _mesh(shape=(4, 2, 1)):
    devices = np.array(jax.devices()[:8]).reshape(shape)
    return Mesh(devices, ("data", "fsdp", "seq"))


def batch_gathers(hlo: str, batch: int) -> list[str]:
    """Result shapes of the all-gathers in `hlo` whose leading dimension is the whole batch."""
    return [s for s in re.findall(r"= (\S+) all-gather\(", hlo)
            if re.match(rf"\w+\[{batch}[,\]]", s)]


def test_attention_and_ctc_per_shard_match_unsharded():
    rng = np.random.default_rng(0)
    batch = 8
    q, k, v = (jnp.asarray(rng.normal(size=(batch, 24, 2, 8)), jnp.float32) for _ in range(3))
    lengths = jnp.asarray(rng.integers(1, 25, size=batch), jnp.int32)
    attn = lambda q, k, v, n: dot_product_attention(q, k, v, n, window=(3, 5),
                                                    implementation="xla")
    sharded = jax.jit(batch_sharded(attn, _mesh()))
    np.testing.assert_allclose(np.asarray(sharded(q, k, v, lengths)),
                               np.asarray(jax.jit(attn)(q, k, v, lengths)), rtol=1e-6, atol=1e-6)

    logits = jnp.asarray(rng.normal(size=(batch, 20, 6)), jnp.float32)
    labels = jnp.asarray(rng.integers(1, 6, size=(batch, 4)), jnp.int32)
    frames = jnp.full((batch,), 20, jnp.int32)
    n_labels = jnp.asarray(rng.integers(0, 5, size=batch), jnp.int32)
    ctc = lambda x, f, y, n: ctc_loss(x, f, y, n, blank_id=0, implementation="xla")
    loss_fn = lambda f: (lambda x: f(x, frames, labels, n_labels).sum())
    sharded_ctc = batch_sharded(ctc, _mesh())
    g_sharded = jax.jit(jax.grad(loss_fn(sharded_ctc)))(logits)
    g_plain = jax.jit(jax.grad(loss_fn(ctc)))(logits)  # jitted: no op-by-op compiles
    np.testing.assert_allclose(np.asarray(jax.jit(sharded_ctc)(logits, frames, labels, n_labels)),
                               np.asarray(jax.jit(ctc)(logits, frames, labels, n_labels)),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g_sharded), np.asarray(g_plain), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(4, 2, 1), (2, 2, 2)], ids=["data4-fsdp2", "data2-fsdp2-seq2"])
def test_opaque_attention_runs_per_batch_shard_under_a_bound_mesh(shape):
    """The Pallas kernel (interpret mode on CPU) under sharding.bind(mesh): no gather of the
    batch in front of it (with 'seq' sharded, only the sequence is gathered), same values and
    grads."""
    mesh, rng = _mesh(shape), np.random.default_rng(1)
    q, k, v = (jnp.asarray(rng.normal(size=(8, 32, 2, 16)), jnp.float32) for _ in range(3))
    lengths = jnp.asarray(rng.integers(1, 33, size=8), jnp.int32)

    def loss(q, k, v, n):
        out = dot_product_attention(q, k, v, n, window=(3, 5), implementation="pallas_gpu")
        return (out * jnp.arange(16.0)).sum(), out

    grad = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)
    (_, want), want_g = jax.jit(grad)(q, k, v, lengths)

    def sharded(*args):
        with sharding.bind(mesh):
            return grad(*args)

    rows = NamedSharding(mesh, PartitionSpec(("data", "fsdp"), "seq"))
    args = (*(jax.device_put(x, rows) for x in (q, k, v)),
            jax.device_put(lengths, NamedSharding(mesh, PartitionSpec(("data", "fsdp")))))
    compiled = jax.jit(sharded).lower(*args).compile()
    assert batch_gathers(compiled.as_text(), 8) == []
    (_, got), got_g = compiled(*args)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    for a, b in zip(want_g, got_g, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
