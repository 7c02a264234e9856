"""What certman is waiting for right now, for a listener that may show it.

The library marks each wait that can take a while (a request to the CA, polling for
validation or issuance, DNS propagation, a reload) with ``waiting(what)``; a wait can
change its text as it learns more (which nameservers still lack the record). Nothing is
shown from here: the CLI's status line (``cli.status_line``) reads ``active()`` on a
terminal. Without a listener a wait costs one lock and a list append.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Wait:
    """One wait: what it is for, and since when (``time.monotonic`` seconds)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self.thread = threading.get_ident()

    def update(self, what: str) -> None:
        """Say what the wait is for now (e.g. fewer nameservers lacking the record)."""
        self.what = what


_lock = threading.Lock()
_active: list[Wait] = []


class Listener:
    """Called as each wait ends (the status line erases itself, so output after a wait
    starts on a clean line); set by the CLI, None otherwise."""

    on_end: Callable[[], None] | None = None


@contextmanager
def waiting(what: str) -> Iterator[Wait]:
    """Mark the block as a wait for ``what`` (a short phrase: "the CA", "validation of example.com")."""
    wait = Wait(what)
    with _lock:
        _active.append(wait)
    try:
        yield wait
    finally:
        with _lock:
            _active.remove(wait)
        if Listener.on_end is not None:
            Listener.on_end()


def active() -> list[Wait]:
    """The waits in progress, oldest first."""
    with _lock:
        return list(_active)
