"""The context a checkpoint was trained at: the evaluation default of the original's
`eval/run.py` (its `-seq -1`: `config['audio_chunking']['size']` of the checkpoint).

Released checkpoints and model dirs converted from them carry the original's training
config (`audio_chunking.size`); models trained here carry this project's
(`sequence.max_sequence_length`, the longest chunk of the sequence-length schedule).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def context_of_config(config: Mapping[str, Any]) -> int | None:
    """Training context in frames from a training config (original's or this project's);
    None if it has neither field."""
    for section, field in (("audio_chunking", "size"), ("sequence", "max_sequence_length")):
        value = (config.get(section) or {}).get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def training_context(path: str | os.PathLike) -> int | None:
    """Training context in frames of a resolved checkpoint (released .pt or converted model
    dir); None if its config does not say."""
    from lcasr_jax.checkpoints import store, torch_format

    path = Path(path)
    if path.is_dir():
        doc = store.load_config(path).to_dict()
        return context_of_config(doc.get("original_config") or {})
    _, config, _ = torch_format.load_released(path)
    return context_of_config(config)
