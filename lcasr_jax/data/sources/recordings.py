"""A folder of recording JSONs + audio as random-access dataset examples (no tfds needed).

Features are computed on first use and cached in host memory (float16, 57.6 MB per hour).
`encode_recording` is also what the TFDS builder stores, so both kinds read the same data.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.alignments import find_recordings, read_recording, validate_words
from lcasr_jax.data.chunking import word_tokens


def encode_recording(json_path: str | Path, resampler: str = "soxr") -> dict[str, Any]:
    """Recording JSON -> one dataset example (audio loaded, features computed, tokenised).

    Fields: id, features (frames, 80) float16, num_frames, word_start / word_end (words,)
    float64 seconds, token_offsets (words + 1,) int64, token_ids (tokens,) int32, text.
    """
    from lcasr_jax.data.audio import load_audio
    from lcasr_jax.data.features import compute_features

    rec = read_recording(json_path)
    audio = load_audio(rec.audio, resampler=resampler)
    duration = len(audio) / 16000
    words = validate_words(rec.words, duration, source=str(json_path))
    feats = compute_features(audio)
    offsets, ids = word_tokens(words.text)
    return {
        "id": rec.id,
        "features": np.ascontiguousarray(feats.T).astype(np.float16),
        "num_frames": np.int32(feats.shape[1]),
        "word_start": words.start.astype(np.float64),
        "word_end": words.end.astype(np.float64),
        "token_offsets": offsets.astype(np.int64),
        "token_ids": ids.astype(np.int32),
        "text": " ".join(words.text),
    }


class RecordingsSource:
    """Random access over recording JSONs: len(src), src[i] -> `encode_recording` (cached)."""

    def __init__(self, paths: list[Path]):
        if not paths:
            raise ValueError("no recording JSONs given")
        self.paths = list(paths)
        self.cache: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @classmethod
    def from_dir(cls, directory: str | Path, split: str = "train") -> RecordingsSource:
        """Recordings of DIR/<split>; for 'train' all of DIR when it has no such folder."""
        root = Path(directory)
        if not (root / split).is_dir() and split != "train":
            raise ValueError(f"{root}: no {split!r} folder of recordings")
        paths = find_recordings(root / split if (root / split).is_dir() else root)
        if not paths:
            raise ValueError(f"{root}: no recording JSONs found")
        return cls(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        with self.lock:
            hit = self.cache.get(i)
        if hit is None:
            hit = encode_recording(self.paths[i])
            with self.lock:
                self.cache[i] = hit
        return hit
