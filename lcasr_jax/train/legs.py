"""Training in legs: a run that starts from the bf16 model another run exported.

A leg is one `train` call in a fresh workdir with `train.init_from=MODEL_DIR` (the previous
leg's `WORKDIR/model`, exported with `checkpoint.export_dtype=bfloat16`). It takes the
weights and BatchRenorm statistics from there (cast to float32), starts a FRESH optimizer
state (MADGRAD's anchor is the loaded point) with the config's warm-up (keep it short, e.g.
100 steps) and a cosine over this leg's `max_epochs`, and continues the sequence-length
schedule where the previous leg stopped (length, batch and position from the model's
metadata, `leg_metadata`; the schedule's settings from this config). The model config of the
loaded dir must equal this run's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def leg_metadata(step: int, recordings_seen: int, sequence: dict[str, Any],
                 previous: dict[str, Any] | None) -> dict[str, Any]:
    """What an export records so that the next leg can continue: steps and recordings of
    all legs so far, this leg's sequence-schedule state, the number of legs."""
    prev = previous or {}
    return {"step": step, "recordings_seen": recordings_seen,
            "total_steps": int(prev.get("total_steps", 0)) + step,
            "total_recordings": int(prev.get("total_recordings", 0)) + recordings_seen,
            "legs": int(prev.get("legs", 0)) + 1, "sequence": sequence}


def start_from(path: str, create: Any, cfg: Any, shardings: Any) -> tuple[Any, dict[str, Any]]:
    """create()'s state with params/batch_stats from the model dir `path` and a fresh
    optimizer state for them; returns (state, the dir's metadata). Another model's dir is
    refused before `create` runs (nothing is compiled for it)."""
    from lcasr_jax.checkpoints.store import load_config, load_model_dir
    from lcasr_jax.model.config import ModelConfig
    from lcasr_jax.train.optim import make_optimizer

    mcfg, variables = load_model_dir(path)
    want = ModelConfig.from_dict(dict(cfg.model))
    if mcfg != want:
        diff = [k for k in want.to_dict() if mcfg.to_dict().get(k) != want.to_dict()[k]]
        raise ValueError(f"train.init_from={path}: its model differs from this config's "
                         f"(fields {', '.join(diff)})")
    state = create()

    def like(new, ref, sh):
        if jax.tree.structure(new) != jax.tree.structure(ref):
            raise ValueError(f"train.init_from={path}: its arrays do not match the model's")
        return jax.tree.map(lambda a, r, s: jax.device_put(jnp.asarray(a, r.dtype), s),
                            new, ref, sh)

    params = like(variables["params"], state.params, shardings.params)
    stats = state.batch_stats
    if stats:
        stats = like(variables["batch_stats"], stats, shardings.batch_stats)
    tx = make_optimizer(cfg.optim, 0.0)
    opt_state = jax.jit(tx.init, out_shardings=shardings.opt_state)(params)
    meta = dict(load_config(path).to_dict().get("metadata") or {})
    return state.replace(params=params, batch_stats=stats, opt_state=opt_state), meta
