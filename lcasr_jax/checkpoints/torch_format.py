"""Reading and writing the released PyTorch checkpoint format, safely.

Every record's CRC-32 (written by torch.save) is checked before reading, so a corrupted
file is refused naming the record. A checkpoint is an untrusted pickle. It is read with
`torch.load(weights_only=True)`, whose restricted unpickler only rebuilds tensors, plain
containers and the omegaconf classes allow-listed below; anything else (a class or function
reference that would run code) is refused. torch and omegaconf are needed only here (the
`convert` extra).
"""

from __future__ import annotations

import collections
import os
import pathlib
import re
import tempfile
import typing
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


def _require_torch():
    try:
        import omegaconf
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise CheckpointError(
            f"reading .pt checkpoints needs torch and omegaconf "
            f"(pip install 'lcasr-jax[convert]'): {e}") from None
    return torch, omegaconf


def _safe_globals() -> list[Any]:
    _, omegaconf = _require_torch()
    from omegaconf import base, dictconfig, listconfig, nodes

    node_classes = [getattr(nodes, n) for n in (
        "AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode",
        "BytesNode", "PathNode", "ValueNode") if hasattr(nodes, n)]
    return [dictconfig.DictConfig, listconfig.ListConfig, base.ContainerMetadata,
            base.Metadata, *node_classes, typing.Any, list, dict, dict, list,
            int, float, str, bool, bytes, collections.defaultdict, collections.OrderedDict,
            pathlib.Path, pathlib.PosixPath, omegaconf.DictConfig]


def load_released(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any],
                                                      dict[str, Any]]:
    """Read a released checkpoint.

    Returns (state_dict as numpy arrays in file order, config as plain dict, metadata:
    the other top-level entries that are plain data, e.g. podcast_step, epoch).
    """
    torch, omegaconf = _require_torch()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a torch checkpoint (not a torch.save zip archive)")
    with zipfile.ZipFile(path) as archive:  # torch.load does not check the CRC-32s
        try:
            bad = archive.testzip()
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise CheckpointError(f"{path}: truncated or corrupted archive ({e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted: {bad} fails its CRC-32 check")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, ...
        refused = _refused_global(str(e))
        if refused is not None or "weights_only" in str(e):
            raise CheckpointError(
                f"{path}: refused to load: it references {refused or 'a global'}, which is "
                "not tensors or plain data (a checkpoint must not run code when read)") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot read checkpoint ({first})") from None
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{path}: top-level object is {type(ckpt).__name__}, not a dict")
    for key in ("model", "config"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: missing top-level entry {key!r}")
    state = ckpt["model"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: 'model' is not a state_dict")
    state_dict = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{path}: state_dict entry {k!r} is not a tensor")
        state_dict[k] = v.detach().cpu().numpy()
    config = ckpt["config"]
    if isinstance(config, omegaconf.DictConfig):
        config = omegaconf.OmegaConf.to_container(config, resolve=True)
    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        raise CheckpointError(f"{path}: config has no 'model' section")
    metadata = {k: ckpt[k] for k in ("podcast_step", "epoch", "sequence_scheduler", "scheduler")
                if k in ckpt and _is_plain(ckpt[k])}
    return state_dict, dict(config), metadata


def _refused_global(message: str) -> str | None:
    """The global that torch's restricted unpickler refused, from its error message."""
    m = re.search(r"(?:GLOBAL|global:?)\s+`?([\w.]+)", message)
    return m.group(1) if m else None


def _is_plain(x: Any) -> bool:
    if x is None or isinstance(x, (bool, int, float, str)):
        return True
    if isinstance(x, (list, tuple)):
        return all(_is_plain(v) for v in x)
    if isinstance(x, Mapping):
        return all(isinstance(k, str) and _is_plain(v) for k, v in x.items())
    return False


def save_released(path: str | os.PathLike, state_dict: Mapping[str, np.ndarray],
                  config: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> None:
    """Write a checkpoint in the released layout (atomically: temp file, then rename).

    `config` is stored as an omegaconf DictConfig, so the original's loader
    (`SCConformerXL(vocab_size=4095, **config.model)` + `load_state_dict`) accepts it.
    """
    torch, omegaconf = _require_torch()
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a .pt file path")
    metadata = dict(metadata or {})
    model = collections.OrderedDict(
        (k, torch.from_numpy(np.array(v, order="C"))) for k, v in state_dict.items())
    ckpt = {
        "model": model,
        "optimizer": None,
        "scheduler": metadata.get("scheduler"),
        "podcast_step": metadata.get("podcast_step", 0),
        "config": omegaconf.OmegaConf.create(dict(config)),
        "sequence_scheduler": metadata.get("sequence_scheduler"),
        "seen_ids": [],
        "epoch": metadata.get("epoch", 0),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
