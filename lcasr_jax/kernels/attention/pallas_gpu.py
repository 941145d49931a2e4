"""Flash attention in Pallas (Triton lowering on GPU; interpret mode on CPU).

Key padding comes from per-item lengths and a two-sided local window (left, right) limits
the keys of query i to [i - left, i + right]. For every block of rows the kernels compute
which column blocks intersect the window (loop bounds), so blocks outside it are never
visited; blocks wholly inside the window and the valid length skip the mask arithmetic.
Padded query rows give exact zeros, forward and backward.

Layout (batch, time, heads, head_dim) throughout; time is padded to a block multiple here.
Scores are kept in base 2 (exp2 with log2(e) folded into the scale); lse is stored in base 2.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

MASK = -1e30  # finite: a row that sees no key in a block never makes inf - inf
LOG2E = math.log2(math.e)


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tiles (rows, columns; powers of 2) and Triton launch settings (num_warps,
    num_stages) of the three kernels; the defaults come from an H100 sweep in bf16
    (benchmarks/attention.py, benchmarks/RESULTS.md)."""

    fwd: tuple[int, int] = (128, 64)
    dkdv: tuple[int, int] = (64, 128)
    dq: tuple[int, int] = (128, 64)
    fwd_warps: tuple[int, int] = (8, 3)
    dkdv_warps: tuple[int, int] = (8, 3)
    dq_warps: tuple[int, int] = (8, 3)


@functools.lru_cache
def _compiler_params(num_warps: int, num_stages: int):
    return plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages)


def _cdiv(a, b: int):
    return lax.div(a + (b - 1), b)


def _block_range(r0, n_rows: int, bc: int, length, before: int, after: int):
    """Column blocks that rows [r0, r0 + n_rows) need, where row r sees columns
    [r - before, r + after] (-1 = unbounded) below `length`.

    Returns (lo, full_lo, full_hi, hi): visit blocks [lo, hi); blocks in [full_lo, full_hi)
    need no mask (every row and column valid and inside the window).
    """
    r_last = r0 + n_rows - 1
    c_lo = jnp.maximum(r0 - before, 0) if before >= 0 else jnp.int32(0)
    c_hi = jnp.minimum(r_last + after + 1, length) if after >= 0 else length
    lo = lax.div(c_lo, bc)
    hi = jnp.maximum(jnp.where(r0 < length, _cdiv(jnp.maximum(c_hi, 0), bc), lo), lo)
    full_lo = _cdiv(jnp.maximum(r_last - before, 0), bc) if before >= 0 else jnp.int32(0)
    full_hi = lax.div(length, bc)
    if after >= 0:
        full_hi = jnp.minimum(full_hi, lax.div(r0 + after + 1, bc))
    full_lo = jnp.minimum(jnp.maximum(full_lo, lo), hi)
    full_hi = jnp.minimum(jnp.maximum(full_hi, full_lo), hi)
    full_hi = jnp.where(r0 + n_rows <= length, full_hi, full_lo)
    return lo, full_lo, full_hi, hi


def _mask(rows, cols, length, before: int, after: int):
    """(len(rows), len(cols)) bool: row and column valid, column inside the row's window."""
    ok = (rows[:, None] < length) & (cols[None, :] < length)
    if before >= 0:
        ok &= cols[None, :] >= rows[:, None] - before
    if after >= 0:
        ok &= cols[None, :] <= rows[:, None] + after
    return ok


def _three_loops(lo, full_lo, full_hi, hi, body, carry):
    carry = lax.fori_loop(lo, full_lo, functools.partial(body, masked=True), carry)
    carry = lax.fori_loop(full_lo, full_hi, functools.partial(body, masked=False), carry)
    return lax.fori_loop(full_hi, hi, functools.partial(body, masked=True), carry)


def _tile(len_ref, block: int):
    """(valid length, first row of this program's block, its rows (block,))."""
    start = pl.program_id(0) * block
    return len_ref[0], start, start + jnp.arange(block)


