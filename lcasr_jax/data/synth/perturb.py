"""Speaker perturbation: vocal-tract-length (formant) warping of speech, numpy only.

`formant_warp` moves the spectral envelope along the frequency axis by `alpha` (> 1 raises
the formants, as a shorter vocal tract; < 1 lowers them) and keeps the pitch harmonics and
the phase: per STFT frame (Hann window, n_fft 512, hop 256 at 16 kHz), the envelope is the
cepstrally smoothed log magnitude (first `lifter` quefrencies), and each bin is scaled by
envelope(k / alpha) / envelope(k). Overlap-add with window-power normalisation returns the
same length, so word times are unchanged. float32 throughout (~1 ms per second of audio).
"""

from __future__ import annotations

import numpy as np


def _warp_matrix(n_bins: int, alpha: float) -> np.ndarray:
    """(bins, bins) float32 W with (v @ W)[k] = v interpolated linearly at bin k / alpha."""
    src = np.clip(np.arange(n_bins) / alpha, 0, n_bins - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_bins - 1)
    w = np.zeros((n_bins, n_bins), np.float32)
    cols = np.arange(n_bins)
    np.add.at(w, (lo, cols), 1 - (src - lo))
    np.add.at(w, (hi, cols), src - lo)
    return w


def formant_warp(x: np.ndarray, alpha: float, n_fft: int = 512, hop: int = 256,
                 lifter: int = 30) -> np.ndarray:
    """x (samples,) float32 -> (samples,) float32 with the envelope warped by alpha."""
    if n_fft % hop:
        raise ValueError(f"formant_warp: hop {hop} must divide n_fft {n_fft}")
    if alpha == 1.0 or len(x) == 0:
        return x
    n = len(x)
    pad = np.pad(x.astype(np.float32), (n_fft, n_fft + hop))
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[::hop]
    n_frames = len(frames)
    spec = np.fft.rfft(frames * win, axis=-1).astype(np.complex64)
    logmag = np.log(np.abs(spec) + np.float32(1e-6))
    cep = np.fft.irfft(logmag, n_fft, axis=-1).astype(np.float32)
    cep[:, lifter:n_fft - lifter + 1] = 0.0  # keep the low quefrencies (symmetric)
    env = np.fft.rfft(cep, axis=-1).real.astype(np.float32)
    gain = np.exp(np.clip(env @ _warp_matrix(env.shape[1], alpha) - env, -6.0, 6.0))
    out_frames = np.fft.irfft(spec * gain, n_fft, axis=-1).astype(np.float32) * win
    r = n_fft // hop  # overlap-add: frame f's j-th hop lands on output hop f + j
    out = np.zeros((n_frames + r - 1, hop), np.float32)
    norm = np.zeros((n_frames + r - 1, hop), np.float32)
    for j in range(r):
        out[j:j + n_frames] += out_frames[:, j * hop:(j + 1) * hop]
        norm[j:j + n_frames] += win[j * hop:(j + 1) * hop] ** 2
    out, norm = out.reshape(-1), norm.reshape(-1)
    return out[n_fft:n_fft + n] / np.maximum(norm[n_fft:n_fft + n], np.float32(1e-6))
