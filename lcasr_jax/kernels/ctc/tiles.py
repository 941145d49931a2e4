"""Per-tile pieces of the CTC wavefront kernel (pallas_gpu.py): the static geometry, a
chunk's state in and out of memory, and one frame of the alpha and beta recursions.

A frame is split in two around the CTA barrier: `*_store` publishes the edge lane a
neighbouring chunk reads one launch later and stages the lanes to shift in scratch;
`*_finish` reads the shifted lanes back and updates the state. Values that cross chunks
carry their chunk's double-float log offset and are rebased into the receiver's scale.
All functions run inside a Pallas kernel (Triton on GPU, interpret mode on CPU).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from lcasr_jax.kernels.ctc.numerics import NEG, df_add


def _lse2(a, b):
    hi = jnp.maximum(a, b)
    return hi + jnp.log(1.0 + jnp.exp(jnp.minimum(a, b) - hi))


def _lse3(a, b, c):
    hi = jnp.maximum(jnp.maximum(a, b), c)
    lo = jnp.minimum(jnp.minimum(a, b), c)
    mid = jnp.maximum(jnp.minimum(a, b), jnp.minimum(jnp.maximum(a, b), c))
    return hi + jnp.log(1.0 + jnp.exp(mid - hi) + jnp.exp(lo - hi))


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The wavefront kernel's settings, passed to `pallas_gpu.ctc_nll` (the defaults are
    the H100 sweep's best, benchmarks/RESULTS.md); none changes the result but `occ_mode`."""

    chunk: int = 128  # lanes (label positions) per tile, a power of 2
    block: int = 32  # frames per tile
    lookahead: int = 2  # frames whose loads are in flight ahead of the recursion
    norm_every: int = 2  # frames between subtractions of the chunk max (unrolled per step)
    occ_mode: str = "atomic"  # label occupancies: 'atomic' adds them per frame; 'none'
    # sends none (profiling only: no gradient; staging a tile's rows and adding them after
    # its recursion measured no faster, benchmarks/RESULTS.md)
    warps: int = 0  # warps per program (0: chunk // 64, at least 1)

    def __post_init__(self):
        if self.chunk < 1 or self.chunk & (self.chunk - 1):
            raise ValueError(f"kernels/ctc: Tuning.chunk must be a power of 2 (got {self.chunk})")
        if self.occ_mode not in ("atomic", "none"):
            raise ValueError(f"kernels/ctc: Tuning.occ_mode must be 'atomic' or 'none' "
                             f"(got {self.occ_mode!r})")


@dataclasses.dataclass(frozen=True)
class Geo:
    """Static sizes: rows (two per sequence, halves.py), logits frames (T), classes
    (V), blank, lanes per chunk (C), chunks (K), frames per block (B), blocks of the longest
    row (NB) (C and B: the tuning's, clipped to the problem); interpret mode; the tuning."""

    batch: int
    frames: int
    classes: int
    blank: int
    chunk: int
    n_chunks: int
    block: int
    n_blocks: int
    interpret: bool
    tuning: Tuning = Tuning()

    @property
    def width(self) -> int:  # lanes in all
        return self.chunk * self.n_chunks

    @property
    def srow(self) -> int:  # a stored chunk state: e (C), o (C), hi, lo
        return 2 * self.chunk + 2

    @property
    def tpad(self) -> int:  # frames rounded up to whole blocks
        return self.block * self.n_blocks

    @property
    def sbuf(self) -> int:  # shift scratch per program: beta 2 parities x (e, o), alpha 2 x o
        return 6 * (self.chunk + 2)


def barrier(g: Geo):
    if not g.interpret:  # interpret mode runs each op over the whole block: already ordered
        from jax.experimental.pallas import triton as plgpu

        plgpu.debug_barrier()


