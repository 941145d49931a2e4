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


def _noise_shape(colour: str, nfft: int, sr: int = 16000) -> np.ndarray:
    """Amplitude per rfft bin for white (flat), pink (1/f power) or brown (1/f^2 power)."""
    f = np.maximum(np.fft.rfftfreq(nfft, 1 / sr), 20.0)
    if colour not in ("white", "pink", "brown"):
        raise ValueError(f"unknown noise colour {colour!r}")
    return {"white": np.ones_like(f), "pink": f**-0.5, "brown": f**-1.0}[colour]


def convolve_blocks(x: np.ndarray, ir: np.ndarray, block: int = BLOCK, *,
                    noise: str | None = None, noise_rms: float = 0.0,
                    rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Yield blocks of `x` convolved with `ir` (len(x) samples in all), plus optional
    stationary noise of the given colour and RMS drawn directly in the frequency domain."""
    nfft = 1 << int(np.ceil(np.log2(block + len(ir) - 1)))
    h = np.fft.rfft(ir.astype(np.float32), nfft)
    if noise is not None:
        shape = _noise_shape(noise, nfft)
        # irfft of complex N(0,1)+iN(0,1) bins times shape: variance per sample (Parseval).
        var = (4 * np.sum(shape[1:-1] ** 2) + shape[0] ** 2 + shape[-1] ** 2) / nfft**2
        shape = (shape * (noise_rms / np.sqrt(var))).astype(np.float32)
    carry = np.zeros(len(ir) - 1, np.float32)
    for s in range(0, len(x), block):
        seg = x[s:s + block]
        y = np.fft.irfft(np.fft.rfft(seg, nfft) * h, nfft)[: len(seg) + len(ir) - 1]
        y = y.astype(np.float32, copy=False)
        y[: len(carry)] += carry
        carry = y[len(seg):].copy()
        out = y[: len(seg)]
        if noise is not None:  # kept out of the carried tail, so it stays stationary
            z = rng.standard_normal((2, len(shape)), dtype=np.float32)
            out += np.fft.irfft((z[0] + 1j * z[1]).astype(np.complex64) * shape, nfft)[: len(seg)]
        yield out
