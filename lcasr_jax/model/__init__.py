"""SCConformerXL in Flax Linen."""

from lcasr_jax.data.vocab import BLANK_ID, VOCAB_SIZE
from lcasr_jax.model.config import ModelConfig, from_original
from lcasr_jax.model.conformer import SCConformerXL
from lcasr_jax.model.subsampling import output_lengths

__all__ = ["BLANK_ID", "VOCAB_SIZE", "ModelConfig", "SCConformerXL", "from_original",
           "output_lengths"]
