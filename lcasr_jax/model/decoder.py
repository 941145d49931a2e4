"""CTC decoder head shared by the output and the self-conditioning between layers."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.feedforward import dense
from lcasr_jax.model.norms import make_norm


class CTCDecoder(nn.Module):
    """norm (optional) -> Linear(d -> classes); reprojection Linear(classes -> d) for
    self-conditioning. Logits come in the compute dtype (bf16 under mixed precision, as
    torch autocast gives them); softmaxes over them are taken in float32."""

    config: ModelConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self) -> None:
        cfg = self.config
        self.norm = make_norm(cfg, "norm") if cfg.decoder_norm else (lambda x: x)
        self.ff = dense(cfg.num_classes, True, self.dtype, ("embed", "vocab"), "ff",
                        cfg.d_model, cfg.param_init)
        self.reprojection = dense(cfg.d_model, True, self.dtype, ("vocab", "embed"),
                                  "reprojection", cfg.num_classes, cfg.param_init)

    def apply_norm(self, x: jax.Array) -> jax.Array:
        return self.norm(x)

    def logits(self, x: jax.Array) -> jax.Array:
        """(batch, time, d_model) -> (batch, time, classes) in the compute dtype."""
        return self.ff(self.norm(x))

    def condition(self, x: jax.Array, logits: jax.Array) -> jax.Array:
        """Self-conditioning: x + reprojection(softmax(logits))."""
        probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
        return (x + self.reprojection(probs)).astype(x.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.logits(x)
