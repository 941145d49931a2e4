"""Deterministic synthetic batches for tests and smoke runs (no audio needed).

Each row is one "recording": a token sequence rendered as a spectrogram in which every token
holds a fixed random 80-d pattern (plus noise) for an equal share of the valid frames, so
the task is learnable. Batch i of process p of P is a pure function of (seed, i, frames,
batch size, p, P), which makes (position, rows produced) the whole resumable state. Each
process produces its own `batch_size` rows (the global batch has P x batch_size); with one
process (p, P) do not enter the seed, so its batches are those of a single-process run.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from lcasr_jax.data.features import FRAMES_PER_SECOND


class SyntheticSource:
    """Batches: spec (batch, feat_in, frames) f32, lengths (batch,) i32 frames, targets
    (batch, max_tokens) i32 (pad 0), target_lengths (batch,) i32.

    `recordings_per_epoch` counts the rows of all processes; `process_index` and
    `process_count` default to jax's. Token patterns depend on the seed only (shared).
    """

    def __init__(self, seed: int = 0, recordings_per_epoch: int = 64,
                 tokens_per_second: float = 3.0, feat_in: int = 80, n_token_types: int = 24,
                 process_index: int | None = None, process_count: int | None = None):
        if process_index is None or process_count is None:
            process_index, process_count = jax.process_index(), jax.process_count()
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} not in [0, {process_count})")
        self.process = (process_index, process_count)
        self.seed, self.recordings_per_epoch = seed, recordings_per_epoch
        self.tokens_per_second, self.feat_in = tokens_per_second, feat_in
        self.token_ids = np.arange(3, 3 + n_token_types)
        self.patterns = np.random.default_rng(seed).normal(size=(n_token_types, feat_in))
        self.position = 0  # batches produced
        self.recordings = 0  # rows produced

    def target_width(self, frames: int) -> int:
        """Width of a batch's targets at `frames` (tokens)."""
        return max(1, int(frames / FRAMES_PER_SECOND * self.tokens_per_second))

    def next_batch(self, frames: int, batch_size: int) -> tuple[dict[str, np.ndarray], dict]:
        """This process's batch and info {'recordings': its rows, 'epoch': epoch of its first
        row, counting the rows of all processes}."""
        shard = list(self.process) if self.process[1] > 1 else []
        rng = np.random.default_rng([self.seed, self.position, frames, batch_size, *shard])
        max_tokens = self.target_width(frames)
        spec = np.zeros((batch_size, self.feat_in, frames), np.float32)
        lengths = rng.integers(frames // 2, frames + 1, size=batch_size).astype(np.int32)
        lengths[0] = frames  # the longest row reaches the end (as real chunked batches do)
        targets = np.zeros((batch_size, max_tokens), np.int32)
        target_lengths = np.zeros((batch_size,), np.int32)
        for b in range(batch_size):
            n = max(1, int(lengths[b] / frames * max_tokens))
            kinds = rng.integers(0, len(self.token_ids), size=n)
            edges = np.linspace(0, lengths[b], n + 1).astype(int)
            for j, k in enumerate(kinds):
                seg = slice(edges[j], edges[j + 1])
                spec[b, :, seg] = self.patterns[k][:, None]
            spec[b, :, : lengths[b]] += 0.3 * rng.normal(size=(self.feat_in, lengths[b]))
            targets[b, :n], target_lengths[b] = self.token_ids[kinds], n
        epoch = self.recordings * self.process[1] // self.recordings_per_epoch
        self.position += 1
        self.recordings += batch_size
        batch = {"spec": spec, "lengths": lengths, "targets": targets,
                 "target_lengths": target_lengths}
        done = self.recordings * self.process[1] // self.recordings_per_epoch
        return batch, {"recordings": batch_size, "epoch": epoch, "epochs_done": done}

    def total_recordings(self) -> int:
        return self.recordings_per_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "recordings": self.recordings}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
        self.recordings = int(state["recordings"])
