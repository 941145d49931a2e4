"""CTC decoding, the one home that training, evaluation, analyses and the API share.

Greedy (the original's `GreedyCTCDecoder`, what its eval/run.py uses): the CTC rule itself
(collapse repeats, drop blanks, with frame spans) is the tokenizer's `ctc_runs`; this module
turns per-frame argmax ids into text and word-timed transcripts. Beam search: pyctcdecode
(the `lm` extra; the original's per-dataset scripts: width 1, no LM; optionally a KenLM
n-gram weighted by alpha, beta), like the original's `decode_beams_lm`, with word times.
`DecoderSettings` + `make_decoder` pick one of the two.

Frame ids / log-probs: (frames_out, classes) with the blank last; one output frame is
`factor` x 10 ms (80 ms for the released models).
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


def greedy(log_probs: np.ndarray, tokenizer: Tokenizer | None = None, *, factor: int,
           timestamps: bool = True) -> Transcript:
    """Best-path CTC decode of (frames_out, classes) log-probs; see `greedy_ids`."""
    tok = tokenizer or default_tokenizer()
    check_classes(log_probs.shape[-1], tok)
    return greedy_ids(np.asarray(log_probs).argmax(-1), tok, factor=factor,
                      timestamps=timestamps)


def greedy_ids(frame_ids: np.ndarray, tokenizer: Tokenizer | None = None, *, factor: int,
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


DECODERS = ("greedy", "beam")


@dataclasses.dataclass(frozen=True)
class DecoderSettings:
    """How merged outputs become text. 'greedy': the original's `eval/run.py`
    (GreedyCTCDecoder). 'beam': pyctcdecode, as the original's per-dataset scripts
    (`eval/<dataset>/run.py`: width 1, no LM); `kenlm` adds an n-gram LM weighted by
    `alpha` (LM) and `beta` (word insertion bonus), pyctcdecode's defaults when None."""

    kind: str = "greedy"
    beam_width: int = 1
    kenlm: str | None = None
    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self):
        if self.kind not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)} (got {self.kind!r})")
        if self.beam_width < 1:
            raise ValueError(f"beam width must be >= 1 (got {self.beam_width})")
        if self.kind == "greedy" and (self.kenlm or self.alpha is not None
                                      or self.beta is not None):
            raise ValueError("--kenlm/--lm-alpha/--lm-beta need --decoder beam")
        if self.kenlm is None and (self.alpha is not None or self.beta is not None):
            raise ValueError("--lm-alpha/--lm-beta weight an n-gram LM: give --kenlm too")


def make_decoder(settings: DecoderSettings, tokenizer=None):
    """A decoder for `settings`: `decoder(out, factor) -> Transcript`, where `out` is the
    per-frame argmax (frames_out,) if `decoder.wants == 'ids'`, else the merged log-probs
    (frames_out, classes)."""
    if settings.kind == "greedy":
        return GreedyDecoder(tokenizer)
    return BeamDecoder(tokenizer, settings.kenlm, settings.alpha, settings.beta,
                       settings.beam_width)


class GreedyDecoder:
    """Greedy CTC from the per-frame argmax (`greedy_ids`)."""

    wants = "ids"

    def __init__(self, tokenizer=None):
        self.tokenizer = tokenizer or default_tokenizer()

    def __call__(self, frame_ids: np.ndarray, factor: int) -> Transcript:
        return greedy_ids(frame_ids, self.tokenizer, factor=factor)


class BeamDecoder:
    """pyctcdecode beam search (optionally with a KenLM n-gram), like the original's
    `decode_beams_lm`: the vocabulary is the tokenizer's pieces plus "" for the blank.
    Needs pyctcdecode (the `lm` extra) and, for an LM, the kenlm python package."""

    wants = "log_probs"

    def __init__(self, tokenizer=None, kenlm_path: str | None = None,
                 alpha: float | None = None, beta: float | None = None,
                 beam_width: int = 1):
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError:
            raise ImportError("beam search needs pyctcdecode (pip install 'lcasr-jax[lm]')") \
                from None
        kwargs = {}
        if kenlm_path is not None:
            import importlib.util
            from pathlib import Path

            if importlib.util.find_spec("kenlm") is None:
                raise ImportError("an n-gram LM (--kenlm) needs the kenlm python package "
                                  "(pip install https://github.com/kpu/kenlm/archive/master.zip)")
            if not Path(kenlm_path).is_file():
                raise FileNotFoundError(f"{kenlm_path}: KenLM model not found")
            kwargs = {k: v for k, v in (("alpha", alpha), ("beta", beta)) if v is not None}
        self.tokenizer = tokenizer or default_tokenizer()
        self.beam_width = beam_width
        sp = self.tokenizer.sp
        vocab = [sp.IdToPiece(i) for i in range(self.tokenizer.vocab_size)] + [""]
        self.decoder = build_ctcdecoder(vocab, kenlm_model_path=kenlm_path, **kwargs)

    def __call__(self, log_probs: np.ndarray, factor: int) -> Transcript:
        check_classes(log_probs.shape[-1], self.tokenizer)
        beam = self.decoder.decode_beams(np.asarray(log_probs, np.float32),
                                         beam_width=self.beam_width)[0]
        # pyctcdecode 0.5 (PyPI) returns tuples (text, lm_state, text_frames, ...); its main
        # branch (which the original's `beams[0].text` implies) returns OutputBeam objects
        text, frames = ((beam.text, beam.text_frames) if hasattr(beam, "text")
                        else (beam[0], beam[2]))
        step = factor * FRAME_SECONDS
        words = tuple(Word(w, round(a * step, 3), round(b * step, 3)) for w, (a, b) in frames)
        return Transcript(text, words)
