"""Attention backends vs a float64 numpy reference: padding, windows, odd lengths, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.kernels import attention
from lcasr_jax.kernels.attention.pallas_gpu import BlockSizes, pallas_attention

SMALL_BLOCKS = BlockSizes(fwd=(32, 16), dkdv=(16, 32), dq=(32, 16))


def ref_attention(q, k, v, lengths, window, do):
    """float64 forward output and gradients of sum(out * do) w.r.t. q, k, v."""
    q, k, v, do = (np.asarray(x, np.float64) for x in (q, k, v, do))
    batch, time, heads, dim = q.shape
    scale = dim ** -0.5
    i, j = np.arange(time)[:, None], np.arange(time)[None, :]
    out, dq, dk, dv = (np.zeros_like(q) for _ in range(4))
    for b in range(batch):
        ok = (i < lengths[b]) & (j < lengths[b])
        if window[0] >= 0:
            ok &= j >= i - window[0]
        if window[1] >= 0:
            ok &= j <= i + window[1]
        s = np.einsum("qhd,khd->hqk", q[b], k[b]) * scale
        s = np.where(ok[None], s, -np.inf)
        m = np.max(s, axis=-1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        p = np.exp(s - m)
        p = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)  # rows with no key stay zero
        out[b] = np.einsum("hqk,khd->qhd", p, v[b])
        dp = np.einsum("qhd,khd->hqk", do[b], v[b])
        ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
        dv[b] = np.einsum("hqk,qhd->khd", p, do[b])
        dq[b] = np.einsum("hqk,khd->qhd", ds, k[b]) * scale
        dk[b] = np.einsum("hqk,qhd->khd", ds, q[b]) * scale
    return out, (dq, dk, dv)


def _inputs(seed, batch, time, heads, dim, lengths):
    rng = np.random.default_rng(seed)
    q, k, v, do = (rng.normal(size=(batch, time, heads, dim)).astype(np.float32)
                   for _ in range(4))
    return q, k, v, do, np.asarray(lengths, np.int32)


def _run(fn, q, k, v, do, lengths, window):
    lengths = jnp.asarray(lengths)

    def loss(q, k, v):
        out = fn(q, k, v, lengths, window=window)
        return jnp.sum(out.astype(jnp.float32) * do), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
        jnp.asarray(q), jnp.asarray(k), jnp.asarray(v))
    return np.asarray(out, np.float64), [np.asarray(g, np.float64) for g in grads]


def _assert_close(got, want, tol):
    err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
    assert np.all(np.isfinite(got)) and err < tol, err


WINDOWS = [(-1, -1), (13, 4), (0, 21)]


@pytest.mark.parametrize("window", WINDOWS)
def test_xla_backend(window):
    q, k, v, do, lengths = _inputs(0, 2, 45, 2, 8, [45, 19])
    fn = lambda *a, window: attention.dot_product_attention(*a, window=window,
                                                            implementation="xla")
    out, grads = _run(fn, q, k, v, do, lengths, window)
    ref_out, ref_grads = ref_attention(q, k, v, lengths, window, do)
    _assert_close(out, ref_out, 1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        _assert_close(g, r, 1e-5)


@pytest.mark.parametrize("window", WINDOWS + [(-1, 5)])
def test_pallas_interpret_matches_reference(window):
    """Odd lengths (not block multiples), a padded item and a fully padded one."""
    q, k, v, do, lengths = _inputs(1, 3, 75, 2, 16, [75, 40, 0])
    fn = lambda *a, window: pallas_attention(*a, window=window, interpret=True,
                                             sizes=SMALL_BLOCKS)
    out, grads = _run(fn, q, k, v, do, lengths, window)
    ref_out, ref_grads = ref_attention(q, k, v, lengths, window, do)
    _assert_close(out, ref_out, 1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        _assert_close(g, r, 1e-5)
    assert np.all(out[1, 40:] == 0) and np.all(out[2] == 0)
    assert np.all(grads[0][1, 40:] == 0) and np.all(grads[1][1, 40:] == 0)


def test_pallas_block_ranges_skip_out_of_window_blocks():
    """Loop bounds: a ±16 window over 16-wide blocks visits at most 4 key blocks."""
    from lcasr_jax.kernels.attention.pallas_gpu import _block_range

    for r0 in range(0, 256, 32):
        lo, flo, fhi, hi = (int(x) for x in _block_range(jnp.int32(r0), 32, 16,
                                                          jnp.int32(200), 16, 16))
        keys_needed = set(range(max(r0 - 16, 0), min(r0 + 31 + 17, 200)))
        blocks_needed = {c // 16 for c in keys_needed}
        assert set(range(lo, hi)) == blocks_needed
        assert lo <= flo <= fhi <= hi
        for blk in range(flo, fhi):  # unmasked blocks: every (row, key) pair is allowed
            assert all(r - 16 <= c <= r + 16 and c < 200
                       for r in range(r0, r0 + 32) for c in range(16 * blk, 16 * blk + 16))


def test_pallas_bf16():
    q, k, v, do, lengths = _inputs(2, 1, 64, 2, 32, [50])
    bf = lambda x: jnp.asarray(x, jnp.bfloat16)
    fn = lambda q, k, v, lens, window: pallas_attention(
        bf(q), bf(k), bf(v), lens, window=window, interpret=True, sizes=SMALL_BLOCKS)
    out, grads = _run(fn, q, k, v, do, lengths, (8, 8))
    ref_out, ref_grads = ref_attention(q, k, v, lengths, (8, 8), do)
    _assert_close(out, ref_out, 1e-2)
    for g, r in zip(grads, ref_grads, strict=True):
        _assert_close(g, r, 2e-2)


def test_splash_interpret_forward():
    q, k, v, do, lengths = _inputs(3, 1, 200, 1, 128, [170])
    out = attention.dot_product_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v),
                                          jnp.asarray(lengths), window=(40, 20),
                                          implementation="splash")
    ref_out, _ = ref_attention(q, k, v, lengths, (40, 20), do)
    _assert_close(np.asarray(out, np.float64), ref_out, 1e-4)
    assert np.all(np.asarray(out)[0, 170:] == 0)


def test_dispatch(monkeypatch):
    assert attention.resolve_impl("auto") == "xla"  # CPU
    assert set(attention.IMPLS) == {"auto", "xla", "cudnn", "pallas_gpu", "splash"}
    with pytest.raises(ValueError, match="unknown attention implementation"):
        attention.resolve_impl("nope")
    resolve = attention.resolve_impl
    assert resolve("auto", "gpu", (-1, -1), jnp.bfloat16) == "cudnn"
    assert resolve("auto", "gpu", (512, 512), jnp.bfloat16) == "pallas_gpu"
    assert resolve("auto", "gpu", (-1, -1), jnp.float32) == "xla"
    assert resolve("auto", "tpu", (128, 128), jnp.float32) == "splash"
    assert resolve("auto", "cpu", (128, 128), jnp.bfloat16) == "xla"
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    assert resolve("auto", None, (128, 128), jnp.float32) == "splash"  # the default platform


def test_cudnn_falls_back_in_the_resolver_only():
    """cuDNN has no two-sided window and needs 16-bit inputs: the resolver, not the cuDNN
    wrapper, sends those calls to Pallas and XLA; off a GPU 'cudnn' is an error."""
    resolve = attention.resolve_impl
    assert resolve("cudnn", "gpu", (-1, -1), jnp.bfloat16) == "cudnn"
    assert resolve("cudnn", "gpu", (5, 5), jnp.bfloat16) == "pallas_gpu"
    assert resolve("cudnn", "gpu", (-1, -1), jnp.float32) == "xla"
    assert resolve("cudnn", "gpu", (5, 5), jnp.float32) == "xla"
    with pytest.raises(ValueError, match="only on a GPU"):
        resolve("cudnn", "cpu")
    from lcasr_jax.kernels.attention.cudnn import cudnn_attention

    x = jnp.zeros((1, 8, 1, 16), jnp.float32)
    with pytest.raises(ValueError, match="16-bit"):  # never a silent hand-over inside
        cudnn_attention(x, x, x)


def test_cudnn_never_sees_a_zero_length_row(monkeypatch):
    """cuDNN's backward turns a zero-length row into NaN gradients (it did on an H100 for
    every padded row of the original's lockstep tail steps). The wrapper hands cuDNN at
    least one key per row and zeroes such a row's output, so its gradient is exactly zero
    and the other rows match the float64 reference. (The cuDNN call is replaced by XLA's
    implementation of the same API, which records the lengths cuDNN would get.)"""
    from lcasr_jax.kernels.attention import cudnn

    seen = []
    real = jax.nn.dot_product_attention

    def recording(*args, implementation=None, **kw):
        seen.append((np.asarray(kw["query_seq_lengths"]), np.asarray(kw["key_value_seq_lengths"])))
        return real(*args, implementation="xla", **kw)

    monkeypatch.setattr(cudnn.jax.nn, "dot_product_attention", recording)
    rng = np.random.default_rng(0)
    q, k, v, do = (rng.standard_normal((3, 8, 2, 16)).astype(np.float32) for _ in range(4))
    lengths = np.array([8, 0, 5])

    def loss(q, k, v):
        out = cudnn.cudnn_attention(q, k, v, jnp.asarray(lengths))
        return jnp.sum(out.astype(jnp.float32) * do), out

    bf = [jnp.asarray(x, jnp.bfloat16) for x in (q, k, v)]
    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(*bf)
    assert all(ql.min() >= 1 and kl.min() >= 1 for ql, kl in seen)
    ref_out, ref_grads = ref_attention(*(np.asarray(x, np.float32) for x in bf), lengths,
                                       (-1, -1), do)
    assert np.all(np.asarray(out[1], np.float32) == 0)
    np.testing.assert_allclose(np.asarray(out, np.float32), ref_out, atol=0.05)
    for g, ref in zip(grads, ref_grads, strict=True):
        g = np.asarray(g, np.float32)
        assert np.isfinite(g).all() and np.all(g[1] == 0)
        np.testing.assert_allclose(g, ref, atol=0.1)