def store_lane(ref, idx, val, lane_mask, g: Geo):
    """ref[idx] = val[lane] for the one lane where lane_mask holds."""
    if g.interpret:
        ref[pl.ds(idx, 1)] = jnp.sum(jnp.where(lane_mask, val, 0.0), keepdims=True)
    else:
        from jax.experimental.pallas import triton as plgpu

        plgpu.store(ref.at[idx + jnp.zeros(val.shape, jnp.int32)], val, mask=lane_mask)


def entry_state(n, blk, c, g: Geo):
    """Offset of chunk c's state entering block blk in the (batch, blocks + 1, chunks, srow)
    tile-entry array."""
    return ((n * (g.n_blocks + 1) + blk) * g.n_chunks + c) * g.srow


def load_state(ref, base, g: Geo):
    c = g.chunk
    return ref[pl.ds(base, c)], ref[pl.ds(base + c, c)], ref[base + 2 * c], ref[base + 2 * c + 1]


def store_state(ref, base, state, g: Geo):
    e, o, hi, lo = state
    c = g.chunk
    ref[pl.ds(base, c)] = e
    ref[pl.ds(base + c, c)] = o
    ref[base + 2 * c] = hi
    ref[base + 2 * c + 1] = lo


def _rebase(own, incoming, live):
    """Bring incoming values (value, offset) into the own offset's scale.

    own: (hi, lo) offset; incoming: list of f32 values sharing offset (hi, lo) `incoming[1]`.
    Returns (shift, new own offset, values in the new scale). When an incoming value exceeds
    the own scale's max (0), the own scale moves up by it (`shift` is then subtracted from the
    own state), so the sum is always rounded at the scale of the larger side.
    """
    values, (s_hi, s_lo) = incoming
    delta = df_add((s_hi, s_lo), (-own[0], -own[1]))
    sums = [df_add(delta, (v, 0.0 * v)) for v in values]
    top = sums[0][0]
    for s in sums[1:]:
        top = jnp.maximum(top, s[0])
    any_live = live[0]
    for x in live[1:]:
        any_live = any_live | x
    shift = jnp.where(any_live & (top > 0.0), top, 0.0)
    new_own = df_add(own, (shift, 0.0 * shift))
    out = []
    for (u_hi, u_lo), ok in zip(sums, live, strict=True):
        out.append(jnp.where(ok, (u_hi - shift) + u_lo, NEG))
    return shift, new_own, out


def _normalise(e, o, hi, lo):
    m = jnp.max(jnp.maximum(e, o))
    m = jnp.where(m > NEG / 2, m, 0.0)
    hi, lo = df_add((hi, lo), (m, 0.0 * m))
    return e - m, o - m, hi, lo


