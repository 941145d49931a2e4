"""The converted-model directory: `config.json` (readable) + `variables/` (orbax) +
`checksums.json` (sha256 of every file under variables/, verified on load).

config.json = {"format": "lcasr-jax/1", "model": ModelConfig fields,
               "original_config": the released training config, "metadata": {...}}
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from lcasr_jax.checkpoints import integrity
from lcasr_jax.files import partial_dir, swap_in
from lcasr_jax.interrupts import deferred_signals
from lcasr_jax.model.config import TRAINING_FIELDS, ModelConfig

if TYPE_CHECKING:
    import ml_collections

FORMAT = "lcasr-jax/1"
CONFIG_FILE = "config.json"
VARIABLES_DIR = "variables"
# config.json's model fields that may be edited after saving (a run-time choice); the others
# must stay as the arrays were saved with (`integrity.check_recorded_model`).
EDITABLE_FIELDS = ("attention_window",)


def is_model_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_FILE).is_file() and (Path(path) / VARIABLES_DIR).is_dir()


def check_dest(dest: str | os.PathLike, overwrite: bool = False) -> Path:
    """`dest` as an absolute path; raises if a model dir cannot be written there. Repairs
    a swap that an interrupted `--overwrite` left half-done first (`integrity.recover`)."""
    dest = Path(dest).absolute()
    integrity.recover(dest)
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest}: destination exists and is not a directory")
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise FileExistsError(f"{dest}: destination exists and is not empty (use --overwrite)")
    return dest


def save_model_dir(dest: str | os.PathLike, cfg: ModelConfig, variables: Mapping[str, Any],
                   original_config: Mapping[str, Any] | None = None,
                   metadata: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write a converted model atomically: everything (checksums last) goes to a sibling
    temp dir that is renamed to `dest` only when complete, so `dest` is never half-written;
    an existing `dest` is swapped out by renames that `integrity.recover` can finish
    (`files.swap_in`).
    Ctrl-C/SIGTERM let the write finish, then remove it (`interrupts.deferred_signals`)."""

    dest = check_dest(dest, overwrite)
    tmp = partial_dir(dest)
    try:
        with deferred_signals(f"finishing the write of {dest.name}, then removing it") as stop:
            doc = {"format": FORMAT, "model": cfg.to_dict(),
                   "original_config": dict(original_config or {}),
                   "metadata": dict(metadata or {})}
            (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
            checkpointer = ocp.StandardCheckpointer()
            checkpointer.save(tmp / VARIABLES_DIR, jax.tree.map(np.asarray, dict(variables)))
            checkpointer.wait_until_finished()  # orbax's writer threads must not be cut short
            integrity.write_checksums(tmp, VARIABLES_DIR, model=cfg.to_dict())
            if stop.is_set():
                raise KeyboardInterrupt
            swap_in(tmp, dest, overwrite)
    except BaseException:  # leave dest as it was and no temp dir
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def load_config(path: str | os.PathLike) -> ml_collections.ConfigDict:
    """The readable config of a converted model dir, as an ml-collections ConfigDict."""

    file = Path(path) / CONFIG_FILE
    try:
        doc = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: cannot read model config ({e})") from None
    if doc.get("format") != FORMAT:
        raise ValueError(f"{file}: unknown format {doc.get('format')!r} (expected {FORMAT!r})")
    return ml_collections.ConfigDict(doc)


def model_config(path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig of a model dir's config.json; every field must be written there
    (a missing one would silently take a default the arrays were not made with), except
    the training-only TRAINING_FIELDS (how a fresh model is initialised and its batch
    statistics gathered: model dirs written before they existed lack them)."""
    file = Path(path) / CONFIG_FILE
    model = load_config(path).get("model")
    if model is None:
        raise ValueError(f"{file}: no 'model' section")
    model = model.to_dict()
    missing = [f.name for f in dataclasses.fields(ModelConfig)
               if f.name not in model and f.name not in TRAINING_FIELDS]
    if missing:
        raise ValueError(f"{file}: model field {missing[0]!r} is missing")
    try:
        return ModelConfig.from_dict(model)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{file}: model.{e}") from None


def load_model_dir(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """(ModelConfig, variables as numpy arrays) from a converted model dir, its array files
    checked against checksums.json (IntegrityError names a bad file; a dir without the
    list, written before it existed, is loaded with a warning)."""

    path = Path(path).absolute()
    integrity.recover(path)
    cfg = model_config(path)
    if not integrity.verify_checksums(path):
        print(f"warning: {path}: no {integrity.CHECKSUMS}, array files not verified "
              "(re-save the model to add one)", file=sys.stderr)
    try:
        variables = ocp.StandardCheckpointer().restore(path / VARIABLES_DIR)
    except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise integrity.IntegrityError(f"{path / VARIABLES_DIR}: cannot read arrays ({first})"
                                       ) from None
    variables = jax.tree.map(np.asarray, variables)
    integrity.check_finite((("/".join(str(getattr(k, "key", k)) for k in keys), a) for keys, a
                            in jax.tree_util.tree_flatten_with_path(variables)[0]),
                           str(path / VARIABLES_DIR))
    return cfg, variables
