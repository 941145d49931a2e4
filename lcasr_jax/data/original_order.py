"""The original's recording-batch order (lcasr VariableBatchSimpleDataloader), reproduced.

One epoch's order from (recordings, durations, batch size B, seed, recordings to leave out):
1. leave out the excluded recordings, keep the others in corpus order;
2. sort them by duration with numpy's quicksort argsort (what pandas `sort_values` runs; ties
   fall as numpy's quicksort puts them on the machine that runs it, as in the original);
3. `np.random.seed(seed)`: permute each consecutive group of 2,000 (`permutation`), cut the
   result into batches of B (the last may be short), shuffle the list of batches
   (`np.random.shuffle`), concatenate;
4. the data loader then yields consecutive slices of B of that concatenation (so a short
   batch shuffled into the middle shifts every later batch: they are not the cut batches).

Across a run (exp/train.py `train()`): epoch 0 uses `training.random_seed` (default 1234);
every later epoch a new seed `random.randint(0, 10000)` from Python's `random` seeded once
with `training.random_seed` (default 12345 there) when training starts; a sequence-length
stage change rebuilds the order of the recordings not yet seen in this epoch with B halved and
the *epoch-0* seed (the loader keeps its first seed), whatever the epoch.
`OriginalOrder` holds that walk as a JSON-able state.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

GROUP = 2000


def epoch_order(durations: Sequence[float], batch_size: int, seed: int,
                exclude: Sequence[int] = (), group: int = GROUP) -> np.ndarray:
    """Recording indices in the order the original's loader yields them (module docstring).

    durations: (recordings,) seconds in corpus order; exclude: indices left out.
    Returns (recordings - excluded,) int64; cut it into consecutive slices of `batch_size`.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dur = np.asarray(durations, np.float64)
    keep = np.setdiff1d(np.arange(len(dur)), np.asarray(exclude, np.int64))
    if len(keep) == 0:
        return np.zeros(0, np.int64)
    by_duration = keep[np.argsort(dur[keep], kind="quicksort")]
    rs = np.random.RandomState(seed)
    grouped = np.concatenate([rs.permutation(by_duration[i:i + group])
                              for i in range(0, len(by_duration), group)])
    batches = [grouped[i:i + batch_size] for i in range(0, len(grouped), batch_size)]
    rs.shuffle(batches)
    return np.concatenate(batches).astype(np.int64)


def epoch_seed(epoch: int, first_seed: int, python_seed: int) -> int:
    """The loader seed of epoch `epoch` in a run started at epoch 0 (module docstring)."""
    if epoch == 0:
        return first_seed
    rng = random.Random(python_seed)
    for _ in range(epoch - 1):
        rng.randint(0, 10000)
    return rng.randint(0, 10000)


@dataclasses.dataclass
class OriginalOrder:
    """Walk over recording batches as the original's training loop takes them.

    `next_batch()` -> recording indices of the next batch, or None at the end of the epoch
    (then `new_epoch()`); `restage(batch_size)` after a sequence-length stage change.
    State fields: epoch, seed (of the current order), batch_size, order (indices), position
    (next slice start in `order`), seen (indices yielded this epoch).
    """

    durations: list[float]
    batch_size: int
    first_seed: int = 1234
    python_seed: int = 12345
    epoch: int = 0
    seed: int | None = None
    order: list[int] | None = None
    position: int = 0
    seen: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = epoch_seed(self.epoch, self.first_seed, self.python_seed)
        if self.order is None:
            self.order = epoch_order(self.durations, self.batch_size, self.seed,
                                     self.seen).tolist()

    def next_batch(self) -> list[int] | None:
        if self.position >= len(self.order):
            return None
        batch = self.order[self.position:self.position + self.batch_size]
        self.position += len(batch)
        self.seen.extend(batch)
        return list(batch)

    def new_epoch(self) -> None:
        self.epoch += 1
        self.seed = epoch_seed(self.epoch, self.first_seed, self.python_seed)
        self.seen, self.position = [], 0
        self.order = epoch_order(self.durations, self.batch_size, self.seed).tolist()

    def restage(self, batch_size: int) -> None:
        """New batch size: the unseen recordings of this epoch, reordered with the first seed."""
        self.batch_size, self.position = batch_size, 0
        self.order = epoch_order(self.durations, batch_size, self.first_seed, self.seen).tolist()

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "durations"}

    @classmethod
    def from_state(cls, durations: Sequence[float], state: dict[str, Any]) -> OriginalOrder:
        return cls(durations=list(durations), **state)
