"""Training-step and forward time / peak memory of the paper 6L-768D model (bf16, 1 device).

Each case is MODE@FRAMESxBATCH[+FLAG...], MODE in {step, fwd}; flags: +remat (remat policy
'full'), +rematlayers ('layers'), +saveattn ('save_attention'); +nochunk (subsampling
unchunked, `subsampling_chunk_frames=0`); +wN (attention window of ±N tokens); CTC 'auto' =
the Pallas wavefront on GPU, +pallas forces it, +xlactc takes the XLA scan: `step` is the
full jitted train
step (forward with batch-renorm statistics and self-conditioning, CTC, backward, torch-style
clipping, MADGRAD update, state donated); `fwd` is the eval forward to log-probs. Cases run
in the order given in ONE process, so list them by growing memory: `peak_gib` is the
device's peak_bytes_in_use so far (jax memory_stats: run one case per process for its own
peak; with --lock several processes compile side by side and take turns on the device,
without XLA_PYTHON_CLIENT_PREALLOCATE=false they would each take 75% of it); `xla_gib` is
XLA's own estimate for that executable (arguments + outputs + temporaries - aliased).

  PYTHONPATH=. python3 benchmarks/model_step.py --cases step@4096x8,step@360000x1+remat
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np

from lcasr_jax.configs import load_config

REPO = Path(__file__).resolve().parents[1]
GIB = 2.0**30


def paper_config(remat: str, ctc_impl: str = "auto", chunk_frames: int | None = None,
                 window: int = -1):
    cfg = load_config(f"{REPO / 'experiments' / 'paper.py'}:rb_6l_768d_6h")
    cfg.train.update(remat=remat, compute_dtype="bfloat16", ctc_impl=ctc_impl)
    if chunk_frames is not None:
        cfg.train.subsampling_chunk_frames = chunk_frames
    cfg.model.attention_window = (window, window)
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


def parse_case(case: str) -> tuple[str, int, int, dict]:
    """'MODE@FRAMESxBATCH+FLAGS' -> (mode, frames, batch, paper_config kwargs)."""
    mode, shape = case.split("@")
    shape, *flags = shape.split("+")
    remat = ("full" if "remat" in flags else "layers" if "rematlayers" in flags
             else "save_attention" if "saveattn" in flags else "none")
    frames, batch = (int(x) for x in shape.split("x"))
    ctc_impl = "pallas_gpu" if "pallas" in flags else "xla" if "xlactc" in flags else "auto"
    windows = [int(f[1:]) for f in flags if re.fullmatch(r"w\d+", f)]
    return mode, frames, batch, dict(remat=remat, ctc_impl=ctc_impl,
                                     chunk_frames=0 if "nochunk" in flags else None,
                                     window=windows[0] if windows else -1)


def one_device_step(cfg, frames: int, batch: int):
    """(model, initial state, device batch, jitted train step) of `cfg` on one device."""
    from lcasr_jax.sharding import make_mesh, put_batch
    from lcasr_jax.train import step as step_lib
    from lcasr_jax.train.state import build_model

    cfg.mesh.update(data=1, fsdp=1, seq=1)
    mesh = make_mesh(1, 1, 1, devices=jax.devices()[:1])
    model = build_model(cfg)
    shardings = step_lib.state_shardings(model, cfg, mesh)
    state = step_lib.jit_create_state(model, cfg, shardings)()
    dev_batch = put_batch(make_batch(frames, batch), mesh)
    return model, state, dev_batch, step_lib.jit_train_step(model, cfg, mesh, shardings)


def prepare_case(case: str):
    """(once(state) -> (state, loss), state, compiled) for a case, compiled, not run."""
    mode, frames, batch, kwargs = parse_case(case)
    model, state, dev_batch, fn = one_device_step(paper_config(**kwargs), frames, batch)
    if mode == "step":
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
    return once, state, compiled


@contextlib.contextmanager
def device_turn(lock: str):
    """Hold an exclusive lock on the file `lock` ('' : no lock) while timing: several
    processes may compile at once (CPU) but measure one at a time."""
    if not lock:
        yield
        return
    from lcasr_jax.files import exclusive

    with exclusive(lock):
        yield


def run_case(case: str, repeats: int, lock: str = "") -> dict:
    mode, frames, batch, kwargs = parse_case(case)
    t0 = time.perf_counter()
    once, state, compiled = prepare_case(case)
    compile_s = time.perf_counter() - t0
    with device_turn(lock):
        state, loss = once(state)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            state, loss = once(state)
            times.append(time.perf_counter() - t)
    return {"case": case, "frames": frames, "batch": batch, **kwargs,
            "median_s": float(np.median(times)), "min_s": float(np.min(times)),
            "compile_s": compile_s, "peak_gib": _peak() / GIB,
            "xla_gib": _xla_bytes(compiled) / GIB, "loss": loss}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="step@4096x8,step@360000x1+remat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="", help="append JSON lines here")
    p.add_argument("--lock", default="", help="compile freely, run holding this file's "
                   "lock: processes compiling side by side take turns on the device")
    args = p.parse_args(argv)
    dev = jax.devices()[0]
    print(f"# {dev.device_kind} | jax {jax.__version__} | "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    print("| case | median s | min s | compile s | peak GiB | XLA GiB |", flush=True)
    for case in args.cases.split(","):
        try:
            r = run_case(case, args.repeats, args.lock)
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
