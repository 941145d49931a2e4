"""Periodic dev WER during training: greedy CTC transcripts of fixed held-out chunks.

The dev batches (`log.dev_batches` batches of `log.dev_frames` frames x `log.dev_batch_size`
rows from `data.dev_split`) are read once, so every evaluation scores the same audio (a `dry`
run's dev split is read as plain `recordings`: held-out speech as it was generated). WER is
over chunks (references = the chunks' target tokens, detokenised), words summed over chunks.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lcasr_jax.data.sources import make_source
from lcasr_jax.data.tokenizer import default_tokenizer
from lcasr_jax.decode import greedy_texts
from lcasr_jax.eval.wer import word_error_rate_detail


class DevSet:
    def __init__(self, cfg: Any):
        dev_cfg = cfg.copy_and_resolve_references()
        with dev_cfg.unlocked():
            dev_cfg.data.split = cfg.data.dev_split
            if dev_cfg.data.kind == "dry":
                dev_cfg.data.kind = "recordings"
        source = make_source(dev_cfg)
        self.batches = []
        for _ in range(int(cfg.log.dev_batches)):
            batch, _ = source.next_batch(int(cfg.log.dev_frames), int(cfg.log.dev_batch_size))
            self.batches.append(batch)

    def wer(self, model, variables: dict[str, Any]) -> tuple[float, str, str]:
        """(WER, first hypothesis, its reference) of the current weights."""

        tok = default_tokenizer()
        hyps, refs = [], []
        for b in self.batches:
            ids, n = jax.device_get(argmax_ids(model, variables, jnp.asarray(b["spec"]),
                                               jnp.asarray(b["lengths"])))
            rows = np.flatnonzero(b["lengths"] > 0)
            hyps += greedy_texts(ids[rows], n[rows], tok)
            refs += [tok.decode([int(t) for t in b["targets"][i, : b["target_lengths"][i]]])
                     for i in rows]
        return word_error_rate_detail(hyps, refs).wer, hyps[0], refs[0]


@functools.partial(jax.jit, static_argnums=0)
def argmax_ids(model, variables, spec, lengths):
    """Eval-mode argmax ids (batch, tokens) and token lengths (batch,) of spec (batch, 80, T)."""
    out = model.apply(variables, spec, lengths)
    return jnp.argmax(out["final_posteriors"], axis=-1), out["length"]
