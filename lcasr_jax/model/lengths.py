"""Sequence lengths through the subsampling: plain arithmetic, no jax needed."""

from __future__ import annotations

import math
from typing import Any


def output_lengths(lengths: Any, factor: int) -> Any:
    """Frames after subsampling by `factor` (a power of 2): each stride-2 stage maps L to
    ceil(L / 2). An int gives an int, an integer array an array of its kind."""
    for _ in range(int(math.log2(factor))):
        lengths = (lengths + 1) // 2
    return lengths
