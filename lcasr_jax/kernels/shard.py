"""Run a per-sequence kernel (attention, CTC) on each batch shard of a device mesh.

Pallas and cuDNN calls are opaque to XLA's partitioner: under a jit whose inputs are
sharded over the batch, XLA would gather the whole batch onto every device first. Wrapping
the call with `batch_sharded` runs it under shard_map instead, each device on its own
sequences (the kernels are independent across the batch), with no communication.
`batch_mesh(mesh)` makes such calls (`per_batch_shard`) do that for the code it encloses.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence

import jax
from jax.sharding import Mesh, PartitionSpec

BATCH_AXES = ("data", "fsdp")
_ACTIVE: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("batch_mesh", default=None)


def batch_sharded(fn: Callable, mesh: Mesh, batch_axes: str | Sequence[str] = BATCH_AXES
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


@contextlib.contextmanager
def batch_mesh(mesh: Mesh | None) -> Iterator[None]:
    """While tracing the enclosed code, `per_batch_shard` calls run per shard of `mesh`'s
    batch axes ('data', 'fsdp'); None: they run as plain calls."""
    token = _ACTIVE.set(mesh)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def per_batch_shard(fn: Callable, *arrays: jax.Array) -> jax.Array:
    """fn(*arrays), arrays (batch, ...): under `batch_mesh` with more than one device on its
    batch axes and a batch they divide, one call per batch shard (shard_map). Other mesh
    axes (e.g. 'seq') are gathered at the boundary, so fn sees whole sequences."""
    mesh = _ACTIVE.get()
    if mesh is None:
        return fn(*arrays)
    size = 1
    for name in BATCH_AXES:
        size *= mesh.shape.get(name, 1)
    if size == 1 or arrays[0].shape[0] % size:
        return fn(*arrays)
    return batch_sharded(fn, mesh)(*arrays)
