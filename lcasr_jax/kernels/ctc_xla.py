"""CTC forward-backward in plain XLA: a lax.scan over frames on a (batch, states) state.

The state is kept normalised (its max subtracted every frame, the running offset summed in
double-float: a (hi, lo) pair of float32), so float32 rounding stays at the scale of one
frame's log-probs instead of the whole log-likelihood (which reaches ~4e5 at 45,000 frames,
where a float32 ulp is 0.03 and un-normalised occupancies come out ~10% wrong).
Alpha is checkpointed once per segment of ~sqrt(frames) steps; the backward pass recomputes
each segment's alphas and runs beta through them, emitting d nll / d log_probs row by row.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

NEG = -1e30  # log(0) stand-in: finite, so no inf - inf anywhere


def two_sum(a, b):
    """a + b = s + err exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def df_add(x, y):
    """Double-float (hi, lo) + (hi, lo)."""
    s, e = two_sum(x[0], y[0])
    e = e + (x[1] + y[1])
    hi = s + e
    return hi, e - (hi - s)


def _shift(x: jax.Array, by: int) -> jax.Array:
    """x[:, s - by] along the last axis (by > 0: from lower states, by < 0: from higher)."""
    if by > 0:
        return jnp.pad(x, ((0, 0), (by, 0)), constant_values=NEG)[:, : x.shape[1]]
    return jnp.pad(x, ((0, 0), (0, -by)), constant_values=NEG)[:, -by:]


def _lse3(a, b, c):
    m = jnp.maximum(jnp.maximum(a, b), c)
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _normalise(x, offset, live):
    """Subtract each row's max (where live) and add it to the (hi, lo) offset."""
    m = jnp.where(live, jnp.max(x, axis=1), 0.0)
    return x - m[:, None], df_add(offset, (m, jnp.zeros_like(m)))


def _alpha_step(carry, lp_t, t, ext, skip, frames):
    """(alpha_{t-1}, offset) -> (alpha_t, offset); frozen once t >= frames."""
    alpha, offset = carry
    emit = jnp.take_along_axis(lp_t, ext, axis=1)
    a2 = jnp.where(skip, _shift(alpha, 2), NEG)
    new = _lse3(alpha, _shift(alpha, 1), a2) + emit
    live = t < frames
    return _normalise(jnp.where(live[:, None], new, alpha), offset, live)


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
    dtype = log_probs.dtype
    alpha0 = jnp.where(jnp.arange(ext.shape[1])[None] == 0, 0.0,
                       jnp.full(ext.shape, NEG, dtype)).astype(dtype)
    zero = jnp.zeros((batch,), dtype)

    def segment(carry, xs):
        lp_seg, t_seg = xs

        def step(c, x):
            return _alpha_step(c, x[0], x[1], ext, skip, frames), None

        out, _ = jax.lax.scan(step, carry, (lp_seg, t_seg))
        return out, carry  # checkpoint = state entering the segment

    (alpha_end, offset), ckpts = jax.lax.scan(segment, (alpha0, (zero, zero)), (lp, times))
    tail = jax.nn.logsumexp(jnp.where(final, alpha_end, NEG), axis=1)
    ll = df_add(offset, (tail, zero))  # (hi, lo)
    return ll, ckpts


@jax.custom_vjp
def ctc_nll(log_probs, ext, skip, final, frames):
    """-log p(labels | log_probs) per item: (batch,) float32; see ctc.ctc_loss."""
    ll, _ = _forward(log_probs, ext, skip, final, frames)
    return -(ll[0] + ll[1])


def _fwd(log_probs, ext, skip, final, frames):
    ll, ckpts = _forward(log_probs, ext, skip, final, frames)
    return -(ll[0] + ll[1]), (log_probs, ext, skip, final, frames, ll, ckpts)


def _bwd(res, g):
    log_probs, ext, skip, final, frames, ll, ckpts = res
    batch, n_frames, n_classes = log_probs.shape
    seg, n_seg = _segments(n_frames)
    lp = _time_major(log_probs, seg, n_seg)
    times = jnp.arange(n_seg * seg).reshape(n_seg, seg)
    ok = ll[0] > NEG / 2  # feasible: finite likelihood
    scale = jnp.where(ok, -g, 0.0)[:, None]
    neg_ll = (-ll[0], -ll[1])
    dtype = log_probs.dtype
    zero = jnp.zeros((batch,), dtype)
    beta_init = jnp.where(final, 0.0, NEG).astype(dtype)
    skip_up = _shift(skip.astype(jnp.int32), -2) > 0  # state s+2 may be entered from s
    rows = jnp.arange(batch)[:, None]

    def segment(beta_carry, xs):
        ckpt, lp_seg, t_seg = xs

        def fstep(c, x):
            c = _alpha_step(c, x[0], x[1], ext, skip, frames)
            return c, c

        _, (alphas, a_offsets) = jax.lax.scan(fstep, ckpt, (lp_seg, t_seg))

        def bstep(carry, x):
            beta_t, b_offset = carry
            alpha_t, a_hi, a_lo, lp_t, t = x
            c_hi, c_lo = df_add(df_add((a_hi, a_lo), b_offset), neg_ll)
            const = (c_hi + c_lo)[:, None]
            gamma = jnp.exp(jnp.minimum(alpha_t + beta_t + const, 0.0))
            gamma = jnp.where((t < frames)[:, None], gamma, 0.0) * scale
            grad_t = jnp.zeros((batch, n_classes), dtype).at[rows, ext].add(gamma)
            bhat = beta_t + jnp.take_along_axis(lp_t, ext, axis=1)
            prev = _lse3(bhat, _shift(bhat, -1), jnp.where(skip_up, _shift(bhat, -2), NEG))
            prev, b_prev = _normalise(prev, b_offset, jnp.ones((batch,), bool))
            reset = t - 1 >= frames - 1
            beta_prev = jnp.where(reset[:, None], beta_init, prev)
            b_prev = tuple(jnp.where(reset, 0.0, x).astype(dtype) for x in b_prev)
            return (beta_prev, b_prev), grad_t

        xs_b = (alphas, a_offsets[0], a_offsets[1], lp_seg, t_seg)
        beta_out, grads = jax.lax.scan(bstep, beta_carry, xs_b, reverse=True)
        return beta_out, grads

    _, grads = jax.lax.scan(segment, (beta_init, (zero, zero)), (ckpts, lp, times),
                            reverse=True)
    grads = grads.reshape(n_seg * seg, batch, n_classes).swapaxes(0, 1)[:, :n_frames]
    return grads, None, None, None, None


ctc_nll.defvjp(_fwd, _bwd)
