"""Initial values of the weights of fresh models: this project's or torch's defaults.

'lecun' (this project's default): kernels lecun_normal (flax's fan-in convention), biases
zero. 'torch': what the original's fresh model gets, because it never initialises its
layers itself (its `ConvSubsampling.reset_parameters` is never called): nn.Linear and
nn.Conv1d/2d's `kaiming_uniform_(a=sqrt(5))`, i.e. weights and biases uniform in
±1/sqrt(fan_in), fan_in = input features x kernel taps / groups (a depthwise conv's is its
taps alone). Norm scales start at one and shifts at zero under both; the learnable Fourier
frequencies N(0, 1) and rotary frequencies are the same under both.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

PARAM_INITS = ("lecun", "torch")
Initializer = Callable[..., jax.Array]


def torch_uniform(fan_in: int) -> Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch's default for weights and biases alike."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def kernel_init(scheme: str, fan_in: int, axes: tuple[str | None, ...]) -> Initializer:
    """A kernel's initializer under `scheme`, with logical axis names `axes`; `fan_in` is
    torch's (used by 'torch' only)."""
    init = torch_uniform(fan_in) if scheme == "torch" else nn.initializers.lecun_normal()
    return nn.with_logical_partitioning(init, axes)


def bias_init(scheme: str, fan_in: int, axes: tuple[str | None, ...]) -> Initializer:
    """A bias's initializer under `scheme` (zeros, or torch's U(±1/sqrt(fan_in)) of its
    layer's weight fan_in)."""
    init = torch_uniform(fan_in) if scheme == "torch" else nn.initializers.zeros
    return nn.with_logical_partitioning(init, axes)
