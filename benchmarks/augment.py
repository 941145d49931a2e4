"""Share of the training step spent on the on-accelerator augmentation of dry recordings.

Times (1) `data.augment.augment_recording` on a dry recording of --minutes (all stages, the
host-to-device copy of the audio and the float16 features back), (2) the jitted train step of
experiments/default.py at each schedule shape (frames x batch, bf16, synthetic features) and
prints, per shape, the augmentation's share of a step: each step holds frames x batch / 100
seconds of audio, i.e. that many / (60 x minutes) recordings enter per step, each costing (1).
The target (issue 22): <= 10 %. In training the augmentation runs on the loader's reader
threads, overlapped with the step, so this share is an upper bound on its cost.

  PYTHONPATH=. python3 benchmarks/augment.py [--minutes 10] [--shapes 1024x64,8192x8,60000x1]
  PYTHONPATH=. python3 benchmarks/augment.py --small   # CPU smoke run (tiny model, 1 min)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_utils import header, table, time_ms  # noqa: E402

from lcasr_jax.configs import load_config  # noqa: E402
from lcasr_jax.data.augment import AugmentConfig, augment_recording  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def augment_ms(minutes: float, reps: int = 5) -> float:
    """Median ms of augment_recording on `minutes` of noise-like dry audio (new epochs, so
    new parameters each call; the first calls compile the bucket's shape)."""
    x = (0.1 * np.random.default_rng(0).standard_normal(int(minutes * 60 * 16000))
         ).astype(np.float32)
    cfg = AugmentConfig(speed=(1.0, 1.0))  # one output bucket: compile once
    for e in range(2):
        augment_recording(x, 0, e, 0, cfg)
    times = []
    for e in range(reps):
        t = time.perf_counter()
        augment_recording(x, 0, 100 + e, 0, cfg)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def _step_fn(frames: int, batch: int, small: bool) -> float:
    from lcasr_jax.sharding import make_mesh, put_batch
    from lcasr_jax.train import step as step_lib
    from lcasr_jax.train.state import build_model

    cfg = load_config(f"{REPO / 'experiments' / 'default.py'}")
    if small:
        cfg.model.update(n_layers=2, d_model=64, n_heads=2, head_dim=32,
                         subsampling_conv_channels=16)
        cfg.train.compute_dtype = "float32"
    cfg.mesh.update(data=1, fsdp=1, seq=1)
    mesh = make_mesh(1, 1, 1, devices=jax.devices()[:1])
    model = build_model(cfg)
    shardings = step_lib.state_shardings(model, cfg, mesh)
    state = step_lib.jit_create_state(model, cfg, shardings)()
    rng = np.random.default_rng(0)
    n_tok = min(max(1, frames * 3 // 100), -(-frames // 8) // 2)
    batch_np = {"spec": rng.normal(size=(batch, 80, frames)).astype(np.float32),
                "lengths": np.full((batch,), frames, np.int32),
                "targets": rng.integers(3, 4095, size=(batch, n_tok)).astype(np.int32),
                "target_lengths": np.full((batch,), n_tok, np.int32)}
    dev = put_batch(batch_np, mesh)
    fn = step_lib.jit_train_step(model, cfg, mesh, shardings)
    lr = np.float32(1e-4)
    holder = {"s": state}

    def once():
        holder["s"], m = fn(holder["s"], dev, lr, np.bool_(True))
        return m["loss"]

    return time_ms(once, warmup=2, reps=5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--shapes", default="1024x64,4096x16,16384x4,60000x1")
    ap.add_argument("--small", action="store_true", help="tiny model, 1-minute audio (CPU)")
    args = ap.parse_args(argv)
    minutes = 1.0 if args.small else args.minutes
    aug = augment_ms(minutes)
    print(header())
    print(f"augment_recording, {minutes:g} min of audio: {aug:.1f} ms")
    rows = []
    for shape in args.shapes.split(","):
        frames, batch = (int(v) for v in shape.split("x"))
        step = _step_fn(frames, batch, args.small)
        recs = frames * batch / 100 / (60 * minutes)
        rows.append({"shape": shape, "step_ms": step, "recordings_per_step": recs,
                     "augment_ms_per_step": aug * recs,
                     "share_%": 100 * aug * recs / (step + aug * recs)})
    print(table(rows, ["shape", "step_ms", "recordings_per_step", "augment_ms_per_step",
                       "share_%"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