class Seq:
    """Per-program values: row n, chunk c, its frames, labels, lane masks and where its
    frames lie in the logits.

    A row is one half of a sequence (halves.py): kernel frame t of row n is frame
    start + sign * t of logits row src, with (src, start, sign) = org_ref[3n : 3n + 3].
    """

    def __init__(self, g: Geo, frames_ref, lablen_ref, org_ref, lab_ref, n, c):
        self.n, self.c = n, c
        self.frames = frames_ref[n]
        self.n_labels = lablen_ref[n]
        self.src, self.start, self.sign = org_ref[3 * n], org_ref[3 * n + 1], org_ref[3 * n + 2]
        self.lane = jnp.arange(g.chunk)
        self.glane = c * g.chunk + self.lane
        self.valid_e = self.glane <= self.n_labels
        self.valid_o = self.glane < self.n_labels
        self.lab = lab_ref[pl.ds(n * g.width + c * g.chunk, g.chunk)]

    def frame(self, t, g: Geo):
        """Flat (sequences * frames) logits index of kernel frame t (clamped to the row)."""
        t = jnp.clip(t, 0, jnp.maximum(self.frames - 1, 0))
        return self.src * g.frames + jnp.clip(self.start + self.sign * t, 0, g.frames - 1)

    def occ_row(self, t, g: Geo):
        return self.frame(t, g) * g.classes

    def bound(self, chunk, t, g: Geo):
        """Offset of (value(s), hi, lo) of `chunk`'s edge lane entering frame t in a boundary
        array (batch, chunks, padded frames, 4)."""
        return ((self.n * g.n_chunks + chunk) * g.tpad + jnp.clip(t, 0, g.tpad - 1)) * 4

    def shift_base(self, t, g: Geo, *, beta: bool):
        """Start of this program's shift scratch for frame t's parity: beta (e, o) pairs in
        the first 4 (C + 2) floats, alpha o in the last 2 (C + 2)."""
        parity = lax.rem(t, 2)
        return ((self.n * g.n_chunks + self.c) * g.sbuf
                + (2 * parity if beta else 4 + parity) * (g.chunk + 2))

    def emissions(self, lp_ref, t, g: Geo):
        """log-softmax of the blank and of this chunk's labels at frame t: lp_ref is
        (logits ref (batch * frames * classes,), any float; logsumexp ref (batch * frames,))."""
        x_ref, lse_ref = lp_ref
        frame = self.frame(t, g)
        lse, row = lse_ref[frame], frame * g.classes
        return (x_ref[row + g.blank].astype(jnp.float32) - lse,
                x_ref[row + self.lab].astype(jnp.float32) - lse)


def _close_frame(t, new, old, *, s: Seq, norm: bool):
    """End of an alpha or beta frame: invalid lanes to log 0, the chunk max moved into the
    offset when `norm`; beyond the row's frames the old state is kept unchanged (alpha
    frozen at its end, beta waiting at its entry state)."""
    ne, no, nhi, nlo = new
    ne = jnp.where(s.valid_e, ne, NEG)
    no = jnp.where(s.valid_o, no, NEG)
    if norm:
        ne, no, nhi, nlo = _normalise(ne, no, nhi, nlo)
    live = t < s.frames
    return tuple(jnp.where(live, n, o) for n, o in zip((ne, no, nhi, nlo), old, strict=True))


def alpha_inputs(t, *, g: Geo, s: Seq, lp_ref, bound_ref):
    """Loads for alpha frame t (issued steps ahead): emissions and chunk c-1's top lane."""
    lidx = s.bound(jnp.maximum(s.c - 1, 0), t, g)
    return (*s.emissions(lp_ref, t, g), bound_ref[lidx], bound_ref[lidx + 1],
            bound_ref[lidx + 2])


def alpha_store(t, state, *, g: Geo, s: Seq, bound_ref, sbuf_ref, write_bound: bool):
    """First half of an alpha frame: publish the top lane, stage o for the shift."""
    _, o, hi, lo = state
    if write_bound:  # this chunk's top lane entering frame t, for chunk c + 1
        bidx = s.bound(s.c, t, g)
        store_lane(bound_ref, bidx, o, s.lane == g.chunk - 1, g)
        bound_ref[bidx + 1] = hi
        bound_ref[bidx + 2] = lo
    sbuf_ref[pl.ds(s.shift_base(t, g, beta=False) + 1, g.chunk)] = o


def alpha_finish(t, state, inputs, *, g: Geo, s: Seq, skip, sbuf_ref, norm: bool):
    """Second half (after the barrier): alpha_{t-1} -> alpha_t; frozen once t >= frames."""
    e, o, hi, lo = state
    lp_blank, lp_label, v, v_hi, v_lo = inputs
    o_prev = sbuf_ref[pl.ds(s.shift_base(t, g, beta=False), g.chunk)]
    v_live = (s.c > 0) & (v > NEG / 2)
    shift, (nhi, nlo), (u,) = _rebase((hi, lo), ([v], (v_hi, v_lo)), [v_live])
    e2, o2 = e - shift, o - shift
    o_prev = jnp.where(s.lane == 0, u, o_prev - shift)
    ne = _lse2(e2, o_prev) + lp_blank
    no = _lse3(o2, e2, jnp.where(skip, o_prev, NEG)) + lp_label
    return _close_frame(t, (ne, no, nhi, nlo), state, s=s, norm=norm)