def _fwd_kernel(len_ref, q_ref, k_ref, v_ref, o_ref, lse_ref, *, scale, window, bq, bk):
    length, q0, rows = _tile(len_ref, bq)
    left, right = window
    q = q_ref[...]
    c = scale * LOG2E

    def body(j, carry, masked):
        acc, m, denom = carry
        k = k_ref[pl.ds(j * bk, bk), :]
        v = v_ref[pl.ds(j * bk, bk), :]
        s = plgpu.dot(q, k, trans_b=True) * c
        if masked:
            s = jnp.where(_mask(rows, j * bk + jnp.arange(bk), length, left, right), s, MASK)
        m_new = jnp.maximum(m, jnp.max(s, axis=1))
        corr = jnp.exp2(m - m_new)
        p = jnp.exp2(s - m_new[:, None])
        denom = denom * corr + jnp.sum(p, axis=1)
        acc = acc * corr[:, None] + plgpu.dot(p.astype(v.dtype), v)
        return acc, m_new, denom

    init = (jnp.zeros(q.shape, jnp.float32), jnp.full((bq,), MASK, jnp.float32),
            jnp.zeros((bq,), jnp.float32))
    bounds = _block_range(q0, bq, bk, length, left, right)
    acc, m, denom = _three_loops(*bounds, body, init)
    valid = rows < length
    safe = jnp.where(denom > 0, denom, 1.0)
    out = acc / safe[:, None]
    o_ref[...] = jnp.where(valid[:, None], out, 0.0).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(valid & (denom > 0), m + jnp.log2(safe), jnp.inf)


