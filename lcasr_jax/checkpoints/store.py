"""The converted-model directory: `config.json` (readable) + `variables/` (orbax).

config.json = {"format": "lcasr-jax/1", "model": ModelConfig fields,
               "original_config": the released training config, "metadata": {...}}
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from lcasr_jax.model.config import ModelConfig

if TYPE_CHECKING:
    import ml_collections

FORMAT = "lcasr-jax/1"
CONFIG_FILE = "config.json"
VARIABLES_DIR = "variables"


def is_model_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_FILE).is_file() and (Path(path) / VARIABLES_DIR).is_dir()


def check_dest(dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """`dest` as an absolute path; raises if a model dir cannot be written there."""
    dest = Path(dest).absolute()
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest}: destination exists and is not a directory")
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise FileExistsError(f"{dest}: destination exists and is not empty (use --overwrite)")
    return dest


def save_model_dir(dest: str | os.PathLike, cfg: ModelConfig, variables: Mapping[str, Any],
                   original_config: Mapping[str, Any] | None = None,
                   metadata: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write a converted model atomically: everything goes to a sibling temp dir that is
    renamed to `dest` only when complete, so `dest` is never half-written."""
    import orbax.checkpoint as ocp

    dest = check_dest(dest, overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        doc = {"format": FORMAT, "model": cfg.to_dict(),
               "original_config": dict(original_config or {}), "metadata": dict(metadata or {})}
        (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        tree = jax.tree.map(np.asarray, dict(variables))
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp / VARIABLES_DIR, tree)
        checkpointer.wait_until_finished()
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def load_config(path: str | os.PathLike) -> ml_collections.ConfigDict:
    """The readable config of a converted model dir, as an ml-collections ConfigDict."""
    import ml_collections

    file = Path(path) / CONFIG_FILE
    try:
        doc = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: cannot read model config ({e})") from None
    if doc.get("format") != FORMAT:
        raise ValueError(f"{file}: unknown format {doc.get('format')!r} (expected {FORMAT!r})")
    return ml_collections.ConfigDict(doc)


def load_model_dir(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """(ModelConfig, variables as numpy arrays) from a converted model dir."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    doc = load_config(path)
    cfg = ModelConfig.from_dict(doc.model.to_dict())
    variables = ocp.StandardCheckpointer().restore(path / VARIABLES_DIR)
    return cfg, jax.tree.map(np.asarray, variables)
