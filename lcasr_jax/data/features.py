"""The original's input features: an 80-bin mel power spectrogram, standardised per bin.

Reproduces `lcasr.utils.audio_tools.to_spectogram` (torchaudio MelSpectrogram defaults):
16 kHz, n_fft 512, periodic Hann window of 400 samples centred in the 512 FFT frame,
hop 160 samples (10 ms), center=True with reflect padding of n_fft // 2, power 2, 80 HTK mel
filters over 0..8000 Hz with no filter normalisation, and NO log. Each mel bin is then
standardised over the whole recording: (x - mean) / std with the unbiased std (N - 1) and no
epsilon. Frames: 1 + samples // 160. The original stored training features as float16.

Deviation (documented repair): a bin whose std is 0 (e.g. digital silence) gives NaN in the
original; here it becomes all zeros. Recordings shorter than 257 samples are rejected (torch's
reflect padding fails on them too).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lcasr_jax.data.audio import DEFAULT_RESAMPLER, SAMPLE_RATE, load_audio

if TYPE_CHECKING:
    import jax

N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 spectrogram frames per second
FRAME_SECONDS = HOP_LENGTH / SAMPLE_RATE  # one frame: 0.01 s
N_MELS = 80
MIN_SAMPLES = N_FFT // 2 + 1


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@functools.cache
def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS,
                   sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular HTK mel filters, (n_freqs, n_mels) float64, torchaudio's construction."""
    all_freqs = np.linspace(0.0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    fb.setflags(write=False)
    return fb


@functools.cache
def _window(dtype: str = "float32") -> np.ndarray:
    """Periodic Hann window of WIN_LENGTH samples."""
    n = np.arange(WIN_LENGTH, dtype=np.float64)
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)).astype(dtype)
    w.setflags(write=False)
    return w


def num_frames(num_samples: int) -> int:
    """Feature frames for a recording of `num_samples` samples (center=True)."""
    return 1 + num_samples // HOP_LENGTH


def _check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"features need {SAMPLE_RATE} Hz audio, got {sample_rate} Hz "
                         "(resample with lcasr_jax.data.audio.load_audio)")
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (samples,), got shape {audio.shape}")
    if audio.shape[0] < MIN_SAMPLES:
        raise ValueError(f"audio too short: {audio.shape[0]} samples < {MIN_SAMPLES}")
    return audio


def _frames_view(padded: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, WIN_LENGTH) strided view: frame t = padded[56 + 160 t : 456 + 160 t]."""
    offset = (N_FFT - WIN_LENGTH) // 2
    base = padded[offset:]
    return np.lib.stride_tricks.as_strided(
        base, shape=(n_frames, WIN_LENGTH), strides=(base.strides[0] * HOP_LENGTH,
                                                     base.strides[0]), writeable=False)


def standardise(spec: np.ndarray) -> np.ndarray:
    """Per-bin (x - mean) / unbiased std over time. spec (bins, frames) -> float32.

    Statistics accumulate in float64; the output is float32.
    """
    x = np.asarray(spec)
    n = x.shape[-1]
    mean = x.mean(-1, keepdims=True, dtype=np.float64)
    if n > 1:
        centred = (x - mean.astype(x.dtype)).astype(np.float32, copy=False)
        var = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)[:, None] / (n - 1)
        # exact correction for the float32 rounding of the mean
        var -= (mean - mean.astype(x.dtype)) ** 2 * n / (n - 1)
        std = np.sqrt(np.maximum(var, 0.0))
    else:
        centred = np.zeros(x.shape, np.float32)
        std = np.zeros_like(mean)
    scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0).astype(np.float32)
    shift = (mean.astype(x.dtype) - mean).astype(np.float32)  # float32 mean rounding error
    return (centred + shift) * scale


def _rfft(x: np.ndarray) -> np.ndarray:
    try:  # scipy's pocketfft is 2-3x faster than numpy's for float32 batches
        import scipy.fft

        return scipy.fft.rfft(x, axis=-1, overwrite_x=True)
    except ImportError:
        return np.fft.rfft(x, axis=-1)


def mel_power(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
              block_frames: int = 4096) -> np.ndarray:
    """Mel power spectrogram before normalisation, (80, frames) float32."""
    audio = _check_audio(audio, sample_rate).astype(np.float32, copy=False)
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    n_frames = num_frames(audio.shape[0])
    frames = _frames_view(padded, n_frames)
    window = _window()
    fb = mel_filterbank().astype(np.float32)
    out = np.empty((n_frames, N_MELS), np.float32)
    buf = np.zeros((min(block_frames, n_frames), N_FFT), np.float32)
    for s in range(0, n_frames, block_frames):
        block = frames[s:s + block_frames]
        b = buf[: len(block)]
        b[:, WIN_LENGTH:] = 0.0
        np.multiply(block, window, out=b[:, :WIN_LENGTH])
        spec = _rfft(b)
        power = spec.real * spec.real
        power += spec.imag * spec.imag
        np.matmul(power, fb, out=out[s:s + block_frames])
    return np.ascontiguousarray(out.T)


def compute_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Features of one recording: audio (samples,) at 16 kHz -> (80, frames) float32."""
    return standardise(mel_power(audio, sample_rate))


