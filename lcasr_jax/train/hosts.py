"""What the training processes of a multi-host run exchange on the host side.

Each process has its own data loader (its own share of the recordings), so its position is
saved per process: `gather_states` collects every process's JSON state for the checkpoint
and `own_state` picks a process's own on restore. The schedules (sequence length, learning
rate, recordings seen, SpecAugment epoch, time limit) must advance identically everywhere,
so `exchange_progress` combines each step's per-process counts: recordings and frames are
summed, the epoch and the epochs done are the smallest, the time limit is reached when any
process reached it.

`allgather` is `lcasr_jax.distributed.process_allgather` by default (a collective on the
devices, so it waits for the steps already dispatched). With one process nothing is exchanged.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lcasr_jax.distributed import AllGather, gather_bytes, process_allgather


def gather_states(state: Any, process_count: int,
                  allgather: AllGather = process_allgather) -> list[Any]:
    """Every process's JSON-able `state`, indexed by process (same list on all of them)."""
    if process_count == 1:
        return [state]
    payloads = gather_bytes(json.dumps(state).encode(), process_count, allgather)
    return [json.loads(p.decode()) for p in payloads]


def own_state(states: list[Any] | dict[str, Any], process_index: int,
              process_count: int) -> Any:
    """This process's entry of a `gather_states` list saved in a checkpoint (a dict: the
    one-process state of checkpoints written before states were saved per process)."""
    if isinstance(states, dict):
        states = [states]
    if len(states) != process_count:
        raise ValueError(f"checkpoint meta 'data' holds the loader states of {len(states)} "
                         f"processes, this run has {process_count}: resume with as many")
    return states[process_index]


def exchange_progress(recordings: int, frames: int, epoch: int, time_up: bool,
                      process_count: int, allgather: AllGather = process_allgather,
                      epochs_done: int = 0) -> tuple[int, int, int, bool, int]:
    """(recordings summed, frames summed, smallest epoch, any time_up, smallest
    epochs_done) over processes."""
    local = np.asarray([recordings, frames, epoch, int(time_up), epochs_done], np.int32)
    rows = local[None] if process_count == 1 else allgather(local)
    return (int(rows[:, 0].sum()), int(rows[:, 1].sum()), int(rows[:, 2].min()),
            bool(rows[:, 3].any()), int(rows[:, 4].min()))
