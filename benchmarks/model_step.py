"""Training-step and forward time / peak memory of the paper 6L-768D model (bf16, 1 device).

Each case is MODE@FRAMESxBATCH[+remat|+rematlayers][+pallas|+xlactc], MODE in {step, fwd}
(+remat: remat policy 'full', +rematlayers: 'layers'; CTC 'auto' = the Pallas wavefront on
GPU; +pallas forces it, +xlactc takes the XLA scan, e.g. to attribute memory): `step` is the
full jitted train
step (forward with batch-renorm statistics and self-conditioning, CTC, backward, torch-style
clipping, MADGRAD update, state donated); `fwd` is the eval forward to log-probs. Cases run
in the order given in ONE process, so list them by growing memory: `peak_gib` is the
device's peak_bytes_in_use so far (jax memory_stats); `xla_gib` is XLA's own estimate for
that executable (arguments + outputs + temporaries - aliased).

  PYTHONPATH=. python3 benchmarks/model_step.py --cases step@4096x8,step@360000x1+remat
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from lcasr_jax.configs import load_config

REPO = Path(__file__).resolve().parents[1]
GIB = 2.0**30


def paper_config(remat: str, ctc_impl: str = "auto"):
    cfg = load_config(f"{REPO / 'experiments' / 'paper.py'}:rb_6l_768d_6h")
    cfg.train.update(remat=remat, compute_dtype="bfloat16", ctc_impl=ctc_impl)
    cfg.mesh.update(data=1, fsdp=1, seq=1)
    return cfg


def make_batch(frames: int, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random features and ~3 tokens/s targets (the corpus rate), all rows full length."""
    rng = np.random.default_rng(seed)
    n_tok = min(max(1, frames * 3 // 100), -(-frames // 8) // 2)
    return {"spec": rng.normal(size=(batch, 80, frames)).astype(np.float32),
            "lengths": np.full((batch,), frames, np.int32),
            "targets": rng.integers(3, 4095, size=(batch, n_tok)).astype(np.int32),
            "target_lengths": np.full((batch,), n_tok, np.int32)}


def _xla_bytes(compiled) -> float:
    m = compiled.memory_analysis()
    if m is None:
        return float("nan")
    return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            - m.alias_size_in_bytes)


def _peak() -> float:
    stats = jax.devices()[0].memory_stats() or {}
    return float(stats.get("peak_bytes_in_use", float("nan")))


def run_case(case: str, repeats: int) -> dict:
    from lcasr_jax.sharding import make_mesh, put_batch
    from lcasr_jax.train import step as step_lib
    from lcasr_jax.train.state import build_model

    mode, shape = case.split("@")
    shape, *flags = shape.split("+")
    remat = "full" if "remat" in flags else "layers" if "rematlayers" in flags else "none"
    frames, batch = (int(x) for x in shape.split("x"))
    ctc_impl = "pallas_gpu" if "pallas" in flags else "xla" if "xlactc" in flags else "auto"
    cfg = paper_config(remat, ctc_impl)
    mesh = make_mesh(1, 1, 1, devices=jax.devices()[:1])
    model = build_model(cfg)
    shardings = step_lib.state_shardings(model, cfg, mesh)
    state = step_lib.jit_create_state(model, cfg, shardings)()
    host = make_batch(frames, batch)
    dev_batch = put_batch(host, mesh)
    t0 = time.perf_counter()
    if mode == "step":
        fn = step_lib.jit_train_step(model, cfg, mesh, shardings)
        lr = np.float32(1e-4)
        compiled = fn.lower(state, dev_batch, lr, np.bool_(False)).compile()

        def once(state):
            state, metrics = compiled(state, dev_batch, lr, np.bool_(False))
            jax.block_until_ready(metrics)
            return state, float(metrics["loss"])
    elif mode == "fwd":
        apply = jax.jit(lambda v, s, n: model.apply(v, s, n)["final_posteriors"])
        variables = state.variables()
        compiled = apply.lower(variables, dev_batch["spec"], dev_batch["lengths"]).compile()

        def once(state):
            out = compiled(variables, dev_batch["spec"], dev_batch["lengths"])
            out.block_until_ready()
            return state, float("nan")
    else:
        raise ValueError(f"{case}: mode must be step or fwd")
    compile_s = time.perf_counter() - t0
    state, loss = once(state)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state, loss = once(state)
        times.append(time.perf_counter() - t)
    return {"case": case, "frames": frames, "batch": batch, "remat": remat,
            "ctc": cfg.train.ctc_impl,
            "median_s": float(np.median(times)), "min_s": float(np.min(times)),
            "compile_s": compile_s, "peak_gib": _peak() / GIB,
            "xla_gib": _xla_bytes(compiled) / GIB, "loss": loss}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="step@4096x8,step@360000x1+remat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="", help="append JSON lines here")
    args = p.parse_args(argv)
    dev = jax.devices()[0]
    print(f"# {dev.device_kind} | jax {jax.__version__} | "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    print("| case | median s | min s | compile s | peak GiB | XLA GiB |", flush=True)
    for case in args.cases.split(","):
        try:
            r = run_case(case, args.repeats)
        except Exception as e:  # noqa: BLE001 - report OOM etc. and go on
            r = {"case": case, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
            print(f"| {case} | {r['error']} |", flush=True)
        else:
            print(f"| {case} | {r['median_s']:.4f} | {r['min_s']:.4f} | {r['compile_s']:.1f} | "
                  f"{r['peak_gib']:.2f} | {r['xla_gib']:.2f} |", flush=True)
        r.update(device=dev.device_kind, jax=jax.__version__)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(r) + "\n")
        jax.clear_caches()
    return 0


if __name__ == "__main__":
    sys.exit(main())
