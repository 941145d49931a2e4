"""Multi-process runs (jax.distributed): start-up from the environment, gathering
variable-length payloads (loader states, evaluation results) from every process, and
process 0's host arrays for all (`from_process_0`).

`allgather(x)` stacks every process's (n,) array of one shape into (processes, n); the default
is jax's process_allgather (a collective on the devices). With one process nothing is sent.

On CPU, XLA's cross-process collectives (gloo) give a program's first collective a fixed 30 s
to find its peers, less than one process's compile can lag another's on a loaded machine.
So processes meet at a coordination-service barrier (patient: `PATIENCE_S`) before each
allgather or broadcast and before the first run of each new program of `started_together`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

AllGather = Callable[[np.ndarray], np.ndarray]
PATIENCE_S = 3600.0  # seconds one process waits for the others at a barrier: hung, not slow
_allgathers = itertools.count()
_broadcasts = itertools.count()


def maybe_initialize_distributed() -> bool:
    """Call jax.distributed.initialize() when the environment describes a multi-host job."""
    keys = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")
    if any(os.environ.get(k) for k in keys) or os.environ.get("LCASR_DISTRIBUTED") == "1":
        import jax

        jax.distributed.initialize()
        return True
    return False


def barrier(name: str, timeout_s: float = PATIENCE_S) -> None:
    """Wait until every process reaches `name` (the coordination service, no device
    collective; a no-op without jax.distributed). Names must be used once, in the same
    order on every process."""
    from jax._src import distributed

    client = distributed.global_state.client
    if client is not None:
        client.wait_at_barrier(f"lcasr/{name}", int(timeout_s * 1000))


def started_together(jitted: Any, name: str) -> Callable[..., Any]:
    """`jitted` (a jax.jit function) whose every new program (new input shapes, dtypes or
    shardings) is compiled on each process and then started by all of them at once
    (`barrier`), so its collectives find their peers in time. One process: `jitted`."""
    programs: dict[Any, Any] = {}

    def call(*args: Any) -> Any:
        import jax

        if jax.process_count() == 1:
            return jitted(*args)
        leaves, treedef = jax.tree.flatten(args)
        key = (treedef, tuple((np.shape(x), np.result_type(x), getattr(x, "sharding", None))
                              for x in leaves))
        program = programs.get(key)
        if program is None:
            program = jitted.lower(*args).compile()
            barrier(f"{name}/{len(programs)}")
            programs[key] = program
        return program(*args)

    return call


def process_allgather(x: np.ndarray) -> np.ndarray:
    """(processes, *x.shape): every process's x (same shape and dtype everywhere)."""
    from jax.experimental import multihost_utils

    barrier(f"allgather/{next(_allgathers)}")
    return np.asarray(multihost_utils.process_allgather(x, tiled=False))


def from_process_0(tree: Any) -> Any:
    """Process 0's `tree` of numpy arrays, on every process (each passes arrays of the same
    shapes and dtypes). One process: `tree`."""
    import jax

    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    barrier(f"broadcast/{next(_broadcasts)}")
    return multihost_utils.broadcast_one_to_all(tree)


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
