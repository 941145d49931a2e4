"""CTC forward-backward as Pallas kernels (Triton on GPU, interpret mode on CPU).

The extended lattice is split into blank states e[i] = state 2i and label states
o[i] = state 2i+1, both held as (nb,) vectors (nb = next power of 2 above labels + 1), so a
time step needs one shifted read (o[i-1]) instead of two, and one gather (the label columns
of the frame's log-probs) plus one scalar (the blank column):

    e'[i] = lse(e[i], o[i-1]) + lp[t, blank]
    o'[i] = lse(o[i], e[i], o[i-1] if label i != label i-1) + lp[t, label i]

One program per batch item loops over all frames in one launch; the shifted read goes
through a small double-buffered global scratch with a barrier per step. The forward kernel
stores the state at the start of every segment of `seg` frames; the backward runs one
launch per segment (lax.scan, last segment first): it recomputes the segment's alphas,
runs beta through them and writes state occupancies, which XLA scatters into classes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

NEG = -1e30
SEG = 256  # frames per checkpoint segment


def _lse2(a, b):
    m = jnp.maximum(a, b)
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m))


def _lse3(a, b, c):
    m = jnp.maximum(jnp.maximum(a, b), c)
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _barrier(interpret: bool):
    if not interpret:  # interpret mode runs each op over the whole block: already ordered
        from jax.experimental.pallas import triton as plgpu

        plgpu.debug_barrier()


def _emissions(lp_ref, t, n_frames, n_classes, blank, labels):
    """Blank log-prob (1,) and label log-probs (nb,) of frame t (clamped into range)."""
    row = jnp.minimum(t, n_frames - 1) * n_classes
    return lp_ref[pl.ds(row + blank, 1)], lp_ref[row + labels]


def _alpha_step(t, e, o, *, lp_ref, sbuf, labels, skip, frames, dims, interpret):
    """One frame of the alpha recursion; sbuf holds 2 x (1 + nb) floats, pads pre-set."""
    n_frames, n_classes, blank, nb = dims
    base = lax.rem(t, 2) * (nb + 1)
    sbuf[pl.ds(base + 1, nb)] = o
    _barrier(interpret)
    o_prev = sbuf[pl.ds(base, nb)]
    lp_blank, lp_label = _emissions(lp_ref, t, n_frames, n_classes, blank, labels)
    new_e = _lse2(e, o_prev) + lp_blank
    new_o = _lse3(o, e, jnp.where(skip, o_prev, NEG)) + lp_label
    live = t < frames
    return jnp.where(live, new_e, e), jnp.where(live, new_o, o)


def _init_shift_buffer(sbuf, nb):
    neg = jnp.full((nb,), NEG, jnp.float32)
    sbuf[pl.ds(0, nb)] = neg
    sbuf[pl.ds(nb + 1, nb)] = neg


def _fwd_kernel(frames_ref, lp_ref, lab_ref, skip_ref, e_out, o_out, ck_e, ck_o, sbuf, *,
                dims, n_seg, seg, interpret):
    nb = dims[3]
    frames = frames_ref[0]
    labels = lab_ref[...]
    skip = skip_ref[...] != 0
    step = functools.partial(_alpha_step, lp_ref=lp_ref, sbuf=sbuf, labels=labels, skip=skip,
                             frames=frames, dims=dims, interpret=interpret)
    _init_shift_buffer(sbuf, nb)
    idx = jnp.arange(nb)
    e = jnp.where(idx == 0, 0.0, NEG).astype(jnp.float32)
    o = jnp.full((nb,), NEG, jnp.float32)

    def segment(s, carry):
        e, o = carry
        ck_e[s, :] = e
        ck_o[s, :] = o
        return lax.fori_loop(s * seg, (s + 1) * seg, lambda t, c: step(t, *c), (e, o))

    e, o = lax.fori_loop(0, n_seg, segment, (e, o))
    e_out[...] = e
    o_out[...] = o


def _bwd_kernel(frames_ref, lablen_ref, t0_ref, ll_ref, lp_ref, lab_ref, skip_ref, skipn_ref,
                cke_ref, cko_ref, be_ref, bo_ref,
                ge_ref, go_ref, be_out, bo_out, abuf, sbuf, hbuf, *, dims, seg, interpret):
    nb = dims[3]
    frames = frames_ref[0]
    n_labels = lablen_ref[0]
    t0 = t0_ref[0]
    ll = ll_ref[pl.ds(0, 1)]
    labels = lab_ref[...]
    skip = skip_ref[...] != 0
    skip_next = skipn_ref[...] != 0
    step = functools.partial(_alpha_step, lp_ref=lp_ref, sbuf=sbuf, labels=labels, skip=skip,
                             frames=frames, dims=dims, interpret=interpret)
    _init_shift_buffer(sbuf, nb)
    neg = jnp.full((nb,), NEG, jnp.float32)
    for par in range(2):  # pads after each half of the beta shift buffer
        hbuf[pl.ds(par * (2 * nb + 2) + 1, nb)] = neg
        hbuf[pl.ds(par * (2 * nb + 2) + nb + 2, nb)] = neg

    def recompute(k, carry):
        e, o = step(t0 + k, *carry)
        abuf[k, pl.ds(0, nb)] = e
        abuf[k, pl.ds(nb, nb)] = o
        return e, o

    lax.fori_loop(0, seg, recompute, (cke_ref[...], cko_ref[...]))
    _barrier(interpret)
    idx = jnp.arange(nb)
    init_e = jnp.where(idx == n_labels, 0.0, NEG).astype(jnp.float32)
    init_o = jnp.where(idx == n_labels - 1, 0.0, NEG).astype(jnp.float32)

    def beta_step(r, carry):
        be, bo = carry
        k = seg - 1 - r
        t = t0 + k
        live = t < frames
        ae = abuf[k, pl.ds(0, nb)]
        ao = abuf[k, pl.ds(nb, nb)]
        ge_ref[k, :] = jnp.where(live, jnp.exp(jnp.minimum(ae + be - ll, 0.0)), 0.0)
        go_ref[k, :] = jnp.where(live, jnp.exp(jnp.minimum(ao + bo - ll, 0.0)), 0.0)
        lp_blank, lp_label = _emissions(lp_ref, t, dims[0], dims[1], dims[2], labels)
        he = be + lp_blank
        ho = bo + lp_label
        base = lax.rem(k, 2) * (2 * nb + 2)
        hbuf[pl.ds(base, nb)] = he
        hbuf[pl.ds(base + nb + 1, nb)] = ho
        _barrier(interpret)
        he_next = hbuf[pl.ds(base + 1, nb)]
        ho_next = hbuf[pl.ds(base + nb + 2, nb)]
        new_e = _lse2(he, ho)
        new_o = _lse3(ho, he_next, jnp.where(skip_next, ho_next, NEG))
        reset = t - 1 >= frames - 1
        return jnp.where(reset, init_e, new_e), jnp.where(reset, init_o, new_o)

    be, bo = lax.fori_loop(0, seg, beta_step, (be_ref[...], bo_ref[...]))
    be_out[...] = be
    bo_out[...] = bo


def _row(nb):
    return pl.BlockSpec((None, nb), lambda b: (b, 0))


SCALAR = pl.BlockSpec((1,), lambda b: (b,))


def _params(nb, interpret):
    if interpret:
        return None
    from jax.experimental.pallas import triton as plgpu

    return plgpu.CompilerParams(num_warps=max(4, min(32, nb // 512)), num_stages=1)


def _prepare(ext, skip, nb):
    """Split extended-state arrays into (batch, nb) label / skip / next-skip vectors."""
    labels = ext[:, 1::2]
    n_labels = labels.shape[1]
    pad = ((0, 0), (0, nb - n_labels))
    lab = jnp.pad(labels, pad)
    sk = jnp.pad(skip[:, 1::2].astype(jnp.int32), pad)
    skn = jnp.pad(sk[:, 1:], ((0, 0), (0, 1)))
    return lab, sk, skn


def _forward(lp_flat, lab, sk, frames, dims, seg, n_seg, interpret):
    batch = lp_flat.shape[0]
    nb = dims[3]
    kernel = functools.partial(_fwd_kernel, dims=dims, n_seg=n_seg, seg=seg,
                               interpret=interpret)
    f32 = jnp.float32
    return pl.pallas_call(
        kernel,
        grid=(batch,),
        in_specs=[SCALAR, _row(lp_flat.shape[1]), _row(nb), _row(nb)],
        out_specs=[_row(nb), _row(nb), pl.BlockSpec((None, n_seg, nb), lambda b: (b, 0, 0)),
                   pl.BlockSpec((None, n_seg, nb), lambda b: (b, 0, 0)), _row(2 * nb + 2)],
        out_shape=[jax.ShapeDtypeStruct((batch, nb), f32)] * 2
        + [jax.ShapeDtypeStruct((batch, n_seg, nb), f32)] * 2
        + [jax.ShapeDtypeStruct((batch, 2 * nb + 2), f32)],
        interpret=interpret, compiler_params=_params(nb, interpret), name="lcasr_ctc_fwd",
    )(frames, lp_flat, lab, sk)


def _segment_backward(t0, cke, cko, be, bo, *, lp_flat, lab, sk, skn, frames, lablen, ll,
                      dims, seg, interpret):
    batch = lp_flat.shape[0]
    nb = dims[3]
    f32 = jnp.float32
    kernel = functools.partial(_bwd_kernel, dims=dims, seg=seg, interpret=interpret)
    seg_spec = pl.BlockSpec((None, seg, nb), lambda b: (b, 0, 0))
    return pl.pallas_call(
        kernel,
        grid=(batch,),
        in_specs=[SCALAR, SCALAR, pl.BlockSpec((1,), lambda b: (0,)), SCALAR,
                  _row(lp_flat.shape[1]), _row(nb), _row(nb), _row(nb),
                  _row(nb), _row(nb), _row(nb), _row(nb)],
        out_specs=[seg_spec, seg_spec, _row(nb), _row(nb),
                   pl.BlockSpec((None, seg, 2 * nb), lambda b: (b, 0, 0)),
                   _row(2 * nb + 2), _row(4 * nb + 4)],
        out_shape=[jax.ShapeDtypeStruct((batch, seg, nb), f32)] * 2
        + [jax.ShapeDtypeStruct((batch, nb), f32)] * 2
        + [jax.ShapeDtypeStruct((batch, seg, 2 * nb), f32),
           jax.ShapeDtypeStruct((batch, 2 * nb + 2), f32),
           jax.ShapeDtypeStruct((batch, 4 * nb + 4), f32)],
        interpret=interpret, compiler_params=_params(nb, interpret), name="lcasr_ctc_bwd",
    )(frames, lablen, t0[None], ll, lp_flat, lab, sk, skn, cke, cko, be, bo)[:4]


def _setup(log_probs, ext, skip):
    batch, n_frames, n_classes = log_probs.shape
    n_labels = ext.shape[1] // 2
    nb = max(16, pl.next_power_of_2(n_labels + 1))
    seg = min(SEG, n_frames)
    n_seg = -(-n_frames // seg)
    lab, sk, skn = _prepare(ext, skip, nb)
    return batch, n_frames, n_classes, nb, seg, n_seg, lab, sk, skn


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _nll(log_probs, ext, skip, lablen, frames, blank, interpret):
    return _nll_fwd(log_probs, ext, skip, lablen, frames, blank, interpret)[0]


def _nll_fwd(log_probs, ext, skip, lablen, frames, blank, interpret):
    batch, n_frames, n_classes, nb, seg, n_seg, lab, sk, _ = _setup(log_probs, ext, skip)
    dims = (n_frames, n_classes, blank, nb)
    lp_flat = log_probs.reshape(batch, n_frames * n_classes)
    e, o, ck_e, ck_o, _ = _forward(lp_flat, lab, sk, frames, dims, seg, n_seg, interpret)
    idx = jnp.arange(nb)[None]
    end_e = jnp.where(idx == lablen[:, None], e, NEG)
    end_o = jnp.where(idx == lablen[:, None] - 1, o, NEG)
    ll = jax.nn.logsumexp(jnp.concatenate([end_e, end_o], axis=1), axis=1)
    return -ll, (log_probs, ext, skip, lablen, frames, ll, ck_e, ck_o)


def _nll_bwd(blank, interpret, res, g):
    log_probs, ext, skip, lablen, frames, ll, ck_e, ck_o = res
    batch, n_frames, n_classes, nb, seg, n_seg, lab, sk, skn = _setup(log_probs, ext, skip)
    dims = (n_frames, n_classes, blank, nb)
    lp_flat = log_probs.reshape(batch, n_frames * n_classes)
    run = functools.partial(_segment_backward, lp_flat=lp_flat, lab=lab, sk=sk, skn=skn,
                            frames=frames, lablen=lablen, ll=ll, dims=dims, seg=seg,
                            interpret=interpret)
    idx = jnp.arange(nb)[None]
    beta_e = jnp.where(idx == lablen[:, None], 0.0, NEG).astype(jnp.float32)
    beta_o = jnp.where(idx == lablen[:, None] - 1, 0.0, NEG).astype(jnp.float32)
    rows_b = jnp.arange(batch)[:, None, None]
    rows_k = jnp.arange(seg)[None, :, None]

    def segment(carry, xs):
        s, cke, cko = xs
        ge, go, be, bo = run(s * seg, cke, cko, *carry)
        occ = jnp.zeros((batch, seg, n_classes), jnp.float32)
        occ = occ.at[rows_b, rows_k, lab[:, None, :]].add(go)
        occ = occ.at[:, :, blank].add(jnp.sum(ge, axis=2))
        return (be, bo), occ

    xs = (jnp.arange(n_seg, dtype=jnp.int32), ck_e.swapaxes(0, 1), ck_o.swapaxes(0, 1))
    _, occ = lax.scan(segment, (beta_e, beta_o), xs, reverse=True)
    occ = occ.swapaxes(0, 1).reshape(batch, n_seg * seg, n_classes)[:, :n_frames]
    scale = jnp.where(ll > NEG / 2, -g, 0.0)[:, None, None]
    return scale * occ, None, None, None, None


_nll.defvjp(_nll_fwd, _nll_bwd)


def ctc_nll(log_probs, ext, skip, label_lengths, frames, *, blank_id: int,
            interpret: bool = False):
    """-log p(labels | log_probs): (batch,) float32; see ctc.ctc_loss for the arguments.

    ext, skip: (batch, 2L+1) from ctc.extended_labels; label_lengths, frames: (batch,) int32.
    """
    batch, n_frames, n_classes = log_probs.shape
    if batch > 1 and batch * n_frames * n_classes >= 2**31:  # keep kernel offsets in int32
        return jnp.concatenate([
            ctc_nll(log_probs[b:b + 1], ext[b:b + 1], skip[b:b + 1], label_lengths[b:b + 1],
                    frames[b:b + 1], blank_id=blank_id, interpret=interpret)
            for b in range(batch)])
    return _nll(log_probs, ext, skip, label_lengths.astype(jnp.int32), frames.astype(jnp.int32),
                int(blank_id), interpret)