def _dkdv_kernel(len_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, dk_ref, dv_ref, *,
                 scale, window, bq, bk):
    length, k0, keys = _tile(len_ref, bk)
    left, right = window
    k, v = k_ref[...], v_ref[...]
    c = scale * LOG2E

    def body(i, carry, masked):
        dk, dv = carry
        q = q_ref[pl.ds(i * bq, bq), :]
        do = do_ref[pl.ds(i * bq, bq), :]
        lse = lse_ref[pl.ds(i * bq, bq)]
        delta = delta_ref[pl.ds(i * bq, bq)]
        st = plgpu.dot(k, q, trans_b=True) * c  # (bk, bq): scores transposed
        pt = jnp.exp2(st - lse[None, :])
        if masked:
            # query i sees key j iff i - left <= j <= i + right <=> j - right <= i <= j + left
            pt = jnp.where(_mask(keys, i * bq + jnp.arange(bq), length, right, left), pt, 0.0)
        dv = dv + plgpu.dot(pt.astype(do.dtype), do)
        dpt = plgpu.dot(v, do, trans_b=True)
        dst = pt * (dpt - delta[None, :])
        dk = dk + plgpu.dot(dst.astype(q.dtype), q)
        return dk, dv

    init = (jnp.zeros(k.shape, jnp.float32), jnp.zeros(v.shape, jnp.float32))
    bounds = _block_range(k0, bk, bq, length, right, left)
    dk, dv = _three_loops(*bounds, body, init)
    dk_ref[...] = (dk * scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def _dq_kernel(len_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, dq_ref, *,
               scale, window, bq, bk):
    length, q0, rows = _tile(len_ref, bq)
    left, right = window
    q, do, lse, delta = q_ref[...], do_ref[...], lse_ref[...], delta_ref[...]
    c = scale * LOG2E

    def body(j, dq, masked):
        k = k_ref[pl.ds(j * bk, bk), :]
        v = v_ref[pl.ds(j * bk, bk), :]
        p = jnp.exp2(plgpu.dot(q, k, trans_b=True) * c - lse[:, None])
        if masked:
            p = jnp.where(_mask(rows, j * bk + jnp.arange(bk), length, left, right), p, 0.0)
        dp = plgpu.dot(do, v, trans_b=True)
        ds = p * (dp - delta[:, None])
        return dq + plgpu.dot(ds.astype(k.dtype), k)

    bounds = _block_range(q0, bq, bk, length, left, right)
    dq = _three_loops(*bounds, body, jnp.zeros(q.shape, jnp.float32))
    dq_ref[...] = (dq * scale).astype(dq_ref.dtype)


def _specs(block: int | None, time: int, dim: int):
    """BlockSpecs over (batch, time, heads, dim) for grid (time_block, batch, head)."""
    if block is None:
        return pl.BlockSpec((None, time, None, dim), lambda i, b, h: (b, 0, h, 0))
    return pl.BlockSpec((None, block, None, dim), lambda i, b, h: (b, i, h, 0))


def _row_spec(block: int | None, time: int):
    """BlockSpecs over (batch, heads, time) float32 rows (lse, delta)."""
    if block is None:
        return pl.BlockSpec((None, None, time), lambda i, b, h: (b, h, 0))
    return pl.BlockSpec((None, None, block), lambda i, b, h: (b, h, i))


LEN_SPEC = pl.BlockSpec((1,), lambda i, b, h: (b,))


def _forward(q, k, v, lengths, window, scale, sizes: BlockSizes, interpret: bool):
    batch, time, heads, dim = q.shape
    bq, bk = sizes.fwd
    kernel = functools.partial(_fwd_kernel, scale=scale, window=window, bq=bq, bk=bk)
    return pl.pallas_call(
        kernel,
        grid=(time // bq, batch, heads),
        in_specs=[LEN_SPEC, _specs(bq, time, dim), _specs(None, time, dim),
                  _specs(None, time, dim)],
        out_specs=[_specs(bq, time, dim), _row_spec(bq, time)],
        out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                   jax.ShapeDtypeStruct((batch, heads, time), jnp.float32)],
        interpret=interpret,
        compiler_params=None if interpret else _compiler_params(*sizes.fwd_warps),
        name="lcasr_flash_fwd",
    )(lengths, q, k, v)


def _backward(q, k, v, lengths, out, lse, do, window, scale, sizes: BlockSizes,
              interpret: bool):
    batch, time, heads, dim = q.shape
    valid = jnp.arange(time)[None, :, None, None] < lengths[:, None, None, None]
    do = jnp.where(valid, do, 0).astype(q.dtype)
    delta = jnp.sum(out.astype(jnp.float32) * do.astype(jnp.float32), axis=-1)
    delta = delta.transpose(0, 2, 1)  # (batch, heads, time)
    common = dict(interpret=interpret)
    bq, bk = sizes.dkdv
    dk, dv = pl.pallas_call(
        functools.partial(_dkdv_kernel, scale=scale, window=window, bq=bq, bk=bk),
        grid=(time // bk, batch, heads),
        in_specs=[LEN_SPEC, _specs(None, time, dim), _specs(bk, time, dim),
                  _specs(bk, time, dim), _specs(None, time, dim), _row_spec(None, time),
                  _row_spec(None, time)],
        out_specs=[_specs(bk, time, dim), _specs(bk, time, dim)],
        out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype),
                   jax.ShapeDtypeStruct(v.shape, v.dtype)],
        compiler_params=None if interpret else _compiler_params(*sizes.dkdv_warps),
        name="lcasr_flash_dkdv", **common,
    )(lengths, q, k, v, do, lse, delta)
    bq, bk = sizes.dq
    dq = pl.pallas_call(
        functools.partial(_dq_kernel, scale=scale, window=window, bq=bq, bk=bk),
        grid=(time // bq, batch, heads),
        in_specs=[LEN_SPEC, _specs(bq, time, dim), _specs(None, time, dim),
                  _specs(None, time, dim), _specs(bq, time, dim), _row_spec(bq, time),
                  _row_spec(bq, time)],
        out_specs=_specs(bq, time, dim),
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=None if interpret else _compiler_params(*sizes.dq_warps),
        name="lcasr_flash_dq", **common,
    )(lengths, q, k, v, do, lse, delta)
    return dq, dk, dv


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def _flash(q, k, v, lengths, window, scale, sizes, interpret):
    return _forward(q, k, v, lengths, window, scale, sizes, interpret)[0]


def _flash_fwd(q, k, v, lengths, window, scale, sizes, interpret):
    out, lse = _forward(q, k, v, lengths, window, scale, sizes, interpret)
    return out, (q, k, v, lengths, out, lse)


def _flash_bwd(window, scale, sizes, interpret, res, do):
    q, k, v, lengths, out, lse = res
    dq, dk, dv = _backward(q, k, v, lengths, out, lse, do, window, scale, sizes, interpret)
    return dq, dk, dv, None


_flash.defvjp(_flash_fwd, _flash_bwd)

def pallas_attention(q, k, v, lengths=None, *, window=(-1, -1), scale=None,
                     interpret: bool | None = None, sizes: BlockSizes | None = None):
    """Flash attention; see `lcasr_jax.kernels.attention.dot_product_attention`.

    Tuned and measured for 16-bit inputs on an H100; float32 inputs work in interpret mode
    but the default tiles were not sized (shared memory) or tested for float32 on a GPU.
    `sizes`: the kernels' tiles and Triton launch settings (None: `BlockSizes()`);
    `interpret` None: interpret mode unless the default backend is a GPU.
    """
    batch, time, heads, dim = q.shape
    if dim & (dim - 1):
        raise ValueError(f"kernels/attention/pallas_gpu.py: head_dim must be a power of 2, "
                         f"got {dim}")
    if scale is None:
        scale = dim ** -0.5
    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    sizes = sizes or BlockSizes()
    if lengths is None:
        lengths = jnp.full((batch,), time, jnp.int32)
    lengths = jnp.minimum(lengths.astype(jnp.int32), time)
    multiple = max(max(b) for b in (sizes.fwd, sizes.dkdv, sizes.dq))
    padded = -(-time // multiple) * multiple
    pad = ((0, 0), (0, padded - time), (0, 0), (0, 0))
    qp, kp, vp = (jnp.pad(x, pad) for x in (q, k, v))
    window = (int(window[0]), int(window[1]))
    out = _flash(qp, kp, vp, lengths, window, float(scale), sizes, bool(interpret))
    return out[:, :time]
