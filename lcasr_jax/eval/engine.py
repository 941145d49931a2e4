"""Batched, sharded execution of evaluation windows, single- or multi-process.

All windows of several recordings are padded in time to one length (the longest window,
i.e. `seq_len` in the moving-window modes), packed into fixed-size batches (dummy rows pad
the last batch), and run through one jitted forward whose batch axis is sharded over every
device (`sharding.data_mesh`): a whole test set compiles once per (window, batch) shape.
Padding is exact: the model runs with `mask_subsampling`, so padded frames never reach
valid outputs (the original runs each window alone at its own length). Opaque attention
kernels (cuDNN, Pallas, splash) run per batch shard (the forward is traced under
`sharding.bind`), as in training: XLA would otherwise gather the whole batch onto every
device in front of them.

With several processes (jax.distributed), each passes only its own recordings; each model
call takes every process's rows (`jax.make_array_from_process_local_data`), and the
processes agree on the shape and number of calls (`hosts.batch_rows`).

Window outputs never leave the device: each process scatter-adds its rows into one merge
buffer on its own devices (the averaging of the original, in float32), and only the merged
log-probs, or just their greedy argmax, are copied back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lcasr_jax import sharding
from lcasr_jax.eval.hosts import Hosts, batch_rows, local_batches
from lcasr_jax.eval.windows import Plan, merge

# Forward: this process's rows (spec (rows, 80, frames), lengths (rows,)) -> device arrays
# over its devices (log_probs (rows, frames_out, classes), lengths_out (rows,)).
Forward = Callable[[np.ndarray, np.ndarray], tuple]
ROW_BUCKET = 2048  # merged buffers are rounded up to a multiple of this many frames


@functools.cache
def _step_fn():
    @functools.partial(jax.jit, static_argnums=(0, 1))
    def step(model, mesh, variables, spec, lengths):
        """spec (batch, 80, frames) f32, lengths (batch,) i32 -> (log_probs (batch,
        frames_out, classes) f32, lengths_out (batch,) i32); the mesh is static, as the
        shard_map of the opaque attention kernels is traced for it."""
        with sharding.bind(mesh):
            out = model.apply(variables, spec, lengths)
        return out["final_posteriors"].astype(jnp.float32), out["length"]

    return step


def _local_rows(x):
    """The rows of a batch-sharded array held by this process, as an array over its own
    devices (x itself when it has no rows elsewhere)."""

    if x.is_fully_addressable:
        return x
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    mesh = sharding.data_mesh([s.device for s in shards])
    shape = (sum(s.data.shape[0] for s in shards), *x.shape[1:])
    return jax.make_array_from_single_device_arrays(
        shape, sharding.logical_sharding(("batch",), mesh), [s.data for s in shards])


def make_forward(model, variables, mesh=None) -> tuple[Forward, int]:
    """Jitted, batch-sharded forward of a Flax SCConformerXL, with padded frames masked in
    the subsampling (`mask_subsampling`). Returns (forward, n_devices): each process passes
    its own rows, a multiple of its devices in the mesh; n_devices counts all processes'.
    Opaque attention kernels run per batch shard. Compilations are
    shared by every forward of an equal model and mesh (one per input shape)."""

    mesh = mesh if mesh is not None else sharding.data_mesh()
    processes = len({d.process_index for d in mesh.devices.flat})
    data = sharding.logical_sharding(("batch",), mesh)
    variables = nn.meta.unbox(variables)
    if processes == 1:
        variables = jax.device_put(variables, NamedSharding(mesh, P()))
    else:  # the same weights on every process
        variables = sharding.put_replicated(variables, mesh)
    model = model.clone(mask_subsampling=True)
    step = _step_fn()

    def put(x, dtype):
        if processes == 1:
            return jax.device_put(x if isinstance(x, jax.Array) else np.asarray(x, dtype), data)
        x = np.asarray(x, dtype)
        return jax.make_array_from_process_local_data(
            data, x, (x.shape[0] * processes, *x.shape[1:]))

    def forward(spec, lengths):
        log_probs, lengths_out = step(model, mesh, variables, put(spec, np.float32),
                                      put(lengths, np.int32))
        return _local_rows(log_probs), _local_rows(lengths_out)

    return forward, mesh.size


@functools.cache
def _accumulate_fn(average: bool):
    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def accumulate(total, count, log_probs, index):
        """Scatter-add window outputs (batch, frames_out, classes) at rows `index`
        (batch, frames_out); rows >= total.shape[0] are dropped."""
        values = jnp.exp(log_probs) if average else log_probs
        total = total.at[index].add(values.astype(total.dtype), mode="drop")
        count = count.at[index].add(jnp.ones(index.shape, count.dtype), mode="drop")
        return total, count

    return accumulate


@functools.cache
def _finish_fn(average: bool, ids: bool):
    @jax.jit
    def finish(total, count):
        """(merged log-probs or their argmax, whether each frame's are finite: no NaN and a
        finite best class)."""
        out = jnp.log(total / count[:, None]) if average else total
        finite = jnp.isfinite(out.max(-1)) & ~jnp.isnan(out).any(-1)
        return (out.argmax(-1).astype(jnp.int32) if ids else out), finite

    return finish


def run_plans(forward: Forward, specs: Sequence[np.ndarray], plans: Sequence[Plan], *,
              batch_size: int = 8, n_devices: int = 1, progress: bool = False,
              output: str = "log_probs", hosts: Hosts | None = None,
              names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Run every window of every recording and merge per recording, on the device.

    specs: per recording (80, frames) float32; plans: matching window plans (all averaged
    or all concatenated). batch_size: windows per model call over all processes (rounded
    up to a multiple of n_devices). With several processes (`hosts`, default: jax's), each
    passes its own recordings (possibly none) and every process must call this together.
    Window outputs are scatter-added into one device buffer for this process's recordings
    (probabilities for averaged plans, log-probs for concatenated ones).
    Returns per recording the merged log-probs (plan.out_frames, classes) float32, or with
    output='ids' the greedy argmax (plan.out_frames,) int32 (only ids leave the device).
    Raises ValueError naming the recording (`names`, else its index) whose posteriors hold
    a NaN or a frame without a finite class.
    """

    if len(specs) != len(plans):
        raise ValueError(f"{len(specs)} spectrograms but {len(plans)} plans")
    if output not in ("log_probs", "ids"):
        raise ValueError(f"output must be 'log_probs' or 'ids' (got {output!r})")
    average = {p.average for p in plans}
    if len(average) > 1:
        raise ValueError("plans mix averaged and concatenated merging")
    average = average.pop() if average else True
    hosts = hosts if hosts is not None else Hosts.current()
    jobs = [(r, w) for r, plan in enumerate(plans) for w in range(len(plan.windows))]
    longest = max((w.length for plan in plans for w in plan.windows), default=0)
    n_feat = specs[0].shape[0] if specs else 0
    shared = hosts.allgather(np.array([len(jobs), longest, n_feat], np.int64))
    rows, steps = batch_rows(shared[:, 0], batch_size, n_devices)
    length, n_feat = int(shared[:, 1].max()), int(shared[:, 2].max())
    offsets = np.cumsum([0] + [p.out_frames for p in plans])
    out_rows = -(-int(offsets[-1]) // ROW_BUCKET) * ROW_BUCKET  # fewer distinct shapes
    accumulate = _accumulate_fn(average)
    total = count = None
    bar = None
    if progress and hosts.main and steps:
        from tqdm import tqdm

        bar = tqdm(total=steps, unit="batch", desc="model", leave=False)
    for batch in local_batches(jobs, rows, steps):
        spec = np.zeros((rows, n_feat, length), np.float32)
        lengths = np.full((rows,), length, np.int32)  # dummy rows: full length, dropped
        for row, (r, w) in enumerate(batch):
            window = plans[r].windows[w]
            spec[row, :, :window.length] = specs[r][:, window.start:window.end]
            lengths[row] = window.length
        log_probs, _ = forward(spec, lengths)
        if bar is not None:
            bar.update(1)
        if not batch:
            continue
        index = np.full(log_probs.shape[:2], out_rows, np.int32)
        for row, (r, w) in enumerate(batch):
            window = plans[r].windows[w]
            keep = np.arange(window.keep_start, window.keep_end)
            index[row, keep] = offsets[r] + window.out_pos - window.keep_start + keep
        if total is None:
            total = jnp.zeros((out_rows, log_probs.shape[-1]), jnp.float32)
            count = jnp.zeros((out_rows,), jnp.float32)
        total, count = accumulate(total, count, log_probs, index)
    if bar is not None:
        bar.close()
    if total is None:
        return []
    merged, finite = _finish_fn(average, output == "ids")(total, count)
    merged, finite = np.asarray(merged), np.asarray(finite)
    for r in range(len(plans)):
        bad = np.flatnonzero(~finite[offsets[r]:offsets[r + 1]])
        if bad.size:
            name = names[r] if names is not None else f"recording {r}"
            raise ValueError(f"{name}: the model's posteriors are not finite (NaN or inf) "
                             f"at {bad.size} of {plans[r].out_frames} output frames, from "
                             f"frame {bad[0]}: check the model's weights and the audio")
    return [merged[offsets[r]:offsets[r + 1]] for r in range(len(plans))]


def run_one_at_a_time(forward: Forward, spec: np.ndarray, plan: Plan) -> np.ndarray:
    """Reference: each window alone (batch of one), merged in plan order, like the original."""

    outputs = []
    for window in plan.windows:
        chunk = spec[None, :, window.start:window.end]
        log_probs, _ = forward(chunk, np.array([window.length], np.int32))
        outputs.append(np.asarray(log_probs)[0])
    return merge(plan, outputs)
