"""Batched, sharded execution of evaluation windows.

All windows of several recordings are grouped by exact length, packed into fixed-size
batches (dummy rows pad the last batch), and run through one jitted forward whose batch
axis is sharded over a 1-D 'data' mesh. Windows are never padded in time: the original
runs each window at its own length and its subsampling convolutions let padded frames
leak into valid outputs, so time padding would change the numbers. Full-length windows
(the vast majority) share one shape; each distinct tail length compiles once.

Window outputs never leave the device: they are scatter-added into one merge buffer (the
averaging of the original, in float32), and only the merged log-probs, or just their
greedy argmax, are copied back.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Sequence

import numpy as np

from lcasr_jax.eval.windows import Plan

# Forward: (spec (batch, 80, frames), lengths (batch,)) -> device arrays
# (log_probs (batch, frames_out, classes), lengths_out (batch,)).
Forward = Callable[[np.ndarray, np.ndarray], tuple]
ROW_BUCKET = 2048  # merged buffers are rounded up to a multiple of this many frames


def data_mesh(devices=None):
    """1-D mesh named 'data' over `devices` (default: all)."""
    import jax
    from jax.sharding import Mesh

    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), ("data",))


@functools.cache
def _step_fn():
    import jax
    import jax.numpy as jnp

    @functools.partial(jax.jit, static_argnums=0)
    def step(model, variables, spec, lengths):
        out = model.apply(variables, spec, lengths)
        return out["final_posteriors"].astype(jnp.float32), out["length"]

    return step


def make_forward(model, variables, mesh=None) -> tuple[Forward, int]:
    """Jitted, batch-sharded forward of a Flax SCConformerXL. Returns (forward, n_devices);
    batch sizes passed to forward must be multiples of n_devices. Compilations are shared
    by every forward of an equal model (one per input shape)."""
    import flax.linen as nn
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = mesh if mesh is not None else data_mesh()
    data = NamedSharding(mesh, P("data"))
    variables = jax.device_put(nn.meta.unbox(variables), NamedSharding(mesh, P()))
    step = _step_fn()

    def put(x, dtype):
        return jax.device_put(x if isinstance(x, jax.Array) else np.asarray(x, dtype), data)

    def forward(spec, lengths):
        return step(model, variables, put(spec, np.float32), put(lengths, np.int32))

    return forward, mesh.size


def _batch_size(count: int, batch_size: int, n_devices: int) -> int:
    size = batch_size if count >= batch_size else count
    return -(-size // n_devices) * n_devices


@functools.cache
def _accumulate_fn(average: bool):
    import jax
    import jax.numpy as jnp

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
    import jax
    import jax.numpy as jnp

    @jax.jit
    def finish(total, count):
        out = jnp.log(total / count[:, None]) if average else total
        return out.argmax(-1).astype(jnp.int32) if ids else out

    return finish


def _batches(plans: Sequence[Plan], batch_size: int, n_devices: int):
    groups: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    for r, plan in enumerate(plans):
        for w, window in enumerate(plan.windows):
            groups[window.length].append((r, w))
    batches = []
    for length in sorted(groups, reverse=True):
        jobs = groups[length]
        size = _batch_size(len(jobs), batch_size, n_devices)
        batches += [(length, size, jobs[i:i + size]) for i in range(0, len(jobs), size)]
    return batches


def run_plans(forward: Forward, specs: Sequence[np.ndarray], plans: Sequence[Plan], *,
              batch_size: int = 8, n_devices: int = 1, progress: bool = False,
              output: str = "log_probs") -> list[np.ndarray]:
    """Run every window of every recording and merge per recording, on the device.

    specs: per recording (80, frames) float32; plans: matching window plans (all averaged
    or all concatenated). batch_size: windows per model call (rounded up to a multiple of
    n_devices). Window outputs are scatter-added into one device buffer for all
    recordings (probabilities for averaged plans, log-probs for concatenated ones).
    Returns per recording the merged log-probs (plan.out_frames, classes) float32, or with
    output='ids' the greedy argmax (plan.out_frames,) int32 (only ids leave the device).
    """
    import jax.numpy as jnp

    if len(specs) != len(plans):
        raise ValueError(f"{len(specs)} spectrograms but {len(plans)} plans")
    if output not in ("log_probs", "ids"):
        raise ValueError(f"output must be 'log_probs' or 'ids' (got {output!r})")
    average = {p.average for p in plans}
    if len(average) != 1:
        raise ValueError("plans mix averaged and concatenated merging")
    average = average.pop()
    offsets = np.cumsum([0] + [p.out_frames for p in plans])
    rows = -(-int(offsets[-1]) // ROW_BUCKET) * ROW_BUCKET  # fewer distinct shapes
    batches = _batches(plans, batch_size, n_devices)
    accumulate = _accumulate_fn(average)
    total = count = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(b[2]) for b in batches), unit="window", desc="model")
    n_feat = specs[0].shape[0] if specs else 0
    for length, size, jobs in batches:
        spec = np.zeros((size, n_feat, length), np.float32)
        index = np.full((size, windows_frames_out(length, plans)), rows, np.int32)
        for row, (r, w) in enumerate(jobs):
            window = plans[r].windows[w]
            spec[row] = specs[r][:, window.start:window.end]
            first = offsets[r] + window.out_pos - window.keep_start
            keep = np.arange(window.keep_start, window.keep_end)
            index[row, keep] = first + keep
        log_probs, _ = forward(spec, np.full((size,), length, np.int32))
        if total is None:
            total = jnp.zeros((rows, log_probs.shape[-1]), jnp.float32)
            count = jnp.zeros((rows,), jnp.float32)
        total, count = accumulate(total, count, log_probs, index)
        if bar is not None:
            bar.update(len(jobs))
    if bar is not None:
        bar.close()
    merged = np.asarray(_finish_fn(average, output == "ids")(total, count))
    return [merged[offsets[r]:offsets[r + 1]] for r in range(len(plans))]


def windows_frames_out(length: int, plans: Sequence[Plan]) -> int:
    """Output frames of a window of `length` frames (every plan shares one factor)."""
    from lcasr_jax.eval.windows import frames_out

    return frames_out(length, plans[0].factor)


def run_one_at_a_time(forward: Forward, spec: np.ndarray, plan: Plan) -> np.ndarray:
    """Reference: each window alone (batch of one), merged in plan order, like the original."""
    outputs = []
    for window in plan.windows:
        chunk = spec[None, :, window.start:window.end]
        log_probs, _ = forward(chunk, np.array([window.length], np.int32))
        outputs.append(np.asarray(log_probs)[0])
    from lcasr_jax.eval.windows import merge

    return merge(plan, outputs)
