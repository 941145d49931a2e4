"""CTC decoding of merged log-probs: greedy (the original's `GreedyCTCDecoder`), optional
beam search with an n-gram LM (pyctcdecode, the `lm` extra), and word timestamps.

log_probs: (frames_out, classes) with the blank last; one output frame is
`factor` x 10 ms (80 ms for the released models).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS

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


def _tokenizer(tokenizer):
    if tokenizer is not None:
        return tokenizer
    from lcasr_jax.data.tokenizer import default_tokenizer

    return default_tokenizer()


def check_classes(classes: int, tokenizer=None, source: str = "model") -> None:
    """Raise if the model's output classes do not fit the tokenizer (vocab + blank).
    `source` names the model in the message (e.g. the checkpoint path)."""
    tok = _tokenizer(tokenizer)
    if classes != tok.vocab_size + 1:
        raise ValueError(f"checkpoint/tokenizer mismatch: {source} has {classes} output "
                         f"classes, tokenizer {tok.path} has {tok.vocab_size} pieces + blank")


def token_runs(frame_ids: np.ndarray, blank_id: int) -> list[tuple[int, int, int]]:
    """Greedy CTC path (frames_out,) -> (token, first_frame, last_frame) per emitted token
    (`data.tokenizer.ctc_runs` as tuples)."""
    from lcasr_jax.data.tokenizer import ctc_runs

    tokens, first, last = ctc_runs(frame_ids, blank_id)
    return list(zip(tokens.tolist(), first.tolist(), last.tolist(), strict=True))


def greedy(log_probs: np.ndarray, tokenizer=None, factor: int = 8,
           timestamps: bool = True) -> Transcript:
    """Best-path CTC decode of (frames_out, classes) log-probs; see `greedy_ids`."""
    tok = _tokenizer(tokenizer)
    check_classes(log_probs.shape[-1], tok)
    return greedy_ids(np.asarray(log_probs).argmax(-1), tok, factor, timestamps)


def greedy_ids(frame_ids: np.ndarray, tokenizer=None, factor: int = 8,
               timestamps: bool = True) -> Transcript:
    """Greedy CTC from the per-frame argmax (frames_out,): collapse repeats, drop blanks,
    detokenize. Word times: a word starts at the first frame of its first token and ends
    after the last frame of its last token; frame f covers [f, f + 1) * factor * 10 ms.
    """
    tok = _tokenizer(tokenizer)
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


class BeamDecoder:
    """pyctcdecode beam search (optionally with a KenLM n-gram), like the original's
    `decode_beams_lm`. Needs `pip install pyctcdecode` (and kenlm for an LM)."""

    def __init__(self, tokenizer=None, kenlm_path: str | None = None,
                 alpha: float | None = None, beta: float | None = None):
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError:
            raise ImportError("beam search needs pyctcdecode (pip install 'lcasr-jax[lm]')") \
                from None
        self.tokenizer = _tokenizer(tokenizer)
        sp = self.tokenizer.sp
        vocab = [sp.IdToPiece(i) for i in range(self.tokenizer.vocab_size)] + [""]
        kwargs = {}
        if alpha is not None:
            kwargs["alpha"] = alpha
        if beta is not None:
            kwargs["beta"] = beta
        self.decoder = build_ctcdecoder(vocab, kenlm_model_path=kenlm_path, **kwargs)

    def __call__(self, log_probs: np.ndarray, beam_width: int = 100,
                 factor: int = 8) -> Transcript:
        check_classes(log_probs.shape[-1], self.tokenizer)
        beam = self.decoder.decode_beams(np.asarray(log_probs, np.float32),
                                         beam_width=beam_width)[0]
        # pyctcdecode <= 0.5 returns plain tuples (text, lm_state, text_frames, ...)
        text, frames = getattr(beam, "text", beam[0]), getattr(beam, "text_frames", beam[2])
        step = factor * FRAME_SECONDS
        words = tuple(Word(w, round(a * step, 3), round(b * step, 3)) for w, (a, b) in frames)
        return Transcript(text, words)
