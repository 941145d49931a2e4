"""Host-side schedules with the original lcasr training semantics; state is JSON-able.

`SequenceSchedule`: the sequence-length warm-up (lengths in spectrogram frames, positions in
recordings seen). The learning rate: `learning_rate(plan, state, i)`, a pure function of
the schedule state at a recording batch's start (`LRState`), moved on by `begin_batch` and
`end_batch` (with refilled slots every step is a batch of one optimizer step).
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

    def _overshoots(self, length: int) -> bool:
        """Would the next increase from `length` pass the maximum (and be clipped to it)?"""
        return length * self.increase_by_multiplier > self.max_sequence_length

    def _next_stage(self, length: int, batch: int) -> tuple[int, int] | None:
        """The (chunk length, batch size) that `step` grows to from (length, batch): the
        length times the multiplier, the last one clipped to the maximum; None at it."""
        if self._overshoots(length):
            if length == self.max_sequence_length:
                return None
            return self.max_sequence_length, max(int(batch * self.batch_size_multiplier), 1)
        return (max(int(length * self.increase_by_multiplier), 1),
                max(int(batch * self.batch_size_multiplier), 1))

    def step(self, recordings: int = 1) -> bool:
        """Advance by `recordings` seen; True when length/batch changed."""
        if self.increase_every == -1:
            return False
        self.cur_position += recordings
        if self.cur_position < self.start_after:
            return False
        if (self.cur_position >= self.stop_after
                and self.steps_since_last_increase < self.increase_every / 2):
            return False
        nxt = self._next_stage(self.cur_sequence_length, self.cur_batch_size)
        if nxt is None:
            return False
        if (self.cur_position >= self.stop_after  # and half an interval passed (above)
                and not self._overshoots(self.cur_sequence_length)):
            return self._grow(nxt)
        self.steps_since_last_increase += recordings
        if self.steps_since_last_increase >= self.increase_every:
            return self._grow(nxt)
        return False

    def _grow(self, stage: tuple[int, int]) -> bool:
        self.steps_since_last_increase = 0
        self.cur_sequence_length, self.cur_batch_size = stage
        return True

    def upcoming_stages(self, count: int) -> list[tuple[int, int]]:
        """The next `count` (chunk length, batch size) stages, in order, as `step` reaches
        them; fewer when the maximum length comes first, none without increases."""
        stages: list[tuple[int, int]] = []
        stage = (self.cur_sequence_length, self.cur_batch_size)
        while self.increase_every != -1 and len(stages) < count:
            if (stage := self._next_stage(*stage)) is None:
                break
            stages.append(stage)
        return stages

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SequenceSchedule:
        return cls(**state)

    @classmethod
    def from_config(cls, sequence: Any) -> SequenceSchedule:
        """From `cfg.sequence`, whose `length` and `batch_size` are the starting values."""
        s = dict(sequence)
        return cls(cur_sequence_length=s.pop("length"), cur_batch_size=s.pop("batch_size"), **s)


@dataclasses.dataclass(frozen=True)
class LRPlan:
    """The original's `CosineLRScheduler` settings: linear warm-up over `warmup_steps`
    optimizer steps to `peak`, then a cosine to `final` over the recordings left."""

    warmup_steps: int
    peak: float
    final: float = 0.0

    @classmethod
    def from_config(cls, optim: Any) -> LRPlan:
        return cls(int(optim.warmup_steps), float(optim.lr), float(optim.final_lr))


@dataclasses.dataclass(frozen=True)
class LRState:
    """Where the schedule stands at the start of a recording batch (JSON-able).

    warmup_taken: optimizer steps taken while warming up; cosine_start: recordings seen
    (including its batch) when the cosine began, -1 while warming up; cosine_steps: the
    recordings left then, plus one; cosine_at: recordings seen at the end of the last batch
    since the switch, -1 before the first such batch ends.
    """

    warmup_taken: int = 0
    cosine_start: int = -1
    cosine_steps: int = 1
    cosine_at: int = -1

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], recordings_seen: int = 0) -> LRState:
        if "warmup_count" in state:  # an LRSchedule state (checkpoints before LRState)
            warm = bool(state["is_warmup"])
            return cls(int(state["warmup_count"]), -1 if warm else int(state["offset"]),
                       int(state["cosine_steps"]), -1 if warm else int(recordings_seen))
        return cls(**state)


def learning_rate(plan: LRPlan, state: LRState, step_in_batch: int = 0) -> float:
    """lr of optimizer step `step_in_batch` (0-based) of the batch that `state` starts.

    Warming up: peak * min(1, n / warmup_steps) with n the warm-up steps taken before it
    (the first step of a run uses 0). The batch at which the switch happens keeps the last
    warm-up value; afterwards final + (peak - final) / 2 * (1 + cos(pi * f)), f = recordings
    seen since the switch / cosine_steps (capped at 1), updated at batch ends only.
    """
    if state.cosine_start < 0 or state.cosine_at < 0:
        n = state.warmup_taken + (step_in_batch if state.cosine_start < 0 else 0)
        return plan.peak if plan.warmup_steps <= 0 else plan.peak * min(
            1.0, n / plan.warmup_steps)
    frac = min((state.cosine_at - state.cosine_start) / max(state.cosine_steps, 1), 1.0)
    return plan.final + 0.5 * (plan.peak - plan.final) * (1 + math.cos(frac * math.pi))


def begin_batch(plan: LRPlan, state: LRState, recordings_seen: int,
                total_recordings: int) -> LRState:
    """At a batch start (`recordings_seen` counts the batch): switch to the cosine once the
    warm-up steps are done (the cosine then spans total - seen + 1 recordings)."""
    if state.cosine_start < 0 and state.warmup_taken >= plan.warmup_steps:
        return dataclasses.replace(state, cosine_start=recordings_seen,
                                   cosine_steps=total_recordings - recordings_seen + 1)
    return state


def end_batch(state: LRState, steps: int, recordings_seen: int) -> LRState:
    """After a batch of `steps` optimizer steps (skipped ones included, as GradScaler's)."""
    if state.cosine_start < 0:
        return dataclasses.replace(state, warmup_taken=state.warmup_taken + steps)
    return dataclasses.replace(state, cosine_at=recordings_seen)
