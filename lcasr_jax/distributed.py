"""Multi-process runs (jax.distributed): start-up from the environment, and gathering
variable-length payloads (loader states, evaluation results) from every process.

`allgather(x)` stacks every process's (n,) array of one shape into (processes, n); the default
is jax's process_allgather (a collective on the devices). With one process nothing is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

AllGather = Callable[[np.ndarray], np.ndarray]


def maybe_initialize_distributed() -> bool:
    """Call jax.distributed.initialize() when the environment describes a multi-host job."""
    keys = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")
    if any(os.environ.get(k) for k in keys) or os.environ.get("LCASR_DISTRIBUTED") == "1":
        import jax

        jax.distributed.initialize()
        return True
    return False


def process_allgather(x: np.ndarray) -> np.ndarray:
    """(processes, *x.shape): every process's x (same shape and dtype everywhere)."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=False))


def gather_bytes(payload: bytes, process_count: int,
                 allgather: AllGather = process_allgather) -> list[bytes]:
    """Every process's `payload` (any length), in process order: sizes first, then the
    payloads padded to the longest."""
    if process_count == 1:
        return [payload]
    data = np.frombuffer(payload, np.uint8)
    sizes = np.asarray(allgather(np.asarray([data.size], np.int64)))[:, 0]
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: data.size] = data
    rows = np.asarray(allgather(padded))
    return [rows[p, : int(n)].tobytes() for p, n in enumerate(sizes)]
