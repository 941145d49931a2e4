"""CTC forward-backward as a wavefront of Pallas (Triton) tiles: many SMs per sequence.

Lanes are label positions i = 0..L; lane i holds the blank state e[i] (before label i) and
the label state o[i]. In log space, emissions included at frame t:

    alpha:  e[i] <- lse(e[i], o[i-1]) + lp[t, blank]
            o[i] <- lse(o[i], e[i], o[i-1] if skip[i]) + lp[t, label i]
    beta:   e[i] <- lse(e[i], o[i]) + lp[t, blank]
            o[i] <- lse(o[i], e[i+1], o[i+1] if skip[i+1]) + lp[t, label i]

Lanes are cut into K chunks of `chunk` and frames into NB blocks of `block`; a tile (chunk c,
block b) runs its block of frames on its chunk in one program. Alpha reads only lower lanes,
so tile (c, b) needs (c - 1, b) and (c, b - 1) and nothing else: the tiles with c + b = d
run together in launch d, K + NB - 1 launches in all (beta: the mirror image). A chunk's
state lives in registers; its neighbour's edge lane arrives through a (K, frames) boundary
array written one launch earlier, so no program ever waits on another.

Each sequence runs as two rows (halves.py, lanes.py): its first half, and its second half time-
and label-reversed, whose alpha is the sequence's beta. The forward wavefront computes both
halves' alphas at once and the loss where they meet; the backward runs beta down each half
from the other half's end state. Every recursion is half the sequence: half the serial
frames of a forward-then-backward alpha-beta.

Each chunk keeps its own log offset (a double-float (hi, lo), the chunk's max subtracted
every frame), stored beside each boundary value; a value crossing chunks is rebased in
double-float, so rounding stays at the scale of one frame everywhere.

The kernels read the raw logits (any float dtype) and a per-frame logsumexp, so no float32
log-probabilities are ever materialised. The forward stores every tile's entry state
(O(frames / block * labels)); the backward recomputes a tile's alphas from it into scratch,
runs beta back through them and adds the occupancies of label states into a (frames,
classes) array with atomics (in interpret mode: written out for an XLA scatter), and of
blank states through per-chunk row sums; the gradient w.r.t. the logits, softmax * sum(occ)
- occ, is then one elementwise pass.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

import lcasr_jax.kernels.ctc.lanes as lanes
import lcasr_jax.kernels.ctc.tiles as tiles
from lcasr_jax.kernels.ctc.numerics import NEG, df_add
from lcasr_jax.kernels.ctc.tiles import Tuning

ROWS = 16  # frames per row-sum of blank occupancies
DROP_BELOW = 25 * 0.6931471805599453  # log(2^25): see the label occupancies in _bwd_kernel


def _fwd_kernel(diag_ref, frames_ref, lablen_ref, org_ref, x_ref, lse_ref, lab_ref, sk_ref,
                _ck, _bound, _sbuf, ck_ref, bound_ref, sbuf_ref, *, g: tiles.Geo):
    lp_ref = (x_ref, lse_ref)
    n, c = pl.program_id(0), pl.program_id(1)
    b = diag_ref[0] - c
    s = tiles.Seq(g, frames_ref, lablen_ref, org_ref, lab_ref, n, c)
    active = (b >= 0) & (b < g.n_blocks) & (b * g.block < s.frames) & (c * g.chunk <= s.n_labels)

    @pl.when(active)
    def _():
        skip = sk_ref[pl.ds(n * g.width + c * g.chunk, g.chunk)] != 0

        def step(t, state, inputs, norm):
            tiles.alpha_store(t, state, g=g, s=s, bound_ref=bound_ref, sbuf_ref=sbuf_ref,
                              write_bound=True)
            tiles.barrier(g)
            return tiles.alpha_finish(t, state, inputs, g=g, s=s, skip=skip,
                                      sbuf_ref=sbuf_ref, norm=norm)

        load = functools.partial(tiles.alpha_inputs, g=g, s=s, lp_ref=lp_ref,
                                 bound_ref=bound_ref)
        state = tiles.pipeline(b * g.block, g.block, load, step,
                               tiles.load_state(ck_ref, tiles.entry_state(n, b, c, g), g), g)
        tiles.store_state(ck_ref, tiles.entry_state(n, b + 1, c, g), state, g)


def _bwd_kernel(diag_ref, frames_ref, lablen_ref, org_ref, x_ref, lse_ref, lab_ref, sk_ref, skn_ref,
                ck_ref, bound_ref, ll_ref, *refs, g: tiles.Geo):
    """Tile (c, b) of the reverse wavefront: beta over block b against alphas recomputed
    (one launch earlier, or here first for the top block) into scratch slot b % 2, while
    recomputing block b - 1 into the other slot: two independent chains share each barrier.
    """
    lp_ref = (x_ref, lse_ref)
    n_io = len(refs) // 2
    bstate_ref, bbound_ref, abuf_ref, sbuf_ref, blank_ref, occ_ref = refs[n_io:]
    n, c = pl.program_id(0), pl.program_id(1)
    b = g.n_blocks - 1 - (diag_ref[0] - (g.n_chunks - 1 - c))
    s = tiles.Seq(g, frames_ref, lablen_ref, org_ref, lab_ref, n, c)
    t0 = b * g.block
    active = (b >= 0) & (b < g.n_blocks) & (t0 < s.frames) & (c * g.chunk <= s.n_labels)
    slot = lambda blk: ((n * g.n_chunks + c) * 2 + lax.rem(blk, 2)) * g.block * g.srow

    @pl.when(active)
    def _():
        own = pl.ds(n * g.width + c * g.chunk, g.chunk)
        skip, skip_next = sk_ref[own] != 0, skn_ref[own] != 0
        a_load = functools.partial(tiles.alpha_inputs, g=g, s=s, lp_ref=lp_ref, bound_ref=bound_ref)
        a_store = functools.partial(tiles.alpha_store, g=g, s=s, bound_ref=bound_ref,
                                    sbuf_ref=sbuf_ref, write_bound=False)
        a_finish = functools.partial(tiles.alpha_finish, g=g, s=s, skip=skip, sbuf_ref=sbuf_ref)
        ck = lambda blk: tiles.load_state(ck_ref, tiles.entry_state(n, blk, c, g), g)

        @pl.when(t0 + g.block >= s.frames)  # the top block: nobody recomputed it yet
        def _():
            def alone(t, state, inputs, norm):
                a_store(t, state)
                tiles.barrier(g)
                state = a_finish(t, state, inputs, norm=norm)
                tiles.store_state(abuf_ref, slot(b) + (t - t0) * g.srow, state, g)
                return state

            tiles.pipeline(t0, g.block, a_load, alone, ck(b), g)

        tiles.barrier(g)
        has_prev = b > 0
        prev0 = jnp.maximum(b - 1, 0) * g.block
        b_load = functools.partial(tiles.beta_inputs, g=g, s=s, lp_ref=lp_ref,
                                   bbound_ref=bbound_ref, abuf_ref=abuf_ref, abase=(slot(b), t0))
        neg_ll = (-ll_ref[2 * n], -ll_ref[2 * n + 1])

        def gamma(t, state, inputs):
            """Occupancies of frame t: label states to occ, blank states to scratch."""
            be, bo, bhi, blo = state
            lp_blank, lp_label = inputs[:2]
            ae, ao, ahi, alo = inputs[6:]
            const_hi, const_lo = df_add(df_add((ahi, alo), (bhi, blo)), neg_ll)
            const = const_hi + const_lo
            live = t < s.frames
            ge = jnp.where(live & s.valid_e,
                           jnp.exp(jnp.minimum(ae + be - lp_blank + const, 0.0)), 0.0)
            # A label occupancy under half an ulp of its softmax term (2^-25 exp(lp)) is below
            # the float32 rounding of the gradient softmax * sum(occ) - occ: it is not sent.
            log_go = ao + bo - lp_label + const
            go = jnp.where(live & s.valid_o & (log_go > lp_label - DROP_BELOW),
                           jnp.exp(jnp.minimum(log_go, 0.0)), 0.0)
            row = slot(b) + (t - t0) * g.srow  # alpha_t is read: its row takes (ge, go)
            abuf_ref[pl.ds(row, g.chunk)] = ge
            if g.interpret:
                occ_ref[pl.ds((n * g.tpad + t) * g.width + c * g.chunk, g.chunk)] = go
            elif g.tuning.occ_mode == "atomic":
                from jax.experimental.pallas import triton as plgpu

                plgpu.atomic_add(occ_ref, s.occ_row(t, g) + s.lab, go, mask=go > 0.0)

        def both(i, carry, norm):
            """Beta frame t0 + B-1-i and alpha frame prev0 + i, one barrier."""
            (beta, alpha), (b_in, a_in) = carry
            t, ta = t0 + g.block - 1 - i, prev0 + i
            tiles.beta_store(t, beta, g=g, s=s, bbound_ref=bbound_ref, sbuf_ref=sbuf_ref)
            a_store(ta, alpha)
            tiles.barrier(g)
            beta = tiles.beta_finish(t, beta, b_in, g=g, s=s, skip_next=skip_next,
                                     sbuf_ref=sbuf_ref, norm=norm)
            alpha = a_finish(ta, alpha, a_in, norm=norm)
            gamma(t, beta, b_in)

            @pl.when(has_prev)
            def _():
                tiles.store_state(abuf_ref, slot(b - 1) + i * g.srow, alpha, g)

            return beta, alpha

        bstate = (n * g.n_chunks + c) * g.srow
        load = lambda i: (b_load(t0 + g.block - 1 - i), a_load(prev0 + i))
        step = lambda i, carry, inputs, norm: both(i, (carry, inputs), norm)
        state = (tiles.load_state(bstate_ref, bstate, g), ck(jnp.maximum(b - 1, 0)))
        beta, _ = tiles.pipeline(0, g.block, load, step, state, g)
        tiles.store_state(bstate_ref, bstate, beta, g)
        tiles.barrier(g)
        rows = jnp.arange(ROWS)
        for r0 in range(0, g.block, ROWS):
            idx = slot(b) + (r0 + rows)[:, None] * g.srow + s.lane[None, :]
            sums = jnp.sum(abuf_ref[idx], axis=1)
            blank_ref[pl.ds((n * g.n_chunks + c) * g.tpad + t0 + r0, ROWS)] = sums


def _call(kernel, g: tiles.Geo, inputs, carried, name):
    """One launch over the (batch, chunks) grid; `carried` are updated in place."""
    n_in = len(inputs)
    params = None
    if not g.interpret:
        from jax.experimental.pallas import triton as plgpu

        params = plgpu.CompilerParams(num_warps=g.tuning.warps or max(1, min(8, g.chunk // 64)),
                                      num_stages=1)
    return pl.pallas_call(
        functools.partial(kernel, g=g), grid=(g.batch, g.n_chunks),
        out_shape=[jax.ShapeDtypeStruct(x.shape, x.dtype) for x in carried],
        input_output_aliases={n_in + i: i for i in range(len(carried))},
        interpret=g.interpret, compiler_params=params, name=name,
    )(*inputs, *carried)


def _wavefront(kernel, g: tiles.Geo, inputs, carried, name):
    def launch(d, carried):
        diag = jnp.reshape(d, (1,)).astype(jnp.int32)
        return tuple(_call(kernel, g, (diag, *inputs), carried, name))

    return lax.fori_loop(0, g.n_chunks + g.n_blocks - 1, launch, tuple(carried))


def _geometry(logits, n_labels_max, blank, interpret, tuning: Tuning) -> tiles.Geo:
    """Two rows per sequence (halves.py), each at most half the frames (whole blocks)."""
    batch, frames, classes = logits.shape
    n_lanes = n_labels_max + 1
    chunk = min(tuning.chunk, max(8, pl.next_power_of_2(n_lanes)))
    block = min(tuning.block, max(ROWS, pl.next_power_of_2(frames)))
    n_blocks = max(1, (-(-frames // block) + 1) // 2)
    return tiles.Geo(2 * batch, frames, classes, blank, chunk, -(-n_lanes // chunk), block,
                     n_blocks, interpret, tuning)


def _forward(logits, lse, rows: lanes.Rows, g: tiles.Geo):
    """Alpha over every row: (2N, K, srow) end states, tile entry states, boundaries."""
    f32 = jnp.float32
    init = jnp.full((g.batch, g.n_chunks, g.srow), NEG, f32)
    init = init.at[:, :, 2 * g.chunk:].set(0.0).at[:, 0, 0].set(0.0)  # e[0] = log 1
    ck = jnp.zeros((g.batch, g.n_blocks + 1, g.n_chunks, g.srow), f32).at[:, 0].set(init)
    bound = jnp.zeros((g.batch * g.n_chunks * g.tpad * 4,), f32)
    sbuf = jnp.zeros((g.batch * g.n_chunks * g.sbuf,), f32)
    inputs = (rows.frames, rows.labels, rows.origin, logits.reshape(-1), lse.reshape(-1),
              rows.lab, rows.skip)
    ck, bound, _ = _wavefront(_fwd_kernel, g, inputs, (ck.reshape(-1), bound, sbuf),
                              "lcasr_ctc_wave_fwd")
    ck = ck.reshape(g.batch, g.n_blocks + 1, g.n_chunks, g.srow)
    last = -(-rows.frames // g.block)  # the block after the one holding the last frame
    return ck[jnp.arange(g.batch), last], ck.reshape(-1), bound


def _backward(logits, lse, rows: lanes.Rows, ll, finals, ck, bound, g: tiles.Geo):
    """d log p / d log_softmax(logits) as label-state occupancies (batch, frames, classes)
    and blank occupancies (batch, frames)."""
    f32 = jnp.float32
    bstate = lanes.handover(finals, rows, g)
    bbound = jnp.zeros((g.batch * g.n_chunks * g.tpad * 4,), f32)
    abuf = jnp.zeros((g.batch * g.n_chunks * 2 * g.block * g.srow,), f32)
    sbuf = jnp.zeros((g.batch * g.n_chunks * g.sbuf,), f32)
    blank = jnp.zeros((g.batch * g.n_chunks * g.tpad,), f32)
    if g.interpret:
        occ = jnp.zeros((g.batch * g.tpad * g.width,), f32)
    else:
        occ = jnp.zeros((logits.size,), f32)
    ll_rows = jnp.tile(jnp.stack(ll, axis=1), (2, 1)).reshape(-1)
    inputs = (rows.frames, rows.labels, rows.origin, logits.reshape(-1), lse.reshape(-1),
              rows.lab, rows.skip, rows.skip_next, ck, bound, ll_rows)
    *_, blank, occ = _wavefront(_bwd_kernel, g, inputs,
                                (bstate.reshape(-1), bbound, abuf, sbuf, blank, occ),
                                "lcasr_ctc_wave_bwd")
    blank = lanes.unfold_blank(blank.reshape(g.batch, g.n_chunks, g.tpad).sum(1), rows,
                                g.frames)
    if g.interpret:
        occ = lanes.unfold_labels(occ.reshape(g.batch, g.tpad, g.width), rows, logits.shape)
    else:
        occ = occ.reshape(logits.shape)
    return occ, blank


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _nll(logits, labels, lablen, frames, g: tiles.Geo):
    return _nll_fwd(logits, labels, lablen, frames, g)[0]


def _nll_fwd(logits, labels, lablen, frames, g: tiles.Geo):
    lse = jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1)  # (batch, frames)
    rows = lanes.plan(labels, lablen, frames, g)
    finals, ck, bound = _forward(logits, lse, rows, g)
    ll = lanes.meet(finals, rows, g)
    return -(ll[0] + ll[1]), (logits, lse, rows, ll, finals, ck, bound)


def _nll_bwd(g: tiles.Geo, res, cot):
    """d nll / d logits = softmax * (sum of occupancies) - occupancies, in one pass."""
    logits, lse, rows, ll, finals, ck, bound = res
    occ, blank = _backward(logits, lse, rows, ll, finals, ck, bound, g)
    occ = occ + jnp.where(jnp.arange(g.classes) == g.blank, blank[:, :, None], 0.0)
    softmax = jnp.exp(logits.astype(jnp.float32) - lse[:, :, None])
    scale = jnp.where(ll[0] > NEG / 2, cot, 0.0)[:, None, None]
    grad = scale * (softmax * jnp.sum(occ, axis=-1, keepdims=True) - occ)
    return grad.astype(logits.dtype), None, None, None


_nll.defvjp(_nll_fwd, _nll_bwd)


def ctc_nll(logits, labels, label_lengths, frames, *, blank_id: int,
            interpret: bool = False, tuning: Tuning | None = None):
    """-log p(labels | log_softmax(logits)): (batch,) float32; see `kernels.ctc.ctc_loss`.

    logits: (batch, frames, classes) raw scores in any float dtype (read as they are, never
    materialised as float32 log-probs; the gradient comes back in their dtype); labels:
    (batch, max_labels) int32 class ids (padding: any valid id); label_lengths, frames:
    (batch,) int32. `interpret`: Pallas interpret mode (any platform); `tuning`: the tile
    and loop settings (`Tuning`; None: its defaults).
    """
    batch, n_frames, n_classes = logits.shape
    if n_frames * n_classes >= 2**31:
        raise ValueError(f"kernels/ctc/pallas_gpu.py: {n_frames} frames x {n_classes} classes "
                         "overflow the kernel's int32 offsets; use implementation='xla'")
    if batch > 1 and batch * n_frames * n_classes >= 2**31:  # keep kernel offsets in int32
        return jnp.concatenate([
            ctc_nll(logits[b:b + 1], labels[b:b + 1], label_lengths[b:b + 1],
                    frames[b:b + 1], blank_id=blank_id, interpret=interpret, tuning=tuning)
            for b in range(batch)])
    g = _geometry(logits, labels.shape[1], int(blank_id), interpret, tuning or Tuning())
    return _nll(logits, labels.astype(jnp.int32), label_lengths.astype(jnp.int32),
                frames.astype(jnp.int32), g)
