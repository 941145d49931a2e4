"""Loading a model for use: `load_pretrained` (any checkpoint name -> model, variables) and
`load_model` (the same with the shipped default and the tokenizer check that every command
applies)."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp

from lcasr_jax.checkpoints import store
from lcasr_jax.checkpoints.convert import check_model_dir, read_released
from lcasr_jax.checkpoints.hub import resolve_checkpoint
from lcasr_jax.checkpoints.shipped import resolve_default_model
from lcasr_jax.decode import check_classes
from lcasr_jax.model.conformer import SCConformerXL


def load_pretrained(path: str | os.PathLike, **model_kwargs: Any) -> tuple[SCConformerXL, dict]:
    """Load a released .pt, a converted model dir, a folder holding one checkpoint, or a
    Hugging Face name `hf://OWNER/REPO/FOLDER[@REVISION]` (see `hub.resolve_checkpoint`).

    Returns (model, variables) ready for `model.apply(variables, spec, lengths)`.
    `model_kwargs` go to SCConformerXL (dtype, attention_impl, position_dtype, remat).
    """
    path = resolve_checkpoint(path)
    if path.is_dir():
        if not store.is_model_dir(path):
            raise ValueError(f"{path}: not a converted model dir (no {store.CONFIG_FILE} "
                             f"and {store.VARIABLES_DIR}/)")
        cfg, variables = store.load_model_dir(path)
        check_model_dir(path, cfg, variables)
    else:
        cfg, variables, _, _ = read_released(path)
    variables = jax.tree.map(jnp.asarray, variables)
    return SCConformerXL(cfg, **model_kwargs), variables


def load_model(checkpoint: str | os.PathLike | None,
               dtype: str = "float32") -> tuple[SCConformerXL, dict, str]:
    """(model, variables, checkpoint) of `checkpoint` (a path or hub name; None: the shipped
    default model) computing in `dtype` ('float32' or 'bfloat16'). Raises, naming the
    checkpoint, if its output classes do not fit the shipped tokenizer."""
    if checkpoint is None:
        checkpoint = resolve_default_model()
    checkpoint = str(checkpoint)
    model, variables = load_pretrained(checkpoint, dtype=getattr(jnp, dtype))
    check_classes(model.config.num_classes, source=checkpoint)
    return model, variables, checkpoint


__all__ = ["load_model", "load_pretrained"]
