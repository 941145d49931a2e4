"""Decoding of merged outputs: greedy (`lcasr_jax.decode`, the original's `GreedyCTCDecoder`,
what its eval/run.py uses) or pyctcdecode beam search (the `lm` extra; its per-dataset
scripts: width 1, no LM; optionally a KenLM n-gram weighted by alpha, beta), like the
original's `decode_beams_lm`, with word timestamps.

log_probs: (frames_out, classes) with the blank last; one output frame is
`factor` x 10 ms (80 ms for the released models).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.data.tokenizer import default_tokenizer
from lcasr_jax.decode import Transcript, Word, check_classes, greedy_ids

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

    def __call__(self, frame_ids: np.ndarray, factor: int = 8) -> Transcript:
        return greedy_ids(frame_ids, self.tokenizer, factor)


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

    def __call__(self, log_probs: np.ndarray, factor: int = 8) -> Transcript:
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
