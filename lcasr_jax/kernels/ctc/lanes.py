"""The CTC wavefront's (pallas_gpu.py) two rows per sequence (halves.py) as lanes.

Row n (< N) is the sequence's first `split` frames; row N + n is the rest, time- and
label-reversed, whose alpha is the sequence's beta. Here, in XLA on (rows, lanes) arrays:

- `plan`: the halves' plan (split on a block edge) laid out as the kernels read it: the
  rows' frame ranges in the logits and their labels per lane;
- `meet`: log p(labels) from alpha before the split and beta at the split;
- `handover`: each row's state at its end, mirrored into its partner's lanes: the entry
  state of the partner's beta recursion in the backward wavefront;
- `unfold_blank` / `unfold_labels`: per-row occupancies back to (sequence, frame).

States are (rows, chunks, 2 * chunk + 2) arrays: e lanes, o lanes, and the chunk's
double-float log offset (hi, lo); lane i holds e[i] (blank before label i) and o[i]
(label i). Mirroring maps e[i] -> e[L - i] and o[i] -> o[L - 1 - i] for L labels.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

import lcasr_jax.kernels.ctc.halves as halves
from lcasr_jax.kernels.ctc.numerics import NEG, df_add, extended_states
from lcasr_jax.kernels.ctc.tiles import Geo


class Rows(NamedTuple):
    """The 2N rows of N sequences. Flat int32 arrays, as the kernels read them."""

    split: jax.Array  # (N,) frames in the first row of each sequence
    frames: jax.Array  # (2N,) frames per row
    labels: jax.Array  # (2N,) labels per row
    origin: jax.Array  # (2N * 3,) per row: logits row, first frame, step (+1 / -1)
    lab: jax.Array  # (2N * width,) label per lane
    skip: jax.Array  # (2N * width,) lane's label state may be entered from the last one
    skip_next: jax.Array  # (2N * width,) the same for the next lane


def plan(labels: jax.Array, label_lengths: jax.Array, frames: jax.Array, g: Geo) -> Rows:
    """labels: (N, max_labels) int32 (padding: the blank); label_lengths, frames: (N,) int32.

    The split is a whole number of blocks (half of them, rounded up), so the first row's
    blocks are the sequence's own."""
    n_seq, max_labels = labels.shape
    h = halves.plan(labels, label_lengths, frames, g.blank, g.block)
    j = jnp.arange(max_labels)
    skip = extended_states(h.labels, g.blank)[1][:, 1::2] & (j[None] < h.label_lengths[:, None])
    pad = ((0, 0), (0, g.width - max_labels))
    lab, skip = jnp.pad(h.labels, pad), jnp.pad(skip.astype(jnp.int32), pad)
    skip_next = jnp.pad(skip[:, 1:], ((0, 0), (0, 1)))
    seq = jnp.arange(n_seq, dtype=jnp.int32)
    origin = jnp.stack([jnp.concatenate([seq, seq]),
                        jnp.concatenate([jnp.zeros_like(frames), frames - 1]),
                        jnp.concatenate([jnp.ones_like(frames), -jnp.ones_like(frames)])], 1)
    return Rows(h.split, h.frames, h.label_lengths, origin.reshape(-1).astype(jnp.int32),
                lab.reshape(-1), skip.reshape(-1), skip_next.reshape(-1))


def _lanes(state: jax.Array, g: Geo):
    """(rows, K, srow) -> e, o, hi, lo, each (rows, width)."""
    rows = state.shape[0]
    per_lane = lambda x: jnp.repeat(x, g.chunk, axis=1)
    return (state[:, :, :g.chunk].reshape(rows, -1), state[:, :, g.chunk:2 * g.chunk]
            .reshape(rows, -1), per_lane(state[:, :, 2 * g.chunk]),
            per_lane(state[:, :, 2 * g.chunk + 1]))


