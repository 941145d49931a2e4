"""Multi-host bookkeeping (train/hosts.py) with processes simulated by threads that meet in
an all-gather, and each process's loader state surviving a checkpoint."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from waits import HANG_S

from lcasr_jax.data.loader import Loader
from lcasr_jax.train import hosts
from lcasr_jax.train.schedules import LRPlan, LRState, SequenceSchedule, begin_batch, end_batch


class ThreadAllGather:
    """allgather for `n` threads: each passes its array, all get the stack (processes, ...)."""

    def __init__(self, n: int):
        self.n, self.barrier, self.slots = n, threading.Barrier(n, timeout=HANG_S), {}

    def for_process(self, index: int):
        def allgather(x: np.ndarray) -> np.ndarray:
            self.slots[index] = np.asarray(x)
            self.barrier.wait()
            out = np.stack([self.slots[i] for i in range(self.n)])
            self.barrier.wait()  # nobody overwrites a slot before all have read
            return out

        return allgather


def run_processes(n: int, fn):
    """[fn(index, allgather) for each of n simulated processes], run concurrently."""
    gather = ThreadAllGather(n)
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(fn, i, gather.for_process(i)) for i in range(n)]
        return [f.result() for f in futures]


def recordings(n: int = 7) -> list[dict]:
    """A tiny random-access corpus in the Loader's example format."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        frames = 40 + 23 * i
        start = np.linspace(0, frames / 100 - 0.2, 3)
        out.append({"features": rng.normal(size=(frames, 80)).astype(np.float16),
                    "num_frames": frames, "word_start": start, "word_end": start + 0.1,
                    "token_offsets": np.arange(4), "token_ids": np.arange(1, 4, dtype=np.int32)})
    return out


def test_every_process_restores_its_own_loader_state():
    source, count = recordings(), 3

    def process(index, allgather):
        loader = Loader(source, 32, 2, seed=5, process_index=index, process_count=count)
        for _ in range(index + 2):  # processes at different positions (and state sizes)
            next(loader)
        saved = hosts.gather_states(loader.state(), count, allgather)
        loader.close()
        mine = hosts.own_state(saved, index, count)
        resumed = Loader(source, 32, 2, seed=5, process_index=index, process_count=count,
                         state=mine)  # refuses another process's state
        ahead = Loader(source, 32, 2, seed=5, process_index=index, process_count=count)
        for _ in range(index + 2):
            next(ahead)
        a, b = next(resumed), next(ahead)
        resumed.close(), ahead.close()
        return saved, mine, a, b

    results = run_processes(count, process)
    saved = [r[0] for r in results]
    assert all(s == saved[0] for s in saved)  # one list, the same on every process
    assert [s["process_index"] for s in saved[0]] == [0, 1, 2]
    assert len({len(str(s)) for s in saved[0]}) > 1  # unequal sizes went through padding
    for index, (_, mine, a, b) in enumerate(results):
        assert mine["process_index"] == index
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(ValueError, match="holds the loader states of 3 processes.*has 2"):
        hosts.own_state(saved[0], 0, 2)


def test_single_process_states_are_unchanged_and_old_checkpoints_load():
    state = {"position": 3, "recordings": 24}
    assert hosts.gather_states(state, 1) == [state]
    assert hosts.own_state([state], 0, 1) == state
    assert hosts.own_state(state, 0, 1) == state  # written before per-process states


def test_schedules_advance_identically_on_every_process():
    per_step = [[3, 0, 5], [1, 4, 0], [2, 2, 2], [0, 0, 7]]  # recordings started, per host
    count, total = 3, 100

    def process(index, allgather):
        seq = SequenceSchedule(increase_every=6, stop_after=10**9, start_after=0,
                               max_sequence_length=4096, cur_sequence_length=256,
                               cur_batch_size=8)
        plan, lr, seen, out = LRPlan(warmup_steps=1, peak=1e-3), LRState(), 0, []
        for step, counts in enumerate(per_step):
            recordings, frames, epoch, time_up, done = hosts.exchange_progress(
                counts[index], 100 * (index + 1), epoch=index + step, time_up=index == 2
                and step == 2, process_count=count, allgather=allgather,
                epochs_done=step + 2 - index)
            assert done == step  # the smallest: a run ends when every process finished
            seen += recordings
            lr = end_batch(begin_batch(plan, lr, seen, total), 1, seen)
            seq.step(recordings)
            out.append((seen, frames, epoch, time_up, seq.state_dict(), lr.state_dict()))
        return out

    results = run_processes(count, process)
    assert results[0] == results[1] == results[2]
    seen, frames, epoch, time_up = zip(*[r[:4] for r in results[0]], strict=True)
    assert seen == (8, 13, 19, 26) and set(frames) == {600}
    assert epoch == (0, 1, 2, 3) and time_up == (False, False, True, False)
    assert results[0][-1][4]["cur_sequence_length"] == 2048  # one doubling per 6+ recordings
    assert hosts.exchange_progress(3, 50, 1, False, 1, epochs_done=2) == (3, 50, 1, False, 2)
