"""Long-form evaluation speed: one hour at full context end to end, and many short windows.

Usage: python benchmarks/eval_throughput.py [--small] [--seconds 3600] [--out result.json]

Model: the paper's 6L-768D SCConformerXL (ModelConfig defaults) with random weights, bf16
compute (float32 params); `--small` is a tiny config for a CPU smoke run.
Measured (median of --repeats after a compile run), printed as JSON:
  * hour_forward_s: model forward of one `--seconds` recording in one window (features
    already on the device), to log-probs, synchronised.
  * hour_end_to_end_s: host audio -> device -> features (JAX) -> model -> greedy argmax ->
    host -> CTC collapse -> detokenised text.
  * windows_<frames>: batched forward of many windows (10 s = 1000 frames, and the
    original's 41 s = 4096 frames), ms per window, and per window one at a time.
  * engine_10s: the eval engine (batched, merged on the host, averaged moving window with
    87.5% overlap) on a 10-minute recording at 10 s context: ms per window, x real time.
Targets (issue 4, H100): hour end to end <= 0.25 s, forward <= 0.10 s; 10-s windows at
least 3x the original's 15 ms per 41-s window.
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
    p.add_argument("--seconds", type=float, default=3600.0, help="long recording length")
    p.add_argument("--batch", type=int, default=64, help="windows per batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engine-seconds", type=float, default=600.0)
    p.add_argument("--skip", nargs="*", default=[], choices=("hour", "windows", "engine"))
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from bench_utils import bench_config, time_ms

    from lcasr_jax.data.features import compute_features_jax
    from lcasr_jax.decode import token_runs
    from lcasr_jax.eval import engine, windows

    def _timed(fn, repeats: int) -> float:
        """Median seconds of fn() over `repeats` after one compile / warm-up call."""
        return time_ms(fn, warmup=1, reps=repeats) / 1e3
    from lcasr_jax.data.vocab import BLANK_ID
    from lcasr_jax.model import SCConformerXL

    cfg = bench_config(args.small)
    model = SCConformerXL(cfg, dtype=jnp.bfloat16)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 80, 64)),
                                    jnp.array([64]))
    result: dict = {
        "device": str(jax.devices()[0].device_kind), "n_devices": len(jax.devices()),
        "jax": jax.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": f"{cfg.n_layers}L-{cfg.d_model}D bf16 (random weights)",
        "params_M": round(sum(x.size for x in jax.tree.leaves(variables["params"])) / 1e6, 2),
    }
    rng = np.random.default_rng(0)

    # Every model call goes through the eval engine's forward (shared compilations).
    forward, n_dev = engine.make_forward(model, variables)

    def run_model(spec):
        return forward(spec, jnp.full((spec.shape[0],), spec.shape[-1], jnp.int32))[0]

    argmax = jax.jit(lambda lp: lp.argmax(-1).astype(jnp.int32))

    if "hour" not in args.skip:
        audio = (0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32)
        spec = compute_features_jax(jax.device_put(audio))[None]
        result["hour_frames"] = int(spec.shape[-1])
        result["hour_forward_s"] = round(_timed(
            lambda: run_model(spec).block_until_ready(), args.repeats), 4)
        try:
            from lcasr_jax.data.tokenizer import default_tokenizer

            tokenizer = default_tokenizer()
        except ImportError:  # no sentencepiece here: collapse only
            tokenizer = None
        result["detokenised"] = tokenizer is not None

        def end_to_end():
            feats = compute_features_jax(jax.device_put(audio))
            ids = np.asarray(argmax(run_model(feats[None])))[0]
            tokens = [t for t, _, _ in token_runs(ids, BLANK_ID)]
            return tokenizer.decode(tokens) if tokenizer else tokens

        result["hour_end_to_end_s"] = round(_timed(end_to_end, args.repeats), 4)
        print(json.dumps(result), file=sys.stderr, flush=True)

    if "windows" not in args.skip:
        for frames in (1000, 4096):
            batch = rng.standard_normal((args.batch, 80, frames)).astype(np.float32)
            batch = jax.device_put(batch)
            t = _timed(lambda b=batch: run_model(b).block_until_ready(), args.repeats)
            one = batch[:1]
            t1 = _timed(lambda b=one: run_model(b).block_until_ready(), args.repeats)
            result[f"windows_{frames}"] = {
                "batch": args.batch, "ms_per_window_batched": round(1e3 * t / args.batch, 3),
                "ms_per_window_one_at_a_time": round(1e3 * t1, 3)}
            print(json.dumps(result), file=sys.stderr, flush=True)

    if "engine" not in args.skip:
        frames = int(args.engine_seconds * 100)
        spec = rng.standard_normal((80, frames)).astype(np.float32)
        plan = windows.make_plan("averaged_moving_window", frames, 1000, 872,
                                 model.config.subsampling_factor)
        def run():
            return engine.run_plans(forward, [spec], [plan], batch_size=args.batch,
                                    n_devices=n_dev, output="ids")

        t = _timed(run, 1)
        result["engine_10s"] = {
            "recording_s": args.engine_seconds, "windows": len(plan.windows),
            "overlap_frames": 872, "ms_per_window": round(1e3 * t / len(plan.windows), 3),
            "x_real_time": round(args.engine_seconds / t, 1)}
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
