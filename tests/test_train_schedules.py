"""Sequence-length and learning-rate schedules on hand-derived tables (original semantics)."""

import json
import math

import pytest

from lcasr_jax.train.schedules import (
    LRPlan,
    LRState,
    SequenceSchedule,
    begin_batch,
    end_batch,
    learning_rate,
)


def _run(sched, steps, n):
    out = []
    for _ in range(n):
        changed = sched.step(steps)
        out.append((sched.cur_position, sched.cur_sequence_length, sched.cur_batch_size, changed))
    return out


def _seq(every=10, stop=1000, start=0, max_len=64, length=8, batch=16):
    return SequenceSchedule(increase_every=every, stop_after=stop, start_after=start,
                            max_sequence_length=max_len, cur_sequence_length=length,
                            cur_batch_size=batch)


@pytest.mark.parametrize("kwargs,steps,n,want", [
    # plain doubling every 10 recordings, stepping by 4; frozen once at the maximum
    (dict(), 4, 10, [(4, 8, 16, False), (8, 8, 16, False), (12, 16, 8, True),
                     (16, 16, 8, False), (20, 16, 8, False), (24, 32, 4, True),
                     (28, 32, 4, False), (32, 32, 4, False), (36, 64, 2, True),
                     (40, 64, 2, False)]),
    # maximum that is not a power of two: the last increase is clipped to it
    (dict(max_len=50), 10, 4, [(10, 16, 8, True), (20, 32, 4, True), (30, 50, 2, True),
                               (40, 50, 2, False)]),
    # start_after: no counting before 25 recordings
    (dict(start=25), 10, 3, [(10, 8, 16, False), (20, 8, 16, False), (30, 16, 8, True)]),
    # stop_after reached right after an increase: frozen for good
    (dict(stop=25, max_len=1000), 4, 9,
     [(4, 8, 16, False), (8, 8, 16, False), (12, 16, 8, True), (16, 16, 8, False),
      (20, 16, 8, False), (24, 32, 4, True), (28, 32, 4, False), (32, 32, 4, False),
      (36, 32, 4, False)]),
    # stop_after reached with >= half an interval since the last increase: one last jump now
    (dict(stop=22, max_len=1000), 4, 8,
     [(4, 8, 16, False), (8, 8, 16, False), (12, 16, 8, True), (16, 16, 8, False),
      (20, 16, 8, False), (24, 32, 4, True), (28, 32, 4, False), (32, 32, 4, False)]),
    # disabled: nothing moves, not even the position
    (dict(every=-1), 5, 2, [(0, 8, 16, False), (0, 8, 16, False)]),
    # batch size floors at one
    (dict(batch=3, max_len=1000), 10, 3, [(10, 16, 1, True), (20, 32, 1, True),
                                          (30, 64, 1, True)]),
])
def test_sequence_schedule_table(kwargs, steps, n, want):
    assert _run(_seq(**kwargs), steps, n) == want


@pytest.mark.parametrize("kwargs", [
    dict(), dict(max_len=50), dict(max_len=64, length=64), dict(max_len=16, length=64),
    dict(stop=22, max_len=1000), dict(start=25, batch=3), dict(every=-1)])
@pytest.mark.parametrize("mult", [1.5, 2.0, 3.0])
def test_upcoming_stages_are_the_stages_step_reaches(kwargs, mult):
    sched = _seq(**kwargs)
    sched.increase_by_multiplier = mult
    predicted = sched.upcoming_stages(8)
    reached = [(s.cur_sequence_length, s.cur_batch_size)
               for s in [sched] for _ in range(400) if s.step(3)]
    n = min(len(reached), len(predicted))  # stop_after may freeze step() before the end
    assert reached[:n] == predicted[:n] and (n == len(predicted) or kwargs.get("stop"))
    assert predicted or not reached


def test_paper_schedule_stages_and_json_roundtrip():
    s = SequenceSchedule(increase_every=5000, stop_after=10**9, start_after=0,
                         max_sequence_length=360000, cur_sequence_length=512,
                         cur_batch_size=704)
    stages = [(512, 704)]
    for i in range(60000):
        if s.step(1):
            stages.append((s.cur_sequence_length, s.cur_batch_size))
        if i == 12345:
            s = SequenceSchedule.from_state(json.loads(json.dumps(s.state_dict())))
    assert stages == [(512, 704), (1024, 352), (2048, 176), (4096, 88), (8192, 44),
                      (16384, 22), (32768, 11), (65536, 5), (131072, 2), (262144, 1),
                      (360000, 1)]


def test_lr_schedule_warmup_then_cosine_over_recordings():
    plan, state = LRPlan(warmup_steps=4, peak=1.0, final=0.0), LRState()
    used, ends = [], []
    for b in range(1, 6):  # 5 batches of 2 recordings, 2 optimizer steps each, 10 in total
        state = begin_batch(plan, state, recordings_seen=2 * b, total_recordings=10)
        used += [learning_rate(plan, state, i) for i in range(2)]
        state = end_batch(state, 2, recordings_seen=2 * b)
        ends.append(learning_rate(plan, state))
        state = LRState.from_state(json.loads(json.dumps(state.state_dict())))
    c = lambda f: 0.5 * (1 + math.cos(f * math.pi))
    assert used == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, c(0.4), c(0.4)])
    assert ends == pytest.approx([0.5, 1.0, 1.0, c(0.4), c(0.8)])
    assert (state.cosine_start, state.cosine_steps) == (6, 5)


def test_lr_state_reads_a_checkpoint_of_the_former_lr_schedule():
    old = {"warmup_steps": 4, "peak": 1.0, "final": 0.0, "is_warmup": False,
           "warmup_count": 4, "offset": 6, "cosine_steps": 5, "lr": 0.9}
    state = LRState.from_state(old, recordings_seen=8)
    expected = 0.5 * (1 + math.cos(0.4 * math.pi))
    assert learning_rate(LRPlan(4, 1.0), state) == pytest.approx(expected)