def audio_to_features(path: str | Path, resampler: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """Load any audio file (left channel, resampled to 16 kHz) -> (80, frames) float32.

    resampler: 'torchaudio' (the original's) or 'soxr'; see lcasr_jax.data.audio."""

    audio = load_audio(path, SAMPLE_RATE, resampler)
    if audio.shape[0] < MIN_SAMPLES:
        raise ValueError(f"{path}: audio too short ({audio.shape[0]} samples at 16 kHz)")
    return compute_features(audio)


def features_jax(x: jax.Array, n: jax.Array | int) -> jax.Array:
    """`compute_features` of x[:n] in JAX (traceable; n may be traced): x (L,) float32 16 kHz
    -> (num_frames(L), 80); rows at or past num_frames(n) are zero. Reflect padding is taken
    at 0 and at n, so padding x to a static length changes nothing."""
    import jax
    import jax.numpy as jnp

    length = x.shape[0]
    n_frames = num_frames(length)
    half = N_FFT // 2
    i = jnp.abs(jnp.arange(n_frames * HOP_LENGTH + N_FFT) - half)
    i = jnp.where(i >= n, 2 * (n - 1) - i, i)
    padded = jnp.take(x, jnp.clip(i, 0, length - 1))
    off = (N_FFT - WIN_LENGTH) // 2
    # frame t = blocks t, t+1, t+2 of the hop (480 >= 400 samples)
    base = padded[off:off + (n_frames + 2) * HOP_LENGTH].reshape(n_frames + 2, HOP_LENGTH)
    frames = jnp.concatenate([base[:-2], base[1:-1], base[2:]], axis=1)[:, :WIN_LENGTH]
    spec = jnp.fft.rfft(frames * jnp.asarray(_window()), n=N_FFT, axis=-1)
    power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    mel = jnp.matmul(power, jnp.asarray(mel_filterbank(), jnp.float32),
                     precision=jax.lax.Precision.HIGHEST)
    nf = 1 + n // HOP_LENGTH
    ok = (jnp.arange(n_frames) < nf)[:, None]
    mean = jnp.sum(jnp.where(ok, mel, 0.0), 0, keepdims=True) / nf
    var = jnp.sum(jnp.where(ok, (mel - mean) ** 2, 0.0), 0, keepdims=True) / jnp.maximum(nf - 1, 1)
    std = jnp.sqrt(var)
    out = (mel - mean) / jnp.where(std > 0, std, 1.0)
    return jnp.where(ok & (std > 0), out, 0.0)


@functools.cache
def _jax_features_fn():
    import jax

    return jax.jit(lambda audio: features_jax(audio, audio.shape[0]).T)


def compute_features_jax(audio) -> jax.Array:
    """JAX/accelerator version of `compute_features`: (samples,) 16 kHz -> (80, frames) float32.

    Jitted per audio length (recompiles for each new length); `features_jax` takes a valid
    length inside a padded buffer instead.
    """
    import jax.numpy as jnp

    audio = jnp.asarray(audio, jnp.float32)
    if audio.ndim != 1 or audio.shape[0] < MIN_SAMPLES:
        raise ValueError(f"audio must be 1-D with >= {MIN_SAMPLES} samples, got {audio.shape}")
    return _jax_features_fn()(audio)
