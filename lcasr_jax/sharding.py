"""Device mesh ('data', 'fsdp', 'seq'), the ONE table mapping logical axis names to it, and
every placement helper (meshes, shardings of parameters and batches, the binding of rules).

Parameters carry logical names from the model ('embed', 'mlp', 'heads', 'kv', 'qkv',
'vocab', 'conv_out', 'conv_inner', 'depthwise', 'conv_flat', 'norm'); activations use 'batch' and
'length' (frames or tokens). Every name has a rule (None: replicated). Rules are
priority-ordered (flax semantics): a mesh axis is used at most once per array, so an
activation (batch, length, embed) maps to (('data', 'fsdp'), 'seq', None), and a weight
(embed, mlp) to ('fsdp', None). Parameter and batch dims that a mesh axis does not divide
stay unsharded.

Activations are placed by the model's own `nn.with_logical_constraint` annotations, which
resolve through LOGICAL_RULES onto `bound_mesh()` while a step is traced under
`bind(mesh)`; under the same binding the opaque kernels (kernels/shard.py) run per shard
of the batch axes.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "seq")
_AUTO = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)  # jax >= 0.7 defaults to Explicit

LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", "seq"),
    ("embed", "fsdp"),
    ("mlp", "fsdp"),
    ("heads", "fsdp"),
    ("vocab", "fsdp"),
    ("conv_out", "fsdp"),
    ("conv_inner", "fsdp"),
    # Channels of depthwise convs (kernel k x channels, bias): sharded, XLA would split the
    # grouped conv by channel and all-gather the whole batch around it (both directions).
    ("depthwise", None),
    ("conv_flat", None),  # subsampling -> d_model kernel (conv_flat, embed): embed takes fsdp
    ("qkv", None),  # the q|k|v axis of size 3
    ("kv", None),
    ("norm", None),  # norm scales and biases: d_model floats, not worth a gather
)


def make_mesh(data: int = -1, fsdp: int = 1, seq: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Mesh of shape (data, fsdp, seq); one size may be -1 (all remaining devices)."""
    devices = list(jax.devices() if devices is None else devices)
    shape = [data, fsdp, seq]
    if shape.count(-1) > 1:
        raise ValueError(f"mesh {shape}: at most one axis may be -1")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        shape[shape.index(-1)] = len(devices) // known
    if int(np.prod(shape)) != len(devices):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, shape, strict=True))} needs "
                         f"{int(np.prod(shape))} devices, have {len(devices)}")
    return jax.make_mesh(tuple(shape), MESH_AXES, axis_types=_AUTO, devices=devices)


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Every device (default: all, of every process), in the order given, on 'data': the
    evaluation mesh, whose rows are the batch."""
    devices = list(jax.devices() if devices is None else devices)
    grid = np.array(devices).reshape(len(devices), 1, 1)
    return Mesh(grid, MESH_AXES, axis_types=_AUTO)


def mesh_axes_for(name: str, mesh: Mesh) -> tuple[str, ...]:
    """The axes of `mesh` that the logical axis `name` is split over (() if none)."""
    axes = nn.logical_to_mesh_axes((name,), LOGICAL_RULES)[0]
    axes = (axes,) if isinstance(axes, str) else tuple(axes or ())
    return tuple(a for a in axes if a in mesh.axis_names)


def axes_size(mesh: Mesh, axes: Sequence[str]) -> int:
    """Devices along `axes` of `mesh` (their product)."""
    return int(np.prod([mesh.shape[a] for a in axes]))


_BOUND: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("mesh", default=None)


@contextlib.contextmanager
def bind(mesh: Mesh | None) -> Iterator[None]:
    """While tracing the enclosed code (inside jit too): LOGICAL_RULES are flax's logical
    axis rules, and `bound_mesh()` is `mesh`, which the model passes to its
    `nn.with_logical_constraint` annotations, so they constrain their arrays to it; opaque
    kernels (kernels/shard.py) run per shard of the batch axes. None binds nothing (the
    annotations are no-ops, the kernels plain calls).

    No global mesh is set: under one, flax would also constrain parameter initialisers,
    and DenseGeneral initialises its kernel flat (2-D) under names for every dim.
    """
    if mesh is None:
        yield
        return
    token = _BOUND.set(mesh)
    try:
        with nn.logical_axis_rules(LOGICAL_RULES):
            yield
    finally:
        _BOUND.reset(token)


def bound_mesh() -> Mesh | None:
    """The mesh of the innermost enclosing `bind`, if any."""
    return _BOUND.get()


def _fit(spec: Sequence[Any], shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
    """Drop mesh axes that do not divide their dimension (those dims are replicated)."""
    out = []
    for dim, axes in zip(shape, list(spec) + [None] * (len(shape) - len(spec)), strict=True):
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        size = axes_size(mesh, names)
        out.append(axes if names and dim % size == 0 else None)
    return PartitionSpec(*out)


def logical_sharding(names: Sequence[str | None], mesh: Mesh,
                     shape: Sequence[int] | None = None) -> NamedSharding:
    """NamedSharding for an array whose dims have these logical names."""
    spec = nn.logical_to_mesh_axes(tuple(names), LOGICAL_RULES)
    if shape is not None:
        spec = _fit(spec, shape, mesh)
    return NamedSharding(mesh, PartitionSpec(*spec))


def tree_shardings(abstract_boxed: Any, mesh: Mesh) -> Any:
    """Shardings for a (possibly nn.Partitioned-boxed) abstract pytree; unnamed -> replicated."""
    specs = nn.get_partition_spec(abstract_boxed)
    values = nn.unbox(abstract_boxed)

    def one(spec, value):
        names = tuple(spec) if isinstance(spec, PartitionSpec) else ()
        if not names:
            return NamedSharding(mesh, PartitionSpec())
        return logical_sharding(names, mesh, value.shape)

    return jax.tree.map(one, specs, values,
                        is_leaf=lambda x: isinstance(x, PartitionSpec) or x is None)


# Logical axes of each field of a training batch.
BATCH_FIELDS = {"spec": ("batch", None, "length"), "lengths": ("batch",),
                "targets": ("batch", None), "target_lengths": ("batch",), "weight": ("batch",)}


def batch_shardings(mesh: Mesh, shapes: dict[str, Sequence[int]] | None = None
                    ) -> dict[str, NamedSharding]:
    """Shardings of a training batch: spec (batch, 80, frames) split over frames by 'seq'.

    With `shapes`, axes that do not divide a dimension are dropped (e.g. frames that 'seq'
    does not divide); `pad_batch` makes the batch dimension divide.
    """
    return {k: logical_sharding(names, mesh, None if shapes is None else shapes[k])
            for k, names in BATCH_FIELDS.items()}


def local_batch_multiple(mesh: Mesh) -> int:
    """How many batch shards this process's devices hold: its rows must divide by this."""
    size = axes_size(mesh, mesh_axes_for("batch", mesh))
    index = logical_sharding(("batch",), mesh).addressable_devices_indices_map((size,))
    return len({idx[0].indices(size) for idx in index.values()})


