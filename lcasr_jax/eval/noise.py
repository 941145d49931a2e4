"""Seeded corruption of 16 kHz audio at a signal-to-noise ratio (the paper's noise tests).

A noise spec is a plain string (the `noise` field of the eval settings, a sweep axis):

  none                      no corruption
  gaussian:SNR              white Gaussian noise at SNR dB
  gaussian:LOW:HIGH         SNR drawn uniformly from [LOW, HIGH] dB per recording
  background:FOLDER:SNR     a file of FOLDER (music, babble; wav/flac/mp3/ogg) looped and
  background:FOLDER:LOW:HIGH  cropped at a random offset, scaled to the SNR

SNR = 10 log10(P_signal / P_noise), powers being mean squares over the valid samples (those
outside the recording's ignored regions). The noise is scaled to the requested SNR exactly
on its realised power, so the measured SNR equals the request up to float32 rounding.
Every random choice (SNR, Gaussian samples, file, offset) comes from a generator seeded by
(seed, recording id): every model sees the same corrupted audio, and a recording's noise
does not depend on which other recordings are evaluated.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import numpy as np

from lcasr_jax.data.audio import load_audio

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".sph")


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    kind: str  # 'none' | 'gaussian' | 'background'
    low_db: float = 0.0  # SNR range in dB; low == high for a fixed SNR
    high_db: float = 0.0
    folder: Path | None = None  # background files

    @property
    def active(self) -> bool:
        return self.kind != "none"


def parse_noise(text: str) -> NoiseSpec:
    """Parse a noise spec string (module docstring); raises ValueError naming it."""
    text = (text or "none").strip()
    if text == "none":
        return NoiseSpec("none")
    kind, _, rest = text.partition(":")
    parts = rest.split(":")
    if kind == "background":  # the folder may itself hold ':'; the SNRs are the last fields
        nums = 2 if len(parts) >= 3 and _is_number(parts[-2]) else 1
        folder, parts = ":".join(parts[:-nums]), parts[-nums:]
        if not folder:
            raise ValueError(f"noise {text!r}: background needs a folder (background:FOLDER:SNR)")
    elif kind != "gaussian":
        raise ValueError(f"noise {text!r}: kind must be none, gaussian or background")
    if len(parts) not in (1, 2) or not all(_is_number(p) for p in parts):
        raise ValueError(f"noise {text!r}: expected {kind}:SNR or {kind}:LOW:HIGH (dB)")
    low, high = float(parts[0]), float(parts[-1])
    if low > high:
        raise ValueError(f"noise {text!r}: LOW {low} dB is above HIGH {high} dB")
    if kind == "gaussian":
        return NoiseSpec("gaussian", low, high)
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"{path}: noise folder not found")
    if not background_files(path):
        raise ValueError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in noise folder")
    return NoiseSpec("background", low, high, path)


def _is_number(s: str) -> bool:
    try:
        return np.isfinite(float(s))
    except ValueError:
        return False


def recording_rng(seed: int, recording_id: str) -> np.random.Generator:
    """The generator of one recording's noise, from (seed, recording id)."""
    digest = hashlib.sha256(recording_id.encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def power(x: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean square of (samples,) x over the valid samples (bool mask), in float64."""
    x = np.asarray(x, np.float64)
    if valid is not None:
        x = x[valid]
    return float(np.mean(x * x)) if x.size else 0.0


def snr_db(signal: np.ndarray, noise: np.ndarray, valid: np.ndarray | None = None) -> float:
    """10 log10(P_signal / P_noise) over the valid samples."""
    return float(10.0 * np.log10(power(signal, valid) / power(noise, valid)))


def valid_mask(samples: int, ignore, sample_rate: int = 16000) -> np.ndarray | None:
    """(samples,) bool, False inside the ignored (start, end) second regions; None if none."""
    if not ignore:
        return None
    mask = np.ones(samples, bool)
    for start, end in ignore:
        mask[max(0, int(start * sample_rate)):max(0, int(end * sample_rate))] = False
    return mask


@functools.lru_cache(maxsize=8)
def background_files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES))


@functools.lru_cache(maxsize=4)
def _load_background(path: Path) -> np.ndarray:
    audio = load_audio(path)
    if power(audio) == 0.0:
        raise ValueError(f"{path}: background noise file is silent")
    return audio


def _noise(spec: NoiseSpec, samples: int, rng: np.random.Generator) -> np.ndarray:
    if spec.kind == "gaussian":
        return rng.standard_normal(samples)
    files = background_files(spec.folder)
    source = _load_background(files[int(rng.integers(len(files)))])
    offset = int(rng.integers(source.shape[0]))
    return np.resize(np.roll(source, -offset), samples)  # looped from the offset, cropped


def add_noise(audio: np.ndarray, spec: NoiseSpec, seed: int, recording_id: str,
              valid: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
    """Corrupt (samples,) float32 16-kHz `audio` with `spec`; returns (noisy float32, SNR in
    dB measured on what was added (noisy - audio) over the valid samples; None for
    'none'). Raises ValueError if the valid audio is silent (no SNR is defined)."""
    if not spec.active:
        return audio, None
    rng = recording_rng(seed, recording_id)
    target = float(rng.uniform(spec.low_db, spec.high_db))
    signal_power = power(audio, valid)
    if signal_power == 0.0:
        raise ValueError(f"{recording_id}: silent audio, no SNR can be set")
    noise = _noise(spec, audio.shape[0], rng)
    noise_power = power(noise, valid)
    if noise_power == 0.0:
        raise ValueError(f"{recording_id}: the noise is silent over the valid audio")
    gain = np.sqrt(signal_power / (noise_power * 10.0 ** (target / 10.0)))
    noisy = (audio + noise * gain).astype(np.float32)
    return noisy, snr_db(audio, noisy - audio, valid)
