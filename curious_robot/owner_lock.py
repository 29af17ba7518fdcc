"""One owner per file: an ``flock`` on a lock file that also names the owner's pid, so
the one refused can say who holds it. The lock goes with the process (exit, kill -9)."""

from __future__ import annotations

import fcntl
import os


class LockHeld(RuntimeError):
    """Another process holds the lock; ``holder`` is its pid as written ("unknown")."""

    def __init__(self, path: str, holder: str):
        super().__init__(f"{path} is held by pid {holder}")
        self.holder = holder


def take(path: str | os.PathLike) -> int:
    """Hold ``path`` (created) exclusively; returns its descriptor (``os.close`` releases
    it). :class:`LockHeld` when another process holds it, ``OSError`` when it cannot be
    created."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(str(path), holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
