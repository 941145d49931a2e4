"""Periodic dev WER during training: greedy CTC transcripts of fixed held-out chunks.

The dev batches (`log.dev_batches` batches of `log.dev_frames` frames x `log.dev_batch_size`
rows from `data.dev_split`) are read once, so every evaluation scores the same audio (a `dry`
run's dev split is read as plain `recordings`: held-out speech as it was generated). Every
process reads the whole split (as one process would), so all of them decode the same rows
and the WER is a run's with any number of processes. WER is over chunks (references = the
chunks' target tokens, detokenised), words summed over chunks.

`greedy_ids` is the forward of these evaluations and of the loop's sample transcripts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lcasr_jax.data.sources import make_source
from lcasr_jax.data.tokenizer import default_tokenizer
from lcasr_jax.decode import greedy_texts
from lcasr_jax.distributed import started_together
from lcasr_jax.eval.wer import word_error_rate_detail
from lcasr_jax.sharding import put_replicated

# (variables, spec (batch, 80, T), lengths (batch,)) -> numpy (argmax ids (batch, tokens),
# token lengths (batch,)); the host inputs are the same on every process.
GreedyIds = Callable[[Any, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class DevSet:
    def __init__(self, cfg: Any):
        dev_cfg = cfg.copy_and_resolve_references()
        with dev_cfg.unlocked():
            dev_cfg.data.split = cfg.data.dev_split
            if dev_cfg.data.kind == "dry":
                dev_cfg.data.kind = "recordings"
        source = make_source(dev_cfg, process=(0, 1))  # all of it, on every process
        self.batches = []
        for _ in range(int(cfg.log.dev_batches)):
            batch, _ = source.next_batch(int(cfg.log.dev_frames), int(cfg.log.dev_batch_size))
            self.batches.append(batch)

    def wer(self, ids_of: GreedyIds, variables: dict[str, Any]) -> tuple[float, str, str]:
        """(WER, first hypothesis, its reference) of the current weights; `ids_of`:
        `greedy_ids` (every process calls this at once)."""

        tok = default_tokenizer()
        hyps, refs = [], []
        for b in self.batches:
            ids, n = ids_of(variables, b["spec"], b["lengths"])
            rows = np.flatnonzero(b["lengths"] > 0)
            hyps += greedy_texts(ids[rows], n[rows], tok)
            refs += [tok.decode([int(t) for t in b["targets"][i, : b["target_lengths"][i]]])
                     for i in rows]
        return word_error_rate_detail(hyps, refs).wer, hyps[0], refs[0]


def argmax_ids(model, variables, spec, lengths):
    """Eval-mode argmax ids (batch, tokens) and token lengths (batch,) of spec (batch, 80, T)."""
    out = model.apply(variables, spec, lengths)
    return jnp.argmax(out["final_posteriors"], axis=-1), out["length"]


def greedy_ids(model, mesh: Mesh, name: str) -> GreedyIds:
    """`argmax_ids` of `model` for host inputs that are the same on every process: they are
    replicated over `mesh` (the variables' mesh), the outputs too, so every process reads
    them whole; each new program starts on all processes at once (`started_together`, as
    `name`: one per call of this). One process: the rows on every device of `mesh`."""
    run = started_together(jax.jit(functools.partial(argmax_ids, model),
                                   out_shardings=NamedSharding(mesh, PartitionSpec())), name)

    def ids_of(variables: Any, spec: np.ndarray, lengths: np.ndarray):
        return jax.device_get(run(variables, *put_replicated((spec, lengths), mesh)))

    return ids_of
