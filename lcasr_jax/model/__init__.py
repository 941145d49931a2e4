"""SCConformerXL in Flax Linen.

Names are imported lazily (PEP 562): `lcasr_jax.model.lengths` (plain arithmetic that the
evaluation windows use) loads without flax or jax.
"""

from __future__ import annotations

from lcasr_jax import lazy_getattr

_EXPORTS = {
    "BLANK_ID": "lcasr_jax.data.vocab",
    "VOCAB_SIZE": "lcasr_jax.data.vocab",
    "ModelConfig": "lcasr_jax.model.config",
    "from_original": "lcasr_jax.model.config",
    "SCConformerXL": "lcasr_jax.model.conformer",
    "output_lengths": "lcasr_jax.model.lengths",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
