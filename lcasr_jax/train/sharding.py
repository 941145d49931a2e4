"""Device mesh ('data', 'fsdp', 'seq') and the ONE table mapping logical axis names to it.

Parameters carry logical names from the model ('embed', 'mlp', 'heads', 'kv', 'qkv',
'vocab', 'conv_out', 'conv_inner', 'depthwise', 'conv_flat', 'norm'); activations use 'batch' and
'length' (frames or tokens). Every name has a rule (None: replicated). Rules are
priority-ordered (flax semantics): a mesh axis is used at most once per array, so an
activation (batch, length, embed) maps to (('data', 'fsdp'), 'seq', None), and a weight
(embed, mlp) to ('fsdp', None). Array dims that a mesh axis does not divide stay unsharded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "seq")

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
    auto = (jax.sharding.AxisType.Auto,) * 3  # jax >= 0.7 defaults to Explicit: avoid it
    return jax.make_mesh(tuple(shape), MESH_AXES, axis_types=auto, devices=devices)


def _fit(spec: Sequence[Any], shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
    """Drop mesh axes that do not divide their dimension (those dims are replicated)."""
    out = []
    for dim, axes in zip(shape, list(spec) + [None] * (len(shape) - len(spec)), strict=True):
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        size = int(np.prod([mesh.shape[a] for a in names])) if names else 1
        out.append(axes if names and dim % size == 0 else None)
    return PartitionSpec(*out)


def logical_sharding(names: Sequence[str | None], mesh: Mesh,
                     shape: Sequence[int] | None = None) -> NamedSharding:
    """NamedSharding for an array whose dims have these logical names."""
    spec = nn.logical_to_mesh_axes(tuple(names), LOGICAL_RULES)
    if shape is not None:
        spec = _fit(spec, shape, mesh)
    return NamedSharding(mesh, PartitionSpec(*spec))


def constrain(x: jax.Array, names: Sequence[str | None], mesh: Mesh) -> jax.Array:
    """with_sharding_constraint by logical names (inside jit)."""
    return jax.lax.with_sharding_constraint(x, logical_sharding(names, mesh, x.shape))


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


BATCH_AXES = {"spec": ("batch", None, "length"), "lengths": ("batch",),
              "targets": ("batch", None), "target_lengths": ("batch",), "weight": ("batch",)}


def batch_shardings(mesh: Mesh, shapes: dict[str, Sequence[int]] | None = None
                    ) -> dict[str, NamedSharding]:
    """Shardings of a training batch: spec (batch, 80, frames) split over frames by 'seq'.

    With `shapes`, axes that do not divide a dimension are dropped (e.g. frames that 'seq'
    does not divide); `pad_batch` makes the batch dimension divide.
    """
    return {k: logical_sharding(names, mesh, None if shapes is None else shapes[k])
            for k, names in BATCH_AXES.items()}


def local_batch_multiple(mesh: Mesh) -> int:
    """How many batch shards this process's devices hold: its rows must divide by this."""
    size = int(np.prod([mesh.shape[a] for a in ("data", "fsdp")]))
    index = logical_sharding(("batch",), mesh).addressable_devices_indices_map((size,))
    return len({idx[0].indices(size) for idx in index.values()})


def pad_batch(batch: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
    """Host batch padded with zero rows to a multiple of `multiple` rows, plus its 'weight'.

    weight: (batch,) float32, 1 for real rows and 0 for padding. Padded rows have length 0,
    so they add nothing to the loss or to batch renorm statistics; the loss is normalised
    by the real rows. Every device then computes its own share of the rows (an indivisible
    batch would otherwise be replicated: every device computing every row).
    """
    rows = len(batch["lengths"])
    pad = -rows % multiple
    out = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) if pad else v
           for k, v in batch.items() if k in BATCH_AXES}
    out["weight"] = (np.arange(rows + pad) < rows).astype(np.float32)
    return out


# Modules whose outputs are (batch, length, embed) activations; constrained when sharding.
ACTIVATION_MODULES = ("DepthwiseStridingSubsampling", "ConformerLayer")


@contextlib.contextmanager
def activation_sharding(mesh: Mesh) -> Iterator[None]:
    """Inside a traced model.apply: shard every layer output as (batch, length, embed).

    Done by intercepting module calls with an explicit NamedSharding, so no global mesh
    is needed (a global mesh would also make flax constrain DenseGeneral's flat kernel
    init and fail). This is what spreads a long sequence over the 'seq' axis.
    """
    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if (context.method_name == "__call__"
                and type(context.module).__name__ in ACTIVATION_MODULES
                and isinstance(out, jax.Array) and out.ndim == 3):
            out = constrain(out, ("batch", "length", "embed"), mesh)
        return out

    with nn.intercept_methods(interceptor):
        yield
