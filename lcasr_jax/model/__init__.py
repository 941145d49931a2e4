"""SCConformerXL in Flax Linen.

Names are imported lazily (PEP 562): `lcasr_jax.model.lengths` (plain arithmetic that the
evaluation windows use) loads without flax or jax.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BLANK_ID": "lcasr_jax.data.vocab",
    "VOCAB_SIZE": "lcasr_jax.data.vocab",
    "ModelConfig": "lcasr_jax.model.config",
    "from_original": "lcasr_jax.model.config",
    "SCConformerXL": "lcasr_jax.model.conformer",
    "output_lengths": "lcasr_jax.model.lengths",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lcasr_jax.model' has no attribute {name!r}")
