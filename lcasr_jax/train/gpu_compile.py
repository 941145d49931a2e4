"""XLA flags for the GPU compiler of a training run (`train.gpu_compile`), as data.

XLA reads XLA_FLAGS once, when its backend starts, so `apply` runs before the first device
is touched (the train CLI and scripts/original_replay/run_ours.py call it first). Flags
already in XLA_FLAGS win over a preset's. Measured with benchmarks/compile_time.py (one
process per flag set, alone on the card; benchmarks/RESULTS.md, "Issue 21: bf16 replay
after the cuDNN fix"). On an H100 (jax 0.11.2) the 6L-256D paper step (512 x 16) compiled in
50 s with 'fast' (step 12.4 ms) and 61 s with 'cublas' (step 7.9 ms): skipping autotuning
saves little, so XLA's defaults stay the default until they are timed alone beside these.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

PRESETS: dict[str, tuple[str, ...]] = {
    "xla": (),  # XLA's defaults: every GEMM and convolution autotuned
    "cublas": ("--xla_gpu_enable_triton_gemm=false",),  # GEMMs by cuBLAS, no Triton tuning
    "fast": ("--xla_gpu_autotune_level=0", "--xla_gpu_enable_triton_gemm=false"),
}


def _name(flag: str) -> str:
    return flag.split("=", 1)[0]


def apply(preset: str, environ: MutableMapping[str, str] | None = None) -> str:
    """Add `preset`'s flags to XLA_FLAGS in `environ` (default os.environ), leaving any flag
    already set there as it is; returns the resulting XLA_FLAGS."""
    environ = os.environ if environ is None else environ
    if preset not in PRESETS:
        raise ValueError(f"train.gpu_compile: {preset!r} is not one of {sorted(PRESETS)}")
    current = environ.get("XLA_FLAGS", "").split()
    have = {_name(f) for f in current}
    flags = current + [f for f in PRESETS[preset] if _name(f) not in have]
    if flags:
        environ["XLA_FLAGS"] = " ".join(flags)
    return environ.get("XLA_FLAGS", "")
