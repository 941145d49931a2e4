"""lcasr-jax: the long-context SCConformerXL CTC recogniser in JAX/Flax.

Public API: `load_pretrained(path or "hf://OWNER/REPO/FOLDER") -> (model, variables)`; then
`model.apply(variables, spec, lengths)` with spec (batch, 80, frames) float32 and lengths
in frames gives {'final_posteriors': (batch, frames_out, 4096) log-probs, 'length': ...}.

Names are imported lazily (PEP 562), so tools that need no JAX (the corpus generator's
worker processes, the CLI's help) start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_pretrained": "lcasr_jax.checkpoints.load",
    "ModelConfig": "lcasr_jax.model.config",
    "SCConformerXL": "lcasr_jax.model.conformer",
    "BLANK_ID": "lcasr_jax.data.vocab",
    "VOCAB_SIZE": "lcasr_jax.data.vocab",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lcasr_jax' has no attribute {name!r}")
