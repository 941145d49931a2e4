"""Adam/AdamW from config and torch-style clipping against float64 numpy references."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from lcasr_jax.train.optim import clip_grad_norm, make_optimizer


def reference_adam(p, grads, lr, b1, b2, eps, wd, decoupled):
    """torch.optim.Adam (L2 decay in the gradient) / AdamW (decoupled decay), float64."""
    p = p.astype(np.float64).copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("name,wd", [("adam", 0.0), ("adam", 0.05), ("adamw", 0.05)])
def test_adam_variants_match_reference(name, wd):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(4)]
    cfg = ml_collections.ConfigDict(dict(name=name, weight_decay=wd, b1=0.9, b2=0.999,
                                         eps=1e-8))
    tx = make_optimizer(cfg, 1e-2)
    params, state = {"w": jnp.asarray(p0)}, None
    state = tx.init(params)
    for g in grads:
        upd, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, upd)
    want = reference_adam(p0, grads, 1e-2, 0.9, 0.999, 1e-8, wd, name == "adamw")
    np.testing.assert_allclose(np.asarray(params["w"]), want, rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_like_torch():
    g = {"a": jnp.asarray([3.0, 0.0]), "b": jnp.asarray([[4.0]])}  # global norm 5
    clipped, norm = clip_grad_norm(g, 0.8)
    assert float(norm) == pytest.approx(5.0)
    coef = 0.8 / (5.0 + 1e-6)
    np.testing.assert_allclose(np.asarray(clipped["a"]), [3 * coef, 0.0], rtol=1e-6)
    same, _ = clip_grad_norm(g, 10.0)  # below the threshold: untouched
    np.testing.assert_array_equal(np.asarray(same["b"]), [[4.0]])
    off, _ = clip_grad_norm(g, -1)  # clip_value <= 0 disables clipping (as the original)
    np.testing.assert_array_equal(np.asarray(off["a"]), [3.0, 0.0])


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="sgd"):
        make_optimizer(ml_collections.ConfigDict(dict(name="sgd")), 1e-3)
