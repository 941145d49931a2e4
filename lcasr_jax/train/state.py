"""Train state pytree and the model built from a config."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lcasr_jax.model import ModelConfig, SCConformerXL
from lcasr_jax.model.runtime import Runtime

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@flax.struct.dataclass
class TrainState:
    """Everything the device holds; checkpointed as one pytree.

    step: () int32 optimizer steps taken. params: float32 master weights. batch_stats:
    BatchRenorm running statistics. consts: other model variables (e.g. rotary buffers),
    never trained. opt_state: optimizer state. rng: (2,) uint32 key data.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    consts: Any
    opt_state: Any
    rng: jax.Array

    def variables(self, params: Any = None) -> dict[str, Any]:
        v = {"params": self.params if params is None else params, **self.consts}
        if self.batch_stats:
            v["batch_stats"] = self.batch_stats
        return v


def build_model(cfg: Any) -> nn.Module:
    """SCConformerXL from `cfg.model` (ModelConfig fields) and `cfg.train` (dtype, remat)."""

    model_cfg = ModelConfig.from_dict(dict(cfg.model))
    t = cfg.train
    runtime = Runtime(dtype=DTYPES[t.compute_dtype], position_dtype=DTYPES[t.position_dtype],
                      attention_impl=t.attention_impl, depthwise_impl=t.depthwise_impl,
                      remat=t.remat, subsampling_chunk_frames=t.subsampling_chunk_frames)
    return SCConformerXL(model_cfg, **dataclasses.asdict(runtime))


def init_variables(model: nn.Module, rng: jax.Array, frames: int = 64) -> Any:
    """Boxed (logically partitioned) model variables from a (1, feat_in, frames) input."""
    spec = jnp.zeros((1, model.config.feat_in, frames), jnp.float32)
    return model.init(rng, spec, jnp.full((1,), frames, jnp.int32))


def _run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init key, state key) of a run with this seed."""
    init_key, state_key = jax.random.split(jax.random.key(seed))
    return init_key, state_key


def run_init_variables(model: nn.Module, seed: int) -> Any:
    """The (unboxed) variables a fresh run with this seed starts from (`create_state`'s)."""
    return nn.unbox(init_variables(model, _run_keys(seed)[0]))


def create_state(model: nn.Module, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """Fresh state (jit this with out_shardings to build it sharded)."""
    init_key, state_key = _run_keys(seed)
    variables = nn.unbox(init_variables(model, init_key))
    params = variables["params"]
    consts = {k: v for k, v in variables.items() if k not in ("params", "batch_stats")}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), consts=consts,
                      opt_state=tx.init(params), rng=jax.random.key_data(state_key))
