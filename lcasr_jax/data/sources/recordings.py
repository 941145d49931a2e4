"""A folder of recording JSONs + audio as random-access dataset examples (no tfds needed).

Examples are `data.examples.encode_recording`'s, what the TFDS builder stores, so both
kinds read the same data. They are computed on first use (or read from `feature_cache`
files beside the JSONs) and kept in host memory (float16, 57.6 MB per hour).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lcasr_jax.data.alignments import find_recordings
from lcasr_jax.data.examples import encode_recording
from lcasr_jax.data.sources.feature_cache import cached


class RecordingsSource:
    """Random access over recording JSONs: len(src), src[i] -> `encode_recording` (cached)."""

    def __init__(self, paths: list[Path], resampler: str = "soxr"):
        if not paths:
            raise ValueError("no recording JSONs given")
        self.paths, self.resampler = list(paths), resampler
        self.cache: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @classmethod
    def from_dir(cls, directory: str | Path, split: str = "train",
                 resampler: str = "soxr") -> RecordingsSource:
        """Recordings of DIR/<split>; for 'train' all of DIR when it has no such folder."""
        root = Path(directory)
        if not (root / split).is_dir() and split != "train":
            raise ValueError(f"{root}: no {split!r} folder of recordings")
        paths = find_recordings(root / split if (root / split).is_dir() else root)
        if not paths:
            raise ValueError(f"{root}: no recording JSONs found")
        return cls(paths, resampler)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        with self.lock:
            hit = self.cache.get(i)
        if hit is None:
            hit = cached(self.paths[i], encode_recording, self.resampler)
            with self.lock:
                self.cache[i] = hit
        return hit
