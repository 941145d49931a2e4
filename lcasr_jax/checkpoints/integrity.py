"""sha256 checksums of the array files of a model dir, and the swap recovery of `--overwrite`.

`checksums.json` = {"format": "lcasr-jax-checksums/1", "files": {relative path: {"sha256",
"bytes"}}} lists every file under `variables/` (config.json is the readable, editable part:
it is checked against the arrays' shapes instead). It is written inside the temporary dir
before the dir is renamed into place, so it is atomic with the arrays it describes.

Overwriting a model dir swaps two renames (`files.swap_in`). `recover(dest)` (run by every
save and load) repairs a swap that a killed process left half-done: it finishes it when the
new dir's checksums verify, else puts the old dir back, and removes the leftovers of dead
processes (`files.recover_swap`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.files import atomic_write, recover_swap, sha256_file

CHECKSUMS = "checksums.json"
FORMAT = "lcasr-jax-checksums/1"


class IntegrityError(ValueError):
    """A model dir file is missing, truncated or corrupted; the message names the file."""


def check_finite(arrays: Iterable[tuple[str, Any]], source: str) -> None:
    """Raise IntegrityError naming the first floating-point array (name, array) holding a
    NaN or an infinity: such weights give empty transcripts and WER 1.0 without a word."""
    for name, array in arrays:
        array = np.asarray(array)
        if array.dtype.kind not in "fcV":  # V: bfloat16 and the other ml_dtypes floats
            continue
        try:
            bad = ~np.isfinite(array)
        except TypeError:  # not a number type
            continue
        if bad.any():
            kinds = ", ".join(k for k, m in (("nan", np.isnan(array)), ("inf", np.isinf(array)))
                              if m.any())
            raise IntegrityError(f"{source}: tensor {name} has {int(bad.sum())} non-finite "
                                 f"value(s) ({kinds}) of {array.size}: the weights are broken")


def write_checksums(root: str | os.PathLike, subdir: str = "variables",
                    model: Mapping[str, Any] | None = None) -> Path:
    """Write ROOT/checksums.json for every file under ROOT/subdir (atomically), with the
    `model` config fields the arrays were saved with (`check_recorded_model`)."""
    root = Path(root)
    files = {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted((root / subdir).rglob("*")) if p.is_file()}
    doc: dict[str, Any] = {"format": FORMAT, "files": files}
    if model is not None:
        doc["model"] = dict(model)
    return atomic_write(root / CHECKSUMS, json.dumps(doc, indent=1) + "\n")


def check_recorded_model(root: str | os.PathLike, model: Mapping[str, Any],
                         editable: Iterable[str] = ()) -> None:
    """Raise IntegrityError if config.json's `model` fields differ from those the arrays
    were saved with (recorded in checksums.json), except the `editable` ones: fields the
    arrays' shapes cannot show (self_conditioning, rotary frequencies, ...) would otherwise
    change what the weights compute without a word. Dirs without a record are not checked."""
    listing = Path(root) / CHECKSUMS
    try:
        recorded = json.loads(listing.read_text()).get("model")
    except (OSError, ValueError):
        return  # no list: verify_checksums said so already
    if not isinstance(recorded, Mapping):
        return
    for field, value in model.items():
        if field in editable or field not in recorded or recorded[field] == value:
            continue
        raise IntegrityError(
            f"{Path(root) / 'config.json'}: model.{field} is {json.dumps(value)} but the "
            f"arrays were saved with {json.dumps(recorded[field])} ({CHECKSUMS}); the weights "
            "were made for that value: restore it")


def verify_checksums(root: str | os.PathLike) -> bool:
    """Check every file listed in ROOT/checksums.json; False if ROOT has none.

    Raises IntegrityError naming the first missing, truncated or changed file.
    """
    root = Path(root)
    listing = root / CHECKSUMS
    if not listing.is_file():
        return False
    try:
        doc = json.loads(listing.read_text())
        files = doc["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise IntegrityError(f"{listing}: unreadable checksum list ({e})") from None
    if not isinstance(files, Mapping) or not files:
        raise IntegrityError(f"{listing}: the checksum list names no file (it always lists "
                             "the array files): the model dir was tampered with or damaged")
    for rel, want in files.items():
        path = root / rel
        if not path.is_file():
            raise IntegrityError(f"{path}: missing (listed in {CHECKSUMS})")
        size = path.stat().st_size
        if size != want["bytes"]:
            raise IntegrityError(f"{path}: truncated or altered ({size} bytes, "
                                 f"{want['bytes']} written)")
        if sha256_file(path) != want["sha256"]:
            raise IntegrityError(f"{path}: sha256 mismatch (the file is corrupted)")
    return True


def _verified(new: Path) -> bool:
    """Whether a model dir's replacement was finished: its checksums exist and verify."""
    try:
        return verify_checksums(new)
    except IntegrityError:
        return False


def recover(dest: str | os.PathLike) -> None:
    """Repair an `--overwrite` swap of `dest` that a dead process left half-done
    (`files.recover_swap`; the new dir is used only if its checksums verify)."""
    recover_swap(dest, _verified)
