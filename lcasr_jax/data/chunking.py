"""Cut a word-aligned recording into chunks of N feature frames with the words inside each.

Semantics follow the original's `chunk_text_json`: chunks start at frames
0, step, 2 step, ... (step = chunk_frames - overlap) while start < total_frames; chunk k spans
frames [s_k, s_k + chunk_frames) (the last one may be partial), i.e. seconds
[s_k * 160 / 16000, (s_k + chunk_frames) * 160 / 16000] computed in float64 exactly as the
original does, and holds every word with start >= chunk start and end <= chunk end (both
bounds inclusive; a word straddling a boundary is in neither chunk). The original's
early-exit scan gives the same result for sorted, non-overlapping words; here the predicate is
applied exactly for any sorted input (with np.searchsorted, no Python loop over words).

Results are CSR arrays: chunk k's word indices are `index[offsets[k]:offsets[k + 1]]`.
Token ids come from encoding each word once (`word_tokens`); sentencepiece splits on
whitespace, so a chunk's ids equal `tokenizer.encode(" ".join(chunk_words))`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from lcasr_jax.data.features import HOP_LENGTH, SAMPLE_RATE


def frames_to_seconds(frames: np.ndarray | int) -> np.ndarray:
    """Frame index -> seconds, as the original's total_seconds: frames * 160 / 16000 (float64)."""
    return (np.asarray(frames, np.int64) * HOP_LENGTH) / SAMPLE_RATE


def ranges_to_index(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate arange(lo[i], hi[i]) for all i. Returns (offsets (n + 1,), index)."""
    lo = np.asarray(lo, np.int64)
    lens = np.maximum(np.asarray(hi, np.int64) - lo, 0)
    offsets = np.zeros(len(lo) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    index = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1] - lo, lens)
    return offsets, index


def chunk_starts(total_frames: int, chunk_frames: int, overlap: int = 0,
                 first_frame: int = 0) -> np.ndarray:
    """Start frames of the chunks: range(first_frame, total_frames, chunk_frames - overlap)."""
    if chunk_frames <= overlap or overlap < 0:
        raise ValueError(f"need 0 <= overlap < chunk_frames, got {overlap}, {chunk_frames}")
    return np.arange(first_frame, total_frames, chunk_frames - overlap, dtype=np.int64)


def ends_sorted(word_start: np.ndarray, word_end: np.ndarray) -> bool:
    """Check starts are sorted (else raise); return whether ends are sorted too."""
    if len(word_start) > 1 and (np.diff(word_start) < 0).any():
        raise ValueError("words must be sorted by start time (use alignments.validate_words)")
    return len(word_end) < 2 or bool((np.diff(word_end) >= 0).all())


def words_in_windows(word_start: np.ndarray, word_end: np.ndarray, win_start: np.ndarray,
                     win_end: np.ndarray, ends_are_sorted: bool | None = None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Words with start >= window start and end <= window end, per window (frames).

    word_start/word_end: (words,) seconds, sorted by start. win_start/win_end: (windows,)
    frames. ends_are_sorted: the result of `ends_sorted` (computed when None; pass it to
    skip the O(words) checks on repeated calls). Returns CSR (offsets (windows + 1,), index).
    """
    ws, we = np.asarray(word_start, np.float64), np.asarray(word_end, np.float64)
    if ends_are_sorted is None:
        ends_are_sorted = ends_sorted(ws, we)
    lo_s, hi_s = frames_to_seconds(win_start), frames_to_seconds(win_end)
    lo = np.searchsorted(ws, lo_s, side="left")  # first word with start >= chunk start
    if ends_are_sorted:  # a contiguous range
        hi = np.searchsorted(we, hi_s, side="right")
        return ranges_to_index(lo, np.maximum(hi, lo))
    hi = np.searchsorted(ws, hi_s, side="right")  # candidates: start within the chunk
    cand_off, cand = ranges_to_index(lo, hi)
    chunk_of = np.repeat(np.arange(len(lo)), np.diff(cand_off))
    keep = we[cand] <= hi_s[chunk_of]
    offsets = np.zeros(len(lo) + 1, np.int64)
    np.cumsum(np.bincount(chunk_of[keep], minlength=len(lo)), out=offsets[1:])
    return offsets, cand[keep]


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """Chunks of one recording. starts/lengths: (chunks,) frames; words: CSR over word ids."""

    starts: np.ndarray
    lengths: np.ndarray
    word_offsets: np.ndarray
    word_index: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def words(self, k: int) -> np.ndarray:
        return self.word_index[self.word_offsets[k]:self.word_offsets[k + 1]]


def plan_chunks(word_start: np.ndarray, word_end: np.ndarray, total_frames: int,
                chunk_frames: int, overlap: int = 0) -> ChunkPlan:
    """Chunk a recording of `total_frames` frames (see the module docstring)."""
    starts = chunk_starts(total_frames, chunk_frames, overlap)
    offsets, index = words_in_windows(word_start, word_end, starts, starts + chunk_frames)
    lengths = np.minimum(starts + chunk_frames, total_frames) - starts
    return ChunkPlan(starts, lengths, offsets, index)


def chunk_text(words: Sequence[str], plan: ChunkPlan) -> list[str]:
    """The text of each chunk: its words joined by single spaces (the original's output)."""
    return [" ".join(words[i] for i in plan.words(k)) for k in range(len(plan))]


def word_tokens(words: Sequence[str], tokenizer=None) -> tuple[np.ndarray, np.ndarray]:
    """Encode each word once. Returns (offsets (words + 1,) int64, ids (tokens,) int32)."""
    if tokenizer is None:
        from lcasr_jax.data.tokenizer import default_tokenizer

        tokenizer = default_tokenizer()
    pieces = tokenizer.sp.EncodeAsIds(list(words)) if words else []
    offsets = np.zeros(len(pieces) + 1, np.int64)
    np.cumsum([len(p) for p in pieces], out=offsets[1:])
    ids = np.fromiter((i for p in pieces for i in p), np.int32, count=int(offsets[-1]))
    return offsets, ids


def gather_tokens(word_index: np.ndarray, tok_offsets: np.ndarray,
                  tok_ids: np.ndarray) -> np.ndarray:
    """Token ids of the given words, concatenated in order: (tokens,) int32."""
    word_index = np.asarray(word_index, np.int64)
    _, idx = ranges_to_index(tok_offsets[word_index], tok_offsets[word_index + 1])
    return tok_ids[idx]


def chunk_tokens(plan: ChunkPlan, tok_offsets: np.ndarray,
                 tok_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of every chunk as CSR: (offsets (chunks + 1,), ids)."""
    per_word = np.diff(tok_offsets)[plan.word_index]
    cum = np.zeros(per_word.size + 1, np.int64)
    np.cumsum(per_word, out=cum[1:])
    return cum[plan.word_offsets], gather_tokens(plan.word_index, tok_offsets, tok_ids)
