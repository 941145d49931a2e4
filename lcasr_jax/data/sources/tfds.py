"""A built TFDS dataset (`lcasr_jax.data.tfds_builder`) as random-access dataset examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_split(dataset_dir: str | Path, split: str = "train") -> Any:
    """Random-access source over one split: len(src), src[i] -> dict of numpy arrays."""
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(dataset_dir))
    if split not in builder.info.splits:
        raise ValueError(f"{dataset_dir}: no split {split!r} (has {list(builder.info.splits)})")
    return builder.as_data_source(split=split)
