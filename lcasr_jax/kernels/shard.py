"""Run a per-sequence kernel (attention, CTC) on each batch shard of a device mesh.

Pallas and cuDNN calls are opaque to XLA's partitioner: under a jit whose inputs are
sharded over the batch, XLA would gather the whole batch onto every device first. Wrapping
the call with `batch_sharded` runs it under shard_map instead, each device on its own
sequences (the kernels are independent across the batch), with no communication.
`per_batch_shard` does that for calls traced under `lcasr_jax.sharding.bind(mesh)`. The
batch axes are those the logical axis 'batch' maps to (lcasr_jax.sharding.LOGICAL_RULES).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from jax.sharding import Mesh, PartitionSpec

from lcasr_jax import sharding


def batch_sharded(fn: Callable, mesh: Mesh, batch_axes: Sequence[str] | None = None
                  ) -> Callable:
    """fn(*arrays) with every argument and output split along dim 0 over `batch_axes`
    (default: the mesh axes of the logical 'batch' axis).

    Mesh axes absent from `mesh` are ignored; the batch must divide by their product.
    Keyword arguments of the returned function are passed to fn unchanged (static).
    """
    if batch_axes is None:
        batch_axes = sharding.mesh_axes_for("batch", mesh)
    names = tuple(n for n in batch_axes if n in mesh.axis_names)
    spec = PartitionSpec(names if names else None)
    size = sharding.axes_size(mesh, names)

    def wrapped(*arrays, **static):
        for x in arrays:
            if x.shape[0] % size:
                raise ValueError(f"kernels/shard.py: batch {x.shape[0]} does not divide over "
                                 f"mesh axes {names} of size {size}")
        body = lambda *xs: fn(*xs, **static)
        return jax.shard_map(body, mesh=mesh, in_specs=(spec,) * len(arrays), out_specs=spec,
                             check_vma=False)(*arrays)

    return wrapped


def per_batch_shard(fn: Callable, *arrays: jax.Array) -> jax.Array:
    """fn(*arrays), arrays (batch, ...): under `sharding.bind(mesh)` with more than one
    device on its batch axes and a batch they divide, one call per batch shard (shard_map).
    Other mesh axes (e.g. 'seq') are gathered at the boundary, so fn sees whole sequences."""
    mesh = sharding.bound_mesh()
    if mesh is None:
        return fn(*arrays)
    size = sharding.axes_size(mesh, sharding.mesh_axes_for("batch", mesh))
    if size == 1 or arrays[0].shape[0] % size:
        return fn(*arrays)
    return batch_sharded(fn, mesh)(*arrays)
