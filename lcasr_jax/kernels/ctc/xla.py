"""CTC forward-backward in plain XLA: a lax.scan over frames on a (batch, states) state.

The state is kept normalised (its max subtracted every frame, the running offset summed in
double-float: a (hi, lo) pair of float32), so float32 rounding stays at the scale of one
frame's log-probs instead of the whole log-likelihood (which reaches ~4e5 at 45,000 frames,
where a float32 ulp is 0.03 and un-normalised occupancies come out ~10% wrong).
Each sequence runs as two rows that meet in the middle: its first half, and its second half
reversed in time and states, whose alpha is the sequence's beta (halves.py; the Pallas
kernel runs the same plan). One scan computes both halves' alphas and the loss where they meet;
the backward runs beta down each half from the other half's end state. So every scan is
half the sequence long: on an accelerator, where a frame's step is latency-bound, about
half the time.
Alpha is checkpointed once per segment of ~sqrt(frames) steps; the backward pass recomputes
each segment's alphas and runs beta through them, emitting d nll / d log_probs row by row.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

import lcasr_jax.kernels.ctc.halves as halves
from lcasr_jax.kernels.ctc.numerics import NEG, df_add, extended_states


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
    """(rows, T, C) -> (n_seg, seg, rows, C), zero-padded in time."""
    pad = n_seg * seg - log_probs.shape[1]
    lp = jnp.pad(log_probs, ((0, 0), (0, pad), (0, 0))).swapaxes(0, 1)
    return lp.reshape(n_seg, seg, *lp.shape[1:])


def _skip_up(skip):
    return _shift(skip.astype(jnp.int32), -2) > 0  # state s+2 may be entered from s


def _to_next(x, skip_up):
    """log of the sum of x over the states each state may move to: s, s+1, s+2 (skip)."""
    return _lse3(x, _shift(x, -1), jnp.where(skip_up, _shift(x, -2), NEG))


class _Rows(NamedTuple):
    """2B rows of B sequences: each sequence's first `split` frames, then its other frames
    reversed in time and states, whose alpha is the sequence's beta (emission included)."""

    log_probs: jax.Array  # (2B, ceil(T / 2), C)
    ext: jax.Array  # (2B, S)
    skip: jax.Array  # (2B, S)
    frames: jax.Array  # (2B,) frames per row
    last: jax.Array  # (2B,) 2L: the last valid state

    @property
    def n_seq(self) -> int:
        return self.frames.shape[0] // 2

    @property
    def split(self) -> jax.Array:
        """(B,) frames of each sequence's first half."""
        return self.frames[:self.n_seq]

    @property
    def seq_frames(self) -> jax.Array:
        """(B,) frames of each sequence."""
        return self.frames[:self.n_seq] + self.frames[self.n_seq:]


def _plan(log_probs, labels, label_lengths, frames, blank_id) -> _Rows:
    n_frames = log_probs.shape[1]
    half = (n_frames + 1) // 2
    h = halves.plan(labels, label_lengths, frames, blank_id)
    ext, skip = extended_states(h.labels, blank_id)
    t = jnp.arange(half)[None]
    back = jnp.clip(frames[:, None] - 1 - t, 0, n_frames - 1)  # frame of reversed time t
    rev_lp = jnp.take_along_axis(log_probs, back[:, :, None], axis=1)
    return _Rows(jnp.concatenate([log_probs[:, :half], rev_lp]), ext, skip, h.frames,
                 2 * h.label_lengths)


