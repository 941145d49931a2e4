"""Attention capture on a long window: time and device memory of the attended-distance summary.

Usage: python benchmarks/analysis_attention.py [--small] [--seconds 3600] [--block-q 128]

Model: the paper's 6L-768D SCConformerXL with random weights, bf16 compute; `--small` is a
tiny config for a CPU smoke run. Prints JSON: tokens, capture_s (forward keeping q/k),
summary_s (distance sums of all layers, block by block over queries), the peak device
memory when the backend reports it, and the share of mass beyond 10/30/60 s of layer 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny model (CPU smoke run)")
    p.add_argument("--seconds", type=float, default=3600.0)
    p.add_argument("--block-q", type=int, default=128)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from bench_utils import bench_config

    from lcasr_jax.analysis import attention
    from lcasr_jax.model import SCConformerXL

    cfg = bench_config(args.small)
    model = SCConformerXL(cfg, dtype=jnp.bfloat16)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 80, 64)))
    frames = int(args.seconds * 100)
    spec = jax.random.normal(jax.random.PRNGKey(1), (1, 80, frames), jnp.float32)
    spt = cfg.subsampling_factor * 0.01

    def run():
        t0 = time.perf_counter()
        cap = attention.capture(model, variables, spec)
        jax.block_until_ready(cap.q)
        t1 = time.perf_counter()
        summary = attention.DistanceSummary.empty(
            cfg.n_layers, cfg.n_heads, attention.default_edges(cap.q[0].shape[1]), spt)
        summary.add(cap, block_q=args.block_q)
        return cap, summary, t1 - t0, time.perf_counter() - t1

    run()  # compile
    cap, summary, capture_s, summary_s = run()
    stats = jax.devices()[0].memory_stats() or {}
    out = {"device": jax.devices()[0].device_kind, "seconds": args.seconds,
           "tokens": int(cap.q[0].shape[1]), "capture_s": round(capture_s, 3),
           "summary_s": round(summary_s, 3),
           "peak_gib": round(stats.get("peak_bytes_in_use", 0) / 2**30, 2),
           **{f"layer0_beyond_{s:g}s": float(np.round(summary.share_beyond(s)[0].mean(), 5))
              for s in attention.THRESHOLDS_S}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
