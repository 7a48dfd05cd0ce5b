"""One ``shrn run`` at a time per photo folder: an advisory lock on ``<out>/<stem>/.shrn.lock``.

The lock is the kernel's (``fcntl.flock``), not the file's existence: a process killed with
``kill -9`` loses it at once, so a stale lock cannot block a rerun, and the next run reuses (or
removes) the file left behind. The file records who holds it (pid, host, start time) for the
message a waiting process prints. A holder removes the file when it is done; a process that locked
a file another process removed meanwhile notices (the path names a different inode) and locks
again. On systems without ``fcntl`` (Windows) runs are not locked.

Two runs given overlapping shards by mistake therefore never work on one photo at the same time:
the second waits, then finds the outputs fresh and reuses them.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from ..errors import OutputError

log = logging.getLogger("shrn.pipeline")

LOCK_NAME = ".shrn.lock"
POLL_SECONDS = 0.2

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class FolderLock:
    """An exclusive lock on one output folder; ``acquire`` waits while another process holds it."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if fcntl is None:
            return True
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot create lock file ({exc.strerror})", self.path) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if self._same_file(fd):
                break
            os.close(fd)  # the holder removed the file after we opened it: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        self._fd = fd
        return True

    def acquire(self, poll: float = POLL_SECONDS) -> "FolderLock":
        announced = False
        while not self.try_acquire():
            if not announced:
                log.info("%s: another shrn run (%s) is working on this folder; waiting", self.path.parent, self.holder())
                announced = True
            time.sleep(poll)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: a waiter then sees a different inode and retries
        os.close(self._fd)
        self._fd = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text())
            return f"pid {info['pid']} on {info['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "unknown process"

    def _same_file(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def locked_folders(folders: list[Path]) -> Iterator[None]:
    """Lock several folders, always in the same (sorted) order so two runs cannot deadlock."""
    locks = [FolderLock(folder) for folder in sorted({Path(f).resolve() for f in folders})]
    held: list[FolderLock] = []
    try:
        for lock in locks:
            held.append(lock.acquire())
        yield
    finally:
        for lock in reversed(held):
            lock.release()


def remove_temporary_files(folder: Path) -> list[Path]:
    """Delete what an interrupted atomic write left (``.<name>.<random>.tmp``); call with the lock held."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed
