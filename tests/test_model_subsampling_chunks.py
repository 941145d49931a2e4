"""The subsampling computed in time chunks with halos equals the unchunked one: outputs and
gradients (float64), masked and unmasked (the original's unmasked spectrogram padding)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.model import ModelConfig, SCConformerXL
from lcasr_jax.model.runtime import Runtime
from lcasr_jax.model.subsampling import DepthwiseStridingSubsampling, chunked_subsampling

CFG = ModelConfig(n_layers=1, d_model=16, n_heads=2, head_dim=8, subsampling_conv_channels=4,
                  vocab_size=30, self_conditioning=False)


@pytest.fixture(scope="module")
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _inputs(frames=203):
    rng = np.random.default_rng(0)
    spec = jnp.asarray(rng.normal(size=(2, CFG.feat_in, frames)))
    return spec, jnp.array([frames, frames - 61])


def _float64(variables):
    return jax.tree.map(lambda a: a.astype(jnp.float64), nn.meta.unbox(variables))


class _Subsampling(nn.Module):
    """The subsampling alone, chunked (`chunk` > 0) or not; (batch, frames, feat_in)."""

    chunk: int
    mask: bool

    @nn.compact
    def __call__(self, spec, lengths):
        # 'conv': XLA's conv in float64 ('shifts' accumulates in float32 by design)
        module = DepthwiseStridingSubsampling(CFG, Runtime(jnp.float64, depthwise_impl="conv"),
                                              name="subsampling")
        lengths = lengths if self.mask else None
        if self.chunk:
            return chunked_subsampling(module, spec, lengths, self.chunk, remat=True)
        return module(spec, lengths)


@pytest.mark.parametrize("mask", [False, True], ids=["unmasked", "masked"])
def test_chunked_subsampling_and_gradients_equal_unchunked(x64, mask):
    spec, lengths = _inputs()
    spec = jnp.swapaxes(spec, 1, 2)
    variables = _float64(_Subsampling(0, mask).init(jax.random.PRNGKey(0), spec[:, :64],
                                                   lengths))

    @functools.partial(jax.jit, static_argnums=0)
    def value_and_grad(module, params, spec):
        fn = lambda p, s: module.apply({"params": p}, s, lengths)
        out, vjp = jax.vjp(fn, params, spec)
        return out, vjp(jnp.sin(out))  # a cotangent that differs per token

    want = value_and_grad(_Subsampling(0, mask), variables["params"], spec)
    assert want[0].shape == (2, 26, CFG.d_model)
    for chunk in (16, 40):
        got = value_and_grad(_Subsampling(chunk, mask), variables["params"], spec)
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(want),
                                jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12,
                                       err_msg=f"chunk {chunk} {jax.tree_util.keystr(path)}")
    if not mask:  # the padding of row 1 does reach its valid outputs, as in the original
        other = spec.at[1, int(lengths[1]):].set(0)
        assert not np.allclose(value_and_grad(_Subsampling(16, mask), variables["params"],
                                              other)[0][1], want[0][1])


def test_model_with_chunked_subsampling_equals_unchunked(x64):
    """SCConformerXL takes the chunked path past `subsampling_chunk_frames` (remat 'full':
    each chunk recomputed in the backward): same loss gradients."""
    spec, lengths = _inputs()
    model = SCConformerXL(CFG, dtype=jnp.float64, depthwise_impl="conv", remat="full",
                          subsampling_chunk_frames=0)
    variables = _float64(model.init(jax.random.PRNGKey(0), spec[:, :, :64]))

    @functools.partial(jax.jit, static_argnums=0)
    def grad(model, params):
        def loss(params):
            out = model.apply({**variables, "params": params}, spec, lengths,
                              return_logits=True)
            return jnp.sum(jnp.sin(out["final_posteriors"]))
        return jax.grad(loss)(params)

    want = grad(model, variables["params"])
    got = grad(model.clone(subsampling_chunk_frames=24), variables["params"])
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got),
                            strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12,
                                   err_msg=jax.tree_util.keystr(path))


def test_chunk_frames_must_be_a_multiple_of_the_factor():
    model = SCConformerXL(CFG, subsampling_chunk_frames=20)
    spec = jax.ShapeDtypeStruct((1, CFG.feat_in, 64), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), spec)
    with pytest.raises(ValueError, match="subsampling_chunk_frames=20"):
        jax.eval_shape(model.apply, variables, spec)
