"""Host-side schedules with the original lcasr training semantics; state is JSON-able.

`SequenceSchedule`: the sequence-length warm-up (lengths in spectrogram frames, positions in
recordings seen). `LRSchedule`: linear warm-up over optimizer steps to `peak`, then a cosine
decay to `final` over the recordings that remain in training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass
class SequenceSchedule:
    """Doubles the chunk length (and halves the batch) every `increase_every` recordings.

    Semantics of the original `SequenceWarmupManager.step`, in order:
    no change before `start_after` recordings; once `stop_after` is reached, one last
    increase happens only if at least half an interval has passed since the previous one,
    otherwise the schedule is frozen; lengths never exceed `max_sequence_length` (the last
    step is clipped to it); `increase_every = -1` disables the schedule.
    """

    increase_every: int
    stop_after: int
    start_after: int
    max_sequence_length: int
    cur_sequence_length: int
    cur_batch_size: int
    increase_by_multiplier: float = 2.0
    batch_size_multiplier: float = 0.5
    cur_position: int = 0
    steps_since_last_increase: int = 0

    def _grow(self, next_len: int) -> bool:
        self.steps_since_last_increase = 0
        self.cur_sequence_length = next_len
        self.cur_batch_size = max(int(self.cur_batch_size * self.batch_size_multiplier), 1)
        return True

    def step(self, recordings: int = 1) -> bool:
        """Advance by `recordings` seen; True when length/batch changed."""
        if self.increase_every == -1:
            return False
        next_len = max(int(self.cur_sequence_length * self.increase_by_multiplier), 1)
        self.cur_position += recordings
        half = self.increase_every / 2
        if self.cur_position < self.start_after:
            return False
        if self.cur_position >= self.stop_after and self.steps_since_last_increase < half:
            return False
        if self.cur_sequence_length * self.increase_by_multiplier > self.max_sequence_length:
            if self.cur_sequence_length == self.max_sequence_length:
                return False
            next_len = self.max_sequence_length
        elif self.cur_position >= self.stop_after:  # and at least half an interval passed
            return self._grow(next_len)
        self.steps_since_last_increase += recordings
        if self.steps_since_last_increase >= self.increase_every:
            return self._grow(next_len)
        return False

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SequenceSchedule:
        return cls(**state)


@dataclasses.dataclass
class LRSchedule:
    """Learning rate of the original's `CosineLRScheduler`, driven like exp/train.py.

    Warm-up: optimizer step n (0-based) uses `peak * min(1, n / warmup_steps)` (so the very
    first step uses 0). The switch to cosine is checked at the start of each recording
    batch; afterwards, at the end of each batch, lr = final + (peak - final) / 2 *
    (1 + cos(pi * (seen - offset) / steps)), with `steps` the recordings left at the switch.
    """

    warmup_steps: int
    peak: float
    final: float = 0.0
    is_warmup: bool = True
    warmup_count: int = 0
    offset: int = 0
    cosine_steps: int = 1
    lr: float = 0.0

    def __post_init__(self) -> None:
        if self.is_warmup and self.warmup_count == 0:
            self.lr = self._warmup_lr()

    def _warmup_lr(self) -> float:
        if self.warmup_steps <= 0:
            return self.peak
        return self.peak * min(1.0, self.warmup_count / self.warmup_steps)

    def start_batch(self, recordings_seen: int, total_recordings: int) -> None:
        """Call before a batch; `recordings_seen` already counts the batch's recordings."""
        if self.is_warmup and self.warmup_count >= self.warmup_steps:
            self.is_warmup = False
            self.cosine_steps = total_recordings - recordings_seen + 1
            self.offset = recordings_seen

    def after_optimizer_step(self) -> None:
        if self.is_warmup:
            self.warmup_count += 1
            self.lr = self._warmup_lr()

    def end_batch(self, recordings_seen: int) -> None:
        if not self.is_warmup:
            # capped: the last recordings' remaining chunks run past the count (stay at final)
            frac = min((recordings_seen - self.offset) / max(self.cosine_steps, 1), 1.0)
            self.lr = self.final + 0.5 * (self.peak - self.final) * (1 + math.cos(frac * math.pi))

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LRSchedule:
        return cls(**state)