def pipeline(first, n_steps, load, step, state, g: Geo):
    """state = step(t, state, load(t), norm) for frames t = first .. first + n_steps - 1,
    `g.tuning.norm_every` frames per loop iteration (norm on the last), each frame's loads
    issued `g.tuning.lookahead` frames ahead through the loop carry."""
    lookahead, norm_every = g.tuning.lookahead, g.tuning.norm_every
    ahead = [load(first + i) for i in range(lookahead)]

    def body(j, carry):
        state, *queue = carry
        for u in range(norm_every):
            t = first + j * norm_every + u
            queue.append(load(t + lookahead))
            state = step(t, state, queue.pop(0), u == norm_every - 1)
        return (state, *queue)

    return lax.fori_loop(0, n_steps // norm_every, body, (state, *ahead))[0]


def beta_inputs(t, *, g: Geo, s: Seq, lp_ref, bbound_ref, abuf_ref, abase):
    """Loads for beta frame t: emissions, chunk c+1's lane 0 and this tile's alpha_t."""
    ridx = s.bound(jnp.minimum(s.c + 1, g.n_chunks - 1), t, g)
    k = jnp.clip(t - abase[1], 0, g.block - 1)
    return (*s.emissions(lp_ref, t, g), bbound_ref[ridx], bbound_ref[ridx + 1],
            bbound_ref[ridx + 2], bbound_ref[ridx + 3],
            *load_state(abuf_ref, abase[0] + k * g.srow, g))


def beta_store(t, state, *, g: Geo, s: Seq, bbound_ref, sbuf_ref):
    """First half of a beta frame: publish lane 0, stage e and o for the shift."""
    e, o, hi, lo = state
    bidx = s.bound(s.c, t, g)  # this chunk's lane 0, for chunk c - 1
    store_lane(bbound_ref, bidx, e, s.lane == 0, g)
    store_lane(bbound_ref, bidx + 1, o, s.lane == 0, g)
    bbound_ref[bidx + 2] = hi
    bbound_ref[bidx + 3] = lo
    sbase = s.shift_base(t, g, beta=True)
    sbuf_ref[pl.ds(sbase, g.chunk)] = e
    sbuf_ref[pl.ds(sbase + g.chunk + 2, g.chunk)] = o


def beta_finish(t, state, inputs, *, g: Geo, s: Seq, skip_next, sbuf_ref, norm: bool):
    """Second half: beta_{t+1} -> beta_t (emission at t included); beta_{frames} is the
    row's entry state (halves.py), kept unchanged through frames >= frames."""
    e, o, hi, lo = state
    lp_blank, lp_label, ve, vo, v_hi, v_lo = inputs[:6]
    sbase = s.shift_base(t, g, beta=True)
    e_next = sbuf_ref[pl.ds(sbase + 1, g.chunk)]
    o_next = sbuf_ref[pl.ds(sbase + g.chunk + 3, g.chunk)]
    has_right = (s.c + 1) * g.chunk <= s.n_labels
    live = [has_right & (ve > NEG / 2), has_right & (vo > NEG / 2)]
    shift, (nhi, nlo), (ue, uo) = _rebase((hi, lo), ([ve, vo], (v_hi, v_lo)), live)
    top = s.lane == g.chunk - 1
    e2, o2 = e - shift, o - shift
    e_next = jnp.where(top, ue, e_next - shift)
    o_next = jnp.where(top, uo, o_next - shift)
    ne = _lse2(e2, o2) + lp_blank
    no = _lse3(o2, e_next, jnp.where(skip_next, o_next, NEG)) + lp_label
    return _close_frame(t, (ne, no, nhi, nlo), state, s=s, norm=norm)
