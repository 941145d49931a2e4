"""What a sweep's cells stand on, found before the first cell runs: every checkpoint resolved
to a local file or folder (hub names through the cache when the hub is offline, detected
once), and a content digest of each checkpoint and test set, which becomes part of the
cells' keys (`Cell.content`): a model replaced at the same path, or a changed manifest or
reference, is a new cell and is evaluated again.

Digests: sha256 over a checkpoint's files (a .pt, or a converted dir's files with their
relative names), remembered in DIR/checksums.json by (path, size, mtime) so a rerun does not
read gigabytes again; a test set's is sha256 over its recordings (id, audio file name and
size, scoring reference, ignored regions) and the dataset folder's manifest.json if any.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from lcasr_jax.checkpoints.hub import hub_offline, is_hub_name, resolve_checkpoint
from lcasr_jax.checkpoints.shipped import resolve_default_model
from lcasr_jax.files import atomic_write, sha256_file

CHECKSUMS = "checksums.json"  # in the sweep directory: {path: [size, mtime_ns, sha256]}


def resolve_checkpoints(names: Iterable[str], log: Callable[[str], None] = print
                        ) -> dict[str, Path]:
    """{name: local path} of every checkpoint name ('' = the shipped model). Raises one
    FileNotFoundError listing every name that cannot be found (not just the first). The hub
    is probed once (`hub.hub_offline`): offline, every hub name comes from the cache."""

    names = list(dict.fromkeys(names))
    offline = any(is_hub_name(n) for n in names) and hub_offline()
    if offline:
        log("sweep: the Hugging Face hub is offline (HF_HUB_OFFLINE or no connection): "
            "hub checkpoints come from the local cache")
    found, missing = {}, []
    for name in names:
        try:
            found[name] = (resolve_default_model() if not name
                           else resolve_checkpoint(name, offline=offline))
        except (FileNotFoundError, OSError, ValueError) as e:
            missing.append(" ".join(str(e).split()))
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(names)} checkpoints not found:\n  "
                                + "\n  ".join(missing))
    return found


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


class Checksums:
    """sha256 of files, remembered in a JSON file by (real path, size, mtime_ns)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.known: dict[str, list] = {}
        if path is not None and path.is_file():
            try:
                self.known = json.loads(path.read_text())
            except (ValueError, OSError):
                self.known = {}  # a damaged memo is recomputed
        self.changed = False

    def file(self, path: Path) -> str:
        real = path.resolve()
        st = real.stat()
        memo = self.known.get(str(real))
        if memo and memo[:2] == [st.st_size, st.st_mtime_ns]:
            return memo[2]
        digest = sha256_file(real)
        self.known[str(real)] = [st.st_size, st.st_mtime_ns, digest]
        self.changed = True
        return digest

    def tree(self, path: Path) -> str:
        """Digest of a file, or of a folder's files with their relative names."""
        h = hashlib.sha256()
        for f in _files(path):
            rel = f.name if f == path else str(f.relative_to(path))
            h.update(f"{rel}\0{self.file(f)}\n".encode())
        return h.hexdigest()

    def save(self) -> None:
        if self.path is not None and self.changed:
            atomic_write(self.path, json.dumps(self.known, indent=0, sort_keys=True) + "\n")
            self.changed = False


def dataset_digest(recordings: Iterable, data_dir: Path) -> str:
    """Digest of a test set: its recordings as read (id, audio name and size, reference,
    ignored regions) and the folder's manifest.json if it has one."""
    h = hashlib.sha256()
    manifest = Path(data_dir).expanduser() / "manifest.json"
    if manifest.is_file():
        h.update(manifest.read_bytes())
    for rec in recordings:
        audio = Path(rec.audio)
        size = audio.stat().st_size if audio.is_file() else -1
        h.update(json.dumps([rec.id, audio.name, size, rec.reference,
                             [list(r) for r in rec.ignore]]).encode())
    return h.hexdigest()
