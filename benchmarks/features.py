"""Feature extraction speed for one hour of 16 kHz audio on the CPU (numpy and JAX).

Usage: python benchmarks/features.py [--threads 1] [--minutes 60]
The target is <= 2 s for one hour on one core of the 2-core CI machine. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=1, help="BLAS/FFT threads for numpy")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-jax", action="store_true")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if "numpy" in sys.modules:
        print("warning: numpy already imported; --threads may not apply", file=sys.stderr)
    import numpy as np

    from lcasr_jax.data import features as F

    n = int(args.minutes * 60 * 16000)
    audio = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    F.compute_features(audio[:160000])  # warm-up (scipy import, filterbank)
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = F.compute_features(audio)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # wall time suffers when the machine is shared; CPU time of this process does not
    result = {"minutes": args.minutes, "frames": int(out.shape[1]), "threads": args.threads,
              "numpy_s": round(min(times), 3), "numpy_cpu_s": round(min(cpu), 3)}
    if not args.no_jax:
        import jax

        jx = F.compute_features_jax(audio).block_until_ready()  # compile
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            jx = F.compute_features_jax(audio).block_until_ready()
        result["jax_backend"] = jax.default_backend()
        result["jax_s"] = round((time.perf_counter() - t0) / args.repeats, 4)  # incl. transfer
        on_device = jax.device_put(audio).block_until_ready()
        F.compute_features_jax(on_device).block_until_ready()
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            F.compute_features_jax(on_device).block_until_ready()
        result["jax_device_resident_s"] = round((time.perf_counter() - t0) / args.repeats, 4)
        result["jax_vs_numpy_max_abs"] = float(np.max(np.abs(np.asarray(jx) - out)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
