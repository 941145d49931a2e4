"""lcasr-jax: the long-context SCConformerXL CTC recogniser in JAX/Flax.

Public API: `load_pretrained(path) -> (model, variables)`; then
`model.apply(variables, spec, lengths)` with spec (batch, 80, frames) float32 and lengths
in frames gives {'final_posteriors': (batch, frames_out, 4096) log-probs, 'length': ...}.
"""

from lcasr_jax.checkpoints.convert import load_pretrained
from lcasr_jax.model import BLANK_ID, VOCAB_SIZE, ModelConfig, SCConformerXL

__all__ = ["BLANK_ID", "VOCAB_SIZE", "ModelConfig", "SCConformerXL", "load_pretrained"]
__version__ = "0.1.0"
