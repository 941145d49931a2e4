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


def make_optimizer(optim_cfg: Any,
                   learning_rate: float | jax.Array) -> optax.GradientTransformation:
    """`optim_cfg`: name ('madgrad' | 'adam' | 'adamw'), momentum, weight_decay, eps,
    decouple_decay (madgrad), b1, b2 (adam[w])."""
    name = optim_cfg.name
    if name not in ("madgrad", "adam", "adamw"):
        raise ValueError(f"optim.name={name!r} is not supported (madgrad, adam, adamw)")
    wd, eps = float(optim_cfg.weight_decay), float(optim_cfg.eps)
    if name == "madgrad":
        return madgrad(learning_rate, momentum=float(optim_cfg.momentum), weight_decay=wd,
                       eps=eps, decouple_decay=bool(optim_cfg.decouple_decay))
    b1, b2 = float(optim_cfg.b1), float(optim_cfg.b2)
    if name == "adam":  # torch Adam: L2 weight decay added to the gradient
        return optax.chain(optax.add_decayed_weights(wd) if wd else optax.identity(),
                           optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))
    return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=wd)