def _mirror(state: jax.Array, n_labels: jax.Array, g: Geo):
    """Each row's partner's lanes, mirrored into this row's label order: per-lane
    (value, hi, lo) of e and of o, each (rows, width)."""
    e, o, hi, lo = _lanes(jnp.roll(state, state.shape[0] // 2, axis=0), g)
    i = jnp.arange(g.width)[None]
    src_e, src_o = n_labels[:, None] - i, n_labels[:, None] - 1 - i
    take = lambda x, idx: jnp.take_along_axis(x, jnp.clip(idx, 0, g.width - 1), axis=1)
    ok_e, ok_o = src_e >= 0, src_o >= 0
    e_m = (jnp.where(ok_e, take(e, src_e), NEG), take(hi, src_e), take(lo, src_e))
    o_m = (jnp.where(ok_o, take(o, src_o), NEG), take(hi, src_o), take(lo, src_o))
    return e_m, o_m


def _reference(parts, axis):
    """The (hi, lo) offset of the most probable live lane among `parts` [(value, hi, lo)]
    along `axis` (any offset when none is live)."""
    approx = jnp.concatenate([jnp.where(v > NEG / 2, v + h, NEG) for v, h, _ in parts], axis)
    his = jnp.concatenate([h for _, h, _ in parts], axis)
    los = jnp.concatenate([lo for _, _, lo in parts], axis)
    best = jnp.argmax(approx, axis=axis, keepdims=True)
    return (jnp.take_along_axis(his, best, axis), jnp.take_along_axis(los, best, axis))


def _rebase(part, ref):
    v, hi, lo = part
    return jnp.where(v > NEG / 2, v + (hi - ref[0]) + (lo - ref[1]), NEG)


def meet(finals: jax.Array, rows: Rows, g: Geo):
    """log p(labels) as double-float (hi, lo), each (N,): alpha at frame split - 1 (rows
    < N) joined to beta at frame split (rows >= N, mirrored) over every allowed transition
    (a virtual start / end state where a row has no frames)."""
    n_seq = finals.shape[0] // 2
    n_labels = rows.labels[:n_seq]
    e, o, hi, lo = _lanes(finals[:n_seq], g)
    be, bo = (tuple(x[:n_seq] for x in part) for part in _mirror(finals, rows.labels, g))
    ae, ao = (e, hi, lo), (o, hi, lo)
    ref_a, ref_b = _reference([ae, ao], 1), _reference([be, bo], 1)
    ae, ao, be, bo = _rebase(ae, ref_a), _rebase(ao, ref_a), _rebase(be, ref_b), _rebase(bo, ref_b)
    skip_next = rows.skip_next.reshape(2 * n_seq, g.width)[:n_seq] != 0
    be_next = jnp.pad(be[:, 1:], ((0, 0), (0, 1)), constant_values=NEG)
    bo_next = jnp.pad(bo[:, 1:], ((0, 0), (0, 1)), constant_values=NEG)
    from_e = ae + jnp.logaddexp(be, bo)
    from_o = ao + jnp.logaddexp(jnp.logaddexp(bo, be_next), jnp.where(skip_next, bo_next, NEG))
    lane = jnp.arange(g.width)[None]
    from_e = jnp.where(lane <= n_labels[:, None], from_e, NEG)
    from_o = jnp.where(lane < n_labels[:, None], from_o, NEG)
    tail = jax.nn.logsumexp(jnp.concatenate([from_e, from_o], 1), axis=1)
    top = df_add((ref_a[0][:, 0], ref_a[1][:, 0]), (ref_b[0][:, 0], ref_b[1][:, 0]))
    return df_add(top, (tail, 0.0 * tail))


def handover(finals: jax.Array, rows: Rows, g: Geo) -> jax.Array:
    """(2N, K, srow) entry states of the backward (beta) wavefront: each row's partner's
    end state mirrored, rebased per chunk onto its most probable lane."""
    n_rows = finals.shape[0]
    (ev, ehi, elo), (ov, ohi, olo) = _mirror(finals, rows.labels, g)
    chunked = lambda x: x.reshape(n_rows, g.n_chunks, g.chunk)
    e, o = (chunked(ev), chunked(ehi), chunked(elo)), (chunked(ov), chunked(ohi), chunked(olo))
    ref = _reference([e, o], 2)
    return jnp.concatenate([_rebase(e, ref), _rebase(o, ref), ref[0], ref[1]], axis=2)


def unfold_blank(blank: jax.Array, rows: Rows, n_frames: int) -> jax.Array:
    """(2N, padded row frames) blank occupancies per row -> (N, n_frames) per sequence."""
    n_seq = rows.split.shape[0]
    full = rows.frames[:n_seq] + rows.frames[n_seq:]
    t = jnp.arange(n_frames)[None]
    first = t < rows.split[:, None]
    row = jnp.where(first, jnp.arange(n_seq)[:, None], n_seq + jnp.arange(n_seq)[:, None])
    k = jnp.clip(jnp.where(first, t, full[:, None] - 1 - t), 0, blank.shape[1] - 1)
    return jnp.where(t < full[:, None], blank[row, k], 0.0)


def unfold_labels(occ: jax.Array, rows: Rows, shape) -> jax.Array:
    """(2N, padded row frames, width) label occupancies per row and lane -> (N, frames,
    classes) per sequence and class (interpret mode; on GPU the kernel adds them in place)."""
    n_rows, tpad, width = occ.shape
    origin = rows.origin.reshape(n_rows, 3)
    t = jnp.arange(tpad)[None]
    frame = origin[:, 1:2] + origin[:, 2:3] * t
    frame = jnp.where(t < rows.frames[:, None], frame, shape[1])  # out of range: dropped
    lab = rows.lab.reshape(n_rows, 1, width)
    return jnp.zeros(shape, jnp.float32).at[
        origin[:, 0, None, None], frame[:, :, None], lab].add(occ, mode="drop")
