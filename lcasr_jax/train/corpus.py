"""Batches from a built recording corpus (lcasr_jax.data: tfds ArrayRecord + Loader).

Adapts `lcasr_jax.data.loader.Loader` to the loop's source protocol: next_batch(frames,
batch_size) -> (batch, info), total_recordings(), state_dict(), load_state_dict().
`info['recordings']` counts the recordings started in the batch (rows at frame 0), the unit
of the sequence-length schedule and of the cosine decay.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

KEYS = ("spec", "lengths", "targets", "target_lengths")


class CorpusSource:
    """`source`: random-access recordings (len, [i] -> dict), e.g. `open_split(...)`."""

    def __init__(self, source: Any, seed: int = 0):
        self.source, self.seed = source, int(seed)
        self.loader = None
        self.state: dict[str, Any] | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> CorpusSource:
        from lcasr_jax.data.tfds_builder import open_split

        if not cfg.data.path:
            raise ValueError("data.path is empty: pass --config.data.path=DATASET_DIR")
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
