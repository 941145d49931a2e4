"""How long the train step takes to compile, and what XLA flags buy against its run time.

On an H100 host (2026-12-07) the first step of the 6L-256D paper model compiled in ~95 s and
the default model's (6L-256D, 1,024 frames x 64) in ~190 s: most of a 420-s training budget.
The same two steps compile in 12.6 s and 15.4 s for the 2-core CPU (jax 0.10.2), so the time
goes to the GPU back end. Not mostly to autotuning: with none (2026-12-07 22:13 UTC, H100) the
paper step still took 50 s (`--set` isolates parts: attention_impl, ctc_impl).
Each case here runs in its own process (XLA reads XLA_FLAGS once, at start-up): lower, then
compile, then the compiled step's median time (so a flag that saves compile time but slows
the step shows it), with nothing else on the device.

  PYTHONPATH=. python3 benchmarks/compile_time.py                      # every flag set
  PYTHONPATH=. python3 benchmarks/compile_time.py --flags xla fast \\
      --config experiments/default.py:original --shape 1024x64

Flag sets are data (`FLAG_SETS`); a case prints one JSON line, the run ends with a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from lcasr_jax.train import gpu_compile  # noqa: E402

FLAG_SETS = {  # train.gpu_compile's presets (xla, cublas, fast) and single flags beside them
    **{name: " ".join(flags) for name, flags in gpu_compile.PRESETS.items()},
    "autotune0": "--xla_gpu_autotune_level=0",  # no autotuning: first valid algorithm
    "autotune1": "--xla_gpu_autotune_level=1",  # autotune, no buffer init/correctness checks
}
CASES = (("experiments/paper.py:rb_6l_256d_8h", "512x16"),  # parity seeds (FIDELITY), stage 1
         ("experiments/default.py:original", "1024x64"))  # default-model leg, stage 1


def _case(config: str, shape: str, repeats: int, overrides: list[str]) -> dict:
    """Lower, compile and time one train step in this process."""
    import jax
    import numpy as np
    from model_step import one_device_step

    from lcasr_jax.configs import load_config

    frames, batch = (int(x) for x in shape.split("x"))
    cfg = load_config(str(REPO / config), overrides)
    _, state, dev_batch, fn = one_device_step(cfg, frames, batch)
    args = (dev_batch, np.float32(1e-4), np.bool_(False))
    t0 = time.perf_counter()
    lowered = fn.lower(state, *args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    state, metrics = compiled(state, *args)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state, metrics = compiled(state, *args)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t)
    return {"lower_s": t1 - t0, "compile_s": t2 - t1, "step_ms": 1e3 * float(np.median(times)),
            "loss": float(metrics["loss"]), "device": jax.devices()[0].device_kind,
            "jax": jax.__version__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flags", nargs="+", default=list(FLAG_SETS), choices=list(FLAG_SETS))
    ap.add_argument("--config", help="experiment spec (default: both CASES)")
    ap.add_argument("--shape", default="512x16", help="FRAMESxBATCH with --config")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per case")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="A.B=V",
                    help="config overrides for every case, e.g. train.attention_impl=xla "
                         "train.ctc_impl=xla (which part of the program costs the compile)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_case(args.config, args.shape, args.repeats, args.overrides)))
        return 0
    cases = [(args.config, args.shape)] if args.config else CASES
    rows = []
    for config, shape in cases:
        for name in args.flags:  # one process per case, one after another: nothing beside it
            env = {**os.environ, "XLA_FLAGS": " ".join(
                x for x in (os.environ.get("XLA_FLAGS", ""), FLAG_SETS[name]) if x)}
            env["PYTHONPATH"] = os.pathsep.join(
                [str(REPO), str(REPO / "benchmarks"), env.get("PYTHONPATH", "")])
            cmd = [sys.executable, __file__, "--child", "--config", config, "--shape", shape,
                   "--repeats", str(args.repeats), "--set", *args.overrides]
            row = {"config": config, "shape": shape, "flags": name}
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                      timeout=args.timeout)
            except subprocess.TimeoutExpired:
                row["error"] = f"over {args.timeout:.0f} s"
                print(json.dumps(row), flush=True)
                rows.append(row)
                continue
            if done.returncode == 0:
                row.update(json.loads(done.stdout.strip().splitlines()[-1]))
            else:
                row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| config | shape | flags | lower s | compile s | step ms |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['shape']} | {r['flags']} | {r.get('lower_s', 0):.1f} | "
              f"{r.get('compile_s', 0):.1f} | {r.get('step_ms', 0):.1f} |"
              + (f" {r['error']}" if "error" in r else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