def pad_batch(batch: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
    """Host batch padded with zero rows to a multiple of `multiple` rows, plus its 'weight'.

    weight: (batch,) float32, 1 for real rows and 0 for padding (a batch's own 'weight' is
    kept for its rows). Padded rows have length 0,
    so they add nothing to the loss or to batch renorm statistics; the loss is normalised
    by the real rows. Every device then computes its own share of the rows (an indivisible
    batch would otherwise be replicated: every device computing every row).
    """
    rows = len(batch["lengths"])
    pad = -rows % multiple
    out = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) if pad else v
           for k, v in batch.items() if k in BATCH_FIELDS}
    real = batch.get("weight", np.ones(rows, np.float32))  # a batch may bring its own
    out["weight"] = np.concatenate([np.asarray(real, np.float32), np.zeros(pad, np.float32)])
    return out


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Host arrays that are the same on every process -> global arrays that every device of
    `mesh` holds whole (each process passes its copy; no data crosses processes)."""
    whole = NamedSharding(mesh, PartitionSpec())

    def one(x: Any) -> jax.Array:
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, whole, lambda index: host[index])

    return jax.tree.map(one, tree)


def put_batch(batch: dict[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """Host numpy training batch -> global sharded arrays (each process passes its rows).

    Rows are padded (`pad_batch`) so that every device holds its own rows; the result has a
    'weight' (batch,) array, 0 on padded rows.
    """
    multiple = local_batch_multiple(mesh)
    local = pad_batch(batch, multiple)
    processes = axes_size(mesh, mesh_axes_for("batch", mesh)) // multiple
    shapes = {k: (v.shape[0] * processes, *v.shape[1:]) for k, v in local.items()}
    shards = batch_shardings(mesh, shapes)
    return {k: jax.make_array_from_process_local_data(shards[k], local[k], shapes[k])
            for k in shards}
