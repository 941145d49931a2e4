"""MADGRAD (Defazio & Jelassi, 2021) as an optax GradientTransformation.

Follows the update rule of the reference PyTorch optimizer used by lcasr (dense path):
with k the step counter and lr' = lr + eps (lr' = 0 when lr = 0),

    lamb  = lr' * sqrt(k + 1)
    g     = g + wd * p                      (coupled weight decay only)
    S    += lamb * g^2 ;  s += lamb * g      (dual averages)
    z     = x0 - s / (cbrt(S) + eps)
    p'    = (1 - c) p + c z, c = 1 - momentum   (p' = z when momentum = 0)
    p'   -= lr' * wd * p                     (decoupled weight decay only)

x0 is the initial parameter value (momentum > 0) or recomputed as p + s/(cbrt(S)+eps)
before the accumulation (momentum = 0). The optax update returned is p' - p, computed in
float32 whatever the parameter dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], jax.Array]


class MadgradState(NamedTuple):
    """count: (), int32 steps taken; grad_sum_sq, s: like params (f32); x0: like params or ()."""

    count: jax.Array
    grad_sum_sq: Any
    s: Any
    x0: Any


def _safe_rms(grad_sum_sq: jax.Array, eps: float) -> jax.Array:
    rms = jnp.cbrt(grad_sum_sq) + eps
    if eps == 0.0:
        rms = jnp.where(rms == 0.0, jnp.inf, rms)
    return rms


def madgrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    eps: float = 1e-6,
    decouple_decay: bool = False,
) -> optax.GradientTransformation:
    """MADGRAD; `learning_rate` is a scalar or a schedule of the step count."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"madgrad: momentum {momentum} must be in [0, 1)")
    if weight_decay < 0 or eps < 0:
        raise ValueError("madgrad: weight_decay and eps must be non-negative")

    def init_fn(params):
        f32 = lambda p: jnp.zeros(p.shape, jnp.float32)
        x0 = jax.tree.map(lambda p: jnp.array(p, jnp.float32), params) if momentum else ()
        return MadgradState(jnp.zeros((), jnp.int32), jax.tree.map(f32, params),
                            jax.tree.map(f32, params), x0)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("madgrad needs params: call tx.update(grads, state, params)")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        lr = jnp.asarray(lr, jnp.float32)
        lr = jnp.where(lr != 0.0, lr + eps, lr)
        lamb = lr * jnp.sqrt(state.count.astype(jnp.float32) + 1.0)
        ck = 1.0 - momentum

        def leaf(g, p, gss, s, x0):
            g, p = g.astype(jnp.float32), p.astype(jnp.float32)
            if weight_decay and not decouple_decay:
                g = g + weight_decay * p
            if not momentum:
                x0 = p + s / _safe_rms(gss, eps)
            gss = gss + lamb * g * g
            s = s + lamb * g
            z = x0 - s / _safe_rms(gss, eps)
            new_p = z if not momentum else p * (1.0 - ck) + z * ck
            if weight_decay and decouple_decay:
                new_p = new_p - lr * weight_decay * p
            return new_p - p, gss, s

        x0s = state.x0 if momentum else jax.tree.map(lambda _: None, params)
        out = jax.tree.map(leaf, updates, params, state.grad_sum_sq, state.s, x0s)
        treedef = jax.tree.structure(updates)
        flat = treedef.flatten_up_to(out)
        new_updates = treedef.unflatten(
            [u.astype(p.dtype) for (u, _, _), p in zip(flat, jax.tree.leaves(params), strict=True)])
        new_gss = treedef.unflatten([o[1] for o in flat])
        new_s = treedef.unflatten([o[2] for o in flat])
        count = optax.safe_increment(state.count)
        return new_updates, MadgradState(count, new_gss, new_s, state.x0)

    return optax.GradientTransformation(init_fn, update_fn)
