"""On-disk cache of a recording's encoded training example, beside its JSON.

`<name>.json` -> `<name>.feats.npz` (uncompressed; float16 features, 9.6 MB per 10 minutes)
holding what `recordings.RecordingsSource` yields (`examples.encode_recording`'s fields: id,
features (frames, 80) float16, num_frames, word seconds, tokens, text) plus the JSON's size
and mtime and the resampler that made the features, so a changed recording, or one asked
for with another resampler, is re-encoded. `precompute` fills the cache with a process
pool (on the GPU machine: all cores before training, so every call's first epoch reads
features instead of computing them on two reader threads).

    lcasr-jax data cache DIR [--workers N]
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.alignments import find_recordings
from lcasr_jax.data.examples import encode_recording

SUFFIX = ".feats.npz"


def cache_path(path: Path) -> Path:
    return path.with_name(path.stem + SUFFIX)


def _stamp(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], np.int64)


def load(path: Path, resampler: str = "soxr") -> dict[str, Any] | None:
    """The cached example of recording JSON `path`, or None if absent, stale or made with
    another resampler (caches without the field were made with soxr)."""
    cp = cache_path(path)
    if not cp.is_file():
        return None
    try:
        with np.load(cp) as z:
            if not np.array_equal(z["stamp"], _stamp(path)):
                return None
            made = str(z["resampler"]) if "resampler" in z.files else "soxr"
            if made != resampler:
                return None
            out = {k: z[k] for k in z.files if k not in ("stamp", "resampler")}
    except (OSError, ValueError, KeyError):
        return None
    # 0-d arrays back to scalars: strings (id, text) to str, numbers keep their dtype.
    return {k: (v.item() if v.dtype.kind == "U" else v[()]) if v.ndim == 0 else v
            for k, v in out.items()}


def store(path: Path, example: dict[str, Any], resampler: str = "soxr") -> None:
    """Write the cache of `path` atomically (temp file then os.replace)."""
    cp = cache_path(path)
    tmp = cp.with_name(f".{cp.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, stamp=_stamp(path), resampler=np.array(resampler), **example)
    os.replace(tmp, cp)


def cached(path: Path, encode: Callable[..., dict[str, Any]],
           resampler: str = "soxr") -> dict[str, Any]:
    """load(path, resampler), else encode(path, resampler=resampler) (not stored: only
    `precompute` writes)."""
    hit = load(path, resampler)
    return hit if hit is not None else encode(path, resampler=resampler)


def _one(job: tuple[Path, str]) -> int:
    path, resampler = job
    if load(path, resampler) is None:
        store(path, encode_recording(path, resampler=resampler), resampler)
        return 1
    return 0


def precompute(directory: str | Path, workers: int, resampler: str = "soxr") -> int:
    """Encode every recording JSON under `directory` that has no fresh cache; returns count."""

    jobs = [(p, resampler) for p in find_recordings(directory)]
    with mp.get_context("spawn").Pool(max(1, workers)) as pool:
        return sum(pool.imap_unordered(_one, jobs, chunksize=1))
