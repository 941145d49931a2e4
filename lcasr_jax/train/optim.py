"""Optimizer from config: MADGRAD (paper), Adam or AdamW, plus torch-style gradient clipping.

The learning rate is an argument, so the jitted step can take it as a traced scalar from the
host-side schedule; optimizer state never depends on it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lcasr_jax.train.madgrad import madgrad


def clip_grad_norm(grads: Any, max_norm: float) -> tuple[Any, jax.Array]:
    """torch.nn.utils.clip_grad_norm_: g * min(1, max_norm / (||g|| + 1e-6)); off if <= 0.

    Returns the clipped gradients and the global norm before clipping.
    """
    norm = optax.tree.norm(grads)
    if max_norm <= 0:
        return grads, norm
    coef = jnp.minimum(1.0, max_norm / (norm + 1e-6))
    return jax.tree.map(lambda g: (g * coef).astype(g.dtype), grads), norm


def _madgrad(c: Any, learning_rate) -> optax.GradientTransformation:
    return madgrad(learning_rate, momentum=float(c.momentum), weight_decay=float(c.weight_decay),
                   eps=float(c.eps), decouple_decay=bool(c.decouple_decay))


def _adam(c: Any, learning_rate) -> optax.GradientTransformation:
    """torch Adam: L2 weight decay added to the gradient."""
    wd = float(c.weight_decay)
    return optax.chain(optax.add_decayed_weights(wd) if wd else optax.identity(),
                       optax.adam(learning_rate, b1=float(c.b1), b2=float(c.b2), eps=float(c.eps)))


def _adamw(c: Any, learning_rate) -> optax.GradientTransformation:
    return optax.adamw(learning_rate, b1=float(c.b1), b2=float(c.b2), eps=float(c.eps),
                       weight_decay=float(c.weight_decay))


# optim.name -> builder(optim_cfg, learning_rate)
OPTIMIZERS = {"madgrad": _madgrad, "adam": _adam, "adamw": _adamw}


def make_optimizer(optim_cfg: Any,
                   learning_rate: float | jax.Array) -> optax.GradientTransformation:
    """`optim_cfg`: name (a key of `OPTIMIZERS`), momentum, weight_decay, eps,
    decouple_decay (madgrad), b1, b2 (adam[w])."""
    name = optim_cfg.name
    if name not in OPTIMIZERS:
        raise ValueError(f"optim.name={name!r} is not supported ({', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](optim_cfg, learning_rate)
