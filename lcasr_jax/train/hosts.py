"""What the training processes of a multi-host run exchange on the host side.

Each process has its own data loader (its own share of the recordings), so its position is
saved per process: `gather_states` collects every process's JSON state for the checkpoint
and `own_state` picks a process's own on restore. The schedules (sequence length, learning
rate, recordings seen, SpecAugment epoch, time limit) must advance identically everywhere,
so `exchange_progress` combines each step's per-process counts: recordings and frames are
summed, the epoch is the smallest, the time limit is reached when any process reached it.

`allgather(x)` stacks the (n,) arrays of all processes into (processes, n); by default
jax.experimental.multihost_utils.process_allgather (a collective on the devices, so it waits
for the steps already dispatched). With one process nothing is exchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

AllGather = Callable[[np.ndarray], np.ndarray]


def _default_allgather(x: np.ndarray) -> np.ndarray:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x))


def gather_states(state: Any, process_count: int,
                  allgather: AllGather = _default_allgather) -> list[Any]:
    """Every process's JSON-able `state`, indexed by process (same list on all of them)."""
    if process_count == 1:
        return [state]
    data = np.frombuffer(json.dumps(state).encode(), np.uint8)
    sizes = allgather(np.asarray([data.size], np.int32))[:, 0]
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: data.size] = data
    rows = allgather(padded)
    return [json.loads(bytes(np.asarray(row[:n], np.uint8)).decode())
            for row, n in zip(rows, sizes, strict=True)]


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
                      process_count: int, allgather: AllGather = _default_allgather
                      ) -> tuple[int, int, int, bool]:
    """(recordings summed, frames summed, smallest epoch, any time_up) over processes."""
    local = np.asarray([recordings, frames, epoch, int(time_up)], np.int32)
    rows = local[None] if process_count == 1 else allgather(local)
    return (int(rows[:, 0].sum()), int(rows[:, 1].sum()), int(rows[:, 2].min()),
            bool(rows[:, 3].any()))
