"""The original's lockstep chunk walk over one recording batch (exp/train.py), reproduced.

The batch's recordings are zero-padded to the longest (P frames) and cut into chunks of C
frames at 0, C, 2C, ... < P (the last may be narrower: width w_k = min(C, P - kC)). Chunk k is
one optimizer step over the rows still running, with the original's bookkeeping exactly:
a cumulative count `culm` (frames walked per row, from 0) keeps row r while culm_r <= len_r
(so a recording whose length is a multiple of C gets one more row of length 0 when a longer
one continues); a kept row's length is w_k - max(culm_r + w_k - len_r, 0); its text is the
words inside seconds [kC, kC + C] * 160 / 16000 of its own transcript (`chunking`'s
predicate, windows over the padded length). A chunk where no kept row has a token is skipped
(no step) *and culm is not advanced for it* (the original's `continue` comes first), so the
chunks after a skipped one keep rows and lengths as if it had not been walked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from lcasr_jax.data.chunking import gather_tokens, words_in_windows

N_MELS = 80


@dataclasses.dataclass(frozen=True)
class ChunkStep:
    """One optimizer step of a recording batch.

    index: chunk number k (start frame k * chunk_frames); rows: (n,) positions in the batch
    of the rows it holds; lengths: (n,) int32 valid frames per row as the original counts
    them; width: frames of the chunk tensor; tokens: n arrays of token ids (int32).
    """

    index: int
    chunk_frames: int
    rows: np.ndarray
    lengths: np.ndarray
    width: int
    tokens: tuple[np.ndarray, ...]

    @property
    def start(self) -> int:
        return self.index * self.chunk_frames


def chunk_steps(lengths: Sequence[int], words: Sequence[tuple[np.ndarray, ...]],
                chunk_frames: int) -> list[ChunkStep]:
    """The steps of one recording batch (module docstring).

    lengths: (batch,) frames per recording; words: per recording (word_start, word_end
    seconds, token_offsets, token_ids) as dataset examples hold them.
    """
    lens = np.asarray(lengths, np.int64)
    padded = int(lens.max()) if len(lens) else 0
    starts = np.arange(0, padded, chunk_frames, dtype=np.int64)
    per_row = []
    for ws, we, to, ti in words:
        offsets, index = words_in_windows(ws, we, starts, starts + chunk_frames)
        per_row.append((offsets, index, to, ti))
    culm = np.zeros(len(lens), np.int64)
    steps = []
    for k, start in enumerate(starts):
        width = int(min(chunk_frames, padded - start))
        rows = np.nonzero(culm <= lens)[0]
        cur = width - np.maximum(culm[rows] + width - lens[rows], 0)
        tokens = []
        for r in rows:
            offsets, index, to, ti = per_row[r]
            tokens.append(gather_tokens(index[offsets[k]:offsets[k + 1]], to, ti)
                          .astype(np.int32))
        if max((len(t) for t in tokens), default=0) == 0:
            continue
        steps.append(ChunkStep(k, chunk_frames, rows, cur.astype(np.int32), width,
                               tuple(tokens)))
        culm[rows] += width
    return steps


def step_batch(step: ChunkStep, features: Sequence[np.ndarray], *, rows: int | None = None,
               frames: int | None = None, max_tokens: int | None = None,
               dtype: str = "float32") -> dict[str, np.ndarray]:
    """The step's arrays: spec (rows, 80, frames), lengths, targets (rows, max_tokens) pad 0,
    target_lengths, weight (1 real row, 0 padding).

    features: per recording of the batch, (frames, 80). Without rows/frames/max_tokens the
    shapes are the original's (kept rows, chunk width, longest target); with them the step
    is padded to that fixed shape (zero rows of length 0 and weight 0).
    """
    n = len(step.rows)
    rows = n if rows is None else rows
    frames = step.width if frames is None else frames
    longest = max(len(t) for t in step.tokens)
    max_tokens = longest if max_tokens is None else max_tokens
    if rows < n or frames < step.width or max_tokens < longest:
        raise ValueError(f"chunk {step.index}: {n} rows x {step.width} frames x {longest} "
                         f"tokens do not fit {rows} x {frames} x {max_tokens}")
    out = {"spec": np.zeros((rows, N_MELS, frames), dtype),
           "lengths": np.zeros(rows, np.int32), "targets": np.zeros((rows, max_tokens), np.int32),
           "target_lengths": np.zeros(rows, np.int32), "weight": np.zeros(rows, np.float32)}
    for i, r in enumerate(step.rows):
        f = features[r][step.start:step.start + step.width]
        out["spec"][i, :, :len(f)] = np.asarray(f, np.float32).T
        out["targets"][i, :len(step.tokens[i])] = step.tokens[i]
        out["target_lengths"][i] = len(step.tokens[i])
    out["lengths"][:n] = step.lengths
    out["weight"][:n] = 1.0
    return out


def example_words(ex: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """(word_start, word_end, token_offsets, token_ids) of a dataset example."""
    return (ex["word_start"], ex["word_end"], ex["token_offsets"], ex["token_ids"])
