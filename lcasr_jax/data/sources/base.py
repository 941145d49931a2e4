"""The contract between a training batch source and the training loop."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

BATCH_KEYS = ("spec", "lengths", "targets", "target_lengths")


@runtime_checkable
class BatchSource(Protocol):
    """Yields this process's training batches at the shape the schedule asks for.

    Batches: spec (batch, feat_in, frames) float, lengths (batch,) int32 frames, targets
    (batch, max_tokens) int32 (pad 0), target_lengths (batch,) int32. Info:
    {'recordings': recordings started in the batch (the unit of the sequence-length schedule
    and the cosine decay), 'epoch': epoch of its first row, counting all processes' rows,
    'epochs_done': epochs of which every chunk has been yielded (training stops there)}.
    The state is everything needed to resume exactly (JSON-serialisable).
    """

    def next_batch(self, frames: int, batch_size: int) -> tuple[dict[str, np.ndarray], dict]:
        ...

    def total_recordings(self) -> int:
        """Recordings in one epoch (of all processes)."""
        ...

    def state_dict(self) -> dict[str, Any] | None:
        ...

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        ...
