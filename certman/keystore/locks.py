"""flock-based locks: the kernel drops them when the holder dies, so they never go stale."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import KeystoreLocked
from .files import opened_dir, storage_error

# Between processes, a waiter polls the flock (no blocking flock has a timeout). Short
# polls: the keystore lock is held for one store (milliseconds), and a waiter asleep for
# a quarter second left it idle while up to ten stores queued (renew --jobs 10).
FIRST_POLL = 0.001
LAST_POLL = 0.02


class _Local:
    """The threads of this process waiting for or holding one lock file, queued on a
    ``threading.Lock``: the next one wakes as the holder lets go, without polling."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


_locals: dict[Path, _Local] = {}
_locals_guard = threading.Lock()


@contextmanager
def hold(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, waiting at most ``timeout`` seconds; raises
    ``KeystoreLocked`` past it. The threads of one process take turns through a lock of
    their own first, so only one of them at a time waits on the flock."""
    deadline = time.monotonic() + timeout
    with _locals_guard:
        local = _locals.setdefault(path, _Local())
        local.users += 1
    try:
        if not local.lock.acquire(timeout=max(timeout, 0)):
            raise _locked(what, path)
        try:
            with _flocked(path, deadline, what):
                yield
        finally:
            local.lock.release()
    finally:
        with _locals_guard:
            local.users -= 1
            if not local.users:
                del _locals[path]


@contextmanager
def _flocked(path: Path, deadline: float, what: str) -> Iterator[None]:
    with opened_dir(path.parent, create=True) as dir_fd:
        try:
            fd = os.open(path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise storage_error(exc, path, "opening the lock") from exc
    try:
        delay = FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _locked(what, path) from None
                time.sleep(delay)
                delay = min(delay * 2, LAST_POLL)
        yield
    finally:
        os.close(fd)


def _locked(what: str, path: Path) -> KeystoreLocked:
    return KeystoreLocked(
        f"{what} is locked by another certman run ({path})",
        "wait for the other run to finish, or set lock_timeout in certman.toml or CERTMAN_LOCK_TIMEOUT",
    )
