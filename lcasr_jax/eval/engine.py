"""Batched, sharded execution of evaluation windows.

All windows of several recordings are grouped by exact length, packed into fixed-size
batches (dummy rows pad the last batch), and run through one jitted forward whose batch
axis is sharded over a 1-D 'data' mesh. Windows are never padded in time: the original
runs each window at its own length and its subsampling convolutions let padded frames
leak into valid outputs, so time padding would change the numbers. Full-length windows
(the vast majority) share one shape; each distinct tail length compiles once.

A forward function maps (spec (batch, 80, frames) float32, lengths (batch,) int32) to
(log_probs (batch, frames_out, classes), lengths_out (batch,)) as numpy arrays.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import numpy as np

from lcasr_jax.eval.windows import Merger, Plan

Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def data_mesh(devices=None):
    """1-D mesh named 'data' over `devices` (default: all)."""
    import jax
    from jax.sharding import Mesh

    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), ("data",))


def make_forward(model, variables, mesh=None) -> tuple[Forward, int]:
    """Jitted, batch-sharded forward of a Flax SCConformerXL. Returns (forward, n_devices);
    batch sizes passed to forward must be multiples of n_devices."""
    import flax.linen as nn
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = mesh if mesh is not None else data_mesh()
    data = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    variables = jax.device_put(nn.meta.unbox(variables), replicated)

    @jax.jit
    def step(v, spec, lengths):
        out = model.apply(v, spec, lengths)
        return out["final_posteriors"].astype(np.float32), out["length"]

    def forward(spec: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = jax.device_put(np.asarray(spec, np.float32), data)
        lengths = jax.device_put(np.asarray(lengths, np.int32), data)
        log_probs, out_len = step(variables, spec, lengths)
        return np.asarray(log_probs), np.asarray(out_len)

    return forward, mesh.size


def _batch_size(count: int, batch_size: int, n_devices: int) -> int:
    size = batch_size if count >= batch_size else count
    return -(-size // n_devices) * n_devices


def run_plans(forward: Forward, specs: Sequence[np.ndarray], plans: Sequence[Plan], *,
              batch_size: int = 8, n_devices: int = 1, progress: bool = False,
              classes: int | None = None) -> list[np.ndarray]:
    """Run every window of every recording and merge per recording.

    specs: per recording (80, frames) float32; plans: matching window plans.
    batch_size: windows per model call (rounded up to a multiple of n_devices).
    Returns per recording merged log-probs (plan.out_frames, classes) float32.
    """
    if len(specs) != len(plans):
        raise ValueError(f"{len(specs)} spectrograms but {len(plans)} plans")
    groups: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    for r, plan in enumerate(plans):
        for w, window in enumerate(plan.windows):
            groups[window.length].append((r, w))
    batches = []
    for length in sorted(groups, reverse=True):
        jobs = groups[length]
        size = _batch_size(len(jobs), batch_size, n_devices)
        batches += [(length, size, jobs[i:i + size]) for i in range(0, len(jobs), size)]

    mergers: list[Merger | None] = [None] * len(plans)
    if classes is not None:
        mergers = [Merger(p, classes) for p in plans]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(b[2]) for b in batches), unit="window", desc="model")
    n_feat = specs[0].shape[0] if specs else 0
    for length, size, jobs in batches:
        spec = np.zeros((size, n_feat, length), np.float32)
        for row, (r, w) in enumerate(jobs):
            window = plans[r].windows[w]
            spec[row] = specs[r][:, window.start:window.end]
        log_probs, _ = forward(spec, np.full((size,), length, np.int32))
        for row, (r, w) in enumerate(jobs):
            if mergers[r] is None:
                mergers[r] = Merger(plans[r], log_probs.shape[-1])
            mergers[r].add(w, log_probs[row])
        if bar is not None:
            bar.update(len(jobs))
    if bar is not None:
        bar.close()
    return [m.result() for m in mergers]


def run_one_at_a_time(forward: Forward, spec: np.ndarray, plan: Plan) -> np.ndarray:
    """Reference: each window alone (batch of one), merged in plan order, like the original."""
    outputs = []
    for window in plan.windows:
        chunk = spec[None, :, window.start:window.end]
        log_probs, _ = forward(chunk, np.array([window.length], np.int32))
        outputs.append(log_probs[0])
    from lcasr_jax.eval.windows import merge

    return merge(plan, outputs)