def _mirror(states, rows: _Rows):
    """Each row's partner's states in this row's state order (NEG past 2L)."""
    partner = jnp.roll(states, states.shape[0] // 2, axis=0)
    s = jnp.arange(states.shape[1])[None]
    idx = rows.last[:, None] - s
    got = jnp.take_along_axis(partner, jnp.clip(idx, 0, states.shape[1] - 1), axis=1)
    return jnp.where(idx >= 0, got, NEG)


def _alpha_scan(lp, ext, skip, frames):
    """alpha over each row's frames: ((end state, (hi, lo) offset), segment checkpoints)."""
    rows, n_frames, _ = lp.shape
    seg, n_seg = _segments(n_frames)
    lp = _time_major(lp, seg, n_seg)
    times = jnp.arange(n_seg * seg).reshape(n_seg, seg)
    dtype = lp.dtype
    alpha0 = jnp.where(jnp.arange(ext.shape[1])[None] == 0, 0.0,
                       jnp.full(ext.shape, NEG, dtype)).astype(dtype)
    zero = jnp.zeros((rows,), dtype)

    def segment(carry, xs):
        lp_seg, t_seg = xs

        def step(c, x):
            return _alpha_step(c, x[0], x[1], ext, skip, frames), None

        out, _ = jax.lax.scan(step, carry, (lp_seg, t_seg))
        return out, carry  # checkpoint = state entering the segment

    return jax.lax.scan(segment, (alpha0, (zero, zero)), (lp, times))


def _meet(alpha_end, offset, rows: _Rows):
    """log p per sequence, (hi, lo) each (B,): alpha at frame split - 1 joined to beta at
    frame split over every allowed transition (a virtual start / end state where a row has
    no frames: alpha0 is the state before frame 0)."""
    n_seq = rows.n_seq
    beta = _mirror(alpha_end, rows)[:n_seq]
    joined = alpha_end[:n_seq] + _to_next(beta, _skip_up(rows.skip[:n_seq]))
    tail = jax.nn.logsumexp(joined, axis=1)
    top = df_add((offset[0][:n_seq], offset[1][:n_seq]),
                 (offset[0][n_seq:], offset[1][n_seq:]))
    return df_add(top, (tail, jnp.zeros_like(tail)))


def _forward(log_probs, labels, label_lengths, frames, blank_id):
    rows = _plan(log_probs, labels, label_lengths, frames, blank_id)
    (alpha_end, offset), ckpts = _alpha_scan(rows.log_probs, rows.ext, rows.skip, rows.frames)
    return _meet(alpha_end, offset, rows), (rows, alpha_end, offset, ckpts)


def ctc_nll(log_probs, labels, label_lengths, frames, *, blank_id: int):
    """-log p(labels | log_probs) per item: (batch,) float32; see `kernels.ctc.ctc_loss`.

    log_probs: (batch, T, classes) float32; labels: (batch, L) int32 (padding: the blank);
    label_lengths, frames: (batch,) int32. Each sequence runs as two rows that meet in the
    middle (alpha up its first half, beta down its reversed second): half the serial frames
    of a forward-then-backward scan.
    """
    return _nll(log_probs.shape[1], blank_id, log_probs, labels, label_lengths, frames)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _nll(n_frames, blank_id, log_probs, labels, label_lengths, frames):
    ll, _ = _forward(log_probs, labels, label_lengths, frames, blank_id)
    return -(ll[0] + ll[1])


def _fwd(n_frames, blank_id, log_probs, labels, label_lengths, frames):
    ll, res = _forward(log_probs, labels, label_lengths, frames, blank_id)
    return -(ll[0] + ll[1]), (ll, *res)


def _bwd(n_frames, blank_id, res, g):
    ll, rows, alpha_end, offset, ckpts = res
    n_seq = rows.n_seq
    lp2 = rows.log_probs
    n_rows, half, n_classes = lp2.shape
    seg, n_seg = _segments(half)
    lp = _time_major(lp2, seg, n_seg)
    times = jnp.arange(n_seg * seg).reshape(n_seg, seg)
    ll2 = (jnp.tile(ll[0], 2), jnp.tile(ll[1], 2))
    ok = ll2[0] > NEG / 2  # feasible: finite likelihood
    scale = jnp.where(ok, -jnp.tile(g, 2), 0.0)[:, None]
    neg_ll = (-ll2[0], -ll2[1])
    dtype = lp2.dtype
    ext, skip, limit = rows.ext, rows.skip, rows.frames
    skip_up = _skip_up(skip)
    # beta (emission excluded) at each row's last frame: the partner's end state, mirrored.
    beta_init = _to_next(_mirror(alpha_end, rows), skip_up)
    init_offset = (jnp.roll(offset[0], n_seq), jnp.roll(offset[1], n_seq))
    ids = jnp.arange(n_rows)[:, None]

    def segment(beta_carry, xs):
        ckpt, lp_seg, t_seg = xs

        def fstep(c, x):
            c = _alpha_step(c, x[0], x[1], ext, skip, limit)
            return c, c

        _, (alphas, a_offsets) = jax.lax.scan(fstep, ckpt, (lp_seg, t_seg))

        def bstep(carry, x):
            beta_t, b_offset = carry
            alpha_t, a_hi, a_lo, lp_t, t = x
            c_hi, c_lo = df_add(df_add((a_hi, a_lo), b_offset), neg_ll)
            const = (c_hi + c_lo)[:, None]
            gamma = jnp.exp(jnp.minimum(alpha_t + beta_t + const, 0.0))
            gamma = jnp.where((t < limit)[:, None], gamma, 0.0) * scale
            grad_t = jnp.zeros((n_rows, n_classes), dtype).at[ids, ext].add(gamma)
            prev = _to_next(beta_t + jnp.take_along_axis(lp_t, ext, axis=1), skip_up)
            prev, b_prev = _normalise(prev, b_offset, jnp.ones((n_rows,), bool))
            reset = t - 1 >= limit - 1
            beta_prev = jnp.where(reset[:, None], beta_init, prev)
            b_prev = tuple(jnp.where(reset, i, x).astype(dtype)
                           for i, x in zip(init_offset, b_prev, strict=True))
            return (beta_prev, b_prev), grad_t

        xs_b = (alphas, a_offsets[0], a_offsets[1], lp_seg, t_seg)
        return jax.lax.scan(bstep, beta_carry, xs_b, reverse=True)

    _, grads = jax.lax.scan(segment, (beta_init, init_offset), (ckpts, lp, times), reverse=True)
    grads = grads.reshape(n_seg * seg, n_rows, n_classes).swapaxes(0, 1)[:, :half]
    return _unfold(grads, rows, n_frames), None, None, None


def _unfold(grads, rows: _Rows, n_frames: int):
    """(2B, ceil(T / 2), C) per row -> (B, T, C) per sequence."""
    n_seq, half, frames = rows.n_seq, grads.shape[1], rows.seq_frames
    t = jnp.arange(n_frames)[None]
    first = jnp.pad(grads[:n_seq], ((0, 0), (0, n_frames - half), (0, 0)))
    back = jnp.clip(frames[:, None] - 1 - t, 0, half - 1)
    second = jnp.take_along_axis(grads[n_seq:], back[:, :, None], axis=1)
    return jnp.where((t < rows.split[:, None])[:, :, None], first,
                     jnp.where((t < frames[:, None])[:, :, None], second, 0.0))


_nll.defvjp(_fwd, _bwd)
