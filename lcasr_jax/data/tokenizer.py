"""The original's sentencepiece tokenizer (4095 BPE pieces) and the CTC collapse rule.

Model class 4095 is the CTC blank; it lies outside the tokenizer's id range. Greedy
decoding to text and transcripts: `lcasr_jax.decode`.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from lcasr_jax.data.vocab import BLANK_ID, VOCAB_SIZE


def default_tokenizer_path() -> Path:
    return Path(str(importlib.resources.files("lcasr_jax") / "assets" / "tokenizer.model"))


class Tokenizer:
    """Text <-> token ids with the shipped sentencepiece model."""

    def __init__(self, path: str | Path | None = None):
        path = Path(path) if path is not None else default_tokenizer_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tokenizer model not found")
        self.path = path
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(path))
        except (OSError, RuntimeError) as e:
            raise ValueError(f"{path}: not a sentencepiece model ({e})") from None
        self.vocab_size = self.sp.GetPieceSize()
        self.blank_id = self.vocab_size

    def encode(self, text: str) -> list[int]:
        return list(self.sp.EncodeAsIds(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.DecodeIds([int(i) for i in ids if 0 <= int(i) < self.vocab_size])


@functools.cache
def default_tokenizer() -> Tokenizer:
    tok = Tokenizer()
    assert tok.vocab_size == VOCAB_SIZE, tok.vocab_size
    return tok


def ctc_runs(frame_ids: np.ndarray, blank_id: int = BLANK_ID
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CTC collapse rule with frame spans: a token is emitted where the per-frame argmax
    changes to a non-blank class, and spans its run of repeats.

    frame_ids: (frames,) argmax class per frame. Returns (tokens, first, last), each
    (emitted,) int arrays: the token and the first and last frame of its run.
    """
    ids = np.asarray(frame_ids).reshape(-1)
    if ids.size == 0:
        empty = np.zeros(0, np.intp)
        return ids, empty, empty
    start = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    last = np.append(start[1:], ids.size) - 1
    emit = ids[start] != blank_id
    return ids[start][emit], start[emit], last[emit]


def ctc_collapse(frame_ids: np.ndarray, blank_id: int = BLANK_ID) -> list[int]:
    """Collapse repeats then drop blanks (`ctc_runs` without the spans)."""
    return ctc_runs(frame_ids, blank_id)[0].tolist()

