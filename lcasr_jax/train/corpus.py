"""Batches from a recording corpus through `lcasr_jax.data.loader.Loader`.

Sources: a built tfds ArrayRecord dataset (data.kind='corpus'), or, where tfds is missing
(the GPU image), a folder of recording JSONs + audio (data.kind='recordings') whose features
are computed on first use (or read from `feature_cache` files) and kept in host memory
(float16, 57.6 MB per hour).

Adapts `lcasr_jax.data.loader.Loader` to the loop's source protocol: next_batch(frames,
batch_size) -> (batch, info), total_recordings(), state_dict(), load_state_dict().
`info['recordings']` counts the recordings started in the batch (rows at frame 0), the unit
of the sequence-length schedule and of the cosine decay.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lcasr_jax.train import feature_cache

KEYS = ("spec", "lengths", "targets", "target_lengths")


class CorpusSource:
    """`source`: random-access recordings (len, [i] -> dict), e.g. `open_split(...)`."""

    def __init__(self, source: Any, seed: int = 0):
        self.source, self.seed = source, int(seed)
        self.loader = None
        self.state: dict[str, Any] | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> CorpusSource:
        if not cfg.data.path:
            raise ValueError("data.path is empty: pass --config.data.path=DIR")
        if cfg.data.kind == "recordings":
            return cls(RecordingsSource.from_dir(cfg.data.path, cfg.data.split), seed=cfg.seed)
        from lcasr_jax.data.tfds_builder import open_split

        return cls(open_split(cfg.data.path, cfg.data.split), seed=cfg.seed)

    def next_batch(self, frames: int, batch_size: int) -> tuple[dict[str, np.ndarray], dict]:
        from lcasr_jax.data.loader import Loader

        if self.loader is None:
            self.loader = Loader(self.source, frames, batch_size, seed=self.seed,
                                 state=self.state, process_index=jax.process_index(),
                                 process_count=jax.process_count())
        elif (self.loader.shape.seq_len, self.loader.shape.batch_size) != (frames, batch_size):
            self.loader.set_shape(frames, batch_size)
        batch = next(self.loader)
        started = int(np.sum(batch["valid"] & (batch["frame"] == 0)))
        info = {"recordings": started, "epoch": int(self.loader.state()["epoch"])}
        return {k: batch[k] for k in KEYS}, info

    def total_recordings(self) -> int:
        return len(self.source)

    def state_dict(self) -> dict[str, Any] | None:
        return self.loader.state() if self.loader is not None else self.state

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        self.state = state


class RecordingsSource:
    """Random access over recording JSONs (word timings + audio path), no tfds needed.

    Items have the dataset example fields the Loader reads (features (frames, 80) float16,
    num_frames, word_start/word_end seconds, token_offsets, token_ids).
    """

    def __init__(self, paths: list[Path]):
        if not paths:
            raise ValueError("no recording JSONs given")
        self.paths = list(paths)
        self.cache: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @classmethod
    def from_dir(cls, directory: str | Path, split: str = "train") -> RecordingsSource:
        """Recordings of DIR/<split>; for 'train' all of DIR when it has no such folder."""
        from lcasr_jax.data.alignments import find_recordings

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
            hit = feature_cache.cached(self.paths[i], encode_recording)
            with self.lock:
                self.cache[i] = hit
        return hit


def encode_recording(path: Path) -> dict[str, Any]:
    """A recording JSON (+ its audio) as the dataset example fields the Loader reads."""
    from lcasr_jax.data.alignments import read_recording, validate_words
    from lcasr_jax.data.audio import load_audio
    from lcasr_jax.data.chunking import word_tokens
    from lcasr_jax.data.features import compute_features

    rec = read_recording(path)
    audio = load_audio(rec.audio)
    words = validate_words(rec.words, len(audio) / 16000, source=str(path))
    feats = compute_features(audio)  # (80, frames)
    offsets, ids = word_tokens(words.text)
    return {"features": np.ascontiguousarray(feats.T).astype(np.float16),
            "num_frames": int(feats.shape[1]), "word_start": words.start.astype(np.float64),
            "word_end": words.end.astype(np.float64), "token_offsets": offsets.astype(np.int64),
            "token_ids": ids.astype(np.int32)}
