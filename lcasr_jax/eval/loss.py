"""CTC loss of merged long-form posteriors (the original's `rev16_loss` / `spotify_loss`).

Per recording: the CTC negative log-likelihood (nats, summed like torch's CTCLoss with
reduction='sum') of the merged moving-window log-probs (frames_out, classes) against the
reference's tokens (unknown pieces removed, as the original does), and against the model's
own greedy transcript (the token sequence of its best path; the original re-encoded the
decoded text, which gives these tokens back up to sentencepiece's segmentation). Reported
per token: a recording's sum over its tokens; overall, the sums over all recordings divided
by all their tokens. An alignment that cannot exist (more tokens than frames allow) gives
inf, as torch's CTCLoss does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import numpy as np

from lcasr_jax.kernels.ctc import ctc_loss

FRAME_BUCKET = 1024  # frames and labels are padded to multiples of these (fewer compiles)
LABEL_BUCKET = 128


@dataclasses.dataclass(frozen=True)
class LossDetail:
    nll: float  # summed over the reference tokens (nats)
    tokens: int  # reference tokens
    self_nll: float  # against the greedy transcript
    self_tokens: int

    def as_row(self) -> dict[str, float | int]:
        return {"loss": _per_token(self.nll, self.tokens), "loss_tokens": self.tokens,
                "self_loss": _per_token(self.self_nll, self.self_tokens),
                "self_loss_tokens": self.self_tokens}


def _per_token(nll: float, tokens: int) -> float:
    return nll / tokens if tokens else float("nan")


def total(details: Sequence[LossDetail]) -> LossDetail:
    """Sums over recordings (per-token values of the result: sum of losses / sum of tokens)."""
    return LossDetail(sum(d.nll for d in details), sum(d.tokens for d in details),
                      sum(d.self_nll for d in details), sum(d.self_tokens for d in details))


@functools.cache
def _nll_fn():
    return jax.jit(ctc_loss, static_argnames=("blank_id",))


def ctc_nll(log_probs: np.ndarray, targets: Sequence[int], blank_id: int) -> float:
    """CTC NLL of one sequence: log_probs (frames, classes), targets (labels,) ints."""
    frames, classes = log_probs.shape
    labels = np.asarray(targets, np.int32)
    if len(labels) + int(np.sum(labels[1:] == labels[:-1])) > frames:
        return float("inf")  # no alignment (the kernel would give 0)
    f_pad = -(-max(frames, 1) // FRAME_BUCKET) * FRAME_BUCKET
    l_pad = -(-max(len(labels), 1) // LABEL_BUCKET) * LABEL_BUCKET
    x = np.zeros((1, f_pad, classes), np.float32)
    x[0, :frames] = log_probs
    y = np.full((1, l_pad), blank_id, np.int32)
    y[0, :len(labels)] = labels
    nll = _nll_fn()(x, np.array([frames], np.int32), y, np.array([len(labels)], np.int32),
                    blank_id=blank_id)
    return float(np.asarray(nll)[0])


def recording_loss(log_probs: np.ndarray, reference: str, greedy_tokens: Sequence[int],
                   tokenizer) -> LossDetail:
    """LossDetail of merged log_probs (frames_out, classes) against the reference text and
    the greedy path's tokens."""
    unk = tokenizer.sp.unk_id()
    ref = [t for t in tokenizer.encode(reference) if t != unk]
    blank = tokenizer.blank_id
    return LossDetail(ctc_nll(log_probs, ref, blank), len(ref),
                      ctc_nll(log_probs, greedy_tokens, blank), len(greedy_tokens))
