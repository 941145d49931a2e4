"""sha256 checksums of the array files of a model dir, and the swap recovery of `--overwrite`.

`checksums.json` = {"format": "lcasr-jax-checksums/1", "files": {relative path: {"sha256",
"bytes"}}} lists every file under `variables/` (config.json is the readable, editable part:
it is checked against the arrays' shapes instead). It is written inside the temporary dir
before the dir is renamed into place, so it is atomic with the arrays it describes.

Overwriting a model dir swaps two renames: DEST -> .DEST.old-PID, .DEST.partial-PID-* ->
DEST. `recover(dest)` (run by every save and load) repairs a swap that a killed process left
half-done: it finishes it when the new dir's checksums verify, else puts the old dir back,
and removes the leftovers of dead processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

from lcasr_jax.files import atomic_write, pid_alive

CHECKSUMS = "checksums.json"
FORMAT = "lcasr-jax-checksums/1"


class IntegrityError(ValueError):
    """A model dir file is missing, truncated or corrupted; the message names the file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(root: str | os.PathLike, subdir: str = "variables") -> Path:
    """Write ROOT/checksums.json for every file under ROOT/subdir (atomically)."""
    root = Path(root)
    files = {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted((root / subdir).rglob("*")) if p.is_file()}
    return atomic_write(root / CHECKSUMS, json.dumps({"format": FORMAT, "files": files},
                                                     indent=1) + "\n")


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


_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>old|partial)-(?P<pid>\d+)(-.*)?$")


def leftovers(dest: Path) -> list[tuple[Path, str, int]]:
    """(path, 'old' | 'partial', pid) of swap leftovers beside `dest`."""
    if not dest.parent.is_dir():
        return []
    out = []
    for p in sorted(dest.parent.iterdir()):
        m = _LEFTOVER.match(p.name)
        if m and m["name"] == dest.name and p.is_dir():
            out.append((p, m["kind"], int(m["pid"])))
    return out


def recover(dest: str | os.PathLike) -> None:
    """Repair an `--overwrite` swap of `dest` that a dead process left half-done, and
    remove its leftovers (folders of live processes are left alone). Says what it did."""
    dest = Path(dest).absolute()
    dead = [(p, kind) for p, kind, pid in leftovers(dest) if not pid_alive(pid)]
    if not dest.exists():
        for p, kind in sorted(dead, key=lambda x: x[1] != "partial"):  # a new one first
            if kind == "partial" and (p / CHECKSUMS).is_file():
                try:
                    verify_checksums(p)
                except IntegrityError:
                    continue
            elif kind == "partial":
                continue
            p.rename(dest)
            what = "finished the interrupted --overwrite" if kind == "partial" else \
                "restored the previous model after an interrupted --overwrite"
            print(f"{dest}: {what} (from {p.name})", file=sys.stderr)
            break
    for p, _ in dead:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
            print(f"{dest}: removed {p.name} left by an interrupted write", file=sys.stderr)
