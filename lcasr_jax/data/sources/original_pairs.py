"""A corpus in the original's training format as random-access dataset examples.

`audio_txt_pairs.json`: {id: {"audio": spectrogram .pt (1, 80, T) float32, "txt": transcript
JSON (Google STT style), "duration": seconds}}, in the order the original's loader reads it.
Examples are `examples.example_from_words`'s (features (T, 80) float32, the words as the
transcript gives them, tokenised); `durations()` is the pairs' duration column, the key the
original sorts by. Needs torch (to read the .pt spectrograms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.alignments import words_from_podcast_json
from lcasr_jax.data.examples import example_from_words


class OriginalPairs:
    """len(src), src[i] -> example, src.ids, src.durations(); examples cached on read."""

    def __init__(self, pairs: dict[str, dict[str, Any]], root: Path):
        self.root = root
        self.ids = list(pairs)
        self.entries = [pairs[k] for k in self.ids]
        for k, e in zip(self.ids, self.entries, strict=True):
            if not {"audio", "txt", "duration"} <= set(e):
                raise ValueError(f"{root}: pair {k!r} needs audio, txt and duration")
        self.cache: dict[int, dict[str, Any]] = {}

    @classmethod
    def from_json(cls, path: str | Path) -> OriginalPairs:
        path = Path(path)
        try:
            pairs = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable audio_txt_pairs JSON ({e})") from None
        return cls(pairs, path.parent)

    def __len__(self) -> int:
        return len(self.ids)

    def durations(self) -> list[float]:
        return [float(e["duration"]) for e in self.entries]

    def _path(self, p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else self.root / p

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i not in self.cache:
            import torch

            e = self.entries[i]
            spec = torch.load(self._path(e["audio"]), map_location="cpu").numpy()
            if spec.ndim != 3 or spec.shape[:2] != (1, 80):
                raise ValueError(f"{e['audio']}: spectrogram must be (1, 80, T), got "
                                 f"{spec.shape}")
            words = words_from_podcast_json(self._path(e["txt"]))
            self.cache[i] = example_from_words(self.ids[i], np.ascontiguousarray(spec[0].T),
                                               words)
        return self.cache[i]
