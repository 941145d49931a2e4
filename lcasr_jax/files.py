"""Safe file writes: atomic replace, advisory locks, and single-owner directory locks.

- `atomic_write(path, text)`: a temp file in the same folder, then `os.replace`, so readers
  see the old or the new file, never half of one.
- `locked(path)`: an exclusive `fcntl.flock` on `<folder>/.<name>.lock` for a
  read-modify-write of `path` by several processes (results tables); `exclusive(lock)`
  the same on a lock file named directly (the benchmarks' device turn).
- `hold_lock(path, what)`: a non-blocking exclusive lock held for a process's lifetime
  (a training workdir); a second holder is refused with the first one's PID.
- `partial_dir` / `swap_in` / `recover_swap`: replace a whole folder (`--overwrite` of a model
  dir or a dataset): build it in `.NAME.partial-PID-*`, then two renames, DEST ->
  `.NAME.old-PID` and the new folder -> DEST; the next run repairs a swap a killed process
  left half-done.
Locks are released by the kernel when the process dies, so a crash never leaves one stuck.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


class BusyError(OSError):
    """Another process holds the lock; the message names the path and the holder's PID."""


MIN_FREE_BYTES = 1 << 20  # what a command's small outputs (tables, transcripts) may need


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (utf-8) to `path` atomically; creates the parent folder. A failure
    (disk full, read-only) is an OSError whose message names `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, BrokenPipeError) or str(path) in str(e):
            raise
        raise type(e)(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable_dir(folder: str | os.PathLike, option: str,
                       need: int = MIN_FREE_BYTES) -> Path:
    """Make sure files can be written in `folder` now, before any long work (it is not
    created: a command that fails later leaves nothing): raises OSError naming `option` and
    the folder if it, or the nearest existing folder above it, is not a folder, not
    writable, or has less than `need` bytes free (a full disk)."""
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: {option} exists and is not a directory")
    there = folder
    while not there.exists():
        there = there.parent
    if not there.is_dir():
        raise NotADirectoryError(f"{folder}: {option} is inside {there}, which is not a "
                                 "directory")
    try:
        tempfile.TemporaryFile(dir=there).close()
    except OSError as e:
        raise PermissionError(f"{folder}: {option} is not writable ({e.strerror})") from None
    free = shutil.disk_usage(there).free
    if free < need:
        raise OSError(f"{folder}: {option} has {free:,} bytes free, {need:,} needed "
                      "(disk full)")
    return folder


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(lock: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive `fcntl.flock` on the file `lock` itself (waits for other holders)."""
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock for read-modify-write of `path` (waits for other holders)."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock):
        yield


def hold_lock(path: str | os.PathLike, what: str) -> IO[str]:
    """Take the exclusive lock file `path` without waiting and write our PID into it.

    Returns the open file: the lock lasts until it is closed (or the process ends).
    Raises BusyError naming `what` and the holder's PID when another process holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")  # noqa: SIM115 - the caller keeps it open to hold the lock
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise BusyError(f"{what} is in use by another process (PID {holder}, lock {path}); "
                        "wait for it to finish or use another one") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>old|partial)-(?P<pid>\d+)(-.*)?$")


def swap_leftovers(dest: Path) -> list[tuple[Path, str, int]]:
    """(path, 'old' | 'partial', pid) of the swap folders beside `dest`."""
    if not dest.parent.is_dir():
        return []
    out = []
    for p in sorted(dest.parent.iterdir()):
        m = _LEFTOVER.match(p.name)
        if m and m["name"] == dest.name and p.is_dir():
            out.append((p, m["kind"], int(m["pid"])))
    return out


def partial_dir(dest: Path) -> Path:
    """A new empty folder `.NAME.partial-PID-*` beside `dest` to build its replacement in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-{os.getpid()}-", dir=dest.parent))
    mask = os.umask(0)  # mkdtemp makes 0700; the folder becomes `dest`: as mkdir would
    os.umask(mask)
    new.chmod(0o777 & ~mask)
    return new


def swap_in(new: Path, dest: Path, overwrite: bool = True) -> None:
    """Rename the finished folder `new` to `dest`; an existing `dest` is first renamed to
    `.NAME.old-PID` (put back if the second rename fails) and removed afterwards. Without
    `overwrite`, `dest` must be missing or empty at this moment (one rename, which fails
    when another process has filled `dest` meanwhile: FileExistsError)."""
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if not overwrite or not dest.exists():
        try:
            new.rename(dest)  # replaces an empty folder, never a full one
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise FileExistsError(f"{dest}: written by another process meanwhile; not "
                                  "replaced (use --overwrite to replace it)") from None
        return
    dest.rename(old)
    try:
        new.rename(dest)
    except BaseException:
        old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(dest: str | os.PathLike, complete: Callable[[Path], bool]) -> None:
    """Repair a `swap_in` of `dest` that a dead process left half-done: with `dest` missing,
    a dead process's partial folder that is `complete` becomes `dest`, else its old one
    does; then every leftover of dead processes is removed (live ones are left alone).
    Says on stderr what it did."""
    dest = Path(dest).absolute()
    dead = [(p, kind) for p, kind, pid in swap_leftovers(dest) if not pid_alive(pid)]
    if not dest.exists():
        for p, kind in sorted(dead, key=lambda x: x[1] != "partial"):  # a new one first
            if kind == "partial" and not complete(p):
                continue
            p.rename(dest)
            what = "finished the interrupted --overwrite" if kind == "partial" else \
                "restored the previous version after an interrupted --overwrite"
            print(f"{dest}: {what} (from {p.name})", file=sys.stderr)
            break
    for p, _ in dead:
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
            print(f"{dest}: removed {p.name} left by an interrupted write", file=sys.stderr)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
