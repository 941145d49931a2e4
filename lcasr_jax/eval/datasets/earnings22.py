"""Earnings-22, the full-recording layout the original reads: `media/*.mp3` (one file per
earnings call) and `full_transcripts.json` ({call id: transcript}).

`earnings22_full` uses every mp3 under `media/` (the original's test set = the whole
dataset). `earnings22` reads `<split>_original/` (or `<split>/`) audio with the same
transcripts. References get the original's tag/punctuation cleanup then Whisper's.
"""

from __future__ import annotations

from pathlib import Path

from lcasr_jax.eval.datasets.base import (
    DatasetError,
    EvalRecording,
    check_split,
    read_json,
    require_dir,
)
from lcasr_jax.eval.normalize import normalize_reference


def _read(audio_dir: Path, transcripts: Path, dataset: str) -> list[EvalRecording]:
    texts = read_json(transcripts)
    if not isinstance(texts, dict):
        raise DatasetError(f"{transcripts}: expected a JSON object {{call id: transcript}}")
    files = sorted(audio_dir.glob("*.mp3"))
    if not files:
        raise DatasetError(f"{audio_dir}: no .mp3 files")
    recordings = []
    for path in files:
        if path.stem not in texts:
            raise DatasetError(f"{transcripts}: no transcript for {path.stem}")
        raw = str(texts[path.stem])
        recordings.append(EvalRecording(path.stem, path, normalize_reference(raw, dataset), raw))
    return recordings


def read_full(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    check_split("earnings22_full", split, ("test",))
    data_dir = Path(data_dir)
    media = data_dir / "media"
    return _read(require_dir(media if media.is_dir() else data_dir, "Earnings-22 media"),
                 data_dir / "full_transcripts.json", "earnings22_full")


def read(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    check_split("earnings22", split, ("test", "dev"))
    data_dir = Path(data_dir)
    audio = data_dir / f"{split}_original"
    audio = audio if audio.is_dir() else data_dir / split
    return _read(require_dir(audio, f"Earnings-22 {split} audio"),
                 data_dir / "full_transcripts.json", "earnings22")
