"""Where the original's trainer stops with an error: a stage change on an epoch's last batch.

exp/train.py rebuilds its loader from the epoch's unseen recordings after a stage change; on
the epoch's last batch there are none and it raises. References: its replay fixture ran
through (tests/fixtures/original_replay: 20 recordings, 4 a batch, a stage every 8, 2 epochs),
and on an H100 (2026-12-08) it stopped at 256 recordings of a 256-recording corpus, 128 a
batch, a stage every 256 (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
from test_train_original import config, examples

from lcasr_jax.train.original import OriginalPlan, original_stop, plan_steps


def _durations() -> list[float]:
    return [e["num_frames"] / 100 for e in examples()]


def test_the_fixture_run_goes_through():
    assert original_stop(_durations(), config()) is None


def test_the_run_that_stopped_on_the_gpu_stops_at_its_epoch_edge():
    cfg = config(max_epochs=9)
    cfg.sequence.update(length=512, batch_size=128, increase_every=256,
                        max_sequence_length=16384)
    durations = list(300 + np.random.default_rng(0).uniform(-20, 20, 256))
    assert original_stop(durations, cfg) == 256
    cfg.train.max_epochs, cfg.sequence.increase_every = 3, 320  # switches at 384 and 704
    assert original_stop(durations, cfg) is None


def test_the_plan_records_the_stop_and_goes_on_to_the_next_epoch():
    cfg = config(max_epochs=2)
    cfg.sequence.increase_every = 20  # 5 batches of 4: the switch falls on the epoch's end
    plan = OriginalPlan(examples(), _durations(), cfg, padded=False)
    steps = list(plan_steps(plan))
    assert original_stop(_durations(), cfg) == plan.original_stop == 20
    assert max(s.epoch for s in steps) == 1
    assert steps[-1].recordings_seen == 40
