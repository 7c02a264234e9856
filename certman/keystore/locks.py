"""flock-based locks: the kernel drops them when the holder dies, so they never go stale."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import KeystoreLocked
from .files import opened_dir, storage_error


@contextmanager
def hold(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, waiting at most ``timeout`` seconds."""
    with opened_dir(path.parent, create=True) as dir_fd:
        try:
            fd = os.open(path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise storage_error(exc, path, "opening the lock") from exc
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KeystoreLocked(
                        f"{what} is locked by another certman run ({path})",
                        "wait for the other run to finish, or set lock_timeout in certman.toml or CERTMAN_LOCK_TIMEOUT",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)
