"""A folder of dry recordings (`data synth --dry`) whose acoustics are drawn per epoch.

`example(rec, epoch)` reads the recording's 16 kHz audio, augments it and computes its
features on the accelerator (`data.augment.augment_recording`, keyed by (seed, epoch,
recording)), and scales the word times by the speed drawn; the words and tokens are read
once and kept. So every epoch of one dry corpus is a different acoustic corpus; the data
loader calls `example` instead of `[rec]` (its `_Producer._read`). Host memory: the token
lists, plus the features of the recordings in flight, as with `recordings.RecordingsSource`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.alignments import find_recordings, read_recording, validate_words
from lcasr_jax.data.augment import AugmentConfig, augment_recording
from lcasr_jax.data.chunking import word_tokens


class DryRecordingsSource:
    """Random access over dry recording JSONs: len(src), src.example(i, epoch)."""

    def __init__(self, paths: list[Path], cfg: AugmentConfig, seed: int):
        if not paths:
            raise ValueError("no recording JSONs given")
        self.paths, self.cfg, self.seed = list(paths), cfg, int(seed)
        self.words: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @classmethod
    def from_dir(cls, directory: str | Path, split: str, cfg: AugmentConfig,
                 seed: int) -> DryRecordingsSource:
        """Recordings of DIR/<split> (all of DIR for 'train' when it has no such folder)."""
        root = Path(directory)
        paths = find_recordings(root / split if (root / split).is_dir() else root)
        if not paths:
            raise ValueError(f"{root}: no recording JSONs found")
        return cls(paths, cfg, seed)

    def __len__(self) -> int:
        return len(self.paths)

    def durations(self) -> list[float]:
        """Seconds of each dry recording (its JSON's duration; no audio read or augmented):
        the original's batch order sorts by these."""
        return [read_recording(p).duration for p in self.paths]

    def _text(self, i: int) -> dict[str, Any]:
        with self.lock:
            hit = self.words.get(i)
        if hit is None:
            rec = read_recording(self.paths[i])
            words = validate_words(rec.words, rec.duration, source=str(self.paths[i]))
            offsets, ids = word_tokens(words.text)
            hit = {"audio": rec.audio, "word_start": words.start.astype(np.float64),
                   "word_end": words.end.astype(np.float64),
                   "token_offsets": offsets.astype(np.int64), "token_ids": ids.astype(np.int32)}
            with self.lock:
                self.words[i] = hit
        return hit

    def example(self, i: int, epoch: int) -> dict[str, Any]:
        """Recording i as epoch `epoch` hears it: the loader's example fields."""
        from lcasr_jax.data.audio import load_audio

        t = self._text(i)
        audio = load_audio(t["audio"], resampler="soxr")
        feats, speed = augment_recording(audio, self.seed, epoch, i, self.cfg)
        return {"features": feats, "num_frames": np.int32(len(feats)),
                "word_start": t["word_start"] / speed, "word_end": t["word_end"] / speed,
                "token_offsets": t["token_offsets"], "token_ids": t["token_ids"]}

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Epoch 0's example (for readers that know no epochs, e.g. the dev set)."""
        return self.example(i, 0)
