"""Greedy CTC decoding, the one implementation that training, evaluation and the API share.

The CTC rule itself (collapse repeats, drop blanks, with frame spans) is the tokenizer's
`ctc_runs`; this module turns per-frame argmax ids into text and word-timed transcripts.
Frame ids / log-probs: (frames_out, classes) with the blank last; one output frame is
`factor` x 10 ms (80 ms for the released models). Beam search: `lcasr_jax.eval.decode`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.data.tokenizer import Tokenizer, ctc_collapse, ctc_runs, default_tokenizer

WORD_START = "\u2581"  # sentencepiece's word-boundary marker


@dataclasses.dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float  # seconds


@dataclasses.dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]


def check_classes(classes: int, tokenizer: Tokenizer | None = None,
                  source: str = "model") -> None:
    """Raise if the model's output classes do not fit the tokenizer (vocab + blank).
    `source` names the model in the message (e.g. the checkpoint path)."""
    tok = tokenizer or default_tokenizer()
    if classes != tok.vocab_size + 1:
        raise ValueError(f"checkpoint/tokenizer mismatch: {source} has {classes} output "
                         f"classes, tokenizer {tok.path} has {tok.vocab_size} pieces + blank")


def greedy_text(frame_ids: np.ndarray, tokenizer: Tokenizer | None = None) -> str:
    """Text of a greedy CTC path (frames_out,) of argmax ids."""
    tok = tokenizer or default_tokenizer()
    return tok.decode(ctc_collapse(np.asarray(frame_ids), tok.blank_id))


def greedy_texts(frame_ids: np.ndarray, lengths: Sequence[int],
                 tokenizer: Tokenizer | None = None) -> list[str]:
    """Texts of a batch of greedy paths: frame_ids (batch, frames_out), lengths (batch,)."""
    return [greedy_text(np.asarray(frame_ids[i, : int(n)]), tokenizer)
            for i, n in enumerate(lengths)]


def greedy_decode(log_probs: np.ndarray, length: int | None = None,
                  tokenizer: Tokenizer | None = None) -> str:
    """Greedy CTC transcript of one item. log_probs: (frames, classes)."""
    lp = np.asarray(log_probs)
    return greedy_text(lp[:length].argmax(-1), tokenizer)


def token_runs(frame_ids: np.ndarray, blank_id: int) -> list[tuple[int, int, int]]:
    """Greedy CTC path (frames_out,) -> (token, first_frame, last_frame) per emitted token
    (`data.tokenizer.ctc_runs` as tuples)."""
    tokens, first, last = ctc_runs(frame_ids, blank_id)
    return list(zip(tokens.tolist(), first.tolist(), last.tolist(), strict=True))


def greedy(log_probs: np.ndarray, tokenizer: Tokenizer | None = None, factor: int = 8,
           timestamps: bool = True) -> Transcript:
    """Best-path CTC decode of (frames_out, classes) log-probs; see `greedy_ids`."""
    tok = tokenizer or default_tokenizer()
    check_classes(log_probs.shape[-1], tok)
    return greedy_ids(np.asarray(log_probs).argmax(-1), tok, factor, timestamps)


def greedy_ids(frame_ids: np.ndarray, tokenizer: Tokenizer | None = None, factor: int = 8,
               timestamps: bool = True) -> Transcript:
    """Greedy CTC from the per-frame argmax (frames_out,): collapse repeats, drop blanks,
    detokenize. Word times: a word starts at the first frame of its first token and ends
    after the last frame of its last token; frame f covers [f, f + 1) * factor * 10 ms.
    """
    tok = tokenizer or default_tokenizer()
    runs = token_runs(frame_ids, tok.blank_id)
    text = tok.decode([t for t, _, _ in runs])
    words: list[Word] = []
    if timestamps and runs:
        step = factor * FRAME_SECONDS
        groups: list[list[tuple[int, int, int]]] = []
        for run in runs:
            piece = tok.sp.IdToPiece(run[0])
            if not groups or piece.startswith(WORD_START):
                groups.append([run])
            else:
                groups[-1].append(run)
        for group in groups:
            word = tok.decode([t for t, _, _ in group]).strip()
            if word:
                words.append(Word(word, round(group[0][1] * step, 3),
                                  round((group[-1][2] + 1) * step, 3)))
    return Transcript(text, tuple(words))
