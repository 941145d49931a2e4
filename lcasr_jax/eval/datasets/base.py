"""A long-form test recording as scored (audio, normalised reference, regions to blank
out) and the dataset readers' shared checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.audio import DEFAULT_RESAMPLER
from lcasr_jax.data.features import audio_to_features


class DatasetError(ValueError):
    """A dataset directory or file is missing or malformed; the message names it."""


@dataclasses.dataclass(frozen=True)
class EvalRecording:
    """One test recording to transcribe and score (not `data.alignments.Recording`, an
    aligned training recording: this one carries the dataset's normalised reference and
    scoring exclusions; word times only where the dataset has them). `reference` is the
    scoring reference, normalised as the original normalises it for this dataset;
    `raw_reference` is the text as read. `ignore` holds (start, end) seconds to zero in
    the features (TED-LIUM's ignore_time_segment_in_scoring). `words`: optional
    [{"word", "start", "end"}]."""

    id: str
    audio: Path
    reference: str
    raw_reference: str = ""
    ignore: tuple[tuple[float, float], ...] = ()
    words: tuple[dict[str, Any], ...] | None = None

    def features(self, resampler: str = DEFAULT_RESAMPLER) -> np.ndarray:
        """(80, frames) float32 normalised mel features with ignored regions zeroed;
        `resampler` for audio not at 16 kHz ('torchaudio': the original's, or 'soxr')."""

        return zero_regions(audio_to_features(self.audio, resampler), self.ignore)


def total_frames(seconds: float) -> int:
    """Seconds -> frame index, truncating, as the original's `total_frames`."""
    return int((seconds * 16000) / 160)


def zero_regions(spec: np.ndarray, regions, buffer: float = -0.5) -> np.ndarray:
    """The original's `zero_out_spectogram`: zero frames [start - buffer, end + buffer) of
    each (start, end) region in seconds (buffer -0.5 s shrinks each region by 0.5 s at
    both ends). spec: (80, frames); returns a copy when anything is zeroed."""
    if not regions:
        return spec
    spec = np.array(spec, copy=True)
    for start, end in regions:
        a, b = total_frames(start - buffer), total_frames(end + buffer)
        spec[:, a:b] = 0  # python slicing: empty when b <= a, like torch
    return spec


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None


def read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    return path.read_text(encoding="utf-8")


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} directory not found")
    return path


def check_split(dataset: str, split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise DatasetError(f"{dataset}: split must be one of {', '.join(allowed)} (got {split!r})")


def check_rate(audio: Path, declared, where: Path | str) -> None:
    """Raise if the audio is unreadable or its sample rate differs from a declared one."""
    if declared is None:
        return
    import soundfile as sf

    if not audio.is_file():
        raise DatasetError(f"{audio}: audio file not found")
    if audio.stat().st_size == 0:
        raise DatasetError(f"{audio}: empty file")
    try:
        actual = sf.info(str(audio)).samplerate
    except Exception as e:  # soundfile raises several error types
        raise DatasetError(f"{audio}: unreadable audio ({e})") from None
    try:
        declared = int(declared)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: sample_rate {declared!r} is not a number") from None
    if declared != actual:
        raise DatasetError(f"{where}: declares sample_rate {declared} Hz but {audio.name} "
                           f"is {actual} Hz")
