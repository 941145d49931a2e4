"""Readers of long-form test sets from a user-named directory: name -> read(dir, split)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lcasr_jax.eval.datasets import earnings22, manifest, rev16, synth, tal, tedlium
from lcasr_jax.eval.datasets.base import DatasetError, EvalRecording, zero_regions

READERS: dict[str, Callable[[Path, str], list[EvalRecording]]] = {
    "tedlium": tedlium.read,
    "earnings22": earnings22.read,
    "earnings22_full": earnings22.read_full,
    "rev16": rev16.read,
    "this_american_life": tal.read,
    "manifest": manifest.read,
    "synth": synth.read,
}


def load_dataset(name: str, data_dir: str | Path, split: str = "test") -> list[EvalRecording]:
    """Recordings of dataset `name` under `data_dir` (see each reader for the layout)."""
    if name not in READERS:
        raise DatasetError(f"unknown dataset {name!r} (choose from {', '.join(READERS)})")
    if not Path(data_dir).exists():
        raise DatasetError(f"{data_dir}: data directory not found")
    return READERS[name](Path(data_dir), split)


__all__ = ["READERS", "DatasetError", "EvalRecording", "load_dataset", "zero_regions"]
