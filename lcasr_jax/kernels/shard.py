"""Run a per-sequence kernel (attention, CTC) on each batch shard of a device mesh.

Pallas and cuDNN calls are opaque to XLA's partitioner: under a jit whose inputs are
sharded over the batch, XLA would gather the whole batch onto every device first. Wrapping
the call with `batch_sharded` runs it under shard_map instead, each device on its own
sequences (the kernels are independent across the batch), with no communication.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from jax.sharding import Mesh, PartitionSpec


def batch_sharded(fn: Callable, mesh: Mesh, batch_axes: str | Sequence[str] = ("data", "fsdp")
                  ) -> Callable:
    """fn(*arrays) with every argument and output split along dim 0 over `batch_axes`.

    Mesh axes absent from `mesh` are ignored; the batch must divide by their product.
    Keyword arguments of the returned function are passed to fn unchanged (static).
    """
    names = (batch_axes,) if isinstance(batch_axes, str) else tuple(batch_axes)
    names = tuple(n for n in names if n in mesh.axis_names)
    spec = PartitionSpec(names if names else None)

    def wrapped(*arrays, **static):
        size = 1
        for n in names:
            size *= mesh.shape[n]
        for x in arrays:
            if x.shape[0] % size:
                raise ValueError(f"shard.py: batch {x.shape[0]} does not divide over mesh axes "
                                 f"{names} of size {size}")
        body = lambda *xs: fn(*xs, **static)
        return jax.shard_map(body, mesh=mesh, in_specs=(spec,) * len(arrays), out_specs=spec,
                             check_vma=False)(*arrays)

    return wrapped
