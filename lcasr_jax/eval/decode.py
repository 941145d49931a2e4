"""CTC beam search of merged log-probs with an optional n-gram LM (pyctcdecode, the `lm`
extra), like the original's `decode_beams_lm`. Greedy decoding: `lcasr_jax.decode`.

log_probs: (frames_out, classes) with the blank last; one output frame is
`factor` x 10 ms (80 ms for the released models).
"""

from __future__ import annotations

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.data.tokenizer import default_tokenizer
from lcasr_jax.decode import Transcript, Word, check_classes


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
        self.tokenizer = tokenizer or default_tokenizer()
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
