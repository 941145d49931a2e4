"""How the model computes, as one frozen dataclass handed to every block: none of it is
stored in a checkpoint, and none changes the function beyond rounding (`dtype`,
`position_dtype`) and memory (`remat`, `subsampling_chunk_frames`).

`SCConformerXL`'s keyword fields of the same names are its public face
(`model.clone(dtype=jnp.bfloat16)`); it builds one `Runtime` from them (`.runtime`) and its
blocks read that, never separate positional settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

SUBSAMPLING_CHUNK_FRAMES = 32768  # default: 5.5 minutes of input frames per chunk


@dataclasses.dataclass(frozen=True)
class Runtime:
    dtype: Any = jnp.float32  # compute dtype (parameters stay float32)
    position_dtype: Any = jnp.float32  # rotary and Fourier position tables (model/positions.py)
    attention_impl: str = "auto"  # kernels/attention IMPLS
    depthwise_impl: str = "auto"  # model/depthwise IMPLS
    remat: bool | str = "none"  # conformer.REMAT_POLICIES (True: 'full')
    mask_subsampling: bool = False  # zero padded frames inside the subsampling
    subsampling_chunk_frames: int = SUBSAMPLING_CHUNK_FRAMES  # 0: never chunked

    def replace(self, **changes: Any) -> Runtime:
        return dataclasses.replace(self, **changes)
