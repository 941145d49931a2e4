"""Check the default resampler against torchaudio itself (needs torch + torchaudio, e.g. on
the GPU machine; nothing else beyond numpy and this repo).

    python3 scripts/check_resampler_torchaudio.py

For 8000, 22050, 44100 and 48000 Hz inputs (3 s of tones + noise, float32) resampled to
16 kHz, prints the max abs difference of `lcasr_jax.data.audio.resample` (default method)
from torchaudio.transforms.Resample (what the original's audio_tools.resample calls) and from
torchaudio.functional.resample, and exits 1 if any exceeds 1e-4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RATES = (8000, 22050, 44100, 48000)
TOLERANCE = 1e-4


def signal(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """(samples,) float32: six random tones up to 0.98 x Nyquist plus white noise."""
    rng = np.random.default_rng(seed + rate)
    t = np.arange(int(rate * seconds)) / rate
    tones = sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in
                zip(rng.uniform(0.05, 0.3, 6), rng.uniform(50, rate / 2 * 0.98, 6),
                    rng.uniform(0, 2 * np.pi, 6), strict=True))
    return (tones + 0.1 * rng.standard_normal(len(t))).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    import torch
    import torchaudio

    from lcasr_jax.data.audio import DEFAULT_RESAMPLER, resample

    print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
          f"ours: {DEFAULT_RESAMPLER}")
    worst = 0.0
    for rate in RATES:
        x = signal(rate, args.seconds)
        ours = resample(x, rate, 16000)
        wave = torch.from_numpy(x)[None]
        ref_t = torchaudio.transforms.Resample(rate, 16000)(wave)[0].numpy()
        ref_f = torchaudio.functional.resample(wave, rate, 16000)[0].numpy()
        if ours.shape != ref_t.shape or ours.shape != ref_f.shape:
            print(f"{rate:>6} Hz: length {ours.shape} vs torchaudio {ref_t.shape}/{ref_f.shape}")
            return 1
        err_t = float(np.max(np.abs(ours - ref_t)))
        err_f = float(np.max(np.abs(ours - ref_f)))
        worst = max(worst, err_t, err_f)
        print(f"{rate:>6} Hz -> 16000 Hz ({len(ours)} samples): max abs error "
              f"{err_t:.2e} vs transforms.Resample, {err_f:.2e} vs functional.resample")
    ok = worst <= TOLERANCE
    print(f"{'OK' if ok else 'FAIL'}: worst {worst:.2e} (tolerance {TOLERANCE:.0e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
