"""Seeded corruption of 16 kHz audio at a signal-to-noise ratio (the paper's noise tests).

A noise spec is a plain string (the `noise` field of the eval settings, a sweep axis):

  none                      no corruption
  gaussian:SNR              white Gaussian noise at SNR dB
  gaussian:LOW:HIGH         SNR drawn uniformly from [LOW, HIGH] dB
  background:PATH:SNR       a sound file, or the files of a folder (music, babble;
  background:PATH:LOW:HIGH  wav/flac/mp3/ogg/...) mixed in at the SNR

SNRs outside [-50, 100] dB are refused (SNR_RANGE_DB). Two modes (`--noise-mode`):

original (default): as the original's rev16_gaussian_noise / rev16_background_noise
  scripts: audiomentations' AddGaussianSNR / AddBackgroundNoise with p=1, after
  `np.random.seed(17925)` and `random.seed(17925)` before every recording. So an SNR range
  is one draw shared by every recording, and every recording gets the same noise sequence;
  the SNR is set on the whole (left-channel, 16 kHz) audio, silences and ignored regions
  included, from audiomentations' float32 RMS (Gaussian: noise std = RMS / 10^(SNR/20), so
  the realised SNR varies by the draw). The original's background file
  (ElevatorMusic.wav) is not public: give your own file or folder; audiomentations picks a
  file with `random`, a random start inside it, and repeats it if shorter than the audio.
exact (this project's): every random choice (SNR, samples, file, offset) from a generator
  seeded by (seed, recording id), so a recording's noise does not depend on which others
  are evaluated; SNR = 10 log10(P_signal / P_noise) on the valid samples (outside the
  recording's ignored regions), the noise scaled on its realised power so the measured SNR
  equals the request up to float32 rounding; background files looped from a random offset.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
from pathlib import Path

import numpy as np

from lcasr_jax.data.audio import load_audio

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".sph")
SNR_RANGE_DB = (-50.0, 100.0)  # below: noise 10^5 x the speech power; above: float32 rounding
NOISE_MODES = ("original", "exact")
ORIGINAL_SEED = 17925  # np.random.seed / random.seed of the original's noise scripts


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    kind: str  # 'none' | 'gaussian' | 'background'
    low_db: float = 0.0  # SNR range in dB; low == high for a fixed SNR
    high_db: float = 0.0
    folder: Path | None = None  # background: a sound file or a folder of them

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
    if kind == "background":  # the path may itself hold ':'; the SNRs are the last fields
        if not any(_is_number(p) for p in parts[1:]):
            raise ValueError(f"noise {text!r}: background needs an SNR after the path "
                             "(background:PATH:SNR or background:PATH:LOW:HIGH, dB)")
        nums = 2 if len(parts) >= 3 and _is_number(parts[-2]) else 1
        folder, parts = ":".join(parts[:-nums]), parts[-nums:]
        if not folder:
            raise ValueError(f"noise {text!r}: background needs a file or folder "
                             "(background:PATH:SNR)")
    elif kind != "gaussian":
        raise ValueError(f"noise {text!r}: kind must be none, gaussian or background")
    if len(parts) not in (1, 2) or not all(_is_number(p) for p in parts):
        raise ValueError(f"noise {text!r}: expected {kind}:SNR or {kind}:LOW:HIGH (dB)")
    low, high = float(parts[0]), float(parts[-1])
    lo, hi = SNR_RANGE_DB
    for snr in (low, high):
        if not lo <= snr <= hi:
            raise ValueError(f"noise {text!r}: SNR {snr:g} dB is outside [{lo:g}, {hi:g}] dB")
    if low > high:
        raise ValueError(f"noise {text!r}: LOW {low} dB is above HIGH {high} dB")
    if kind == "gaussian":
        return NoiseSpec("gaussian", low, high)
    path = Path(folder)
    if not path.exists():
        raise ValueError(f"{path}: noise file or folder not found")
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
def background_files(path: Path) -> tuple[Path, ...]:
    """The sound files of a background spec: the file itself, or a folder's, sorted."""
    path = Path(path)
    if path.is_file():
        return (path,) if path.suffix.lower() in AUDIO_SUFFIXES else ()
    return tuple(sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES))


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


def add_noise_original(audio: np.ndarray, spec: NoiseSpec, seed: int = ORIGINAL_SEED
                       ) -> tuple[np.ndarray, float | None]:
    """The original's corruption of (samples,) float32 16-kHz `audio`: numpy's and Python's
    global generators seeded with `seed`, then audiomentations' AddGaussianSNR (on the
    audio as one (1, samples) channel, as the original passes it) or AddBackgroundNoise
    with p=1. The generators' previous states are restored afterwards. Returns (noisy
    float32, SNR in dB measured on what was added over all samples; None for 'none')."""
    if not spec.active:
        return audio, None
    import random

    try:
        from audiomentations import AddBackgroundNoise, AddGaussianSNR
    except ImportError as e:
        raise ImportError(f"noise mode 'original' needs audiomentations ({e}); install "
                          "requirements/pins-nodeps.txt, or use --noise-mode exact") from None
    samples = np.asarray(audio, np.float32)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        np.random.seed(seed)
        random.seed(seed)
        if spec.kind == "gaussian":
            t = AddGaussianSNR(min_snr_db=spec.low_db, max_snr_db=spec.high_db, p=1.0)
            noisy = t(samples[None], sample_rate=16000)[0]
        else:
            t = AddBackgroundNoise(sounds_path=str(spec.folder), min_snr_db=spec.low_db,
                                   max_snr_db=spec.high_db, p=1.0)
            noisy = t(samples, sample_rate=16000)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    noisy = np.asarray(noisy, np.float32)
    added = noisy.astype(np.float64) - samples
    return noisy, (snr_db(samples, added) if power(added) > 0 else float("inf"))


def corrupt(audio: np.ndarray, spec: NoiseSpec, mode: str, seed: int | None,
            recording_id: str, valid: np.ndarray | None = None
            ) -> tuple[np.ndarray, float | None]:
    """`audio` corrupted by `spec` in `mode` ('original' or 'exact', module docstring);
    seed None: the mode's default (17925 original, 0 exact). Returns (noisy, measured SNR
    dB: on all samples in original mode, on the valid ones in exact mode)."""
    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {', '.join(NOISE_MODES)} (got {mode!r})")
    seed = default_seed(mode) if seed is None else seed
    if mode == "original":
        return add_noise_original(audio, spec, seed)
    return add_noise(audio, spec, seed, recording_id, valid)


def default_seed(mode: str) -> int:
    """The seed a mode uses when none is given."""
    return ORIGINAL_SEED if mode == "original" else 0


def add_noise_args(p: argparse.ArgumentParser) -> None:
    """--noise, --noise-mode, --noise-seed (eval and analyze)."""
    lo, hi = SNR_RANGE_DB
    p.add_argument("--noise", default="none",
                   help="corrupt the audio: none | gaussian:SNR | gaussian:LOW:HIGH | "
                   f"background:PATH:SNR[:HIGH] (dB in [{lo:g}, {hi:g}]; PATH a sound file "
                   "or folder; see lcasr_jax/eval/noise.py)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="original",
                   help="original: audiomentations reseeded before every recording, as the "
                   "original's noise scripts (one SNR draw and noise sequence shared by all "
                   "recordings, SNR on all samples); exact: per-recording draws, SNR exact "
                   "on the valid samples")
    p.add_argument("--noise-seed", type=int,
                   help=f"noise seed (default: {ORIGINAL_SEED}, the original's, in original "
                   "mode; 0 in exact mode, where it seeds each recording with its id)")
