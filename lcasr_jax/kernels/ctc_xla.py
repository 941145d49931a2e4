"""CTC forward-backward in plain XLA: a lax.scan over frames on a (batch, states) state.

Alpha is checkpointed once per segment of ~sqrt(frames) steps; the backward pass recomputes
each segment's alphas and runs beta through it, emitting d nll / d log_probs row by row.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

NEG = -1e30  # log(0) stand-in: finite, so no inf - inf anywhere


def _shift(x: jax.Array, by: int) -> jax.Array:
    """x[:, s - by] along the last axis (by > 0: from lower states, by < 0: from higher)."""
    if by > 0:
        return jnp.pad(x, ((0, 0), (by, 0)), constant_values=NEG)[:, : x.shape[1]]
    return jnp.pad(x, ((0, 0), (0, -by)), constant_values=NEG)[:, -by:]


def _lse3(a, b, c):
    m = jnp.maximum(jnp.maximum(a, b), c)
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _alpha_step(alpha, lp_t, t, ext, skip, frames):
    """alpha_{t-1} (batch, S) -> alpha_t; frozen once t >= frames."""
    emit = jnp.take_along_axis(lp_t, ext, axis=1)
    a2 = jnp.where(skip, _shift(alpha, 2), NEG)
    new = _lse3(alpha, _shift(alpha, 1), a2) + emit
    return jnp.where((t < frames)[:, None], new, alpha)


def _segments(n_frames: int) -> tuple[int, int]:
    seg = max(1, int(math.ceil(math.sqrt(n_frames))))
    return seg, -(-n_frames // seg)


def _time_major(log_probs, seg, n_seg):
    """(batch, T, C) -> (n_seg, seg, batch, C), zero-padded in time."""
    pad = n_seg * seg - log_probs.shape[1]
    lp = jnp.pad(log_probs, ((0, 0), (0, pad), (0, 0))).swapaxes(0, 1)
    return lp.reshape(n_seg, seg, *lp.shape[1:])


def _forward(log_probs, ext, skip, final, frames):
    batch, n_frames, _ = log_probs.shape
    seg, n_seg = _segments(n_frames)
    lp = _time_major(log_probs, seg, n_seg)
    times = jnp.arange(n_seg * seg).reshape(n_seg, seg)
    alpha0 = jnp.where(jnp.arange(ext.shape[1])[None] == 0, 0.0,
                       jnp.full(ext.shape, NEG, jnp.float32))

    def segment(alpha, xs):
        lp_seg, t_seg = xs

        def step(a, x):
            return _alpha_step(a, x[0], x[1], ext, skip, frames), None

        out, _ = jax.lax.scan(step, alpha, (lp_seg, t_seg))
        return out, alpha  # checkpoint = state entering the segment

    alpha_end, ckpts = jax.lax.scan(segment, alpha0, (lp, times))
    ll = jax.nn.logsumexp(jnp.where(final, alpha_end, NEG), axis=1)
    return ll, ckpts


@jax.custom_vjp
def ctc_nll(log_probs, ext, skip, final, frames):
    """-log p(labels | log_probs) per item: (batch,) float32; see ctc.ctc_loss."""
    return -_forward(log_probs, ext, skip, final, frames)[0]


def _fwd(log_probs, ext, skip, final, frames):
    ll, ckpts = _forward(log_probs, ext, skip, final, frames)
    return -ll, (log_probs, ext, skip, final, frames, ll, ckpts)


def _bwd(res, g):
    log_probs, ext, skip, final, frames, ll, ckpts = res
    batch, n_frames, n_classes = log_probs.shape
    seg, n_seg = _segments(n_frames)
    lp = _time_major(log_probs, seg, n_seg)
    times = jnp.arange(n_seg * seg).reshape(n_seg, seg)
    ok = ll > NEG / 2  # feasible: finite likelihood
    scale = jnp.where(ok, -g, 0.0)[:, None]
    ll_safe = jnp.where(ok, ll, 0.0)[:, None]
    beta_init = jnp.where(final, 0.0, NEG).astype(jnp.float32)
    skip_up = _shift(skip.astype(jnp.int32), -2) > 0  # state s+2 may be entered from s
    rows = jnp.arange(batch)[:, None]

    def segment(beta, xs):
        alpha_in, lp_seg, t_seg = xs

        def fstep(a, x):
            a = _alpha_step(a, x[0], x[1], ext, skip, frames)
            return a, a

        _, alphas = jax.lax.scan(fstep, alpha_in, (lp_seg, t_seg))

        def bstep(beta_t, x):
            alpha_t, lp_t, t = x
            valid = (t < frames)[:, None]
            gamma = jnp.exp(jnp.minimum(alpha_t + beta_t - ll_safe, 0.0))
            gamma = jnp.where(valid, gamma, 0.0) * scale
            grad_t = jnp.zeros((batch, n_classes), jnp.float32).at[rows, ext].add(gamma)
            bhat = beta_t + jnp.take_along_axis(lp_t, ext, axis=1)
            prev = _lse3(bhat, _shift(bhat, -1), jnp.where(skip_up, _shift(bhat, -2), NEG))
            beta_prev = jnp.where((t - 1 >= frames - 1)[:, None], beta_init, prev)
            return beta_prev, grad_t

        beta_out, grads = jax.lax.scan(bstep, beta, (alphas, lp_seg, t_seg), reverse=True)
        return beta_out, grads

    _, grads = jax.lax.scan(segment, beta_init, (ckpts, lp, times), reverse=True)
    grads = grads.reshape(n_seg * seg, batch, n_classes).swapaxes(0, 1)[:, :n_frames]
    return grads, None, None, None, None


ctc_nll.defvjp(_fwd, _bwd)
