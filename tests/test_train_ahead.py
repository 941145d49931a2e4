"""The next sequence stages' steps compiled ahead on a thread: the prepared programs serve
the stages and the run is bit-identical to compiling on first use."""

import json
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from compile_cache import persistent_cache
from waits import HANG_S

from lcasr_jax.configs import load_config
from lcasr_jax.train import ahead as ahead_lib
from lcasr_jax.train import loop
from lcasr_jax.train.schedules import SequenceSchedule


def test_prepared_shapes_use_the_prepared_program_and_others_compile_on_use():
    compiled = []

    def step(state, batch, lr, augment, loss_norm):
        return state + lr * jnp.sum(batch["spec"]) * jnp.where(augment, 2.0, 1.0), None

    jitted = jax.jit(step)
    real_lower = jitted.lower

    class Counting:  # jitted, counting lowerings made ahead
        def lower(self, *args):
            compiled.append(args[1]["spec"].shape)
            return real_lower(*args)

        def __call__(self, *args):
            return jitted(*args)

    ahead = ahead_lib.CompileAhead(Counting())
    state, lr, aug = jnp.float32(1.0), np.float32(0.5), np.bool_(True)
    small, big = {"spec": np.ones((4, 8), np.float32)}, {"spec": np.ones((2, 16), np.float32)}
    assert ahead.prepare(state, big, lr, aug, None)
    assert not ahead.prepare(state, big, lr, aug, None)  # once per shape
    out_small, _ = ahead(state, small, lr, aug, None)
    out_big, _ = ahead(state, big, lr, aug, None)
    assert compiled == [(2, 16)]
    assert ahead.used == {ahead_lib.batch_signature(big, None)}
    np.testing.assert_array_equal(out_small, jitted(state, small, lr, aug, None)[0])
    np.testing.assert_array_equal(out_big, jitted(state, big, lr, aug, None)[0])


def test_stop_drops_queued_compiles_and_finishes_the_running_one():
    gate, started, lowered = threading.Event(), threading.Event(), []
    jitted = jax.jit(lambda state, batch, lr, augment, loss_norm: (state + batch["spec"].sum(),
                                                                   None))

    class Gated:  # the first compile holds until the test lets it go
        def lower(self, *args):
            lowered.append(args[1]["spec"].shape)
            started.set()
            gate.wait(HANG_S)
            return jitted.lower(*args)

        def __call__(self, *args):
            return jitted(*args)

    ahead = ahead_lib.CompileAhead(Gated())
    state, lr, aug = jnp.float32(0.0), np.float32(1.0), np.bool_(False)
    batches = [{"spec": np.ones((n, 8), np.float32)} for n in (2, 3, 4)]
    assert all(ahead.prepare(state, b, lr, aug, None) for b in batches)
    assert started.wait(HANG_S)
    stopper = threading.Thread(target=ahead.stop)
    stopper.start()
    deadline = time.monotonic() + HANG_S
    while ahead._queue.qsize() != 1 and time.monotonic() < deadline:  # only the end mark
        time.sleep(0.01)
    gate.set()
    stopper.join(HANG_S)
    assert not stopper.is_alive() and lowered == [(2, 8)]  # the queued two never compiled
    out, _ = ahead(state, batches[2], lr, aug, None)  # dropped: compiled on use, no wait
    assert float(out) == 32.0 and len(ahead.used) == 0
    out, _ = ahead(state, batches[0], lr, aug, None)  # the finished one is served
    assert float(out) == 16.0 and len(ahead.used) == 1


def test_upcoming_stages_follow_the_schedule():
    s = SequenceSchedule(increase_every=4, stop_after=10**9, start_after=0,
                         max_sequence_length=3000, cur_sequence_length=512, cur_batch_size=16)
    assert s.upcoming_stages(1) == [(1024, 8)]
    assert s.upcoming_stages(9) == [(1024, 8), (2048, 4), (3000, 2)]  # clipped, as step()
    seen = []
    while s.cur_sequence_length < 3000:
        if s.step(1):
            seen.append((s.cur_sequence_length, s.cur_batch_size))
    assert seen == [(1024, 8), (2048, 4), (3000, 2)]  # what step() reaches, in order
    assert s.upcoming_stages(3) == []
    assert SequenceSchedule(increase_every=-1, stop_after=0, start_after=0,
                            max_sequence_length=4096, cur_sequence_length=512,
                            cur_batch_size=8).upcoming_stages(3) == []
    batch = {"spec": np.ones((16, 80, 512)), "targets": np.ones((16, 64), np.int32),
             "lengths": np.ones(16, np.int32)}
    nxt = ahead_lib.next_stage_batch(batch, 1024, 8, ahead_lib.target_width(object(), 1024))
    assert {k: v.shape for k, v in nxt.items()} == {"spec": (8, 80, 1024), "targets": (8, 128),
                                                     "lengths": (8,)}


def test_a_run_with_compile_ahead_is_bit_identical_and_uses_the_prepared_stages(
        tmp_path, monkeypatch):
    made = []

    class Remembered(ahead_lib.CompileAhead):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(ahead_lib, "CompileAhead", Remembered)
    records = {}
    for setting in ("off", "on"):
        cfg = load_config("experiments/tiny.py", [
            "model.n_layers=1", "train.max_steps=12", "sequence.increase_every=24",
            "sequence.length=128", "sequence.max_sequence_length=512",
            "log.sample_every_steps=0", "log.tensorboard=False", "checkpoint.every_steps=100",
            "checkpoint.export_dtype=", f"train.compile_ahead={setting}"])
        with persistent_cache(tmp_path / "xla_cache"):  # the second run loads the programs
            loop.train(cfg, tmp_path / setting)
        records[setting] = [json.loads(line) for line in
                            (tmp_path / setting / "metrics.jsonl").read_text().splitlines()]
    assert len(made) == 1  # 'off' makes none
    assert all(r["audio_h_per_s"] > 0 for r in records["on"] + records["off"])
    lengths = [r["seq_len"] for r in records["on"]]
    assert lengths[:2] == [128, 128] and 512 in lengths  # the run crossed two stages
    assert len(made[0].used) == 2  # ... both prepared in order, both programs used
    assert records["on"] == [{**r, "audio_h_per_s": records["on"][i]["audio_h_per_s"]}
                             for i, r in enumerate(records["off"])]
