"""Batches from random-access recordings through `lcasr_jax.data.loader.Loader`.

Adapts the loader to the `BatchSource` protocol for the loader-backed kinds: a built TFDS
split (`tfds.open_split`) or a folder of recordings (`recordings.RecordingsSource`).
`info['recordings']` counts the recordings started in the batch (rows at frame 0);
`info['epochs_done']` the epochs whose recordings have all been yielded to the end.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from lcasr_jax.data.loader import Loader, completed_epochs
from lcasr_jax.data.sources.base import BATCH_KEYS


class ChunkedSource:
    """Either loader-backed kind (`corpus`, `recordings`) as a `BatchSource`: `source` is
    random-access recordings (len, [i] -> dataset example dict), cut into chunks by the
    loader. `process` = (index, count) of the share it reads, by default jax's."""

    def __init__(self, source: Any, seed: int = 0, process: tuple[int, int] | None = None):
        self.source, self.seed, self.process = source, int(seed), process
        self.loader = None
        self.state: dict[str, Any] | None = None

    def next_batch(self, frames: int, batch_size: int) -> tuple[dict[str, np.ndarray], dict]:
        if self.loader is None:
            index, count = self.process or (jax.process_index(), jax.process_count())
            self.loader = Loader(self.source, frames, batch_size, seed=self.seed,
                                 state=self.state, process_index=index, process_count=count)
        elif (self.loader.shape.chunk_frames, self.loader.shape.batch_size) != (frames, batch_size):
            self.loader.set_shape(frames, batch_size)
        batch = next(self.loader)
        started = int(np.sum(batch["valid"] & (batch["frame"] == 0)))
        state = self.loader.state()
        info = {"recordings": started, "epoch": int(state["epoch"]),
                "epochs_done": completed_epochs(state, len(self.source))}
        return {k: batch[k] for k in BATCH_KEYS}, info

    def total_recordings(self) -> int:
        return len(self.source)

    def state_dict(self) -> dict[str, Any] | None:
        return self.loader.state() if self.loader is not None else self.state

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        self.state = state
