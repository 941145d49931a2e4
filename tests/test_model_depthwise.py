"""Both depthwise-conv implementations and the subsampling's matmul convolution against
float64 numpy convolutions; which implementation 'auto' picks where."""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference
import pytest

from lcasr_jax.model.depthwise import DepthwiseConv, resolve_impl
from lcasr_jax.model.subsampling import PatchConv


def numpy_depthwise(x, kernel, bias, strides, padding):
    """float64 reference: out[b, o..., c] = bias[c] + sum_taps w[taps, c] x[b, s*o + taps, c]."""
    x = np.pad(x.astype(np.float64), ((0, 0), *padding, (0, 0)))
    window = kernel.shape[:-2]
    out = [(x.shape[1 + i] - k) // s + 1
           for i, (k, s) in enumerate(zip(window, strides, strict=True))]
    y = np.zeros((x.shape[0], *out, x.shape[-1])) + bias
    for o in itertools.product(*(range(n) for n in out)):
        for taps in itertools.product(*(range(k) for k in window)):
            pos = tuple(s * i + d for s, i, d in zip(strides, o, taps, strict=True))
            y[(slice(None), *o)] += x[(slice(None), *pos)] * kernel[(*taps, 0)]
    return y


CASES = [  # (input shape, window, strides, padding): the conformer's 1-D 'same' conv and the
    # subsampling's 3x3 stride-2 conv, odd and even sizes
    ((2, 37, 6), (9,), (1,), ((4, 4),)),
    ((1, 40, 6), (9,), (1,), ((4, 4),)),
    ((2, 13, 10, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((1, 12, 9, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),
]


@pytest.mark.parametrize("impl", ["conv", "shifts"])
@pytest.mark.parametrize("shape,window,strides,padding", CASES)
def test_depthwise_matches_float64(impl, shape, window, strides, padding):
    rng = np.random.default_rng(len(shape) * 10 + shape[1])
    x = rng.normal(size=shape).astype(np.float32)
    layer = DepthwiseConv(shape[-1], window, strides, padding, jnp.float32, impl)
    variables = layer.init(jax.random.PRNGKey(0), jnp.asarray(x))
    params = jax.tree.map(lambda p: p + rng.normal(size=p.shape).astype(np.float32) * 0.1,
                          jax.device_get(variables["params"]))
    kernel, bias = np.asarray(params["kernel"].unbox()), np.asarray(params["bias"].unbox())
    want = numpy_depthwise(x, kernel, bias, strides, padding)
    got = layer.apply({"params": params}, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    # bf16 compute: within the rounding of bf16 inputs, weights and output
    got16 = layer.clone(dtype=jnp.bfloat16).apply({"params": params}, jnp.asarray(x))
    assert got16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got16, np.float32), want, rtol=3e-2, atol=3e-2)


def test_unknown_implementation_fails_in_one_line():
    layer = DepthwiseConv(4, (3,), (1,), ((1, 1),), depthwise_impl="fft")
    with pytest.raises(ValueError, match="depthwise_impl='fft': choose one of auto, conv"):
        layer.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 4)))


@pytest.mark.parametrize("shape,window,stride", [
    ((2, 13, 10, 1), (3, 3), 2),  # the subsampling's first conv, odd time
    ((1, 12, 9, 1), (3, 3), 2),   # even time, odd frequency
    ((2, 7, 5, 4), (1, 1), 1),    # a pointwise conv
    ((1, 9, 8, 3), (3, 3), 1),
])
def test_patch_conv_matches_float64_torch_conv(shape, window, stride):
    """PatchConv (taps stacked, one matmul) = torch Conv2d with padding (k - 1) // 2."""
    rng = np.random.default_rng(shape[1] * 7 + shape[-1])
    x = rng.normal(size=shape).astype(np.float32)
    layer = PatchConv(5, window, stride)
    variables = layer.init(jax.random.PRNGKey(1), jnp.asarray(x))
    params = jax.tree.map(lambda p: p + rng.normal(size=p.shape).astype(np.float32) * 0.1,
                          nn.unbox(jax.device_get(variables["params"])))
    torch_weight = np.transpose(params["kernel"], (3, 2, 0, 1)).astype(np.float64)
    want = numpy_reference._conv2d(np.transpose(x, (0, 3, 1, 2)).astype(np.float64),
                                   torch_weight, params["bias"].astype(np.float64), stride,
                                   (window[0] - 1) // 2, 1)
    want = np.transpose(want, (0, 2, 3, 1))
    got = layer.apply({"params": params}, jnp.asarray(x))
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    got16 = layer.clone(dtype=jnp.bfloat16).apply({"params": params}, jnp.asarray(x))
    assert got16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got16, np.float32), want, rtol=3e-2, atol=5e-2)


@pytest.mark.parametrize("backend,strides,want", [
    ("cpu", (1,), "shifts"), ("cpu", (2, 2), "shifts"),
    ("gpu", (1,), "shifts"), ("gpu", (2, 2), "conv"), ("tpu", (2, 2), "shifts"),
])
def test_auto_picks_the_measured_faster_implementation(monkeypatch, backend, strides, want):
    assert resolve_impl("auto", backend, strides) == want
    assert resolve_impl("conv", backend, strides) == "conv"
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert resolve_impl("auto", None, strides) == want  # the default platform


def test_shifts_backward_keeps_only_the_input():
    """The summed-slices conv saves its (bf16) input for the backward, not a float32 slice
    per tap."""
    from jax._src.ad_checkpoint import saved_residuals

    x = jnp.ones((1, 64, 16), jnp.bfloat16)
    layer = DepthwiseConv(16, (9,), (1,), ((4, 4),), jnp.bfloat16, "shifts")
    variables = layer.init(jax.random.PRNGKey(0), x)
    found = saved_residuals(lambda v, x: jnp.sum(layer.apply(v, x).astype(jnp.float32)),
                            variables, x)
    kept = sum(np.prod(aval.shape) * aval.dtype.itemsize for aval, _ in found)
    assert kept <= x.size * 2 + 16 * 10 * 4 * 2, [(a.str_short(), o) for a, o in found]
