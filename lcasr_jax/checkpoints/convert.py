"""Released .pt <-> converted model dir (loading for use: `checkpoints/load.py`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lcasr_jax.checkpoints import integrity, mapping, store, torch_format
from lcasr_jax.checkpoints.hub import resolve_checkpoint
from lcasr_jax.model.config import TRAINING_FIELDS, ModelConfig, from_original
from lcasr_jax.model.conformer import SCConformerXL


def abstract_variables(cfg: ModelConfig) -> dict[str, Any]:
    """Shapes and dtypes of a freshly built model's variables (no computation)."""
    model = SCConformerXL(cfg)
    spec = jnp.zeros((1, cfg.feat_in, 4 * cfg.subsampling_factor), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), spec)
    return nn.unbox(shapes)


def _stored_fields(variables: dict[str, Any]) -> dict[str, int]:
    """Config fields read off stored arrays: n_layers, and d_model / n_heads / head_dim
    (layer_0's qkv kernel is (d_model, 3, n_heads, head_dim))."""
    params = variables.get("params", {})
    found = {"n_layers": sum(1 for k in params if re.fullmatch(r"layer_\d+", k))}
    qkv = params.get("layer_0", {}).get("attn", {}).get("qkv", {}).get("kernel")
    if qkv is not None and len(qkv.shape) == 4:
        found.update(d_model=qkv.shape[0], n_heads=qkv.shape[2], head_dim=qkv.shape[3])
    return found


def check_shapes(cfg: ModelConfig, variables: dict[str, Any], source: str) -> None:
    """Raise ValueError if the arrays are not those of a model built from `cfg` (e.g. an
    edited config.json), naming the config field that disagrees where it can be read off."""
    want = {jax.tree_util.keystr(p): x.shape for p, x in
            jax.tree_util.tree_flatten_with_path(abstract_variables(cfg))[0]}
    have = {jax.tree_util.keystr(p): np.shape(x) for p, x in
            jax.tree_util.tree_flatten_with_path(variables)[0]}
    if want == have:
        return
    for field, stored in _stored_fields(variables).items():
        if getattr(cfg, field) != stored:
            raise ValueError(f"{source}: {field}={getattr(cfg, field)} but the stored arrays "
                             f"have {field}={stored}")
    path = next(iter(sorted(set(want) ^ set(have))), None)
    if path is None:
        path = next(k for k in sorted(want) if want[k] != have[k])
        raise ValueError(f"{source}: {path} is stored as {have[path]}, the config gives "
                         f"{want[path]}")
    where = "missing from the stored arrays" if path in want else "not in the config's model"
    raise ValueError(f"{source}: array {path} is {where}")


def check_model_dir(path: Path, cfg: ModelConfig, variables: dict[str, Any]) -> None:
    """A model dir's config.json against its arrays: their shapes (`check_shapes`), then
    the fields they were saved with (`integrity.check_recorded_model`)."""
    check_shapes(cfg, variables, str(path / store.CONFIG_FILE))
    integrity.check_recorded_model(path, cfg.to_dict(), editable=store.EDITABLE_FIELDS)


def _rms_style(state_dict: dict) -> str:
    return "lcasr" if any(k.endswith("norm_out.scale") for k in state_dict) else "apex"


def read_released(src: str | os.PathLike) -> tuple[ModelConfig, dict, dict, dict]:
    """(ModelConfig, variables, original config, metadata) from a released .pt file."""
    state_dict, config, metadata = torch_format.load_released(src)
    integrity.check_finite(state_dict.items(), str(src))
    try:
        cfg = from_original(config["model"], rms_norm_style=_rms_style(state_dict))
    except (ValueError, TypeError) as e:
        raise torch_format.CheckpointError(f"{src}: config.model: {e}") from None
    try:
        variables = mapping.state_dict_to_variables(
            state_dict, cfg, abstract_variables(cfg), source=str(src))
    except ValueError as e:
        raise torch_format.CheckpointError(str(e)) from None
    return cfg, variables, config, metadata


def torch_to_flax(src: str | os.PathLike, dest: str | os.PathLike,
                  overwrite: bool = False) -> Path:
    """Convert a released checkpoint (a .pt, a folder holding one, or an `hf://` name; see
    `hub.resolve_checkpoint`) into a model dir (orbax variables + config.json)."""
    store.check_dest(dest, overwrite)  # before reading a possibly large checkpoint
    try:
        src = resolve_checkpoint(src)
    except (FileNotFoundError, ValueError) as e:  # missing, not cached, ambiguous folder
        raise torch_format.CheckpointError(str(e)) from None
    if src.is_dir():
        raise torch_format.CheckpointError(f"{src}: already a converted model dir")
    cfg, variables, config, metadata = read_released(src)
    return store.save_model_dir(dest, cfg, variables, config, metadata, overwrite=overwrite)


def flax_to_torch(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write a model dir back as a checkpoint in the released format."""
    cfg, variables = store.load_model_dir(src)
    check_model_dir(Path(src), cfg, variables)
    doc = store.load_config(src).to_dict()
    original = doc.get("original_config") or {}
    if not _is_original_config(original):  # e.g. this project's training config: its other
        original = {**original, "model": _original_model_config(cfg)}  # sections kept
    state_dict = mapping.variables_to_state_dict(variables, cfg)
    torch_format.save_released(dest, state_dict, original, doc.get("metadata"))
    return Path(dest)


def _is_original_config(config: Any) -> bool:
    """Whether `config`'s `model` section is a released checkpoint's (readable as one)."""
    if not isinstance(config.get("model"), dict):
        return False
    try:
        from_original(config["model"])
    except (ValueError, TypeError):
        return False
    return True


def _original_model_config(cfg: ModelConfig) -> dict[str, Any]:
    """config.model for a model that was not converted from a release (e.g. trained here)."""
    d = cfg.to_dict()
    left, right = d.pop("attention_window")
    for key in ("rms_norm_style", "vocab_size", *TRAINING_FIELDS):
        d.pop(key)
    if (left, right) != (-1, -1):
        d["attention_window_size_left"], d["attention_window_size_right"] = left, right
    return d
