"""CTC loss of merged long-form posteriors (the original's `rev16_loss` / `spotify_loss`).

Per recording: the CTC negative log-likelihood (nats, summed like torch's CTCLoss with
reduction='sum') of the merged moving-window log-probs (frames_out, classes) against two
token sequences, by `targets`:

original (default), as the original's scripts build them:
  loss       the tokenizer's encoding of the raw reference text lower-cased and stripped
             (spotify_loss: `' '.join(words).lower().strip()`, every token kept)
  self_loss  the tokenizer's encoding of the decoded text (the decoder's raw output, not
             normalised), unknown pieces (id 1) removed (rev16_loss, whose loss is this one)
normalised (this project's earlier measure):
  loss       the normalised scoring reference, unknown pieces removed
  self_loss  the tokens of the model's own greedy path (collapsed, blanks removed)

Reported per token: a recording's sum over its tokens; overall, the sums over all
recordings divided by all their tokens. An alignment that cannot exist (more tokens than
frames allow) gives inf, as torch's CTCLoss does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

LOSS_TARGETS = ("original", "normalised")
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
    import jax  # lazily: `lcasr-jax eval --help` reads LOSS_TARGETS from here

    from lcasr_jax.kernels.ctc import ctc_loss

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


def loss_targets(kind: str, raw_reference: str, reference: str, decoded_text: str,
                 greedy_tokens: Sequence[int], tokenizer) -> tuple[list[int], list[int]]:
    """(reference tokens, self tokens) of one recording for targets `kind` (module doc)."""
    unk = tokenizer.sp.unk_id()
    if kind == "original":
        ref = list(tokenizer.encode((raw_reference or reference).lower().strip()))
        own = [t for t in tokenizer.encode(decoded_text) if t != unk]
        return ref, own
    if kind == "normalised":
        return [t for t in tokenizer.encode(reference) if t != unk], list(greedy_tokens)
    raise ValueError(f"loss targets must be one of {', '.join(LOSS_TARGETS)} (got {kind!r})")


def recording_loss(log_probs: np.ndarray, ref_tokens: Sequence[int],
                   self_tokens: Sequence[int], blank_id: int) -> LossDetail:
    """LossDetail of merged log_probs (frames_out, classes) against the two token lists."""
    return LossDetail(ctc_nll(log_probs, ref_tokens, blank_id), len(ref_tokens),
                      ctc_nll(log_probs, self_tokens, blank_id), len(self_tokens))
