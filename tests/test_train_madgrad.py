"""MADGRAD against a float64 numpy transcription of the reference update rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lcasr_jax.train.madgrad import madgrad


def reference_madgrad(params, grads_seq, lrs, momentum, weight_decay, eps, decouple):
    """Float64 numpy MADGRAD, one dense tensor, written from the paper's Algorithm + torch code."""
    p = params.astype(np.float64).copy()
    gss = np.zeros_like(p)
    s = np.zeros_like(p)
    x0 = p.copy()
    out = []
    for k, (g, lr) in enumerate(zip(grads_seq, lrs, strict=True)):
        g = g.astype(np.float64).copy()
        lr = lr + eps if lr != 0 else lr
        lamb = lr * np.sqrt(k + 1)
        ck = 1 - momentum
        if weight_decay and not decouple:
            g += weight_decay * p
        if momentum == 0:
            x0 = p + s / (np.cbrt(gss) + eps)
        gss += lamb * g * g
        rms = np.cbrt(gss) + eps
        if eps == 0:
            rms[rms == 0] = np.inf
        s += lamb * g
        p_old = p.copy()
        z = x0 - s / rms
        p = z if momentum == 0 else p * (1 - ck) + ck * z
        if weight_decay and decouple:
            p = p - lr * weight_decay * p_old
        out.append(p.copy())
    return out


@pytest.mark.parametrize("momentum,weight_decay,eps,decouple", [
    (0.9, 0.0, 1e-6, False),
    (0.0, 0.0, 1e-6, False),
    (0.9, 0.1, 1e-6, False),
    (0.9, 0.1, 1e-6, True),
    (0.5, 0.0, 0.0, False),
])
def test_madgrad_matches_reference(momentum, weight_decay, eps, decouple):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(5, 7)).astype(np.float32)
    grads = [rng.normal(size=(5, 7)).astype(np.float32) * 0.1 for _ in range(6)]
    grads[2][0, :] = 0.0  # zero gradients on a row
    lrs = [0.0, 1e-2, 3e-3, 3e-3, 2e-3, 1e-3]  # lr = 0 first, like the original's warm-up
    want = reference_madgrad(p0, grads, lrs, momentum, weight_decay, eps, decouple)

    static = ("momentum", "weight_decay", "eps", "decouple_decay")
    tx = optax.inject_hyperparams(madgrad, static_args=static)(learning_rate=0.0, momentum=momentum,
                                           weight_decay=weight_decay, eps=eps,
                                           decouple_decay=decouple)
    params = {"w": jnp.asarray(p0)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    for k, (g, lr) in enumerate(zip(grads, lrs, strict=True)):
        state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
        upd, state = step({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, upd)
        np.testing.assert_allclose(np.asarray(params["w"]), want[k], rtol=2e-5, atol=2e-6,
                                   err_msg=f"step {k}")
    # the moving parameter really moved (test can fail)
    assert np.abs(np.asarray(params["w"]) - p0).max() > 1e-3


def test_madgrad_schedule_and_bf16_params():
    p0 = {"a": jnp.ones((3,), jnp.bfloat16), "b": jnp.zeros((2, 2), jnp.float32)}
    tx = madgrad(learning_rate=lambda count: 0.01 * (count + 1))
    state = tx.init(p0)
    assert state.grad_sum_sq["a"].dtype == jnp.float32
    g = jax.tree.map(lambda p: jnp.full(p.shape, 0.5, p.dtype), p0)
    upd, state = tx.update(g, state, p0)
    assert upd["a"].dtype == jnp.bfloat16 and int(state.count) == 1
    want = reference_madgrad(np.zeros((2, 2)), [np.full((2, 2), 0.5)], [0.01], 0.9, 0, 1e-6,
                             False)[0]
    np.testing.assert_allclose(np.asarray(upd["b"]), want, rtol=1e-5)


def test_madgrad_rejects_bad_momentum_and_missing_params():
    with pytest.raises(ValueError, match="momentum"):
        madgrad(momentum=1.0)
    tx = madgrad()
    with pytest.raises(ValueError, match="params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))
