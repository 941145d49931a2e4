"""CTC forward-backward as Pallas kernels (Triton on GPU, interpret mode on CPU).

The extended lattice is split into blank states e[i] = state 2i and label states o[i] =
state 2i+1, so a frame needs one shifted read (o[i-1]), one gather (the label columns of the
frame's log-probs) and one scalar (the blank column):

    e'[i] = lse(e[i], o[i-1]) + lp[t, blank]
    o'[i] = lse(o[i], e[i], o[i-1] if label i != label i-1) + lp[t, label i]

The states live in registers as `n_chunks` vectors of `chunk` lanes (a power of 2, so the
padding stays under one chunk); the shifted read goes through a small double-buffered global
scratch with one barrier per frame. Every frame the state's max is subtracted and added to a
double-float (hi, lo) offset, as in ctc_xla, so values stay O(one frame). One program per
batch item runs all frames in one launch. The forward stores the state entering every
segment of `seg` frames; the backward (also one launch) walks the segments from the last: it
recomputes the segment's alphas into scratch, runs beta through them and adds each frame's
state occupancies into d(-nll)/d(log_probs) with atomics on GPU (interpret mode writes them
out for an XLA scatter, since interpreted atomics lose duplicate indices).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from lcasr_jax.kernels.ctc_xla import NEG, df_add

SEG = 256  # frames per checkpoint segment
MAX_CHUNK = 1024
OFF = 16  # lanes of a small vector that carries a (hi, lo) offset in lanes 0 and 1


def _lse2(a, b):
    hi = jnp.maximum(a, b)
    return hi + jnp.log(1.0 + jnp.exp(jnp.minimum(a, b) - hi))


def _lse3(a, b, c):
    hi = jnp.maximum(jnp.maximum(a, b), c)
    lo = jnp.minimum(jnp.minimum(a, b), c)
    mid = jnp.maximum(jnp.minimum(a, b), jnp.minimum(jnp.maximum(a, b), c))
    return hi + jnp.log(1.0 + jnp.exp(mid - hi) + jnp.exp(lo - hi))


def _barrier(interpret: bool):
    if not interpret:  # interpret mode runs each op over the whole block: already ordered
        from jax.experimental.pallas import triton as plgpu

        plgpu.debug_barrier()


def _pack(off):
    lane = jnp.arange(OFF)
    return jnp.where(lane == 0, off[0], jnp.where(lane == 1, off[1], 0.0)).astype(jnp.float32)


def _unpack(vec):
    lane = jnp.arange(OFF)
    return jnp.sum(jnp.where(lane == 0, vec, 0.0)), jnp.sum(jnp.where(lane == 1, vec, 0.0))


def _normalise(e, o, off, live):
    """Subtract the max over all lanes (if live) and add it to the (hi, lo) offset."""
    m = e[0].max()
    for x in e[1:] + o:
        m = jnp.maximum(m, x.max())
    m = jnp.where(live, m, 0.0)
    return [x - m for x in e], [x - m for x in o], df_add(off, (m, 0.0 * m))


def _load(ref, base, n_chunks, chunk):
    return [ref[pl.ds(base + c * chunk, chunk)] for c in range(n_chunks)]


def _store(ref, base, xs, chunk):
    for c, x in enumerate(xs):
        ref[pl.ds(base + c * chunk, chunk)] = x


class Dims:
    """Static sizes: frames, classes, blank id, lanes per chunk, chunks."""

    def __init__(self, n_frames, n_classes, blank, chunk, n_chunks):
        self.n_frames, self.n_classes, self.blank = n_frames, n_classes, blank
        self.chunk, self.n_chunks = chunk, n_chunks
        self.width = chunk * n_chunks


def _row_start(t, d: Dims):
    return jnp.minimum(t, d.n_frames - 1) * d.n_classes


def _alpha_step(t, e, o, off, *, lp_ref, sbuf, labels, skip, frames, d: Dims, interpret):
    """One frame of the alpha recursion on the normalised state; sbuf holds 2 x (1 + width)
    floats, pads pre-set. off: (hi, lo) log-offset of the state."""
    base = lax.rem(t, 2) * (d.width + 1)
    _store(sbuf, base + 1, o, d.chunk)
    _barrier(interpret)
    o_prev = _load(sbuf, base, d.n_chunks, d.chunk)
    row = _row_start(t, d)
    lp_blank = lp_ref[pl.ds(row + d.blank, 1)]
    live = t < frames
    new_e, new_o = [], []
    for c in range(d.n_chunks):
        ne = _lse2(e[c], o_prev[c]) + lp_blank
        no = _lse3(o[c], e[c], jnp.where(skip[c], o_prev[c], NEG)) + lp_ref[row + labels[c]]
        new_e.append(jnp.where(live, ne, e[c]))
        new_o.append(jnp.where(live, no, o[c]))
    return _normalise(new_e, new_o, off, live)


def _neg_fill(ref, start, d: Dims):
    _store(ref, start, [jnp.full((d.chunk,), NEG, jnp.float32)] * d.n_chunks, d.chunk)


def _fwd_kernel(frames_ref, lp_ref, lab_ref, skip_ref, e_out, o_out, off_out, ck_e, ck_o,
                ck_off, sbuf, *, d: Dims, n_seg, seg, interpret):
    frames = frames_ref[0]
    labels = _load(lab_ref, 0, d.n_chunks, d.chunk)
    skip = [x != 0 for x in _load(skip_ref, 0, d.n_chunks, d.chunk)]
    step = functools.partial(_alpha_step, lp_ref=lp_ref, sbuf=sbuf, labels=labels, skip=skip,
                             frames=frames, d=d, interpret=interpret)
    _neg_fill(sbuf, 0, d)
    _neg_fill(sbuf, d.width + 1, d)
    lane = jnp.arange(d.chunk)
    e = [jnp.where((lane == 0) & (c == 0), 0.0, NEG).astype(jnp.float32)
         for c in range(d.n_chunks)]
    o = [jnp.full((d.chunk,), NEG, jnp.float32) for _ in range(d.n_chunks)]
    zero = jnp.float32(0.0)

    def segment(s, carry):
        e, o, off = carry
        for c in range(d.n_chunks):
            ck_e[s, pl.ds(c * d.chunk, d.chunk)] = e[c]
            ck_o[s, pl.ds(c * d.chunk, d.chunk)] = o[c]
        ck_off[s, :] = _pack(off)
        return lax.fori_loop(s * seg, (s + 1) * seg, lambda t, c: step(t, *c), (e, o, off))

    e, o, off = lax.fori_loop(0, n_seg, segment, (e, o, (zero, zero)))
    _store(e_out, 0, e, d.chunk)
    _store(o_out, 0, o, d.chunk)
    off_out[...] = _pack(off)


def _bwd_kernel(frames_ref, lablen_ref, ll_ref, lp_ref, lab_ref, skip_ref, skipn_ref,
                cke_ref, cko_ref, ckoff_ref, *rest, d: Dims, n_seg, seg, interpret):
    if interpret:
        ge_ref, go_ref, abuf, sbuf, hbuf = rest
    else:
        _, occ_ref, abuf, sbuf, hbuf = rest  # occ input is aliased to occ_ref (zeros)
    w, ch, nc = d.width, d.chunk, d.n_chunks
    frames = frames_ref[0]
    n_labels = lablen_ref[0]
    ll_hi, ll_lo = _unpack(ll_ref[...])
    neg_ll = (-ll_hi, -ll_lo)
    labels = _load(lab_ref, 0, nc, ch)
    skip = [x != 0 for x in _load(skip_ref, 0, nc, ch)]
    skip_next = [x != 0 for x in _load(skipn_ref, 0, nc, ch)]
    step = functools.partial(_alpha_step, lp_ref=lp_ref, sbuf=sbuf, labels=labels, skip=skip,
                             frames=frames, d=d, interpret=interpret)
    _neg_fill(sbuf, 0, d)
    _neg_fill(sbuf, w + 1, d)
    for par in range(2):  # pads after each half of the beta shift buffer
        _neg_fill(hbuf, par * (2 * w + 2) + 1, d)
        _neg_fill(hbuf, par * (2 * w + 2) + w + 2, d)
    idx = [c * ch + jnp.arange(ch) for c in range(nc)]
    init_e = [jnp.where(i == n_labels, 0.0, NEG).astype(jnp.float32) for i in idx]
    init_o = [jnp.where(i == n_labels - 1, 0.0, NEG).astype(jnp.float32) for i in idx]

    def recompute(k, carry, t0):
        e, o, off = step(t0 + k, *carry)
        for c in range(nc):
            abuf[k, pl.ds(c * ch, ch)] = e[c]
            abuf[k, pl.ds(w + c * ch, ch)] = o[c]
        abuf[k, pl.ds(2 * w, OFF)] = _pack(off)
        return e, o, off

    def beta_step(r, carry, t0):
        be, bo, b_off = carry
        k = seg - 1 - r
        t = t0 + k
        live = t < frames
        row = _row_start(t, d)
        lp_blank = lp_ref[pl.ds(row + d.blank, 1)]
        lp_label = [lp_ref[row + labels[c]] for c in range(nc)]
        c_hi, c_lo = df_add(df_add(_unpack(abuf[k, pl.ds(2 * w, OFF)]), b_off), neg_ll)
        const = c_hi + c_lo
        ge, go = [], []
        for c in range(nc):
            ae = abuf[k, pl.ds(c * ch, ch)]
            ao = abuf[k, pl.ds(w + c * ch, ch)]
            ge.append(jnp.where(live, jnp.exp(jnp.minimum(ae + be[c] + const, 0.0)), 0.0))
            go.append(jnp.where(live, jnp.exp(jnp.minimum(ao + bo[c] + const, 0.0)), 0.0))
        if interpret:
            for c in range(nc):
                ge_ref[t, pl.ds(c * ch, ch)] = ge[c]
                go_ref[t, pl.ds(c * ch, ch)] = go[c]
        else:
            from jax.experimental.pallas import triton as plgpu

            blank_occ = sum(jnp.sum(x) for x in ge)
            plgpu.atomic_add(occ_ref, row + d.blank + jnp.zeros((1,), jnp.int32),
                             jnp.reshape(blank_occ, (1,)))
            for c in range(nc):
                plgpu.atomic_add(occ_ref, row + labels[c], go[c], mask=go[c] > 0)
        he = [be[c] + lp_blank for c in range(nc)]
        ho = [bo[c] + lp_label[c] for c in range(nc)]
        base = lax.rem(k, 2) * (2 * w + 2)
        _store(hbuf, base, he, ch)
        _store(hbuf, base + w + 1, ho, ch)
        _barrier(interpret)
        he_next = _load(hbuf, base + 1, nc, ch)
        ho_next = _load(hbuf, base + w + 2, nc, ch)
        reset = t - 1 >= frames - 1
        new_e = [_lse2(he[c], ho[c]) for c in range(nc)]
        new_o = [_lse3(ho[c], he_next[c], jnp.where(skip_next[c], ho_next[c], NEG))
                 for c in range(nc)]
        new_e, new_o, b_off = _normalise(new_e, new_o, b_off, True)
        new_e = [jnp.where(reset, init_e[c], new_e[c]) for c in range(nc)]
        new_o = [jnp.where(reset, init_o[c], new_o[c]) for c in range(nc)]
        b_off = tuple(jnp.where(reset, 0.0, x) for x in b_off)
        return new_e, new_o, b_off

    def segment(r, beta):
        s = n_seg - 1 - r
        t0 = s * seg
        start = ([cke_ref[s, pl.ds(c * ch, ch)] for c in range(nc)],
                 [cko_ref[s, pl.ds(c * ch, ch)] for c in range(nc)],
                 _unpack(ckoff_ref[s, :]))
        lax.fori_loop(0, seg, functools.partial(recompute, t0=t0), start)
        _barrier(interpret)
        beta = lax.fori_loop(0, seg, functools.partial(beta_step, t0=t0), beta)
        _barrier(interpret)
        return beta

    zero = jnp.float32(0.0)
    lax.fori_loop(0, n_seg, segment, (init_e, init_o, (zero, zero)))


def _row(n):
    return pl.BlockSpec((None, n), lambda b: (b, 0))


def _mat(rows, n):
    return pl.BlockSpec((None, rows, n), lambda b: (b, 0, 0))


SCALAR = pl.BlockSpec((1,), lambda b: (b,))


def _params(d: Dims, interpret):
    if interpret:
        return None
    from jax.experimental.pallas import triton as plgpu

    return plgpu.CompilerParams(num_warps=max(1, min(16, d.chunk // 64)), num_stages=1)


def _setup(log_probs, ext, skip, blank):
    """Static sizes and (batch, width) label / skip / next-skip vectors."""
    batch, n_frames, n_classes = log_probs.shape
    n_labels = ext.shape[1] // 2
    chunk = min(MAX_CHUNK, max(16, pl.next_power_of_2(n_labels + 1)))
    n_chunks = -(-(n_labels + 1) // chunk)
    d = Dims(n_frames, n_classes, blank, chunk, n_chunks)
    seg = min(SEG, n_frames)
    n_seg = -(-n_frames // seg)
    pad = ((0, 0), (0, d.width - n_labels))
    lab = jnp.pad(ext[:, 1::2], pad)
    sk = jnp.pad(skip[:, 1::2].astype(jnp.int32), pad)
    skn = jnp.pad(sk[:, 1:], ((0, 0), (0, 1)))
    return d, seg, n_seg, lab, sk, skn


def _forward(lp_flat, lab, sk, frames, d: Dims, seg, n_seg, interpret):
    batch = lp_flat.shape[0]
    f32, w = jnp.float32, d.width
    kernel = functools.partial(_fwd_kernel, d=d, n_seg=n_seg, seg=seg, interpret=interpret)
    return pl.pallas_call(
        kernel,
        grid=(batch,),
        in_specs=[SCALAR, _row(lp_flat.shape[1]), _row(w), _row(w)],
        out_specs=[_row(w), _row(w), _row(OFF), _mat(n_seg, w), _mat(n_seg, w),
                   _mat(n_seg, OFF), _row(2 * w + 2)],
        out_shape=[jax.ShapeDtypeStruct((batch, w), f32)] * 2
        + [jax.ShapeDtypeStruct((batch, OFF), f32)]
        + [jax.ShapeDtypeStruct((batch, n_seg, w), f32)] * 2
        + [jax.ShapeDtypeStruct((batch, n_seg, OFF), f32),
           jax.ShapeDtypeStruct((batch, 2 * w + 2), f32)],
        interpret=interpret, compiler_params=_params(d, interpret), name="lcasr_ctc_fwd",
    )(frames, lp_flat, lab, sk)


def _backward(lp_flat, lab, sk, skn, frames, lablen, ll, ck_e, ck_o, ck_off, d: Dims, seg,
              n_seg, interpret):
    """Occupancies: (batch, frames * classes) on GPU; (ge, go) (batch, padded, width) else."""
    batch, flat = lp_flat.shape
    f32, w = jnp.float32, d.width
    kernel = functools.partial(_bwd_kernel, d=d, n_seg=n_seg, seg=seg, interpret=interpret)
    in_specs = [SCALAR, SCALAR, _row(OFF), _row(flat), _row(w), _row(w), _row(w),
                _mat(n_seg, w), _mat(n_seg, w), _mat(n_seg, OFF)]
    args = [frames, lablen, ll, lp_flat, lab, sk, skn, ck_e, ck_o, ck_off]
    scratch_specs = [_mat(seg, 2 * w + OFF), _row(2 * w + 2), _row(4 * w + 4)]
    scratch_shapes = [jax.ShapeDtypeStruct((batch, seg, 2 * w + OFF), f32),
                      jax.ShapeDtypeStruct((batch, 2 * w + 2), f32),
                      jax.ShapeDtypeStruct((batch, 4 * w + 4), f32)]
    if interpret:
        padded = n_seg * seg
        out_specs = [_mat(padded, w)] * 2 + scratch_specs
        out_shape = [jax.ShapeDtypeStruct((batch, padded, w), f32)] * 2 + scratch_shapes
        aliases = {}
    else:
        in_specs.append(_row(flat))
        args.append(jnp.zeros((batch, flat), f32))
        out_specs = [_row(flat)] + scratch_specs
        out_shape = [jax.ShapeDtypeStruct((batch, flat), f32)] + scratch_shapes
        aliases = {len(args) - 1: 0}
    out = pl.pallas_call(
        kernel, grid=(batch,), in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
        input_output_aliases=aliases, interpret=interpret,
        compiler_params=_params(d, interpret), name="lcasr_ctc_bwd",
    )(*args)
    return out[:2] if interpret else out[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _nll(log_probs, ext, skip, lablen, frames, blank, interpret):
    return _nll_fwd(log_probs, ext, skip, lablen, frames, blank, interpret)[0]


def _nll_fwd(log_probs, ext, skip, lablen, frames, blank, interpret):
    batch = log_probs.shape[0]
    d, seg, n_seg, lab, sk, _ = _setup(log_probs, ext, skip, blank)
    lp_flat = log_probs.reshape(batch, -1)
    e, o, off, ck_e, ck_o, ck_off, _ = _forward(lp_flat, lab, sk, frames, d, seg, n_seg,
                                                 interpret)
    idx = jnp.arange(d.width)[None]
    end_e = jnp.where(idx == lablen[:, None], e, NEG)
    end_o = jnp.where(idx == lablen[:, None] - 1, o, NEG)
    tail = jax.nn.logsumexp(jnp.concatenate([end_e, end_o], axis=1), axis=1)
    ll = df_add((off[:, 0], off[:, 1]), (tail, jnp.zeros_like(tail)))
    ll_vec = jnp.zeros((batch, OFF), jnp.float32).at[:, 0].set(ll[0]).at[:, 1].set(ll[1])
    return -(ll[0] + ll[1]), (log_probs, ext, skip, lablen, frames, ll_vec, ck_e, ck_o, ck_off)


def _nll_bwd(blank, interpret, res, g):
    log_probs, ext, skip, lablen, frames, ll, ck_e, ck_o, ck_off = res
    batch, n_frames, n_classes = log_probs.shape
    d, seg, n_seg, lab, sk, skn = _setup(log_probs, ext, skip, blank)
    lp_flat = log_probs.reshape(batch, -1)
    out = _backward(lp_flat, lab, sk, skn, frames, lablen, ll, ck_e, ck_o, ck_off, d, seg,
                    n_seg, interpret)
    if interpret:
        ge, go = out
        occ = jnp.zeros((batch, n_seg * seg, n_classes), jnp.float32)
        occ = occ.at[jnp.arange(batch)[:, None, None], jnp.arange(n_seg * seg)[None, :, None],
                     lab[:, None, :]].add(go)
        occ = occ.at[:, :, blank].add(jnp.sum(ge, axis=2))[:, :n_frames]
    else:
        occ = out.reshape(batch, n_frames, n_classes)
    scale = jnp.where(ll[:, 0] > NEG / 2, -g, 0.0)[:, None, None]
    return scale * occ, None, None, None, None


_nll.defvjp(_nll_fwd, _nll_bwd)


def ctc_nll(log_probs, ext, skip, label_lengths, frames, *, blank_id: int,
            interpret: bool = False):
    """-log p(labels | log_probs): (batch,) float32; see ctc.ctc_loss for the arguments.

    ext, skip: (batch, 2L+1) from ctc.extended_labels; label_lengths, frames: (batch,) int32.
    """
    batch, n_frames, n_classes = log_probs.shape
    if n_frames * n_classes >= 2**31:
        raise ValueError(f"ctc_pallas.py: {n_frames} frames x {n_classes} classes overflow the "
                         "kernel's int32 offsets; use implementation='xla'")
    if batch > 1 and batch * n_frames * n_classes >= 2**31:  # keep kernel offsets in int32
        return jnp.concatenate([
            ctc_nll(log_probs[b:b + 1], ext[b:b + 1], skip[b:b + 1], label_lengths[b:b + 1],
                    frames[b:b + 1], blank_id=blank_id, interpret=interpret)
            for b in range(batch)])
    return _nll(log_probs, ext, skip, label_lengths.astype(jnp.int32), frames.astype(jnp.int32),
                int(blank_id), interpret)
