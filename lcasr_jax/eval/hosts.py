"""Multi-process evaluation (jax.distributed): which recordings and batch rows each process
owns, and gathering per-process results back in order.

The split is made of pure functions of (process_index, process_count) so it can be tested
on one machine; `Hosts` adds the two collectives the engine and runner need. With one
process every collective is the identity.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from lcasr_jax.distributed import gather_bytes, process_allgather

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Hosts:
    """This process's place among the processes of a run."""

    index: int = 0
    count: int = 1

    @classmethod
    def current(cls) -> Hosts:
        import jax

        return cls(jax.process_index(), jax.process_count())

    @property
    def main(self) -> bool:
        """Process 0: the one that shows progress and writes files."""
        return self.index == 0

    def allgather(self, values: np.ndarray) -> np.ndarray:
        """Every process's `values` (same shape and dtype everywhere): (count, *shape)."""
        values = np.asarray(values)
        return values[None] if self.count == 1 else process_allgather(values)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every process's picklable `obj`, in process order (sent as padded bytes)."""
        if self.count == 1:
            return [obj]
        return [pickle.loads(p)
                for p in gather_bytes(pickle.dumps(obj), self.count, self.allgather)]


def owned(n: int, index: int, count: int) -> range:
    """Indices of n items that process `index` of `count` handles: index, index + count, ...
    (round robin, so long and short recordings spread evenly over sorted lists)."""
    if not 0 <= index < count:
        raise ValueError(f"process index {index} not in [0, {count})")
    return range(index, n, count)


def reassemble(parts: Sequence[Sequence[T]]) -> list[T]:
    """Inverse of `owned`: parts[p] holds process p's items in order -> all items in order."""
    count, n = len(parts), sum(len(part) for part in parts)
    out: list[Any] = [None] * n
    for p, part in enumerate(parts):
        if len(part) != len(owned(n, p, count)):
            raise ValueError(f"process {p} returned {len(part)} items, expected "
                             f"{len(owned(n, p, count))} of {n}")
        for k, item in enumerate(part):
            out[p + k * count] = item
    return out


def batch_rows(jobs: Sequence[int], batch_size: int, n_devices: int) -> tuple[int, int]:
    """(rows each process feeds per model call, number of calls) from every process's job
    count `jobs` (process_count,). The global batch (rows x processes) is `batch_size`
    rounded up to a multiple of `n_devices` (all processes' devices), shrunk to fit the
    busiest process; every process makes the same number of calls, padding with dummy rows.
    """
    count = len(jobs)
    if n_devices % count:
        raise ValueError(f"{n_devices} devices do not split evenly over {count} processes")
    local_devices, most = n_devices // count, max(jobs)
    rows = -(-batch_size // n_devices) * local_devices
    rows = min(rows, -(-most // local_devices) * local_devices)
    return rows, (-(-most // rows) if most else 0)


def local_batches(jobs: Sequence[T], rows: int, steps: int) -> list[list[T]]:
    """This process's jobs in `steps` calls of `rows` rows (the last calls short or empty;
    the caller pads them with dummy rows)."""
    if len(jobs) > rows * steps:
        raise ValueError(f"{len(jobs)} jobs do not fit {steps} calls of {rows} rows")
    return [list(jobs[i * rows:(i + 1) * rows]) for i in range(steps)]
