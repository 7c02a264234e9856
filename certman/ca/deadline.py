"""One deadline per certificate: everything it does with its CAs in a run ends by then.

A certificate's work opens several ACME sessions: the renewal-information check, the
issuing session, an account recovery, each fallback CA. Each session's transport has
its own ``timeout``; with only those, a CA that accepts connections and never answers
held a renewal for the ARI check's full timeout and then the issuance's full timeout
again. ``certificate_deadline`` sets the certificate's deadline for the thread it runs in
(a context variable, so parallel renewals each have their own), and every transport
bounds each socket wait, backoff and poll by the earlier of its own deadline and this
one; once it has passed, no request is sent at all. The deadline is per certificate
and CA: a fallback CA (``certman.issuance.fallback``) gets one of its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import msgspec


class Deadline(msgspec.Struct, frozen=True):
    """``at``, in seconds of ``monotonic``; ``seconds`` is the budget it was set with."""

    at: float
    seconds: float
    monotonic: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        """Seconds left; zero or less once it has passed."""
        return self.at - self.monotonic()


_current: ContextVar[Deadline | None] = ContextVar("certman_certificate_deadline", default=None)


@contextlib.contextmanager
def certificate_deadline(
    seconds: float, *, fresh: bool = False, monotonic: Callable[[], float] = time.monotonic
) -> Iterator[Deadline]:
    """Bound every ACME request made inside (in this thread) to ``seconds`` from now.

    Nested, the earlier deadline wins: ``obtain`` inside a renewal keeps the renewal's.
    ``fresh`` starts a new one whatever the outer says: a fallback CA, tried once the
    first has failed, must not find its time used up by the CA that was down.
    """
    outer = _current.get()
    mine = Deadline(monotonic() + seconds, seconds, monotonic)
    if not fresh and outer is not None and outer.remaining() <= mine.remaining():
        mine = outer
    token = _current.set(mine)
    try:
        yield mine
    finally:
        _current.reset(token)


def current_deadline() -> Deadline | None:
    """The deadline of the certificate this thread is working on, if one is set."""
    return _current.get()
