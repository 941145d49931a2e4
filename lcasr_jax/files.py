"""Safe file writes: atomic replace, advisory locks, and single-owner directory locks.

- `atomic_write(path, text)`: a temp file in the same folder, then `os.replace`, so readers
  see the old or the new file, never half of one.
- `locked(path)`: an exclusive `fcntl.flock` on `<folder>/.<name>.lock` for a
  read-modify-write of `path` by several processes (results tables).
- `hold_lock(path, what)`: a non-blocking exclusive lock held for a process's lifetime
  (a training workdir); a second holder is refused with the first one's PID.
Locks are released by the kernel when the process dies, so a crash never leaves one stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class BusyError(OSError):
    """Another process holds the lock; the message names the path and the holder's PID."""


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (utf-8) to `path` atomically; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock for read-modify-write of `path` (waits for other holders)."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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
