"""Attention backends at one hour of tokens: forward and forward+backward, full and windowed.

Usage (GPU): PYTHONPATH=. python3 benchmarks/attention.py [--check] [--tokens 45000]
  --check   first compares each GPU backend with a float32 HIGHEST-precision XLA reference
            at a moderate size (odd lengths, padding, windows): output and gradients.
Prints markdown tables: ms, TFLOP/s (useful pairs only: 4*d per pair forward, 3.5x that
forward+backward) and the speed ratio to the issue's anchors (jax cuDNN on an H100:
10.8 ms forward, 39.3 ms forward+backward at 45,000 tokens, 6 x 128, bf16).
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
from bench_utils import header, table, temp_bytes, time_ms

from lcasr_jax.kernels import attention
from lcasr_jax.kernels.attention.pallas_gpu import BlockSizes, pallas_attention
from lcasr_jax.kernels.attention.xla import xla_attention

ANCHOR_FWD_MS, ANCHOR_FWDBWD_MS = 10.8, 39.3


def pairs(lengths, window) -> int:
    """Number of (query, key) pairs the mask allows, summed over the batch."""
    total = 0
    for n in np.asarray(lengths):
        i = np.arange(n)
        lo = np.zeros(n) if window[0] < 0 else np.maximum(i - window[0], 0)
        hi = np.full(n, n - 1) if window[1] < 0 else np.minimum(i + window[1], n - 1)
        total += int(np.sum(hi - lo + 1))
    return total


def make_fns(fn):
    fwd = jax.jit(fn)

    def fwd_bwd(q, k, v, lengths, do):
        out, vjp = jax.vjp(lambda q, k, v: fn(q, k, v, lengths), q, k, v)
        return out, vjp(do)

    return fwd, jax.jit(fwd_bwd)


def backend(name, window, **kw):
    if name == "pallas_gpu":
        return lambda q, k, v, n: pallas_attention(q, k, v, n, window=window, **kw)
    if name == "xla":
        return lambda q, k, v, n: xla_attention(q, k, v, n, window=window)
    return lambda q, k, v, n: attention.dot_product_attention(q, k, v, n, window=window,
                                                              implementation=name)


def inputs(key, batch, time, heads, dim, dtype):
    ks = jax.random.split(key, 4)
    return [jax.random.normal(k, (batch, time, heads, dim), jnp.float32).astype(dtype)
            for k in ks]


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check(backends) -> list[dict]:
    """Each backend vs float32 HIGHEST XLA on the same bf16 values (2 x 4099, heads 2)."""
    q, k, v, do = inputs(jax.random.PRNGKey(1), 2, 4099, 2, 128, jnp.bfloat16)
    lengths = jnp.array([4099, 3001], jnp.int32)
    rows = []
    for window in [(-1, -1), (256, 256), (-1, 100), (300, 0)]:
        with jax.default_matmul_precision("highest"):
            f32 = [x.astype(jnp.float32) for x in (q, k, v, do)]
            _, ref_fb = make_fns(backend("xla", window))
            ref_out, ref_grads = ref_fb(*f32[:3], lengths, f32[3])
        for name in backends:
            if name == "cudnn" and window != (-1, -1):
                continue
            _, fb = make_fns(backend(name, window))
            try:
                out, grads = fb(q, k, v, lengths, do)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"check {name} {window}: FAILED {type(e).__name__}: {e}"[:800], flush=True)
                rows.append(dict(backend=name, window=str(window), ok=False))
                continue
            finite = all(bool(jnp.all(jnp.isfinite(x))) for x in (out, *grads))
            pad_zero = bool(jnp.all(out[1, 3001:] == 0)) and bool(jnp.all(grads[0][1, 3001:] == 0))
            row = dict(backend=name, window=str(window), out=rel_err(out, ref_out),
                       dq=rel_err(grads[0], ref_grads[0]), dk=rel_err(grads[1], ref_grads[1]),
                       dv=rel_err(grads[2], ref_grads[2]), finite=finite, pad_rows_zero=pad_zero)
            worst = max(row[c] for c in ("out", "dq", "dk", "dv"))
            row["ok"] = finite and pad_zero and worst < 2e-2
            rows.append(row)
            print(row, flush=True)
    return rows


def bench(args) -> list[dict]:
    time_, heads, dim = args.tokens, 6, 128
    q, k, v, do = inputs(jax.random.PRNGKey(0), 1, time_, heads, dim, jnp.bfloat16)
    rows = []
    windows = {"full": (-1, -1), "±128": (128, 128), "±512": (512, 512), "±2048": (2048, 2048)}
    cases = [(w, time_) for w in windows] + [("full", args.padded), ("±512", args.padded)]
    configs = {"": {}}
    if args.sweep:
        # Variants around the default (fwd 128x64, dK/dV 64x128, dQ 128x64; 8 warps, 3 stages).
        configs = {
            "": {},
            " bwd-s4": dict(sizes=BlockSizes(dkdv_warps=(8, 4), dq_warps=(8, 4))),
            " fwd-s4": dict(sizes=BlockSizes(fwd_warps=(8, 4))),
            " fwd128x32-w4": dict(sizes=BlockSizes(fwd=(128, 32), fwd_warps=(4, 3))),
            " dq64x64-w4": dict(sizes=BlockSizes(dq=(64, 64), dq_warps=(4, 3))),
            " dq128x32-w4": dict(sizes=BlockSizes(dq=(128, 32), dq_warps=(4, 3))),
            " dkdv32x128": dict(sizes=BlockSizes(dkdv=(32, 128))),
            " dkdv64x64-w4": dict(sizes=BlockSizes(dkdv=(64, 64), dkdv_warps=(4, 3))),
        }
    if args.full_only:
        cases = [("full", time_)]
    for wname, length in cases:
        window = windows[wname]
        lengths = jnp.array([length], jnp.int32)
        n_pairs = pairs([length], window)
        flops = 4 * dim * heads * n_pairs
        names = list(args.backends)
        for name in names:
            if name == "cudnn" and window != (-1, -1):
                continue
            if name == "xla" and wname not in ("full", "±512"):
                continue
            variants = configs if (name == "pallas_gpu" and length == time_ and
                                   wname == "full") else {"": {}}
            for cfg_name, cfg in variants.items():
                fwd, fb = make_fns(backend(name, window, **cfg))
                try:
                    t_f = time_ms(fwd, q, k, v, lengths, reps=args.reps)
                    t_fb = time_ms(fb, q, k, v, lengths, do, reps=args.reps)
                except Exception as e:  # noqa: BLE001 - report and go on
                    print(f"{name}{cfg_name} {wname}: FAILED {type(e).__name__}: {e}"[:500],
                          flush=True)
                    continue
                row = dict(backend=name + cfg_name, window=wname, length=length,
                           fwd_ms=t_f, fwdbwd_ms=t_fb,
                           fwd_tflops=flops / t_f / 1e9, fwdbwd_tflops=3.5 * flops / t_fb / 1e9,
                           vs_cudnn_anchor_fwd=ANCHOR_FWD_MS / t_f,
                           vs_cudnn_anchor_fwdbwd=ANCHOR_FWDBWD_MS / t_fb)
                rows.append(row)
                print(row, flush=True)
    return rows


def memory_scaling(backends, sizes) -> list[dict]:
    """XLA temp bytes of compiled fwd+bwd (full attention) vs length: linear or not."""
    rows = []
    for name in backends:
        row = dict(backend=name)
        for n in sizes:
            q = jax.ShapeDtypeStruct((1, n, 6, 128), jnp.bfloat16)
            lengths = jax.ShapeDtypeStruct((1,), jnp.int32)
            _, fb = make_fns(backend(name, (-1, -1)))
            mem = temp_bytes(fb, q, q, q, lengths, q)
            row[f"T={n}"] = "" if mem is None else f"{mem / 2**20:.0f} MiB"
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokens", type=int, default=45000)
    p.add_argument("--padded", type=int, default=40000, help="valid length of padded cases")
    p.add_argument("--backends", nargs="+", default=None)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--check", action="store_true")
    p.add_argument("--sweep", action="store_true", help="try a few Pallas tile settings")
    p.add_argument("--memory", action="store_true", help="report XLA temp bytes (fwd+bwd)")
    p.add_argument("--full-only", action="store_true", help="only full attention, all tokens")
    args = p.parse_args(argv)
    if args.backends is None:
        args.backends = ["cudnn", "pallas_gpu", "xla"] if jax.default_backend() == "gpu" \
            else ["xla"]
    print(header(), flush=True)
    if args.check:
        rows = check([b for b in args.backends if b != "xla"])
        print(table(rows, ["backend", "window", "out", "dq", "dk", "dv", "finite",
                           "pad_rows_zero", "ok"]))
        if not all(r["ok"] for r in rows):
            print("CHECK FAILED", file=sys.stderr)
    if args.memory:
        sizes = [args.tokens // 4, args.tokens // 2, args.tokens]
        try:
            mem_rows = memory_scaling(args.backends, sizes)
            print(table(mem_rows, ["backend"] + [f"T={n}" for n in sizes]))
        except Exception as e:  # noqa: BLE001
            print(f"memory scaling FAILED {type(e).__name__}: {e}"[:800], flush=True)
    rows = bench(args)
    print(f"\n{header()}\nattention, batch 1, {args.tokens} tokens, 6 heads x 128, bf16")
    print(table(rows, ["backend", "window", "length", "fwd_ms", "fwdbwd_ms", "fwd_tflops",
                       "fwdbwd_tflops", "vs_cudnn_anchor_fwd", "vs_cudnn_anchor_fwdbwd"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
