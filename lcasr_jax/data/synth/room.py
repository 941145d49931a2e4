"""Room echo (synthetic decaying impulse response) and background noise, block by block.

All signals are float32 mono at 16 kHz. Echo is an overlap-add FFT convolution whose
direct path is tap 0, so word times are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK = 1 << 16  # samples per processing block (4.1 s at 16 kHz)


def impulse_response(rng: np.random.Generator, rt60: float, wet: float,
                     sr: int = 16000) -> np.ndarray:
    """Direct path 1.0 plus exponentially decaying noise (-60 dB after rt60 seconds)."""
    n = max(int(rt60 * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    tail[: int(0.003 * sr)] = 0.0  # first reflections arrive after a few ms
    tail *= wet / max(np.sqrt(np.sum(tail**2)), 1e-9)
    tail[0] = 1.0
    return tail.astype(np.float32)


def convolve_blocks(x: np.ndarray, ir: np.ndarray, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Yield blocks of `x` convolved with `ir`, truncated to len(x) samples in all."""
    nfft = 1 << int(np.ceil(np.log2(block + len(ir) - 1)))
    h = np.fft.rfft(ir, nfft)
    carry = np.zeros(len(ir) - 1, np.float32)
    for s in range(0, len(x), block):
        seg = x[s:s + block]
        y = np.fft.irfft(np.fft.rfft(seg, nfft) * h, nfft)[: len(seg) + len(ir) - 1]
        y = y.astype(np.float32)
        y[: len(carry)] += carry
        carry = y[len(seg):]
        yield y[: len(seg)]


def noise_block(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """Unit-RMS white, pink (1/f power) or brown (1/f^2 power) noise of n samples."""
    w = rng.standard_normal(n)
    if colour != "white":
        f = np.fft.rfftfreq(n, 1 / 16000)
        f[0] = f[1] if n > 1 else 1.0
        shape = np.maximum(f, 20.0) ** (-0.5 if colour == "pink" else -1.0)
        w = np.fft.irfft(np.fft.rfft(w) * shape, n)
    return (w / max(np.sqrt(np.mean(w**2)), 1e-12)).astype(np.float32)
