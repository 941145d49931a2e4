"""lcasr-jax: the long-context SCConformerXL CTC recogniser in JAX/Flax.

Public API: `load_pretrained(path or "hf://OWNER/REPO/FOLDER") -> (model, variables)`; then
`model.apply(variables, spec, lengths)` with spec (batch, 80, frames) float32 and lengths
in frames gives {'final_posteriors': (batch, frames_out, 4096) log-probs, 'length': ...}.

Names are imported lazily (PEP 562), so tools that need no JAX (the corpus generator's
worker processes, the CLI's help) start fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A package's `__getattr__` (PEP 562) importing each name of `exports` (name -> the
    module that defines it) on first use."""
    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_getattr(__name__, _EXPORTS)
